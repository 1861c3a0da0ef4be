// rs/xid ids, the event ids of Talos (`ID: xid.New()` in internal/app/machined/pkg/runtime/v1alpha1/
// v1alpha1_events.go): 12 bytes (4-byte Unix seconds, 3-byte machine id, 2-byte pid, 3-byte counter), written as
// 20 characters of base32hex in lower case (rs/xid id.go; the vector 9m4e2mr0ui3e8a215n4g is rs/xid id_test.go's).
// The seconds come from the node's clock before NTP, so ids order events within one boot only.

const ALPHABET = '0123456789abcdefghijklmnopqrstuv';
const XID_TEXT = /^[0-9a-v]{19}[0g]$/;

export interface XidParts {
  /** Unix seconds. */
  time: number;
  machine: number;
  pid: number;
  counter: number;
}

export function encodeXid(bytes: Uint8Array): string {
  if (bytes.length !== 12) throw new RangeError(`an xid is 12 bytes, not ${bytes.length}`);
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out + ALPHABET[(acc << (5 - bits)) & 31];
}

/** The parts of a canonical xid string, or undefined for anything else (upper case, wrong length, stray bits). */
export function parseXid(text: string): XidParts | undefined {
  if (!XID_TEXT.test(text)) return undefined;
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of text) {
    acc = (acc << 5) | ALPHABET.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
      acc &= (1 << bits) - 1;
    }
  }
  const at = (i: number): number => bytes[i] ?? 0;
  return {
    time: ((at(0) << 24) >>> 0) + (at(1) << 16) + (at(2) << 8) + at(3),
    machine: (at(4) << 16) | (at(5) << 8) | at(6),
    pid: (at(7) << 8) | at(8),
    counter: (at(9) << 16) | (at(10) << 8) | at(11),
  };
}

/** Ids as one machined process hands them out: same time base, machine and pid, a counter that goes up by one. */
export function xidSequence(start: XidParts): () => string {
  let counter = start.counter;
  return () => {
    const c = counter & 0xffffff;
    counter += 1;
    const t = start.time >>> 0;
    return encodeXid(Uint8Array.from([
      t >>> 24, (t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff,
      (start.machine >>> 16) & 0xff, (start.machine >>> 8) & 0xff, start.machine & 0xff,
      (start.pid >>> 8) & 0xff, start.pid & 0xff,
      c >>> 16, (c >>> 8) & 0xff, c & 0xff,
    ]));
  };
}
