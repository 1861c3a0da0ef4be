// What a BMC reads back of its machine and what forseti writes to it: the power state and the boot override.
// Drivers (src/bmc/) produce these; drift detection (src/observe/) compares them with what the commit wants.

export type PowerState = 'on' | 'off' | 'unknown';
export type BootDevice = 'pxe' | 'disk' | 'none';

export interface BootOverride {
  /** 'none' clears any override: the firmware's own boot order applies. */
  device: BootDevice;
  /** All future boots, or only the next one. */
  persistent: boolean;
  /** Unset: the target's `firmware`, if known. Unset in a read-back: the BMC does not report it. */
  mode?: 'bios' | 'uefi';
}
