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
  'unknown-host',
  'invalid-cron',
  'drift-policy',
  'alerts',
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
] as const;

export type ProblemCode = (typeof PROBLEM_CODES)[number];

export function problem(ref: SourceRef, code: ProblemCode, message: string): LabProblem {
  return { ref, code, message };
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
