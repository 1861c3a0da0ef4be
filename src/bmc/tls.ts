// HTTPS to BMCs: verified against the system's CAs by default, or against one CA given for this BMC, or by
// pinning the BMC certificate's SHA-256 fingerprint (BMCs mostly present self-signed certificates whose name is
// not their address). Verification is skipped only when the lab says `insecure: true`, and that is logged.
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import type { BmcTls } from './driver.ts';
import { BmcTlsError } from './errors.ts';

export { BmcTlsError };

/** Raised inside the connector; its code marks it as a TLS failure for the protocol client. */
export class CertificatePinError extends Error {
  override readonly name = 'CertificatePinError';
  readonly code = 'ERR_FORSETI_TLS_PIN';
  constructor(wanted: string, got: string | undefined) {
    super(`certificate fingerprint ${got ?? '(none presented)'} is not the pinned ${wanted}`);
  }
}

/** "ab:CD:..." or "abcd..." → "AB:CD:..." (Node's fingerprint256 format). */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[^0-9a-f]/gi, '').toUpperCase();
  if (hex.length !== 64) throw new Error(`a SHA-256 fingerprint has 64 hex digits, this one ${hex.length}`);
  return hex.match(/../g)!.join(':');
}

export interface BmcDispatcherOptions {
  /** "address:port", for the insecure warning. */
  bmc: string;
  host: string;
  tls?: BmcTls;
  connectTimeoutMs?: number;
  /** Told when verification is off (the caller says it once per BMC). */
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

/** An undici dispatcher that verifies the BMC's certificate the way its target says. */
export function bmcDispatcher(options: BmcDispatcherOptions): Dispatcher {
  const { tls } = options;
  const timeout = options.connectTimeoutMs ?? 10_000;
  if (tls?.insecure) {
    options.warn?.({ host: options.host, bmc: options.bmc }, 'TLS verification of this BMC is off (tls.insecure): its identity is not checked');
    return new Agent({ connect: { rejectUnauthorized: false, timeout } });
  }
  if (tls?.fingerprint256) {
    const pin = normalizeFingerprint(tls.fingerprint256);
    // Node runs checkServerIdentity only after the chain verified, which a self-signed certificate never does:
    // the pin is checked on the connected socket instead. No session reuse, so every handshake shows the certificate.
    const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0, timeout });
    const connect: buildConnector.connector = (opts, callback) => {
      base(opts, (err, socket) => {
        if (err !== null) return callback(err, null);
        const got = (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
        if (got !== pin) {
          socket.destroy();
          return callback(new CertificatePinError(pin, got || undefined), null);
        }
        callback(null, socket);
      });
    };
    return new Agent({ connect });
  }
  if (tls?.ca) return new Agent({ connect: { ca: tls.ca, rejectUnauthorized: true, timeout } });
  return new Agent({ connect: { rejectUnauthorized: true, timeout } });
}
