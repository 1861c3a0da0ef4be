// UEFI HTTP boot end to end, with real firmware: Debian's OVMF (q35, virtio-net with no option ROM, so the
// firmware's own network stack boots, not an iPXE ROM; PXE boot options switched off so it goes straight to
// "UEFI HTTPv4") asks forseti's DHCP with vendor class HTTPClient, is told http://AGENT/ipxe.efi, fetches it
// from the boot HTTP server, and starts iPXE, which asks DHCP again as iPXE and fetches /boot.ipxe.
// Skipped without root, QEMU, OVMF or iPXE (`apt-get install qemu-system-x86 ovmf ipxe`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnInNs, type NsProcess, stopNsProcess } from './fixtures/dhcp/netns.ts';
import { canUseNetns, createNetns, type Netns } from './fixtures/tftp/netns.ts';
import type { UefiHttpBootConfig } from './fixtures/tftp/uefi-http-boot-runner.ts';

const QEMU = '/usr/bin/qemu-system-x86_64';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const IPXE_DIR = '/usr/lib/ipxe';
const MAC = '52:54:00:97:00:10';
/** TCG firmware boots in seconds to a minute on a loaded machine; only a safety net. */
const SAFETY_NET_MS = 180_000;

const config: UefiHttpBootConfig = {
  agent: { address: '10.97.0.1', httpPort: 21090, tftpPort: 69 },
  subnet: { network: '10.97.0.0', prefix: 24 },
  interface: 'tap0',
  ipxeDir: IPXE_DIR,
  mac: MAC,
  ip: '10.97.0.50',
  entryScript: '#!ipxe\necho forseti-entry-script-reached\nexit\n',
};

const missing = [QEMU, OVMF_CODE, OVMF_VARS, path.join(IPXE_DIR, 'ipxe.efi')].filter((f) => !existsSync(f));
const skip = !canUseNetns() ? 'needs root and ip netns' : missing.length > 0 ? `not installed: ${missing.join(', ')}` : false;

interface Event { event: string; [k: string]: unknown }

describe('UEFI HTTP boot (OVMF) from forseti DHCP and HTTP', { skip }, () => {
  let ns: Netns | undefined;
  let tmp = '';
  let runner: NsProcess | undefined;
  let guest: NsProcess | undefined;

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'forseti-uefi-http-'));
    ns = createNetns('uefihttp');
    execFileSync('ip', ['-n', ns.name, 'tuntap', 'add', 'tap0', 'mode', 'tap']);
    execFileSync('ip', ['-n', ns.name, 'addr', 'add', `${config.agent.address}/24`, 'dev', 'tap0']);
    execFileSync('ip', ['-n', ns.name, 'link', 'set', 'tap0', 'up']);
    const script = fileURLToPath(new URL('./fixtures/tftp/uefi-http-boot-runner.ts', import.meta.url));
    runner = spawnInNs(ns.name, [process.execPath, '--import', 'tsx', script, JSON.stringify(config)]);
    await runner.waitForLine((l) => l.includes('"event":"ready"'), 'DHCP and HTTP ready');
  });

  after(async () => {
    for (const p of [guest, runner]) await stopNsProcess(p);
    ns?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('firmware gets ipxe.efi over HTTP and iPXE starts, then chains to /boot.ipxe', { timeout: SAFETY_NET_MS + 30_000 }, async () => {
    assert.ok(ns && runner);
    const vars = path.join(tmp, 'OVMF_VARS.fd');
    copyFileSync(OVMF_VARS, vars);
    guest = spawnInNs(ns.name, [
      QEMU, '-machine', 'q35', '-m', '512', '-nographic', '-no-reboot',
      '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`,
      '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `virtio-net-pci,netdev=n0,mac=${MAC},romfile=`,
      '-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n',
    ]);
    const events = (): Event[] => (runner?.lines ?? []).map((l) => JSON.parse(l) as Event);

    await guest.waitForLine((l) => l.includes('forseti-entry-script-reached'), 'iPXE running the entry script', SAFETY_NET_MS);
    const console = guest.lines.join('\n');
    assert.match(console, /UEFI HTTPv4/, 'the firmware booted through its HTTP boot option');
    assert.match(console, /iPXE/);

    const dhcp = events().filter((e) => e.event === 'dhcp' && e.action === 'ack');
    const firmware = dhcp.find((e) => e.stage === 'firmware');
    assert.ok(firmware, `no ACK to the firmware: ${JSON.stringify(events())}`);
    assert.equal(firmware.firmware, 'uefi-http');
    assert.match(String(firmware.vendorClass), /^HTTPClient/);
    assert.equal(firmware.answeredVendorClass, 'HTTPClient');
    assert.equal(firmware.bootFile, `http://${config.agent.address}:${config.agent.httpPort}/ipxe.efi`);
    const ipxe = dhcp.find((e) => e.stage === 'ipxe');
    assert.equal(ipxe?.bootFile, `http://${config.agent.address}:${config.agent.httpPort}/boot.ipxe`);

    const http = events().filter((e) => e.event === 'http');
    const efiGet = http.find((e) => e.method === 'GET' && e.path === '/ipxe.efi');
    assert.ok(efiGet, `ipxe.efi was not fetched: ${JSON.stringify(http)}`);
    assert.equal(efiGet.status, 200);
    assert.equal(efiGet.finished, true);
    assert.equal(Number(efiGet.contentLength), statSync(path.join(IPXE_DIR, 'ipxe.efi')).size);
    const entry = http.find((e) => e.path === '/boot.ipxe');
    assert.equal(entry?.status, 200);
    assert.match(String(entry?.userAgent), /iPXE/);
  });
});
