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

const rendered = new WeakMap<Lab, { revision: string; hosts: Map<string, RenderedHost> }>();

/** Every host of one side rendered as the agent would, with the placeholder token. Throws RenderFailedError. */
export function renderSide(side: PlanSide): Map<string, RenderedHost> {
  const cached = rendered.get(side.lab);
  if (cached?.revision === side.revision) return cached.hosts;
  const ctx = { lab: side.lab, urls: new AgentUrls(side.lab.site), revision: side.revision, token: () => PLACEHOLDER_TOKEN };
  const hosts = new Map<string, RenderedHost>();
  const errors: RenderError[] = [];
  for (const host of side.lab.hosts.values()) {
    try {
      hosts.set(host.name, renderHost(host, ctx));
    } catch (err) {
      if (err instanceof RenderError) errors.push(err);
      else throw err;
    }
  }
  if (errors.length > 0) throw new RenderFailedError(errors);
  rendered.set(side.lab, { revision: side.revision, hosts });
  return hosts;
}
