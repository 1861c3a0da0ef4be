// Protobuf encoding and decoding of the event sink's messages, with protobufjs' reflection over the descriptor
// generated from proto/*.proto. Decoding never trusts the bytes: a payload that does not decode, or whose type
// this sink does not define, becomes an `unknown` event.
import protobuf from 'protobufjs/light.js';
import { TALOS_EVENTS_DESCRIPTOR } from './descriptor.ts';
import { TalosEventDecodeError } from './errors.ts';
import type { TalosEventPayload, UnmetCondition } from './types.ts';

/** The payload messages this sink decodes (package machine). */
export const PAYLOAD_TYPES = [
  'SequenceEvent', 'PhaseEvent', 'TaskEvent', 'ServiceStateEvent', 'RestartEvent',
  'ConfigLoadErrorEvent', 'ConfigValidationErrorEvent', 'AddressEvent', 'MachineStatusEvent',
] as const;
export type PayloadTypeName = (typeof PAYLOAD_TYPES)[number];

/** The type URL Talos' sink controller sends (anypb.New): `type.googleapis.com/machine.<Message>`. */
export const typeUrlOf = (name: PayloadTypeName): string => `type.googleapis.com/machine.${name}`;

export interface EventRequestFields {
  data?: { typeUrl: string; value: Uint8Array };
  id: string;
  actorId: string;
}

export interface PayloadLimits {
  maxStringLength: number;
  maxListItems: number;
}

/** The message types, built once from the generated descriptor (read-only afterwards). */
export interface TalosCodec {
  decodeRequest(bytes: Uint8Array): EventRequestFields;
  encodeRequest(fields: EventRequestFields): Uint8Array;
  decodePayload(typeUrl: string, value: Uint8Array, limits: PayloadLimits): TalosEventPayload;
  /** Encodes a payload message from its proto field names (snake_case), as a node would; for test clients. */
  encodePayload(name: PayloadTypeName, fields: Record<string, unknown>): Uint8Array;
  encodeResponse(): Uint8Array;
}

export function createTalosCodec(): TalosCodec {
  // The generated descriptor is protobufjs' own JSON form of the .proto files.
  const root = protobuf.Root.fromJSON(TALOS_EVENTS_DESCRIPTOR as protobuf.INamespace);
  const request = root.lookupType('events.EventRequest');
  const response = root.lookupType('events.EventResponse');
  const payloads = new Map(PAYLOAD_TYPES.map((n) => [`machine.${n}`, root.lookupType(`machine.${n}`)]));
  const toObject: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: true, arrays: true };

  return {
    decodeRequest(bytes) {
      let msg: protobuf.Message;
      try {
        msg = request.decode(bytes);
      } catch (err) {
        throw new TalosEventDecodeError(`EventRequest does not decode: ${(err as Error).message}`);
      }
      // Direct field access: toObject would copy the payload bytes.
      const o = msg as unknown as { data?: { type_url?: unknown; value?: unknown } | null; id?: unknown; actor_id?: unknown };
      const data = o.data ?? undefined;
      return {
        data: data === undefined ? undefined : { typeUrl: str(data.type_url), value: data.value instanceof Uint8Array ? data.value : new Uint8Array() },
        id: str(o.id),
        actorId: str(o.actor_id),
      };
    },
    encodeRequest(fields) {
      const message = request.fromObject({
        id: fields.id,
        actor_id: fields.actorId,
        ...(fields.data ? { data: { type_url: fields.data.typeUrl, value: fields.data.value } } : {}),
      });
      return request.encode(dropZeroValues(request, message)).finish();
    },
    decodePayload(typeUrl, value, limits) {
      const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
      const type = payloads.get(name);
      if (type === undefined) return { type: 'unknown', typeUrl, bytes: value.length, reason: 'no definition for this type' };
      let fields: Record<string, unknown>;
      try {
        fields = type.toObject(type.decode(value), toObject);
      } catch (err) {
        return { type: 'unknown', typeUrl, bytes: value.length, reason: `does not decode as ${name}: ${(err as Error).message}` };
      }
      return normalise(name.slice('machine.'.length) as PayloadTypeName, fields, limits);
    },
    encodePayload(name, fields) {
      const type = root.lookupType(`machine.${name}`);
      return type.encode(dropZeroValues(type, type.fromObject(fields))).finish();
    },
    encodeResponse() {
      return response.encode(response.create({})).finish();
    },
  };
}

/**
 * proto3 as Go's proto.Marshal writes it: fields holding their zero value are left off the wire (protobufjs
 * writes every field that was set, `action: START` = 0 included), so encoded fixtures match a node byte for byte.
 */
function dropZeroValues(type: protobuf.Type, message: protobuf.Message): protobuf.Message {
  const m = message as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const v = m[field.name];
    const zero = v === 0 || v === '' || v === false || (Array.isArray(v) && v.length === 0) || (v instanceof Uint8Array && v.length === 0) ||
      (typeof v === 'object' && v !== null && 'low' in v && 'high' in v && (v as { low: number; high: number }).low === 0 && (v as { low: number; high: number }).high === 0);
    if (zero) delete m[field.name];
    else if (field.resolvedType instanceof protobuf.Type && typeof v === 'object' && v !== null) {
      const nested = field.resolvedType;
      if (Array.isArray(v)) for (const item of v) dropZeroValues(nested, item as protobuf.Message);
      else dropZeroValues(nested, v as protobuf.Message);
    }
  }
  return message;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function enumValue<T extends string>(v: unknown): T | number {
  return typeof v === 'number' ? v : (String(v) as T);
}

function normalise(name: PayloadTypeName, f: Record<string, unknown>, limits: PayloadLimits): TalosEventPayload {
  const cut = (v: unknown): string => {
    const s = str(v);
    return s.length > limits.maxStringLength ? `${s.slice(0, limits.maxStringLength)}…` : s;
  };
  const list = <T>(v: unknown, item: (x: unknown) => T): T[] => (Array.isArray(v) ? v.slice(0, limits.maxListItems).map(item) : []);
  const obj = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);
  switch (name) {
    case 'SequenceEvent': {
      const error = obj(f['error']);
      const action = enumValue<'NOOP' | 'START' | 'STOP'>(f['action']);
      return {
        type: name,
        sequence: cut(f['sequence']),
        // An action number this definition does not know is reported as NOOP, the value that carries errors.
        action: typeof action === 'number' ? 'NOOP' : action,
        ...(error ? { error: { code: enumValue<'FATAL' | 'LOCKED'>(error['code']), message: cut(error['message']) } } : {}),
      };
    }
    case 'PhaseEvent':
      return { type: name, phase: cut(f['phase']), action: f['action'] === 'STOP' ? 'STOP' : 'START' };
    case 'TaskEvent':
      return { type: name, task: cut(f['task']), action: f['action'] === 'STOP' ? 'STOP' : 'START' };
    case 'ServiceStateEvent': {
      const health = obj(f['health']);
      return {
        type: name,
        service: cut(f['service']),
        action: enumValue(f['action']),
        message: cut(f['message']),
        ...(health ? { health: { unknown: health['unknown'] === true, healthy: health['healthy'] === true, lastMessage: cut(health['last_message']) } } : {}),
      };
    }
    case 'RestartEvent':
      return { type: name, cmd: typeof f['cmd'] === 'number' ? f['cmd'] : 0 };
    case 'ConfigLoadErrorEvent':
    case 'ConfigValidationErrorEvent':
      return { type: name, error: cut(f['error']) };
    case 'AddressEvent':
      return { type: name, hostname: cut(f['hostname']), addresses: list(f['addresses'], cut) };
    case 'MachineStatusEvent': {
      const status = obj(f['status']);
      const condition = (c: unknown): UnmetCondition => ({ name: cut(obj(c)?.['name']), reason: cut(obj(c)?.['reason']) });
      return {
        type: name,
        stage: enumValue(f['stage']),
        ready: status?.['ready'] === true,
        unmetConditions: list(status?.['unmet_conditions'], condition),
      };
    }
  }
}
