import type { Lab } from '../model/types.ts';
import { RenderError, renderHost, type RenderedHost } from '../render/host.ts';
import { RenderFailedError } from '../render/generation.ts';
import { AgentUrls } from '../render/urls.ts';
import type { PlanSide } from './plan-types.ts';

/**
 * What the plan puts where a host token goes. Real tokens derive from the agent's key, which never leaves the
 * agent's box; a fixed placeholder keeps diffs stable and free of secrets.
 */
export const PLACEHOLDER_TOKEN = '<token>';

/** One side of the plan: the lab at `revision`, every host rendered as the agent would, with the placeholder token. Throws RenderFailedError. */
export function renderSide(revision: string, lab: Lab): PlanSide {
  // Talos bases are never decrypted here: a plan runs on pull requests, and shows their skeleton (redacted).
  const ctx = { lab, urls: new AgentUrls(lab.site), revision, token: () => PLACEHOLDER_TOKEN, redactConfigs: true };
  const hosts = new Map<string, RenderedHost>();
  const errors: RenderError[] = [];
  for (const host of lab.hosts.values()) {
    try {
      hosts.set(host.name, renderHost(host, ctx));
    } catch (err) {
      if (err instanceof RenderError) errors.push(err);
      else throw err;
    }
  }
  if (errors.length > 0) throw new RenderFailedError(errors);
  return { revision, lab, hosts };
}
