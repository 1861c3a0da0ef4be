export interface HostRow {
  host: string;
  role?: string;
  phase?: string;
  step?: string;
  appliedRole?: string;
  appliedRevision?: string;
  lastError?: { message: string };
}

/** A plain-text table of hosts, roles and phases. */
export function renderTable(rows: HostRow[]): string {
  const header = ['HOST', 'ROLE', 'PHASE', 'STEP', 'RUNNING', 'REVISION', 'ERROR'];
  const lines = rows
    .sort((a, b) => a.host.localeCompare(b.host))
    .map((r) => [r.host, r.role ?? '', r.phase ?? '', r.step ?? '', r.appliedRole ?? '', (r.appliedRevision ?? '').slice(0, 12), r.lastError?.message ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  return [header, ...lines].map((l) => l.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
