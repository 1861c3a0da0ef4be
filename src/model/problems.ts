import { visible } from './invisible-chars.ts';
import type { LabProblem } from './types.ts';
import type { SourceRef } from '../core/source-ref.ts';

/** Every kind of problem the loader reports; `LabProblem.code` is one of these. */
export const PROBLEM_CODES = [
  'read-error',
  'yaml-syntax',
  'schema',
  'missing-site',
  'name-mismatch',
  'duplicate-name',
  'duplicate-mac',
  'duplicate-ip',
  'ip-outside-subnet',
  'reserved-ip',
  'pool-overlap',
  'invalid-pool',
  'unknown-profile',
  'unknown-image',
  'unmet-requirement',
  'template',
  'missing-file',
  'plaintext-secret',
  /** A password in the lab's SOPS file too short or too plain to be told apart from other text (found on the agent). */
  'weak-secret',
  'unknown-host',
  'invalid-cron',
  'drift-policy',
  'alerts',
  'discovery',
  'bmc-tls',
  /** A path that leaves the lab tree, names something that is not a regular file, or has control characters. */
  'unsafe-path',
  'file-too-large',
  'lab-too-large',
  /** YAML nesting depth or alias caps. */
  'yaml-limit',
  /** Text that would break out of its place in an iPXE script or kernel command line. */
  'script-injection',
  'image-url',
  /** A character a reviewer cannot see: bidirectional controls, zero-width and other format characters. */
  'invisible-char',
  /** Stands for the problems past the cap on how many are reported: `... and K more`. */
  'more-problems',
] as const;

export type ProblemCode = (typeof PROBLEM_CODES)[number];
/**
 * Problems only the agent finds, against its own settings (a credential sent where its binding does not allow, DHCP
 * on a NIC it was not given): `validate` in CI cannot know them, so they are not among the loader's codes.
 */
export type AgentProblemCode = 'agent-policy' | 'talos-base';

/** Messages quote what the lab wrote; past this many characters the rest is counted, not shown. */
const MAX_MESSAGE = 1000;

/**
 * A problem. Invisible and control characters in the message are written out (`\u{202E}`), so it shows what is
 * there, and a message quoting a huge value (a 1 MiB key) is cut, so every problem stays one short line.
 */
export function problem(ref: SourceRef, code: ProblemCode | AgentProblemCode, message: string): LabProblem {
  const shown = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}… (${message.length - MAX_MESSAGE} more characters)` : message;
  return { ref, code, message: visible(shown) };
}

export function formatRef(ref: SourceRef): string {
  return `${ref.file}:${ref.line}:${ref.col}`;
}

/** `hosts/bld-003.yaml:4:7: message` */
export function formatProblem(p: LabProblem): string {
  return `${formatRef(p.ref)}: ${p.message}`;
}

export function compareProblems(a: LabProblem, b: LabProblem): number {
  if (a.ref.file !== b.ref.file) return a.ref.file < b.ref.file ? -1 : 1;
  return a.ref.line - b.ref.line || a.ref.col - b.ref.col;
}

/**
 * At most `max` problems: the first ones by position, then one `more-problems` problem at the first one left out,
 * standing for all of them (`more`). Applied to each file's problems as they are found (so a file with 200,000
 * template problems does not keep them) and to a load's whole list; a problem that already stands for others
 * counts as that many.
 */
export function capProblems(problems: readonly LabProblem[], max: number, scope: 'file' | 'commit'): LabProblem[] {
  if (problems.length <= max && (scope === 'file' || !problems.some((p) => p.more !== undefined))) return [...problems];
  const sorted = [...problems].sort(compareProblems);
  const shown: LabProblem[] = [];
  let left = 0;
  let firstLeft: LabProblem | undefined;
  for (const p of sorted) {
    if (p.more === undefined && shown.length < max) shown.push(p);
    else {
      left += p.more ?? 1;
      firstLeft ??= p;
    }
  }
  return firstLeft ? [...shown, moreProblems(firstLeft.ref, left, max, scope)] : shown;
}

/**
 * The first `max` of `found` by offset as problems, and one for the rest: for checks that find thousands in one
 * text, so that only what is shown is ever turned into a problem (message, line and column).
 */
export function firstProblems<T extends { offset: number }>(found: readonly T[], max: number, toProblem: (item: T) => LabProblem): LabProblem[] {
  const sorted = [...found].sort((a, b) => a.offset - b.offset);
  const shown = sorted.slice(0, max).map(toProblem);
  const firstLeft = sorted[max];
  return firstLeft ? [...shown, moreProblems(toProblem(firstLeft).ref, sorted.length - max, max, 'file')] : shown;
}

function moreProblems(ref: SourceRef, left: number, max: number, scope: 'file' | 'commit'): LabProblem {
  const message =
    scope === 'commit'
      ? `and ${left.toLocaleString('en-US')} more problem${left === 1 ? '' : 's'} (forseti reports the first ${max} of a commit; lab.limits.maxProblems or --max-problems raise that)`
      : `and ${left.toLocaleString('en-US')} more problem${left === 1 ? '' : 's'} in this file`;
  return { ...problem(ref, 'more-problems', message), more: left };
}
