// iPXE scripts. Each one starts with `#!ipxe` and says in an `echo` what forseti decided, so the
// machine's console tells the operator why it boots what it boots.
//
// What a commit supplies is checked by validation (src/model/check-boot-text.ts); the scripts that carry it are
// checked again here, so that a gap there still cannot put a command of the commit's choosing into a script.

import { cmdlineProblems } from '../model/check-boot-text.ts';
import { firstInvisibleChar, visible } from '../model/invisible-chars.ts';
import { firstControlChar, printablePath } from '../model/lab-tree.ts';

/** A script would carry a line break, a control character or an iPXE command separator where one value belongs. */
export class UnsafeScriptError extends Error {
  override readonly name = 'UnsafeScriptError';
}

/** The lines joined into a script; throws UnsafeScriptError if any line holds a control or invisible character. */
function scriptOf(lines: string[]): string {
  for (const line of lines) {
    const control = firstControlChar(line);
    if (control) throw new UnsafeScriptError(`refusing to write an iPXE script line with control character ${control.name}: "${printablePath(line)}"`);
    const invisible = firstInvisibleChar(line);
    if (invisible) throw new UnsafeScriptError(`refusing to write an iPXE script line with invisible character ${invisible.name}: "${visible(line)}"`);
  }
  return [...lines, ''].join('\n');
}

/** A value that must be exactly one word of a script line (a URL). */
function oneWord(value: string, what: string): string {
  if (value === '' || /\s/.test(value)) throw new UnsafeScriptError(`refusing to write an iPXE script: the ${what} "${printablePath(value)}" is not one word`);
  return value;
}

export function chainEntryScript(base: string): string {
  return ['#!ipxe', `chain ${base}/v1/boot/\${mac:hexhyp} || goto failed`, ':failed', 'echo forseti: could not reach the agent; retrying in 10 s', 'sleep 10', 'reboot', ''].join('\n');
}

export interface InstallScriptInput {
  host: string;
  role: string;
  kernelUrl: string;
  initrds: Array<{ url: string; name: string }>;
  cmdline: string;
}

/** Throws UnsafeScriptError when a value would not stay in its place (see `scriptOf`, `oneWord`, `cmdlineProblems`). */
export function installScript(input: InstallScriptInput): string {
  const initrdArgs = input.initrds.map((i) => `initrd=${oneWord(i.name, 'initrd name')}`).join(' ');
  const separator = cmdlineProblems(input.cmdline)[0];
  if (separator) throw new UnsafeScriptError(`refusing to write the kernel line: ${separator.message}`);
  return scriptOf([
    '#!ipxe',
    `# forseti: host ${input.host}, role ${input.role}`,
    `echo forseti: booting role ${input.role} on ${input.host}`,
    `kernel ${oneWord(input.kernelUrl, 'kernel URL')} ${initrdArgs} ${input.cmdline}`.trimEnd(),
    ...input.initrds.map((i) => `initrd ${oneWord(i.url, 'initrd URL')}`),
    'boot || goto failed',
    ':failed',
    'echo forseti: boot failed; retrying in 10 s',
    'sleep 10',
    'reboot',
  ]);
}

export function chainScript(host: string, role: string, url: string): string {
  oneWord(url, 'chain URL');
  return scriptOf(['#!ipxe', `echo forseti: ${host} chains to ${url} (role ${role})`, `chain --autofree ${url}`]);
}

/** An installed host boots its disk: `sanboot` for BIOS, and for UEFI `exit` hands back to the firmware's boot order. */
export function diskScript(host: string, role: string, firmware: 'bios' | 'uefi'): string {
  const boot = firmware === 'uefi' ? 'exit' : 'sanboot --no-describe --drive 0x80 || exit';
  return ['#!ipxe', `echo forseti: ${host} is installed with role ${role}; booting from local disk`, boot, ''].join('\n');
}

/**
 * ipxe.efi runs autoexec.ipxe, fetched from the TFTP server it was loaded from, before it has configured its
 * network: the script first takes an address by DHCP unless it has one, then runs `script`.
 */
export function autoexecScript(script: string): string {
  return [
    '#!ipxe',
    'isset ${ip} || dhcp || goto forseti_no_address',
    'goto forseti_script',
    ':forseti_no_address',
    'echo forseti: DHCP gave no address; retrying in 10 s',
    'sleep 10',
    'reboot',
    ':forseti_script',
    script.replace(/^#!ipxe\n/, ''),
  ].join('\n');
}

/** `reason` is printed on the console; a control character in it becomes a space rather than a new command. */
export function exitScript(reason: string): string {
  return ['#!ipxe', `echo forseti: ${reason.replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ')}`, 'exit', ''].join('\n');
}
