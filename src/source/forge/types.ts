// A forge's API as discovery needs it: open a pull (merge) request from a pushed branch into the lab's base branch,
// once. The clients (github.ts, gitea.ts, gitlab.ts) speak each forge's REST API as its documentation describes it;
// they import nothing of forseti but the redactor.
import type { Dispatcher } from 'undici';

export type ForgeType = 'github' | 'gitea' | 'gitlab';

export interface ForgeConfig {
  type: ForgeType;
  /** The API root: https://api.github.com, https://HOST/api/v3 (GitHub Enterprise), https://HOST/api/v1 (Gitea, Forgejo), https://HOST/api/v4 (GitLab). */
  api: string;
  /** `owner/repo`; GitLab: the project's full path, `group/subgroup/project`. */
  repository: string;
  /** The API token (the password of the credential site.yaml names); never logged, redacted from every error. */
  token: string;
  /** Whole exchange per request (connect, send, the complete answer), default 15 s. */
  timeoutMs?: number;
  /** Largest answer read, default 1 MiB. */
  maxResponseBytes?: number;
  /** Another CA, a proxy: the operator's undici dispatcher. */
  dispatcher?: Dispatcher;
}

export interface PullRequestRequest {
  /** The pushed branch: `forseti/discovered/52-54-00-aa-bb-cc`. */
  head: string;
  /** The branch it would merge into: the lab's branch. */
  base: string;
  title: string;
  /** Markdown. */
  body: string;
  /** Label names; a forge that needs labels to exist (Gitea) gets the ones it has. */
  labels?: string[];
}

export interface PullRequestResult {
  /** `opened` now; `exists`: an open one for this head and base was there already, nothing was changed. */
  kind: 'opened' | 'exists';
  /** The pull request's number (GitLab: the merge request's iid); unknown when the forge said "exists" without it. */
  number?: number;
  /** Its web page. */
  url?: string;
  /** The labels it was given (opened only). */
  labels: string[];
  /** Why some labels were not set; the pull request is open all the same. */
  labelProblem?: string;
}

export interface ForgeClient {
  readonly type: ForgeType;
  /** Opens the pull request, or finds the open one for the same head and base and changes nothing. */
  openPullRequest(request: PullRequestRequest): Promise<PullRequestResult>;
}

/** GitHub's limits, the smallest of the three: a title of 256 characters, a body of 65536. */
export const MAX_TITLE = 256;
export const MAX_BODY = 65_536;
