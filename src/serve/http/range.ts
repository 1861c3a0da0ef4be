// RFC 9110 section 14: one byte range of a representation of known size. Several ranges
// (multipart/byteranges) are not served: a list is ignored and the whole file is sent, which
// the RFC allows, and which every boot client (iPXE, curl, wget) is content with.

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * The range to send, `'unsatisfiable'` (416), or `null` when the header is absent, malformed,
 * not in bytes, or lists several ranges: then the whole representation is sent with 200.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return null;
  if (first === '') {
    // Suffix range: the last N bytes. "bytes=-0" asks for nothing, which cannot be satisfied.
    const length = Number(last);
    if (length === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return null; // invalid range-spec: ignored, not 416
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { start, end };
}
