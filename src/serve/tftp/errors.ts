// One class per way a request or transfer can fail. Each carries the TFTP error code (RFC 1350
// section 5) the client is sent, so the server never has to map messages to codes.

export const TftpErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTransferId: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionNegotiation: 8,
} as const;

export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

/** A datagram that is not a well-formed TFTP packet. */
export class TftpParseError extends Error {
  override readonly name = 'TftpParseError';
}

/** Which failure ended a request, for whoever reports it (one per error class below). */
export type TftpFailureKind = 'not-found' | 'access-violation' | 'illegal-operation' | 'timeout' | 'client-abort' | 'source' | 'shutdown' | 'superseded';

/** Base of the failures that end a request or transfer; `code` is what the client is told. */
export abstract class TftpTransferError extends Error {
  abstract readonly code: TftpErrorCode;
  abstract readonly kind: TftpFailureKind;
}

/** The requested name does not exist (or a path component is not a directory). */
export class TftpFileNotFoundError extends TftpTransferError {
  override readonly name = 'TftpFileNotFoundError';
  readonly kind = 'not-found' as const;
  readonly code = TftpErrorCode.FileNotFound;
}

/** The name escapes the root, is not a regular file, is unreadable, or the request writes. */
export class TftpAccessViolationError extends TftpTransferError {
  override readonly name = 'TftpAccessViolationError';
  readonly kind = 'access-violation' as const;
  readonly code = TftpErrorCode.AccessViolation;
}

/** The request is well formed but asks for something the server does not do (e.g. mode "mail"). */
export class TftpIllegalOperationError extends TftpTransferError {
  override readonly name = 'TftpIllegalOperationError';
  readonly kind = 'illegal-operation' as const;
  readonly code = TftpErrorCode.IllegalOperation;
}

/** The client stopped answering: the last window was sent `retries` more times without an ACK. */
export class TftpTimeoutError extends TftpTransferError {
  override readonly name = 'TftpTimeoutError';
  readonly kind = 'timeout' as const;
  readonly code = TftpErrorCode.NotDefined;
}

/** The client ended the transfer by sending an ERROR packet (e.g. code 8 on a refused OACK). */
export class TftpClientAbortError extends TftpTransferError {
  override readonly name = 'TftpClientAbortError';
  readonly kind = 'client-abort' as const;
  readonly code = TftpErrorCode.NotDefined;
  readonly clientCode: number;
  constructor(clientCode: number, clientMessage: string) {
    super(`client sent error ${clientCode}: ${clientMessage}`);
    this.clientCode = clientCode;
  }
}

/** Reading the file, or the stream a resolve hook returned, failed mid-transfer. */
export class TftpSourceError extends TftpTransferError {
  override readonly name = 'TftpSourceError';
  readonly kind = 'source' as const;
  readonly code = TftpErrorCode.NotDefined;
}

/** The server was stopped while the transfer was running. */
export class TftpShutdownError extends TftpTransferError {
  override readonly name = 'TftpShutdownError';
  readonly kind = 'shutdown' as const;
  readonly code = TftpErrorCode.NotDefined;
}

/** The same client port sent a new request while this transfer was still running. */
export class TftpSupersededError extends TftpTransferError {
  override readonly name = 'TftpSupersededError';
  readonly kind = 'superseded' as const;
  readonly code = TftpErrorCode.NotDefined;
}
