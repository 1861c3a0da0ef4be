// Public surface of the Talos event sink. It depends on node: builtins, @grpc/grpc-js and protobufjs only.
export { startTalosEventSink, DEFAULT_LIMITS, PUBLISH_PATH } from './server.ts';
export { createTalosCodec, PAYLOAD_TYPES, typeUrlOf } from './codec.ts';
export type { EventRequestFields, PayloadLimits, PayloadTypeName, TalosCodec } from './codec.ts';
export { peerAddress, normaliseAddress } from './peer.ts';
export { encodeXid, parseXid, xidSequence } from './xid.ts';
export type { XidParts } from './xid.ts';
export { TalosEventDecodeError, TalosEventSinkBindError, TalosEventSinkConfigError } from './errors.ts';
export type * from './types.ts';
