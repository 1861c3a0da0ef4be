// Conditional requests (RFC 9110 section 13) for static files: validators and the three
// preconditions a download client uses.

import type { Stats } from 'node:fs';

export interface Validators {
  /** Strong: changes with the file's size, modification time or inode. */
  etag: string;
  lastModified: string;
}

export function validatorsOf(info: Stats): Validators {
  return {
    etag: `"${info.ino.toString(16)}-${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
    lastModified: new Date(info.mtimeMs).toUTCString(),
  };
}

/** If-None-Match: `*` or a list of entity tags, compared weakly (a `W/` prefix does not matter). */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** If-Modified-Since: the file has not changed since that date (second precision). Ignored when unparsable. */
export function notModifiedSince(header: string | undefined, info: Stats): boolean {
  if (header === undefined) return false;
  const since = Date.parse(header);
  if (Number.isNaN(since)) return false;
  return Math.floor(info.mtimeMs / 1000) <= Math.floor(since / 1000);
}

/**
 * If-Range: the client's copy is still current, so the Range may be honoured. An entity tag is
 * compared strongly (a weak tag never matches); a date must equal Last-Modified exactly.
 */
export function ifRangeHolds(header: string | undefined, v: Validators): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === v.etag;
  return value === v.lastModified;
}
