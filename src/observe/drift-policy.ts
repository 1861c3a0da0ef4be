// How one host's drift is measured and acted on: its own `drift:`, its groups' and the site's (the sections are
// parsed by src/model/site-drift.ts).
import type { DriftMode, SiteDriftPolicy } from '../model/site-drift.ts';

/** What one host's drift is measured and acted on with. */
export interface HostDriftPolicy {
  mode: DriftMode;
  /** Where the mode came from, for messages: `site`, `group rack=a`, `host`. */
  source: string;
  silentAfterMs: number;
  bootOverrideGraceMs: number;
}

/** How much a mode lets forseti do; when several groups match a host, the one that does least wins. */
const RESTRAINT: Record<DriftMode, number> = { heal: 0, detect: 1, paused: 2 };

/**
 * The policy of one host: its own `drift:` first, then the groups whose label it carries (the most restrained
 * of them if several match), then the site's.
 */
export function resolveHostDrift(site: SiteDriftPolicy, host: { labels: Record<string, string>; drift?: DriftMode }): HostDriftPolicy {
  const timing = { silentAfterMs: site.silentAfterSeconds * 1000, bootOverrideGraceMs: site.bootOverrideGraceSeconds * 1000 };
  if (host.drift) return { mode: host.drift, source: 'host', ...timing };
  let chosen: SiteDriftPolicy['groups'][number] | undefined;
  for (const group of site.groups) {
    if (host.labels[group.label] !== group.value) continue;
    if (!chosen || RESTRAINT[group.policy] > RESTRAINT[chosen.policy]) chosen = group;
  }
  if (chosen) return { mode: chosen.policy, source: `group ${chosen.label}=${chosen.value}`, ...timing };
  return { mode: site.policy, source: 'site', ...timing };
}

