// GitHub (and GitHub Enterprise Server) REST API, version 2022-11-28:
//  - Create a pull request: POST /repos/{owner}/{repo}/pulls {title, head, base, body} → 201 with `number`,
//    `html_url`; 422 "Validation Failed" when one is open for the same head and base, with
//    errors[].message "A pull request already exists for OWNER:BRANCH." (code `custom`)
//    https://docs.github.com/en/rest/pulls/pulls#create-a-pull-request; the 422 answer as GitHub sends it:
//    https://github.com/google/go-github/issues/1441
//  - List pull requests: GET /repos/{owner}/{repo}/pulls?state=open&head=OWNER:BRANCH&base=BASE
//    https://docs.github.com/en/rest/pulls/pulls#list-pull-requests
//  - Labels are an issue's: POST /repos/{owner}/{repo}/issues/{number}/labels {labels: [names]}
//    https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue
//  - Headers: `Authorization: Bearer TOKEN`, `Accept: application/vnd.github+json`, `X-GitHub-Api-Version`, and a
//    User-Agent, which GitHub requires. https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api,
//    https://docs.github.com/en/rest/about-the-rest-api/api-versions
import { encodeSegments, ForgeHttp } from './http.ts';
import type { ForgeClient, ForgeConfig, PullRequestRequest, PullRequestResult } from './types.ts';
import { bounded, labelsOf, numberAndUrl } from './pull-request-fields.ts';

export class GitHubClient implements ForgeClient {
  readonly type = 'github' as const;
  private readonly http: ForgeHttp;
  private readonly repo: string;
  private readonly owner: string;

  constructor(config: ForgeConfig) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(config.repository)) throw new TypeError(`github repository must be OWNER/REPO, not ${JSON.stringify(config.repository)}`);
    this.http = new ForgeHttp(config, { authorization: `Bearer ${config.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
    this.repo = `/repos/${encodeSegments(config.repository)}`;
    this.owner = config.repository.split('/')[0]!;
  }

  async openPullRequest(pr: PullRequestRequest): Promise<PullRequestResult> {
    const { title, body } = bounded(pr);
    const create = { method: 'POST' as const, path: `${this.repo}/pulls`, body: { title, head: pr.head, base: pr.base, body } };
    const answer = await this.http.send(create);
    if (answer.status === 422 && /a pull request already exists/i.test(JSON.stringify(answer.json ?? ''))) return { kind: 'exists', labels: [], ...(await this.findOpen(pr)) };
    if (answer.status !== 201) throw this.http.unexpected(create, answer);
    const opened = numberAndUrl(answer.json, 'number', 'html_url');
    const labels = labelsOf(pr);
    if (labels.length === 0 || opened.number === undefined) return { kind: 'opened', ...opened, labels: [] };
    const label = { method: 'POST' as const, path: `${this.repo}/issues/${opened.number}/labels`, body: { labels } };
    const labelled = await this.http.send(label).catch((err: unknown) => err as Error);
    if (labelled instanceof Error) return { kind: 'opened', ...opened, labels: [], labelProblem: labelled.message };
    if (labelled.status !== 200) return { kind: 'opened', ...opened, labels: [], labelProblem: this.http.unexpected(label, labelled).message };
    return { kind: 'opened', ...opened, labels };
  }

  /** The open pull request for head and base, when GitHub lists it. */
  private async findOpen(pr: PullRequestRequest): Promise<{ number?: number; url?: string }> {
    const list = { method: 'GET' as const, path: `${this.repo}/pulls`, query: { state: 'open', head: `${this.owner}:${pr.head}`, base: pr.base, per_page: '1' } };
    const answer = await this.http.send(list);
    if (answer.status !== 200) throw this.http.unexpected(list, answer);
    return Array.isArray(answer.json) && answer.json.length > 0 ? numberAndUrl(answer.json[0], 'number', 'html_url') : {};
  }
}
