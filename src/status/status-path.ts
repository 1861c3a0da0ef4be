import { InvalidStatusPathError } from './invalid-status-path-error.ts';

/** Status paths are relative, forward-slash, without `.`/`..`/empty segments and outside `.git`. */
export function checkStatusPath(path: string): string {
  const segments = path.split('/');
  const bad = path === '' || segments.some((s) => s === '' || s === '.' || s === '..' || s.toLowerCase() === '.git' || s.includes('\0') || s.includes('\\'));
  if (bad) throw new InvalidStatusPathError(path);
  return path;
}
