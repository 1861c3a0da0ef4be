// GitLab REST API v4 (https://docs.gitlab.com/api/merge_requests/):
//  - Create MR: POST /projects/:id/merge_requests {source_branch, target_branch, title, description, labels
//    (comma-separated names; a label the project lacks is created), remove_source_branch} → 201 with `iid`,
//    `web_url`; 409 Conflict when an open merge request exists for the source branch, message
//    ["Another open merge request already exists for this source branch: !N"] (as GitLab answers it:
//    https://github.com/voxpupuli/modulesync/issues/195)
//  - List project merge requests: GET /projects/:id/merge_requests?state=opened&source_branch=&target_branch=
//  - :id is the project's URL-encoded full path (`group%2Fproject`)
//    (https://docs.gitlab.com/api/rest/#namespaced-paths)
//  - Authentication: `PRIVATE-TOKEN: TOKEN` for personal, project and group access tokens
//    (https://docs.gitlab.com/api/rest/authentication/)
import { ForgeHttp } from './http.ts';
import type { ForgeClient, ForgeConfig, PullRequestRequest, PullRequestResult } from './types.ts';
import { bounded, labelsOf, numberAndUrl } from './pull-request-fields.ts';

export class GitLabClient implements ForgeClient {
  readonly type = 'gitlab' as const;
  private readonly http: ForgeHttp;
  private readonly project: string;

  constructor(config: ForgeConfig) {
    if (!/^[^/\s]+(\/[^/\s]+)+$/.test(config.repository)) throw new TypeError(`gitlab repository must be the project's path GROUP/PROJECT, not ${JSON.stringify(config.repository)}`);
    this.http = new ForgeHttp(config, { 'private-token': config.token });
    this.project = `/projects/${encodeURIComponent(config.repository)}`;
  }

  async openPullRequest(pr: PullRequestRequest): Promise<PullRequestResult> {
    const { title, body } = bounded(pr);
    const labels = labelsOf(pr);
    const create = {
      method: 'POST' as const,
      path: `${this.project}/merge_requests`,
      body: { source_branch: pr.head, target_branch: pr.base, title, description: body, remove_source_branch: true, ...(labels.length > 0 ? { labels: labels.join(',') } : {}) },
    };
    const answer = await this.http.send(create);
    if (answer.status === 409) return { kind: 'exists', labels: [], ...(await this.findOpen(pr)) };
    if (answer.status !== 201) throw this.http.unexpected(create, answer);
    return { kind: 'opened', ...numberAndUrl(answer.json, 'iid', 'web_url'), labels };
  }

  private async findOpen(pr: PullRequestRequest): Promise<{ number?: number; url?: string }> {
    const list = { method: 'GET' as const, path: `${this.project}/merge_requests`, query: { state: 'opened', source_branch: pr.head, target_branch: pr.base, per_page: '1' } };
    const answer = await this.http.send(list);
    if (answer.status !== 200) throw this.http.unexpected(list, answer);
    return Array.isArray(answer.json) && answer.json.length > 0 ? numberAndUrl(answer.json[0], 'iid', 'web_url') : {};
  }
}
