// Talos machine configs per host: the role's base merged with the host's values by Talos' rules, a redacted
// rendering for output, and a structural check.
export { renderTalosHostConfig, hostPatch, isCidr, isEndpoint, EVENT_SINK_KIND, HOSTNAME_KIND } from './host-config.ts';
export type { RenderedTalosConfig, TalosHostNetwork, TalosHostValues } from './host-config.ts';
export { mergeConfigDocuments, PatchError } from './strategic-merge.ts';
export { parseConfigDocuments, serializeConfigDocuments, documentKey, MAIN_DOCUMENT } from './documents.ts';
export type { ConfigDocument, Json, JsonMap } from './documents.ts';
export { redactTalosConfig, talosConfigSecrets, TALOS_REDACTED } from './redact.ts';
export { checkTalosConfig } from './check.ts';
export type { TalosConfigProblem } from './check.ts';
export { TalosConfigError } from './errors.ts';
export { decryptTalosBase, renderFromTalosBase, talosBaseSkeleton, TalosBaseResolver } from './base.ts';
export type { RenderedTalosRoleConfig, TalosBase } from './base.ts';
