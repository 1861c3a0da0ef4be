// Translation between the product's BootOverride and IPMI boot parameter 5.
import type { BootOverride } from '../core/power.ts';
import type { BootdevRequest, BootFlags } from './ipmi/ipmitool.ts';
import type { BootFlagsKept } from './ipmi/vendor-facts.ts';

/**
 * How much of boot parameter 5 a BMC keeps. `kept`: all of it (real BMCs). `device-only`: just the
 * Boot Device Selector; the valid, persistent and EFI bits always read back as 0. OpenIPMI's
 * ipmi_sim is such a BMC: its chassis_control program never clears the device, so an override
 * there behaves as persistent. Which BMC is which: ipmi/vendor-facts.ts.
 */
export type BootFlagsSupport = BootFlagsKept;

export function bootdevRequest(o: BootOverride, firmware: 'bios' | 'uefi' | undefined): BootdevRequest {
  return { device: o.device, persistent: o.persistent, efi: (o.mode ?? firmware) === 'uefi' };
}

export function overrideFromFlags(flags: BootFlags, support: BootFlagsSupport): BootOverride | null {
  if (flags.selector !== 'pxe' && flags.selector !== 'disk') return null;
  if (support === 'device-only') return { device: flags.selector, persistent: true };
  if (!flags.valid) return null;
  return { device: flags.selector, persistent: flags.persistent, mode: flags.efi ? 'uefi' : 'bios' };
}

/** Why the read-back differs from what was written, or null if the BMC kept it. */
export function overrideMismatch(sent: BootdevRequest, flags: BootFlags, support: BootFlagsSupport): string | null {
  const got = overrideFromFlags(flags, support);
  const reported = describeFlags(flags, support);
  if (sent.device === 'none') return got === null ? null : `asked to clear the override, BMC reports ${reported}`;
  const wanted = `${sent.device}${sent.persistent ? ' persistent' : ' once'}${sent.efi ? ' uefi' : ' bios'}`;
  const mismatch = `asked for ${wanted}, BMC reports ${reported}`;
  if (got === null || got.device !== sent.device) return mismatch;
  if (support === 'device-only') return null;
  if (got.persistent !== sent.persistent || (got.mode === 'uefi') !== sent.efi) return mismatch;
  return null;
}

function describeFlags(flags: BootFlags, support: BootFlagsSupport): string {
  if (support === 'device-only') return `"${flags.selectorText}" (device only)`;
  const scope = flags.persistent ? 'all future boots' : 'next boot only';
  return `"${flags.selectorText}", flag ${flags.valid ? 'valid' : 'invalid'}, ${scope}, ${flags.efi ? 'EFI' : 'legacy'}`;
}
