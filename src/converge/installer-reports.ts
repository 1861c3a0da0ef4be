// Installer progress reports reduced to a host's convergence: the JSON events that curtin, subiquity (Ubuntu
// autoinstall, `reporting: {hook: {type: webhook}}`) and cloud-init's webhook reporter POST, one event per request,
// and the forseti OS image's events in the same format (src/os-image/guest/lib/report.sh).
//
// The format (curtin/reporter/events.py, cloudinit/reporting/events.py; curtin's doc/topics/reporting.rst):
//   {name, description, event_type: "start"|"finish", origin, timestamp (float seconds), level, result, files}
// `result` (SUCCESS | WARN | FAIL) only on finish; cloud-init sends no `level`; curtin's `files` carry base64 logs;
// older curtin sends no timestamp. Names are paths ("cmd-install/stage-partitioning"); "you are guaranteed to
// always get a finish for each sub-item before finish of the parent item ... A FAIL result of a sub-item will
// bubble up to its parent item" (curtin docs), so the first FAIL names the cause. Subiquity reports through
// curtin's library (origin "curtin"), names `subiquity/<Controller>/<method>/...`, and a crash as
// `subiquity/Error/...` with result SUCCESS (tessia's captured events). cloud-init's stages are init-local,
// init-network, modules-config and modules-final (cloudinit/cmd/main.py): modules-final finishing is the end of
// the installed system's first boot.

import { createHash } from 'node:crypto';
import { clip, converge, enterStep, fail, type ConvergeStep, type SignalState } from './signal.ts';

export type ReportEventType = 'start' | 'finish' | 'progress';
export type ReportResult = 'SUCCESS' | 'WARN' | 'FAIL';

export interface InstallerReport {
  name: string;
  description: string;
  eventType: ReportEventType;
  origin: string;
  /** The sender's clock (seconds), when it sent one. */
  timestamp?: number;
  level?: string;
  result?: ReportResult;
  /** Attached files: path and the length of their (base64) content as sent; the content is not kept. */
  files: Array<{ path: string; encodedLength: number }>;
}

export interface ReportLimits {
  /** Largest body (bytes); curtin may attach its install log. */
  maxBytes: number;
  maxNameLength: number;
  maxFiles: number;
}

export const DEFAULT_REPORT_LIMITS: Readonly<ReportLimits> = { maxBytes: 4 * 1024 * 1024, maxNameLength: 512, maxFiles: 32 };

export type ParsedReport = { ok: true; report: InstallerReport } | { ok: false; refusal: string };

const EVENT_TYPES: readonly string[] = ['start', 'finish', 'progress'];
const RESULTS: readonly string[] = ['SUCCESS', 'WARN', 'FAIL'];
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** One POSTed body, checked field by field; a refusal says what is wrong and nothing of the body is kept. */
export function parseInstallerReport(body: string | Uint8Array, limits: ReportLimits = DEFAULT_REPORT_LIMITS): ParsedReport {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (size > limits.maxBytes) return refuse(`the body is ${size} bytes, more than ${limits.maxBytes}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    return refuse(`the body is not JSON in UTF-8 (${err instanceof Error ? err.message : String(err)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return refuse('the body is not a JSON object');
  const o = value as Record<string, unknown>;
  const name = o['name'];
  if (typeof name !== 'string' || name === '') return refuse('"name" is missing or not a non-empty string');
  if (name.length > limits.maxNameLength) return refuse(`"name" is longer than ${limits.maxNameLength} characters`);
  if (CONTROL.test(name)) return refuse('"name" holds a control character');
  const eventType = o['event_type'];
  if (typeof eventType !== 'string' || !EVENT_TYPES.includes(eventType)) return refuse(`"event_type" is ${JSON.stringify(eventType)}, not start, finish or progress`);
  const origin = o['origin'];
  if (typeof origin !== 'string' || origin === '' || origin.length > 64 || CONTROL.test(origin)) return refuse('"origin" is missing or not a short string');
  const description = o['description'] ?? '';
  if (typeof description !== 'string') return refuse('"description" is not a string');
  const timestamp = o['timestamp'];
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0)) return refuse('"timestamp" is not a number of seconds');
  const level = o['level'];
  if (level !== undefined && (typeof level !== 'string' || level.length > 16 || CONTROL.test(level))) return refuse('"level" is not a short string');
  const result = o['result'];
  if (eventType === 'finish' && (typeof result !== 'string' || !RESULTS.includes(result))) return refuse(`a finish event's "result" is ${JSON.stringify(result)}, not SUCCESS, WARN or FAIL`);
  if (eventType !== 'finish' && result !== undefined && (typeof result !== 'string' || !RESULTS.includes(result))) return refuse(`"result" is ${JSON.stringify(result)}, not SUCCESS, WARN or FAIL`);
  const files = parseFiles(o['files'], limits);
  if (typeof files === 'string') return refuse(files);
  return {
    ok: true,
    report: {
      name,
      description: clip(description, 2048),
      eventType: eventType as ReportEventType,
      origin,
      ...(timestamp === undefined ? {} : { timestamp }),
      ...(level === undefined ? {} : { level }),
      ...(eventType === 'finish' || result !== undefined ? { result: result as ReportResult } : {}),
      files,
    },
  };
}

function refuse(refusal: string): ParsedReport {
  return { ok: false, refusal: `installer report refused: ${refusal}` };
}

function parseFiles(value: unknown, limits: ReportLimits): InstallerReport['files'] | string {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return '"files" is not a list';
  if (value.length > limits.maxFiles) return `"files" lists more than ${limits.maxFiles} files`;
  const out: InstallerReport['files'] = [];
  for (const f of value) {
    if (f === null || typeof f !== 'object') return '"files" holds an item that is not an object';
    const { path, content } = f as Record<string, unknown>;
    if (typeof path !== 'string' || path.length > 4096 || CONTROL.test(path)) return 'a file\'s "path" is not a path';
    if (content !== undefined && content !== null && typeof content !== 'string') return `the content of ${path} is not a string`;
    out.push({ path, encodedLength: typeof content === 'string' ? content.length : 0 });
  }
  return out;
}

export interface InstallerReportIn {
  report: InstallerReport;
  /** When the agent received it. */
  receivedAt: number;
}

export interface InstallerState extends SignalState {
  /** Digests of reports already applied (at most SEEN_REPORTS): a resent report changes nothing. */
  seen: string[];
  /** Started and not yet finished, outermost first. */
  open: Array<{ name: string; description: string; at: number }>;
  /** Finishes with result WARN, newest last (at most MAX_WARNINGS). */
  warnings: Array<{ name: string; description: string; at: number }>;
  /** The installer finished writing the target (subiquity's install, curtin's cmd-install, the late commands). */
  installFinishedAt?: number;
}

export interface InstallerOptions {
  /**
   * cloud-init's modules-final counts only after the installer finished. cloud-init also runs inside Ubuntu's live
   * installer, whose modules-final comes before anything is installed; an endpoint that only the installed system
   * reports to (its own URL) may set this false.
   */
  finalNeedsInstall: boolean;
}

export const SEEN_REPORTS = 4096;
export const MAX_WARNINGS = 20;

export function initialInstallerState(): InstallerState {
  return { status: 'waiting', steps: [], seen: [], open: [], warnings: [] };
}

export function installerStateOf(reports: Iterable<InstallerReportIn>, options: InstallerOptions = { finalNeedsInstall: true }, from = initialInstallerState()): InstallerState {
  let state = from;
  for (const r of reports) state = reduceInstallerReport(state, r, options);
  return state;
}

/** Names that end a successful install: subiquity's install controller, standalone curtin, subiquity's late commands, the Debian preseed's late_command (lab-repo-template/configs/debian-preseed.cfg). */
const INSTALL_DONE = /^(subiquity\/Install\/install|cmd-install|subiquity\/Late\/run|debian-installer)$/;
/** Subiquity's API handlers (`status_GET`, `storage_v2_POST`, ...; subiquity/common/api/server.py): chatter, no step. */
const API_CHATTER = /(^|_)(GET|POST|PUT|PATCH|DELETE)$/;
/** The forseti OS image's whole run. */
const OS_IMAGE_RUN = /^forseti-(wipe|image)$/;

export function reduceInstallerReport(state: InstallerState, input: InstallerReportIn, options: InstallerOptions): InstallerState {
  const { report: r, receivedAt: at } = input;
  const key = reportKey(r);
  if (state.seen.includes(key)) return state;
  const seen = [...state.seen, key];
  let s: InstallerState = { ...state, seen: seen.length > SEEN_REPORTS ? seen.slice(seen.length - SEEN_REPORTS) : seen };

  if (r.name.startsWith('subiquity/Error/')) {
    s = enterStep(s, r.name, at, r.description);
    return fail(s, { step: r.name, reason: `the installer reported an error: ${r.name}${r.description ? `: ${r.description}` : ''}`, at });
  }
  if (r.eventType === 'progress') return inner(s, r, at);
  if (r.eventType === 'start') return started(s, r, at);
  return finished(s, r, at, options);
}

function started(s: InstallerState, r: InstallerReport, at: number): InstallerState {
  const top = isTopLevel(s, r.name);
  const open = [...s.open.filter((o) => o.name !== r.name), { name: r.name, description: r.description, at }].slice(-64);
  const next = { ...s, open };
  return top ? enterStep(next, r.name, at, r.description) : inner(next, r, at);
}

function finished(s: InstallerState, r: InstallerReport, at: number, options: InstallerOptions): InstallerState {
  const top = isTopLevel({ ...s, open: s.open.filter((o) => o.name !== r.name) }, r.name);
  let next: InstallerState = top ? markFinished(s, r, at) : inner(s, r, at);
  next = { ...next, open: next.open.filter((o) => o.name !== r.name), progressAt: at };
  if (r.result === 'WARN') next = { ...next, warnings: [...next.warnings, { name: r.name, description: clip(r.description), at }].slice(-MAX_WARNINGS) };
  if (r.result === 'FAIL') return fail(next, { step: r.name, reason: `${r.name} failed${r.description ? `: ${r.description}` : ''}`, at });
  if (INSTALL_DONE.test(r.name) && next.installFinishedAt === undefined) next = { ...next, installFinishedAt: at };
  if (OS_IMAGE_RUN.test(r.name) && r.origin === 'forseti') return converge(next, at);
  if (r.name === 'modules-final' && r.origin === 'cloudinit' && (!options.finalNeedsInstall || next.installFinishedAt !== undefined)) return converge(next, at);
  return next;
}

/** A top-level start/finish pair is a step; API chatter of subiquity is none. */
function isTopLevel(s: InstallerState, name: string): boolean {
  return parentOf(s, name) === undefined && !API_CHATTER.test(lastSegment(name));
}

/** A sub-event (or a progress report): the detail of its top-level step ("<rest of the name>: <description>"). */
function inner(s: InstallerState, r: InstallerReport, at: number): InstallerState {
  const self = r.eventType === 'progress';
  const top = s.open.find((o) => o.name !== 'subiquity' && ((self && r.name === o.name) || r.name.startsWith(`${o.name}/`)));
  if (top === undefined) return API_CHATTER.test(lastSegment(r.name)) ? s : { ...s, progressAt: at };
  // Only the current step takes details: an older step still open is not entered again.
  if (s.current?.name !== top.name) return { ...s, progressAt: at };
  const what = r.name === top.name ? '' : r.name.slice(top.name.length + 1);
  const detail = [what, r.description].filter((x) => x !== '').join(': ');
  return enterStep(s, top.name, at, detail);
}

/** The step of a top-level finish gets its time and result; a finish whose start never came is a step of its own. */
function markFinished(s: InstallerState, r: InstallerReport, at: number): InstallerState {
  let next = s;
  let i = findLastIndex(next.steps, (st) => st.name === r.name && st.finishedAt === undefined);
  if (i < 0) {
    next = enterStep(next, r.name, at);
    i = next.steps.length - 1;
  }
  const before = next.steps[i];
  if (before === undefined) return next;
  const { detail: _started, ...rest } = before;
  const done: ConvergeStep = { ...rest, finishedAt: at, ...(r.result ? { result: r.result } : {}), ...(r.description ? { detail: clip(r.description) } : {}) };
  const steps = next.steps.map((st, j) => (j === i ? done : st));
  return { ...next, steps, current: i === steps.length - 1 ? done : next.current };
}

/** The innermost open event that `name` belongs to. Subiquity's own root context "subiquity" is never a parent. */
function parentOf(s: InstallerState, name: string): string | undefined {
  let best: string | undefined;
  for (const o of s.open) {
    if (o.name === 'subiquity' || o.name === name) continue;
    if (name.startsWith(`${o.name}/`) && (best === undefined || o.name.length > best.length)) best = o.name;
  }
  return best;
}

/** A short digest of everything a report says: the same report sent again has the same key. */
function reportKey(r: InstallerReport): string {
  const text = JSON.stringify([r.eventType, r.name, r.timestamp ?? null, r.result ?? null, r.description, r.origin]);
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function findLastIndex<T>(items: T[], pred: (t: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (pred(items[i] as T)) return i;
  return -1;
}
