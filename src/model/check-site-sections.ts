// The `drift`, `alerts` and `discovery` sections of site.yaml carry rules a JSON Schema cannot express (cron syntax, sink
// kinds and their credentials); their own parsers find those problems, placed here at the offending node.

import { parseAlertsConfig } from './site-alerts.ts';
import { parseDiscoverySettings } from './site-discovery.ts';
import { parseDriftPolicy } from './site-drift.ts';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';

export function checkSiteSections(value: unknown, refs: FieldRefs): LabProblem[] {
  const doc = (value ?? {}) as { drift?: unknown; alerts?: unknown; discovery?: unknown };
  const at = (path: string): SourceRef => {
    for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const ref = refs[p];
      if (ref) return ref;
    }
    return refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };
  };
  return [
    ...parseDriftPolicy(doc.drift).problems.map((p) => problem(at(p.path), 'drift-policy', p.message)),
    ...parseAlertsConfig(doc.alerts).problems.map((p) => problem(at(p.path), 'alerts', p.message)),
    ...parseDiscoverySettings(doc.discovery).problems.map((p) => problem(at(p.path), 'discovery', p.message)),
  ];
}
