export { createTftpServer } from './server.ts';
export type { TftpServer, TftpServerOptions, TftpSource, TftpTransferEvent, TftpClientAddress } from './server.ts';
export type { TftpLogger } from './logger.ts';
export * from './errors.ts';
export * from './packet.ts';
