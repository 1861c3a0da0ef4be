import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import type { RenderedHost } from '../render/host.ts';
import type { ArtifactDiff, ArtifactKind } from './plan-types.ts';

interface Artifact {
  artifact: ArtifactKind;
  file: string;
  content: string;
  secret: boolean;
}

/** What the agent serves a host, as files, in a fixed order. */
function artifactsOf(r: RenderedHost | undefined): Artifact[] {
  if (!r) return [];
  const out: Artifact[] = [];
  if (r.script !== undefined) out.push({ artifact: 'script', file: 'boot.ipxe', content: r.script, secret: false });
  if (r.wipeScript !== undefined) out.push({ artifact: 'wipe-script', file: 'wipe.ipxe', content: r.wipeScript, secret: false });
  if (r.cmdline !== undefined) out.push({ artifact: 'cmdline', file: 'cmdline', content: `${r.cmdline}\n`, secret: false });
  if (r.config) out.push({ artifact: 'config', file: `config-${r.config.name}`, content: r.config.content, secret: r.config.secret });
  return out;
}

/** Unified diffs of every artifact that differs between BASE and HEAD; a file on one side only diffs against /dev/null. */
export function artifactDiffs(host: string, base: RenderedHost | undefined, head: RenderedHost | undefined): ArtifactDiff[] {
  const before = artifactsOf(base);
  const after = artifactsOf(head);
  const files = [...new Set([...before, ...after].map((a) => a.file))];
  const order = (file: string): number => ['boot.ipxe', 'wipe.ipxe', 'cmdline'].indexOf(file) >>> 0; // configs (-1) sort last
  files.sort((a, b) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0));
  const diffs: ArtifactDiff[] = [];
  for (const file of files) {
    const a = before.find((x) => x.file === file);
    const b = after.find((x) => x.file === file);
    if (a && b && a.content === b.content) continue;
    const kind = (b ?? a)?.artifact ?? 'config';
    const patch = createTwoFilesPatch(a ? `a/${host}/${file}` : '/dev/null', b ? `b/${host}/${file}` : '/dev/null', a?.content ?? '', b?.content ?? '', undefined, undefined, {
      headerOptions: FILE_HEADERS_ONLY,
    });
    diffs.push({ artifact: kind, file, secret: Boolean(a?.secret || b?.secret), patch });
  }
  return diffs;
}
