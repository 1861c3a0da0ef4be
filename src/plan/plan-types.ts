// What `forseti plan` computes: per host, what merging HEAD would do. Plain data, so the JSON output is this shape.
import type { Lab } from '../model/types.ts';
import type { RenderedHost } from '../render/host.ts';
import type { ObservedHost } from '../core/host-state.ts';

/** One side of the comparison: a valid lab at a commit, every host rendered (src/plan/render-side.ts renderSide). */
export interface PlanSide {
  revision: string;
  lab: Lab;
  hosts: ReadonlyMap<string, RenderedHost>;
}

/** BASE may be invalid: then `lab` is null and `problems` holds its `file:line:col: message` lines. */
export type BaseSide = PlanSide | { revision: string; lab: null; problems: string[] };

export type ObservedSource =
  /** Read from the status branch the agent writes. */
  | 'status-branch'
  /** No status branch: every host taken as converged at BASE. */
  | 'assumed-base'
  /** Nothing known: every host is new. */
  | 'empty';

export interface ObservedState {
  source: ObservedSource;
  /** Human words for where the state came from, e.g. `status branch forseti-status at 1a2b3c4d5e6f`. */
  description: string;
  /** Epoch ms the state describes (timeouts of provisionings under way are measured against it). */
  at: number;
  /** A host absent here is Pending (never seen). `inventory` is what its BMC reported, when known. */
  hosts: Map<string, ObservedHost>;
  /** Assumptions made while building the state, said out loud in every output. */
  notes: string[];
}

export const CHANGE_KINDS = ['none', 'rerender', 'provision', 'reprovision', 'wipe', 'power-on', 'power-off', 'power-off-by-hand', 'refused', 'removed'] as const;
export type HostChangeKind = (typeof CHANGE_KINDS)[number];

export type ArtifactKind = 'script' | 'wipe-script' | 'cmdline' | 'config';

/** A unified diff of one rendered artifact between BASE and HEAD. */
export interface ArtifactDiff {
  artifact: ArtifactKind;
  /** `boot.ipxe`, `wipe.ipxe`, `cmdline`, `config-<name>`. */
  file: string;
  /** A config the agent serves only to its own host with its token (the template in Git holds no secret). */
  secret: boolean;
  /** `--- a/<host>/<file>` / `+++ b/<host>/<file>` unified diff; `/dev/null` for a side without the file. */
  patch: string;
}

export interface HostPlan {
  host: string;
  change: HostChangeKind;
  /** Role at BASE; null when the host is new at HEAD (or BASE is invalid). */
  baseRole: string | null;
  /** Role at HEAD; null when the host is removed. */
  headRole: string | null;
  /** One line: why, in words. */
  details: string;
  /** Rendered-artifact diffs BASE → HEAD (tokens are placeholders); empty when nothing rendered differs. */
  diffs: ArtifactDiff[];
}

export interface Plan {
  /** `problems`: BASE's validation problems, present only when it is invalid. */
  base: { revision: string; valid: boolean; problems?: string[] };
  head: { revision: string };
  observed: { source: ObservedSource; description: string };
  notes: string[];
  /** Every host of BASE and HEAD, by name. */
  hosts: HostPlan[];
  /** How the hosts of each role HEAD boots are Converged (the profile's `converge`, or the phone-home), by role. */
  converge: Array<{ role: string; signals: string }>;
  /** Hosts per change kind; every kind present, zeros included. */
  summary: Record<HostChangeKind, number>;
  /** True when any host's change is not `none`. */
  changed: boolean;
}
