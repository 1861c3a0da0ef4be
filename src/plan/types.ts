// The outputs of the reconcile decision. Plain data only, so the decision stays a pure function; its inputs are
// the host shapes of src/core/host-state.ts.
import type { ProvisionStep } from '../core/host-state.ts';

export type Action =
  /** Nothing to do. */
  | { kind: 'none'; reason: string }
  /** Reach the BMC and read the inventory. */
  | { kind: 'enroll'; reason: string }
  /** Artifacts changed but the role did not: the new generation serves them at the next boot; no power action. */
  | { kind: 'rerender'; reason: string }
  /** One-time PXE, then power cycle (or on), then wait for the phone-home. */
  | { kind: 'provision'; reason: string; fromRole?: string }
  /** Boot the wipe role once for this wipe token, then provision. */
  | { kind: 'wipe'; reason: string }
  /** A provisioning or wipe is under way and within its time, or a rollout slot or window is awaited. */
  | { kind: 'wait'; reason: string }
  /** The provisioning under way ran out of time. */
  | { kind: 'fail'; reason: string; step?: ProvisionStep | string }
  /** The role cannot run on this host as its BMC reports it. */
  | { kind: 'refuse'; reason: string }
  /** Power the host off and keep it off. */
  | { kind: 'power-off'; reason: string }
  /**
   * The host must go off but its driver cannot do it: the operator is asked (manual), or it is shut down from its
   * OS or by hand (Wake-on-LAN). Recorded as off once asked; never a failure, never repeated.
   */
  | { kind: 'power-off-by-hand'; reason: string; by: 'operator' | 'os' }
  /** Power an installed host back on (after a power schedule or `power: off`); it boots its disk. */
  | { kind: 'power-on'; reason: string }
  /** Set the one-time PXE override again, no power action (healing a lost override). */
  | { kind: 'boot-override'; reason: string }
  /** The BMC keeps no one-time override and holds PXE for every boot: set it to the disk now the host is installed. */
  | { kind: 'boot-disk'; reason: string };

/** Actions that take a host out of service; rollout limits and maintenance windows apply to them. */
export const DISRUPTIVE: ReadonlySet<Action['kind']> = new Set(['provision', 'wipe']);

/** What a host gets when it asks for its iPXE script. */
export type BootAnswer = 'install' | 'wipe' | 'disk' | 'chain' | 'exit';
