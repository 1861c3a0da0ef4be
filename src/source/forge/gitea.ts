// Gitea and Forgejo REST API (/api/v1), as the swagger annotations of Gitea's routers/api/v1/repo/pull.go and
// label.go describe it (https://docs.gitea.com/api/, https://codeberg.org/api/swagger for Forgejo):
//  - repoCreatePullRequest: POST /repos/{owner}/{repo}/pulls with CreatePullRequestOption {title, head, base, body,
//    labels: [label ids]} → 201 PullRequest (`number`, `html_url`); 409 when an unmerged pull request for the same
//    head and base exists, the message being ErrPullRequestAlreadyExists' "pull request already exists for these
//    targets [id: …, issue_id: N, …]", N the pull request's number
//  - repoGetPullRequest: GET /repos/{owner}/{repo}/pulls/{index}
//  - issueListLabels: GET /repos/{owner}/{repo}/labels?page=&limit=: labels are given by id, so names are looked up
//  - Authentication: `Authorization: token TOKEN` (https://docs.gitea.com/development/api-usage)
import { encodeSegments, ForgeHttp } from './http.ts';
import type { ForgeClient, ForgeConfig, PullRequestRequest, PullRequestResult } from './types.ts';
import { bounded, labelsOf, numberAndUrl } from './pull-request-fields.ts';

/** Label pages read at most (50 a page: Gitea's default maximum page size). */
const MAX_LABEL_PAGES = 10;
const LABEL_PAGE = 50;

export class GiteaClient implements ForgeClient {
  readonly type = 'gitea' as const;
  private readonly http: ForgeHttp;
  private readonly repo: string;

  constructor(config: ForgeConfig) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(config.repository)) throw new TypeError(`gitea repository must be OWNER/REPO, not ${JSON.stringify(config.repository)}`);
    this.http = new ForgeHttp(config, { authorization: `token ${config.token}` });
    this.repo = `/repos/${encodeSegments(config.repository)}`;
  }

  async openPullRequest(pr: PullRequestRequest): Promise<PullRequestResult> {
    const { title, body } = bounded(pr);
    const wanted = labelsOf(pr);
    const found: { ids: number[]; names: string[]; problem?: string } = wanted.length > 0 ? await this.labelIds(wanted).catch((err: Error) => ({ ids: [], names: [], problem: err.message })) : { ids: [], names: [] };
    const create = { method: 'POST' as const, path: `${this.repo}/pulls`, body: { title, head: pr.head, base: pr.base, body, ...(found.ids.length > 0 ? { labels: found.ids } : {}) } };
    const answer = await this.http.send(create);
    if (answer.status === 409) return { kind: 'exists', labels: [], ...(await this.existing(answer.json)) };
    if (answer.status !== 201) throw this.http.unexpected(create, answer);
    const missing = wanted.filter((l) => !found.names.includes(l));
    const problem = found.problem !== undefined ? found.problem : missing.length > 0 ? `no label ${missing.map((l) => JSON.stringify(l)).join(', ')} in the repository (Gitea sets existing labels only)` : undefined;
    return { kind: 'opened', ...numberAndUrl(answer.json, 'number', 'html_url'), labels: found.names, ...(problem ? { labelProblem: problem } : {}) };
  }

  /** The open pull request the 409 names (its `issue_id`), read back for its address. */
  private async existing(json: unknown): Promise<{ number?: number; url?: string }> {
    const index = /\bissue_id: (\d+)/.exec(typeof json === 'object' && json !== null ? String((json as Record<string, unknown>)['message'] ?? '') : '')?.[1];
    if (index === undefined) return {};
    const get = { method: 'GET' as const, path: `${this.repo}/pulls/${index}` };
    const answer = await this.http.send(get);
    if (answer.status !== 200) return { number: Number(index) };
    return { number: Number(index), ...numberAndUrl(answer.json, 'number', 'html_url') };
  }

  private async labelIds(names: string[]): Promise<{ ids: number[]; names: string[] }> {
    const byName = new Map<string, number>();
    for (let page = 1; page <= MAX_LABEL_PAGES; page++) {
      const list = { method: 'GET' as const, path: `${this.repo}/labels`, query: { page: String(page), limit: String(LABEL_PAGE) } };
      const answer = await this.http.send(list);
      if (answer.status !== 200 || !Array.isArray(answer.json)) throw this.http.unexpected(list, answer);
      for (const label of answer.json as Array<Record<string, unknown>>) {
        if (typeof label['name'] === 'string' && typeof label['id'] === 'number') byName.set(label['name'], label['id']);
      }
      if (answer.json.length < LABEL_PAGE || names.every((n) => byName.has(n))) break;
    }
    const present = names.filter((n) => byName.has(n));
    return { ids: present.map((n) => byName.get(n)!), names: present };
  }
}
