// iPXE scripts. Each one starts with `#!ipxe` and says in an `echo` what forseti decided, so the
// machine's console tells the operator why it boots what it boots.

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

export function installScript(input: InstallScriptInput): string {
  const initrdArgs = input.initrds.map((i) => `initrd=${i.name}`).join(' ');
  return [
    '#!ipxe',
    `# forseti: host ${input.host}, role ${input.role}`,
    `echo forseti: booting role ${input.role} on ${input.host}`,
    `kernel ${input.kernelUrl} ${initrdArgs} ${input.cmdline}`.replace(/\s+$/, ''),
    ...input.initrds.map((i) => `initrd ${i.url}`),
    'boot || goto failed',
    ':failed',
    'echo forseti: boot failed; retrying in 10 s',
    'sleep 10',
    'reboot',
    '',
  ].join('\n');
}

export function chainScript(host: string, role: string, url: string): string {
  return ['#!ipxe', `echo forseti: ${host} chains to ${url} (role ${role})`, `chain --autofree ${url}`, ''].join('\n');
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

export function exitScript(reason: string): string {
  return ['#!ipxe', `echo forseti: ${reason}`, 'exit', ''].join('\n');
}
