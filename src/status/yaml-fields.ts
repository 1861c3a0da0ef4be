import { StatusParseError } from './status-parse-error.ts';

type Kind = 'host' | 'site';

export function asRecord(kind: Kind, value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new StatusParseError(kind, `${where} must be a mapping`);
  return value as Record<string, unknown>;
}

export function str(kind: Kind, obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new StatusParseError(kind, `${key} must be a string`);
  return v;
}

export function optStr(kind: Kind, obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new StatusParseError(kind, `${key} must be a string`);
  return v;
}

export function nullableStr(kind: Kind, obj: Record<string, unknown>, key: string): string | null {
  return optStr(kind, obj, key) ?? null;
}

export function oneOf<T extends string>(kind: Kind, value: string | undefined, allowed: readonly T[], key: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new StatusParseError(kind, `${key} must be one of ${allowed.join(', ')}`);
  return value as T;
}
