// What the event sink hands to its owner: one Talos runtime event, decoded, with the address it came from.
// Field names follow machine.proto (proto/machine.proto) in camelCase; enum values are their names.

export type SequenceAction = 'NOOP' | 'START' | 'STOP';
export type PhaseAction = 'START' | 'STOP';
export type ServiceAction = 'INITIALIZED' | 'PREPARING' | 'WAITING' | 'RUNNING' | 'STOPPING' | 'FINISHED' | 'FAILED' | 'SKIPPED';
export type MachineStage =
  | 'UNKNOWN' | 'BOOTING' | 'INSTALLING' | 'MAINTENANCE' | 'RUNNING' | 'REBOOTING' | 'SHUTTING_DOWN' | 'RESETTING' | 'UPGRADING';

/** common.Error. `code` is the enum name, or the number when this definition does not know it (newer Talos). */
export interface TalosError {
  code: 'FATAL' | 'LOCKED' | number;
  message: string;
}

export interface SequenceEvent {
  type: 'SequenceEvent';
  sequence: string;
  action: SequenceAction;
  error?: TalosError;
}

export interface PhaseEvent {
  type: 'PhaseEvent';
  phase: string;
  action: PhaseAction;
}

export interface TaskEvent {
  type: 'TaskEvent';
  task: string;
  action: PhaseAction;
}

export interface ServiceStateEvent {
  type: 'ServiceStateEvent';
  service: string;
  action: ServiceAction | number;
  message: string;
  health?: { unknown: boolean; healthy: boolean; lastMessage: string };
}

export interface RestartEvent {
  type: 'RestartEvent';
  /** The reboot(2) command: 0x01234567 restart, 0x45584543 kexec, 0x4321FEDC power off, 0xCDEF0123 halt. */
  cmd: number;
}

export interface ConfigLoadErrorEvent {
  type: 'ConfigLoadErrorEvent';
  error: string;
}

export interface ConfigValidationErrorEvent {
  type: 'ConfigValidationErrorEvent';
  error: string;
}

export interface AddressEvent {
  type: 'AddressEvent';
  hostname: string;
  addresses: string[];
}

export interface UnmetCondition {
  name: string;
  reason: string;
}

export interface MachineStatusEvent {
  type: 'MachineStatusEvent';
  stage: MachineStage | number;
  ready: boolean;
  unmetConditions: UnmetCondition[];
}

/** A payload this sink has no definition for, or one that did not decode: passed on, never an error. */
export interface UnknownEvent {
  type: 'unknown';
  typeUrl: string;
  bytes: number;
  reason: string;
}

export type TalosEventPayload =
  | SequenceEvent | PhaseEvent | TaskEvent | ServiceStateEvent | RestartEvent
  | ConfigLoadErrorEvent | ConfigValidationErrorEvent | AddressEvent | MachineStatusEvent | UnknownEvent;

/** One Publish call, as the sink's owner gets it. */
export interface ReceivedTalosEvent {
  /** The peer's IP address (an IPv4-mapped IPv6 address as plain IPv4). Events carry no host name. */
  peer: string;
  /** The node's event id (an rs/xid string); the same id again is a replay. */
  id: string;
  /** The API call that caused the event; empty for the node's own sequences. */
  actorId: string;
  /** When the sink received it (ms since the epoch, the sink's clock): events carry no time of their own. */
  receivedAt: number;
  payload: TalosEventPayload;
}

export interface TalosEventsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Caps on what one sink accepts. Every value is a count, a size or a duration; none is unlimited. */
export interface TalosEventSinkLimits {
  /** Largest Publish message (bytes, after decompression); a larger one is refused with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Open connections in all. */
  maxConnections: number;
  /** Open connections from one address (a node keeps one; it redials after an error). */
  maxConnectionsPerPeer: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (Talos sends one call at a time). */
  maxConcurrentStreams: number;
  /** A connection with no call for this long is closed (GOAWAY); the node redials when it has an event. */
  idleTimeoutMs: number;
  /** The server pings a connection after this much silence... */
  keepaliveTimeMs: number;
  /** ...and closes it when the ping is not answered within this. */
  keepaliveTimeoutMs: number;
  /** A connection that has made no call this long after it opened is closed (a node publishes at once). */
  firstCallTimeoutMs: number;
  /** Longest event id, actor id and type URL accepted (characters). */
  maxIdLength: number;
  /** Longer strings inside a payload are cut to this many characters (marked with "…"). */
  maxStringLength: number;
  /** At most this many list items of a payload are kept (unmet conditions, addresses). */
  maxListItems: number;
}

export interface TalosEventSinkOptions {
  /** Address to listen on: the agent's own address on the provisioning network (or 127.0.0.1 in tests). */
  host: string;
  /** 0 for an ephemeral port. */
  port: number;
  /** Called once per accepted event, synchronously, before the answer; whatever it throws is logged. */
  onEvent: (event: ReceivedTalosEvent) => void;
  log?: TalosEventsLogger;
  limits?: Partial<TalosEventSinkLimits>;
  /** The clock that stamps receivedAt (default Date.now). */
  now?: () => number;
}

export interface TalosEventSink {
  /** Where it listens (the port is the real one when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** Open connections now (for status and tests). */
  connections(): number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}
