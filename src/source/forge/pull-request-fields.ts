// What the three clients share about a pull request: its text within the forges' limits, its labels, and reading
// the number and web address from an answer.
import { MAX_BODY, MAX_TITLE } from './types.ts';
import type { PullRequestRequest } from './types.ts';

/** The title on one line and both within GitHub's limits (the smallest of the three forges'). */
export function bounded(pr: PullRequestRequest): { title: string; body: string } {
  const title = pr.title.replace(/\s+/g, ' ').trim();
  return {
    title: title.length > MAX_TITLE ? `${title.slice(0, MAX_TITLE - 1)}…` : title,
    body: pr.body.length > MAX_BODY ? `${pr.body.slice(0, MAX_BODY - 40)}\n\n(cut at the forge's size limit)` : pr.body,
  };
}

/** Label names, each once, none empty or with a comma (GitLab takes them comma-separated). */
export function labelsOf(pr: PullRequestRequest): string[] {
  return [...new Set((pr.labels ?? []).map((l) => l.trim()).filter((l) => l !== '' && !l.includes(',')))];
}

/** `number` (or `iid`) and the web address of a pull request in an answer; undefined where the answer lacks them. */
export function numberAndUrl(json: unknown, numberKey: string, urlKey: string): { number?: number; url?: string } {
  const o = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const number = o[numberKey];
  const url = o[urlKey];
  return { ...(typeof number === 'number' && Number.isInteger(number) ? { number } : {}), ...(typeof url === 'string' && /^https?:\/\//.test(url) ? { url: url.slice(0, 500) } : {}) };
}
