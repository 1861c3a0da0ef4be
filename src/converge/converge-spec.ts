// A profile's `converge` declaration (issue 13): which signals make a host Converged, all of them or any, and
// the pure decision that combines the signals' states into the host's convergence at a given time.
//
//   converge:
//     all:                      # or any:
//       - talosEvents
//       - tcpProbe: {port: 50000}
//     stepTimeoutSeconds: 1800  # optional: overrides site.yaml policies for this role
//
// Without a declaration a profile converges as before: on the phone-home (DEFAULT_CONVERGE).
import type { ConvergeStep, SignalState } from './signal.ts';

export const SIGNAL_NAMES = ['phoneHome', 'talosEvents', 'installerReports', 'dhcpAfterInstall', 'tcpProbe', 'menuServed'] as const;
export type SignalName = (typeof SIGNAL_NAMES)[number];

/**
 * tcpProbe's `after`: from when the port counts. `disk` (the default): after the host was answered "boot from disk"
 * (or installed), as an installer's own OS may answer too. `boot`: after forseti served the host its own script, for
 * roles that run what they boot and install nothing of forseti's (Omni-managed Talos: apid on 50000 is up once Talos
 * runs, in maintenance mode until Omni allocates the machine).
 */
export type TcpProbeAfter = 'disk' | 'boot';

export type ConvergeSignal = { kind: Exclude<SignalName, 'tcpProbe'> } | { kind: 'tcpProbe'; port: number; after?: TcpProbeAfter };

export interface ConvergeSpec {
  mode: 'all' | 'any';
  signals: ConvergeSignal[];
  stepTimeoutSeconds?: number;
  provisionTimeoutSeconds?: number;
}

export const DEFAULT_CONVERGE: Readonly<ConvergeSpec> = { mode: 'any', signals: [{ kind: 'phoneHome' }] };

const PLAIN_SIGNALS = SIGNAL_NAMES.filter((n) => n !== 'tcpProbe');
const MAX_SIGNALS = 8;
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

const signalList = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_SIGNALS,
  uniqueItems: true,
  items: {
    oneOf: [
      { enum: PLAIN_SIGNALS, description: 'A signal without parameters.' },
      {
        type: 'object',
        additionalProperties: false,
        required: ['tcpProbe'],
        properties: {
          tcpProbe: {
            type: 'object',
            additionalProperties: false,
            required: ['port'],
            properties: {
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              after: { enum: ['disk', 'boot'], description: 'disk (default): after the host was told to boot from its disk; boot: after forseti served its own script.' },
            },
            description: 'The host answers on this TCP port after it was told to boot from its disk (or, after: boot, once it booted what forseti served).',
          },
        },
      },
    ],
    errorMessage: `a signal is one of ${SIGNAL_NAMES.join(', ')} (tcpProbe as {tcpProbe: {port: N}})`,
  },
} as const;

const timeout = (what: string) => ({ type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_SECONDS, description: `Overrides site.yaml policies.${what} for hosts of this role.` }) as const;

/** The definitions CONVERGE_SCHEMA refers to; they go into the `definitions` of the schema that embeds it. */
export const CONVERGE_DEFINITIONS = { convergeSignals: signalList } as const;

/**
 * The JSON Schema (draft-07) of `converge`, kept here next to its parser; schemas/converge.schema.json carries a
 * copy with CONVERGE_DEFINITIONS (test/converge-spec.test.ts keeps them equal) for profile.schema.json to take in.
 */
export const CONVERGE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'What makes a host of this role Converged: all of the signals, or any of them. Default: any: [phoneHome].',
  properties: {
    all: { $ref: '#/definitions/convergeSignals', description: 'Converged when every signal says so; Failed as soon as one fails.' },
    any: { $ref: '#/definitions/convergeSignals', description: 'Converged when one signal says so; Failed when one fails before any converged.' },
    stepTimeoutSeconds: timeout('stepTimeoutSeconds'),
    provisionTimeoutSeconds: timeout('provisionTimeoutSeconds'),
  },
  oneOf: [{ required: ['all'] }, { required: ['any'] }],
  errorMessage: 'converge needs exactly one of all or any',
} as const;

export interface ConvergeProblem {
  /** Where, as a path below the profile (`converge.all[1].tcpProbe.port`). */
  path: string;
  message: string;
}

export type ParsedConverge = { ok: true; spec: ConvergeSpec } | { ok: false; problems: ConvergeProblem[] };

/** The typed declaration from a profile's `converge` value, or every problem with its path. */
export function parseConvergeSpec(value: unknown, at = 'converge'): ParsedConverge {
  const problems: ConvergeProblem[] = [];
  const problem = (path: string, message: string): void => void problems.push({ path, message });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problems: [{ path: at, message: 'must be a mapping with all or any' }] };
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['all', 'any', 'stepTimeoutSeconds', 'provisionTimeoutSeconds'].includes(key)) problem(`${at}.${key}`, 'is not a converge field (all, any, stepTimeoutSeconds, provisionTimeoutSeconds)');
  }
  const modes = (['all', 'any'] as const).filter((m) => m in o);
  if (modes.length !== 1) problem(at, 'needs exactly one of all or any');
  const mode = modes[0] ?? 'any';
  const signals = parseSignals(o[mode], `${at}.${mode}`, problem);
  const spec: ConvergeSpec = { mode, signals };
  for (const key of ['stepTimeoutSeconds', 'provisionTimeoutSeconds'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_TIMEOUT_SECONDS) problem(`${at}.${key}`, `must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}`);
    else spec[key] = v;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, spec };
}

function parseSignals(value: unknown, at: string, problem: (path: string, message: string) => void): ConvergeSignal[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length === 0) {
    problem(at, 'must be a list of at least one signal');
    return [];
  }
  if (value.length > MAX_SIGNALS) problem(at, `lists more than ${MAX_SIGNALS} signals`);
  const out: ConvergeSignal[] = [];
  value.forEach((item, i) => {
    const path = `${at}[${i}]`;
    const signal = parseSignal(item, path, problem);
    if (signal === undefined) return;
    if (out.some((s) => signalKey(s) === signalKey(signal))) problem(path, `${signalKey(signal)} is listed twice`);
    else out.push(signal);
  });
  return out;
}

function parseSignal(item: unknown, path: string, problem: (path: string, message: string) => void): ConvergeSignal | undefined {
  if (typeof item === 'string') {
    if ((PLAIN_SIGNALS as readonly string[]).includes(item)) return { kind: item as Exclude<SignalName, 'tcpProbe'> };
    problem(path, item === 'tcpProbe' ? 'tcpProbe needs a port: {tcpProbe: {port: N}}' : `${JSON.stringify(item)} is not a signal (${SIGNAL_NAMES.join(', ')})`);
    return undefined;
  }
  const keys = item !== null && typeof item === 'object' && !Array.isArray(item) ? Object.keys(item) : [];
  if (keys.length !== 1 || keys[0] !== 'tcpProbe') {
    problem(path, `is not a signal (${SIGNAL_NAMES.join(', ')}; tcpProbe as {tcpProbe: {port: N}})`);
    return undefined;
  }
  const probe = (item as { tcpProbe: unknown }).tcpProbe;
  const fields = probe !== null && typeof probe === 'object' && !Array.isArray(probe) ? (probe as Record<string, unknown>) : {};
  const port = fields['port'];
  const after = fields['after'];
  const extra = Object.keys(fields).filter((k) => k !== 'port' && k !== 'after');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535 || extra.length > 0 || (after !== undefined && after !== 'disk' && after !== 'boot')) {
    problem(`${path}.tcpProbe`, 'must be {port: N} with N a TCP port (1-65535), and after: disk or boot if given');
    return undefined;
  }
  return { kind: 'tcpProbe', port, ...(after === 'boot' ? { after } : {}) };
}

/** How a signal is named in status and in the map of signal states: `talosEvents`, `tcpProbe:6443`. */
export function signalKey(signal: ConvergeSignal): string {
  return signal.kind === 'tcpProbe' ? `tcpProbe:${signal.port}` : signal.kind;
}

/** One line for plans and status: `all of talosEvents, tcpProbe:50000 (step timeout 1800 s)`. */
export function describeConverge(spec: ConvergeSpec): string {
  const timeouts = [
    spec.stepTimeoutSeconds !== undefined ? `step timeout ${spec.stepTimeoutSeconds} s` : '',
    spec.provisionTimeoutSeconds !== undefined ? `provision timeout ${spec.provisionTimeoutSeconds} s` : '',
  ].filter(Boolean);
  const list = spec.signals.map(signalKey).join(', ');
  const head = spec.signals.length === 1 ? list : `${spec.mode} of ${list}`;
  return timeouts.length > 0 ? `${head} (${timeouts.join(', ')})` : head;
}

export interface ConvergeClock {
  now: number;
  /** When this attempt began (the power cycle, or the boot answer that started it). */
  since: number;
  /** site.yaml policies, used where the declaration sets none. */
  provisionTimeoutMs: number;
  stepTimeoutMs: number;
}

export interface ConvergeInput {
  spec: ConvergeSpec;
  /** Each signal's state by signalKey; a signal with no state yet is waiting. */
  signals: Readonly<Record<string, SignalState | undefined>>;
  /** forseti's own last step of this attempt (power-cycled, dhcp, script, kernel, initrd, answered disk). */
  agentStep?: ConvergeStep;
}

export type HostConvergence =
  | { state: 'converged'; at: number; by: string[] }
  | { state: 'failed'; signal?: string; step: string; reason: string }
  | { state: 'in-progress'; signal?: string; step?: ConvergeStep; deadline: number };

/**
 * The host's convergence now. Converged and explicit failures come from the signals; time decides the rest:
 * nothing for stepTimeout since the last progress on any signal (or forseti's own last step) fails the host
 * naming the step it reached, and so does the whole attempt outlasting provisionTimeout. An event stream that
 * stops leaves the host at its last step until then.
 */
export function hostConvergence(input: ConvergeInput, clock: ConvergeClock): HostConvergence {
  const { spec } = input;
  const entries = spec.signals.map((s) => [signalKey(s), input.signals[signalKey(s)] ?? { status: 'waiting', steps: [] }] as const);
  const converged = entries.filter(([, s]) => s.status === 'converged');
  const failed = entries
    .filter(([, s]) => s.status === 'failed' && s.failure !== undefined)
    .sort(([, a], [, b]) => (a.failure?.at ?? 0) - (b.failure?.at ?? 0));
  const convergedAt = converged.map(([, s]) => s.convergedAt ?? clock.now);
  if (spec.mode === 'any' && converged.length > 0) return { state: 'converged', at: Math.min(...convergedAt), by: converged.map(([k]) => k) };
  const firstFailure = failed[0];
  if (firstFailure !== undefined) {
    const [key, s] = firstFailure;
    return { state: 'failed', signal: key, step: s.failure?.step ?? 'unknown', reason: `${key}: ${s.failure?.reason ?? 'failed'}` };
  }
  if (spec.mode === 'all' && converged.length === entries.length && entries.length > 0) {
    return { state: 'converged', at: Math.max(...convergedAt), by: converged.map(([k]) => k) };
  }

  const stepTimeoutMs = spec.stepTimeoutSeconds !== undefined ? spec.stepTimeoutSeconds * 1000 : clock.stepTimeoutMs;
  const provisionTimeoutMs = spec.provisionTimeoutSeconds !== undefined ? spec.provisionTimeoutSeconds * 1000 : clock.provisionTimeoutMs;
  const pending = entries.filter(([, s]) => s.status !== 'converged');
  // Where the host is: the pending signal that moved last, else forseti's own step.
  const moved = pending
    .filter(([, s]) => s.current !== undefined && s.progressAt !== undefined)
    .sort(([, a], [, b]) => (b.progressAt ?? 0) - (a.progressAt ?? 0))[0];
  const agentStep = input.agentStep;
  const useSignal = moved !== undefined && (agentStep === undefined || (moved[1].progressAt ?? 0) >= agentStep.at);
  const where: { signal?: string; step?: ConvergeStep } = useSignal ? { signal: moved[0], step: moved[1].current } : { step: agentStep };
  const lastProgress = Math.max(clock.since, agentStep?.at ?? 0, ...entries.map(([, s]) => s.progressAt ?? 0));
  const stepName = where.step?.name ?? 'none (no signal reported anything)';
  const waitingFor = pending.map(([k]) => k).join(', ');
  const named = where.signal !== undefined ? { signal: where.signal } : {};

  if (clock.now - clock.since > provisionTimeoutMs) {
    return { state: 'failed', ...named, step: stepName, reason: `not Converged within ${seconds(provisionTimeoutMs)} s (last step: ${stepName}; waiting for ${waitingFor})` };
  }
  if (clock.now - lastProgress > stepTimeoutMs) {
    return { state: 'failed', ...named, step: stepName, reason: `no progress past step ${stepName} within ${seconds(stepTimeoutMs)} s (waiting for ${waitingFor})` };
  }
  return { state: 'in-progress', ...named, ...(where.step ? { step: where.step } : {}), deadline: Math.min(clock.since + provisionTimeoutMs, lastProgress + stepTimeoutMs) };
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
