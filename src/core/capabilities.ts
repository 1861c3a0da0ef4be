// What a host's management can do without a human, known from the lab's `bmc.type` before any driver exists: the
// renderer puts it into each host's desired state, so the pure reconcile decision (and `forseti plan`) knows which
// hosts cannot be powered off remotely, and the drivers declare the same values, so the two cannot drift apart.

/** What a driver can do; the reconcile decision plans around what it cannot (src/plan/decide.ts). */
export interface Capabilities {
  /** Can switch the machine off by itself (Wake-on-LAN cannot; manual asks a human). */
  powerOff: boolean;
  /** Can read the power state back (enrolment, drift). */
  powerState: boolean;
  /** Can choose the device of the next boot. */
  bootOverride: boolean;
  /** Every action is an instruction to a human operator (manual). */
  operator: boolean;
}

/** A BMC that can do everything: IPMI, Redfish, the Onboard Administrator. */
export const FULL_CAPABILITIES: Readonly<Capabilities> = Object.freeze({ powerOff: true, powerState: true, bootOverride: true, operator: false });
export const WOL_CAPABILITIES: Readonly<Capabilities> = Object.freeze({ powerOff: false, powerState: false, bootOverride: false, operator: false });
export const MANUAL_CAPABILITIES: Readonly<Capabilities> = Object.freeze({ powerOff: false, powerState: false, bootOverride: false, operator: true });

const BY_TYPE: Readonly<Record<string, Readonly<Capabilities>>> = Object.freeze({
  ipmi: FULL_CAPABILITIES,
  redfish: FULL_CAPABILITIES,
  'hp-oa': FULL_CAPABILITIES,
  wol: WOL_CAPABILITIES,
  manual: MANUAL_CAPABILITIES,
});

/** The capabilities of a lab's `bmc.type`; an unknown type is taken as manual (a human does it). */
export function capabilitiesOfType(type: string): Readonly<Capabilities> {
  return BY_TYPE[type] ?? MANUAL_CAPABILITIES;
}
