import type { ObservedInventory } from './types.ts';

/**
 * The inventory a status file may record for its host (`inventory:` in `hosts/<name>.yaml` on the status branch):
 * what the BMC reported at enrolment. Fields of the wrong type are left out, never guessed.
 */
export function inventoryOf(document: unknown): ObservedInventory | undefined {
  if (typeof document !== 'object' || document === null) return undefined;
  const raw = (document as { inventory?: unknown }).inventory;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const inventory: ObservedInventory = {};
  for (const key of ['manufacturer', 'model', 'serialNumber'] as const) {
    const v = r[key];
    if (typeof v === 'string') inventory[key] = v;
  }
  for (const key of ['memoryGiB', 'cpus'] as const) {
    const v = r[key];
    if (isCount(v)) inventory[key] = v;
  }
  if (isCount(r.disks)) inventory.disks = r.disks;
  else if (Array.isArray(r.disks)) inventory.disks = r.disks.length;
  return Object.keys(inventory).length > 0 ? inventory : undefined;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
