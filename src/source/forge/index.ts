// A forge client for the configured type.
import { GiteaClient } from './gitea.ts';
import { GitHubClient } from './github.ts';
import { GitLabClient } from './gitlab.ts';
import type { ForgeClient, ForgeConfig } from './types.ts';

export function createForgeClient(config: ForgeConfig): ForgeClient {
  switch (config.type) {
    case 'github':
      return new GitHubClient(config);
    case 'gitea':
      return new GiteaClient(config);
    case 'gitlab':
      return new GitLabClient(config);
  }
}

export { GiteaClient, GitHubClient, GitLabClient };
export { ForgeAnswerError, ForgeAuthError, ForgeUnreachableError } from './errors.ts';
export type { ForgeClient, ForgeConfig, ForgeType, PullRequestRequest, PullRequestResult } from './types.ts';
