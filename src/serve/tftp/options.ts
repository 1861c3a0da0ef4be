// Option negotiation for read requests: RFC 2347 (framework), 2348 (blksize), 2349 (timeout,
// tsize) and 7440 (windowsize). Unknown or unusable options are left out of the OACK, which
// tells the client they were not accepted.

import type { TftpOptions } from './packet.ts';

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
/** RFC 2348's ceiling: 65464 + 4 (TFTP) + 8 (UDP) + 20 (IPv4) still fits one IP datagram. */
export const MAX_BLKSIZE = 65464;
/**
 * A window is held in memory until it is acknowledged, so it is capped: 64 blocks is at most
 * ~4 MiB per transfer at the largest block size, and well past the point of diminishing returns.
 */
export const MAX_WINDOWSIZE = 64;
/**
 * The longest retransmission timeout (RFC 2349 `timeout`, seconds) a client is granted. RFC 2349 lets a client ask
 * for 1-255 s, and a server accept the value as asked or leave the option out of its OACK (the client then keeps its
 * own timer and the server its default): a larger ask is left out. A transfer nobody acknowledges holds its place for
 * its retransmissions times this timeout: 255 s would make one request hold a place for 25 minutes. U-Boot asks for
 * 5 s by default (its `tftptimeout`), other ROMs do not ask at all.
 */
export const DEFAULT_MAX_CLIENT_TIMEOUT_S = 10;

export interface NegotiatedTransfer {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for, if any. */
  timeoutMs: number | undefined;
  /** Options to send in the OACK, in request order; empty means no OACK (plain RFC 1350). */
  accepted: Array<[string, string]>;
}

/**
 * @param size the transfer size in bytes when known; netascii transfers pass undefined because
 *   the converted size is not known up front (tftpd-hpa does the same).
 */
export function negotiate(options: TftpOptions, size: number | undefined, maxTimeoutS = DEFAULT_MAX_CLIENT_TIMEOUT_S): NegotiatedTransfer {
  const result: NegotiatedTransfer = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: undefined, accepted: [] };
  for (const [name, raw] of options) {
    const value = parseDecimal(raw);
    switch (name) {
      case 'blksize':
        if (value === undefined || value < MIN_BLKSIZE) break;
        result.blksize = Math.min(value, MAX_BLKSIZE);
        result.accepted.push([name, String(result.blksize)]);
        break;
      case 'windowsize':
        if (value === undefined || value < 1) break;
        result.windowsize = Math.min(value, MAX_WINDOWSIZE);
        result.accepted.push([name, String(result.windowsize)]);
        break;
      case 'timeout':
        if (value === undefined || value < 1 || value > 255 || value > maxTimeoutS) break;
        result.timeoutMs = value * 1000;
        result.accepted.push([name, String(value)]);
        break;
      case 'tsize':
        if (value === undefined || size === undefined) break;
        result.accepted.push([name, String(size)]);
        break;
      default:
        break;
    }
  }
  return result;
}

/** A plain non-negative decimal integer; anything else (signs, hex, blanks, huge) is undefined. */
function parseDecimal(raw: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}
