export type { BmcEndpoint, ExecResult, Firmware, GuestAssets, NicModel, StartVlabOptions, Vlab, VlabBmcType, VlabNode, VlabNodeSpec } from './types.ts';
export { ensureGuestAssets, DEFAULT_CACHE_DIR } from './assets.ts';
export { startVlab } from './vlab.ts';
