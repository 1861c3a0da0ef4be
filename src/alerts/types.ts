// What the agent tells people about, and where. Plain data: alerts are persisted in the state dir as JSON.
import type { AlertKind } from '../model/site-alerts.ts';

export type AlertEvent =
  | {
      kind: 'drift-detected';
      host: string;
      revision: string;
      /** A DriftKind: powered-off, powered-on, boot-override-lost, role-mismatch, host-silent. */
      drift: string;
      message: string;
      mode: 'detect' | 'heal' | 'paused';
      /** Set when forseti converges back now (`heal`): what it does, e.g. `power on`. */
      healing?: string;
    }
  | { kind: 'drift-healed'; host: string; revision: string; drift: string; message?: string }
  | { kind: 'provisioning-failed'; host: string; revision: string; role: string; step?: string; message: string }
  | { kind: 'host-converged'; host: string; revision: string; role: string }
  /** `problems` as `file:line:col: message`. */
  | { kind: 'commit-rejected'; revision: string; problems: string[] }
  | { kind: 'bmc-unreachable'; host: string; revision: string; message: string };

/** Identity of a problem for deduplication: the same (host, reason, revision) is alerted once per window. */
export interface AlertKey {
  /** Absent for site-wide problems (a rejected commit). */
  host?: string;
  /** `drift:powered-off`, `provisioning-failed`, `commit-rejected`, `bmc-unreachable`. */
  reason: string;
  revision: string;
}

/** One message as the sinks render it. */
export interface Alert {
  /** Stable across retries, so a receiver can drop a duplicate delivery. */
  id: string;
  /** `resolved`: an explicit `Alerter.resolve` with no event of its own. */
  kind: AlertKind | 'resolved';
  site: string;
  host?: string;
  revision: string;
  reason: string;
  /** One readable line. */
  summary: string;
  /** True when this tells that an earlier alert cleared. */
  recovery: boolean;
  /** For a recovery: the problem it clears. */
  resolves?: AlertKey & { kind: AlertKind };
  event?: AlertEvent;
  /** ISO 8601. */
  at: string;
}

/** A sink with its credential resolved. Lives in memory only; never logged, never persisted. */
export type ResolvedSink =
  | { type: 'webhook'; name: string; url: string; secret?: string; events: ReadonlySet<AlertKind> }
  | { type: 'slack'; name: string; url: string; events: ReadonlySet<AlertKind> }
  | { type: 'commit-status'; name: string; api: string; repository: string; token: string; context: string; targetUrl?: string; events: ReadonlySet<AlertKind> };
