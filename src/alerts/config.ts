// Turns the parsed `alerts:` section of site.yaml (src/model/site-alerts.ts) into what the Alerter runs with:
// credential names resolved into secrets on the agent's box, and its timing.

import type { AlertsConfig } from '../model/site-alerts.ts';
import type { RetryPolicy } from './backoff.ts';
import { defaultEvents } from './sinks.ts';
import { AlertCredentialMissingError } from './errors.ts';
import type { ResolvedSink } from './types.ts';

/**
 * Sinks with their credentials resolved, e.g. `(name) => secrets.resolve(name).password`. A credential that
 * cannot be resolved throws AlertCredentialMissingError naming the sink and the credential.
 */
export function resolveSinks(config: AlertsConfig, credential: (name: string) => string): ResolvedSink[] {
  const get = (sink: string, name: string): string => {
    try {
      return credential(name);
    } catch (err) {
      throw new AlertCredentialMissingError(sink, name, { cause: err });
    }
  };
  return config.sinks.map((s): ResolvedSink => {
    const events = new Set(s.events ?? defaultEvents(s.type));
    switch (s.type) {
      case 'webhook':
        return { type: 'webhook', name: s.name, url: s.url, events, ...(s.signingCredential !== undefined && { secret: get(s.name, s.signingCredential) }) };
      case 'slack':
        return { type: 'slack', name: s.name, url: get(s.name, s.urlCredential), events };
      case 'commit-status':
        return { type: 'commit-status', name: s.name, api: s.api, repository: s.repository, token: get(s.name, s.credential), context: s.context, events, ...(s.targetUrl !== undefined && { targetUrl: s.targetUrl }) };
    }
  });
}

/** The Alerter's timing options from the parsed section. */
export function alerterTiming(config: AlertsConfig): { dedupMs: number; retry: RetryPolicy } {
  const { maxAttempts, initialSeconds, maxSeconds } = config.retry;
  return { dedupMs: config.dedupSeconds * 1000, retry: { maxAttempts, initialMs: initialSeconds * 1000, maxMs: maxSeconds * 1000 } };
}
