// Injected into the release bundle by scripts/build-release.mjs, which rewrites each module's own URL (import.meta) to a call of this.
export { moduleUrl as __forsetiModuleUrl } from './asset-root.ts';
