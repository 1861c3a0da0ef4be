import type { LabProblem } from '../model/types.ts';
import type { Plan } from './plan-types.ts';

/** Bumped when a field changes meaning or disappears; new fields may appear without a bump. */
export const PLAN_JSON_VERSION = 1;

/**
 * `forseti plan --format json`:
 * {
 *   "version": 1,
 *   "base": { "revision": sha, "valid": bool, "problems"?: ["file:line:col: message"] },
 *   "head": { "revision": sha },
 *   "observed": { "source": "status-branch" | "assumed-base" | "empty", "description": string },
 *   "notes": [string],
 *   "changed": bool,
 *   "summary": { "none": n, "rerender": n, "provision": n, "reprovision": n, "wipe": n, "power-on": n,
 *                "power-off": n, "power-off-by-hand": n, "refused": n, "removed": n },
 *   "converge": [{ "role", "signals": "all of talosEvents, tcpProbe:50000" }],
 *   "hosts": [{ "host", "change", "baseRole": string|null, "headRole": string|null, "details",
 *               "diffs": [{ "artifact": "script"|"wipe-script"|"cmdline"|"config", "file", "secret": bool, "patch" }] }]
 * }
 * Every host of BASE and HEAD is listed, sorted by name.
 */
export function formatPlanJson(plan: Plan): string {
  const { base, head, observed, notes, changed, summary, converge, hosts } = plan;
  return `${JSON.stringify({ version: PLAN_JSON_VERSION, base, head, observed, notes, changed, summary, converge, hosts }, null, 2)}\n`;
}

/** HEAD does not validate: `{ "version", "error": "head-invalid", "head", "problems": [{ file, line, col, code, message }] }`. */
export function formatInvalidJson(head: string, problems: LabProblem[]): string {
  const list = problems.map((p) => ({ file: p.ref.file, line: p.ref.line, col: p.ref.col, code: p.code, message: p.message }));
  return `${JSON.stringify({ version: PLAN_JSON_VERSION, error: 'head-invalid', head: { revision: head }, problems: list }, null, 2)}\n`;
}

/** Any other failure (unknown revision, unreadable repository): `{ "version", "error": "failed", "message" }`. */
export function formatErrorJson(message: string): string {
  return `${JSON.stringify({ version: PLAN_JSON_VERSION, error: 'failed', message }, null, 2)}\n`;
}
