import { parseHostStatus, parseSiteStatus, type HostStatus, type SiteStatus } from '../../src/status/index.ts';
import { readBranchFiles, type GitServer } from '../fixtures/git-server.ts';
import { assertStatusFiles } from '../fixtures/status-schema.ts';

export interface StatusView {
  site: SiteStatus | null;
  hosts: Map<string, HostStatus>;
}

export async function readStatus(server: GitServer, repo: string): Promise<StatusView> {
  let files: Record<string, string>;
  try {
    files = await readBranchFiles(server, repo, 'forseti-status');
  } catch {
    return { site: null, hosts: new Map() };
  }
  assertStatusFiles(files);
  const hosts = new Map<string, HostStatus>();
  for (const [path, text] of Object.entries(files)) {
    const m = /^hosts\/(.+)\.yaml$/.exec(path);
    if (m?.[1]) hosts.set(m[1], parseHostStatus(text));
  }
  return { site: files['site.yaml'] ? parseSiteStatus(files['site.yaml']) : null, hosts };
}

/** Polls the status branch until `done` holds; the timeout is a safety net, not an assertion. */
export async function waitForStatus(server: GitServer, repo: string, done: (s: StatusView) => boolean, timeoutMs: number, what: string): Promise<StatusView> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusView = { site: null, hosts: new Map() };
  while (Date.now() < deadline) {
    last = await readStatus(server, repo);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const hosts = [...last.hosts.values()].map((h) => `${h.host}: ${h.role} ${h.phase}${h.step ? `/${h.step}` : ''} rev=${h.revision ?? '-'} err=${h.lastError?.message ?? '-'}`);
  throw new Error(`status branch never showed: ${what}\nsite: ${JSON.stringify(last.site)}\n${hosts.join('\n')}`);
}
