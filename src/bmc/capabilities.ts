// What each kind of BMC declared in a lab can do, known before any driver exists: the renderer puts it into each
// host's desired state, so the pure reconcile decision (and `forseti plan`) knows which hosts cannot be powered
// off remotely. The drivers declare the same values (`capabilities`), so the two cannot drift apart.
import { FULL_CAPABILITIES } from './driver.ts';
import type { BmcCapabilities } from './driver.ts';

export const WOL_CAPABILITIES: BmcCapabilities = Object.freeze({ powerOff: false, powerState: false, bootOverride: false, operator: false });
export const MANUAL_CAPABILITIES: BmcCapabilities = Object.freeze({ powerOff: false, powerState: false, bootOverride: false, operator: true });

const BY_TYPE: Record<string, BmcCapabilities> = {
  ipmi: FULL_CAPABILITIES,
  redfish: FULL_CAPABILITIES,
  'hp-oa': FULL_CAPABILITIES,
  wol: WOL_CAPABILITIES,
  manual: MANUAL_CAPABILITIES,
};

/** The capabilities of a lab's `bmc.type`; an unknown type is taken as manual (a human does it). */
export function capabilitiesOfType(type: string): BmcCapabilities {
  return BY_TYPE[type] ?? MANUAL_CAPABILITIES;
}
