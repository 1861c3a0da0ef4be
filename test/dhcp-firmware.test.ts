// Real boot firmware against the server: QEMU guests whose NIC option ROM is iPXE, under SeaBIOS
// (legacy PXE) and OVMF (UEFI x64). Each guest sits on a tap device inside a namespace this test
// creates; success is iPXE printing the address, gateway and boot file it took from our ACK.
// Skipped when QEMU is not installed (`apt-get install qemu-system-x86 ipxe-qemu ovmf`).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createTapNs, spawnInNs, type NsProcess, stopNsProcess, startDhcpRunner } from './fixtures/dhcp/netns.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';

const QEMU = '/usr/bin/qemu-system-x86_64';
const OVMF = ['/usr/share/qemu/OVMF.fd', '/usr/share/ovmf/OVMF.fd'].find((p) => existsSync(p));
const BIOS_MAC = '52:54:00:98:00:10';
const UEFI_MAC = '52:54:00:98:00:11';
/** Emulated (TCG) firmware is slow and iPXE waits ~15 s for IPv6 router adverts; only a safety net. */
const GUEST_SAFETY_NET_MS = 120_000;

const config: RunnerConfig = {
  serverIp: '10.98.0.1',
  subnet: { network: '10.98.0.0', prefix: 24 },
  // As the agent runs it: bound to the interface, replies to address-less clients go to 255.255.255.255.
  interface: 'tap0',
  reservations: {
    [BIOS_MAC]: { ip: '10.98.0.50', leaseSeconds: 600, router: '10.98.0.1', bootFile: 'bios-test.kpxe', ipxeNoProxyDhcp: true },
    [UEFI_MAC]: { ip: '10.98.0.51', leaseSeconds: 600, router: '10.98.0.1', bootFile: 'uefi-test.efi', ipxeNoProxyDhcp: true },
  },
};

interface Exchange { event: string; action: string; mac: string; stage: string; firmware: string }

const skip = process.getuid?.() !== 0 ? 'needs root' : existsSync(QEMU) ? false : 'qemu-system-x86_64 not installed';

describe('boot firmware (QEMU + iPXE ROM)', { skip }, () => {
  let lab: ReturnType<typeof createTapNs> | undefined;
  let server: NsProcess | undefined;

  before(async () => {
    lab = createTapNs('10.98.0.1/24');
    server = await startDhcpRunner(lab.ns, config);
  });

  after(async () => {
    await stopNsProcess(server);
    lab?.destroy();
  });

  async function bootGuest(mac: string, extraArgs: string[], expect: { ip: string; file: string }): Promise<Exchange[]> {
    assert.ok(lab && server);
    const guest = spawnInNs(lab.ns, [
      QEMU, '-nographic', '-m', '256', '-no-reboot', ...extraArgs,
      '-netdev', `tap,id=n0,ifname=${lab.tap},script=no,downscript=no`, '-device', `e1000,netdev=n0,mac=${mac}`, '-boot', 'n',
    ]);
    try {
      await guest.waitForLine((l) => l.includes(`net0: ${expect.ip}/255.255.255.0 gw 10.98.0.1`), 'iPXE configured from our ACK', GUEST_SAFETY_NET_MS);
      await guest.waitForLine((l) => l.includes(`Filename: ${expect.file}`), 'iPXE boot file', GUEST_SAFETY_NET_MS);
    } finally {
      guest.child.kill('SIGTERM');
      await guest.exited;
    }
    return server.lines.map((l) => JSON.parse(l) as Exchange).filter((e) => e.event === 'exchange' && e.mac === mac);
  }

  // A loaded machine may make iPXE repeat its DISCOVER before our OFFER lands; that is timing, not behaviour.
  function assertOffersThenAck(actions: string[]): void {
    assert.ok(actions.length >= 2, actions.join(','));
    assert.equal(actions.at(-1), 'ack', actions.join(','));
    assert.ok(actions.slice(0, -1).every((a) => a === 'offer'), actions.join(','));
  }

  it('SeaBIOS iPXE ROM takes the broadcast OFFER and ACK', async () => {
    const exchanges = await bootGuest(BIOS_MAC, [], { ip: '10.98.0.50', file: 'bios-test.kpxe' });
    assertOffersThenAck(exchanges.map((e) => e.action));
    assert.ok(exchanges.every((e) => e.stage === 'ipxe' && e.firmware === 'bios'));
  });

  it('OVMF (UEFI x64) iPXE ROM takes the OFFER and ACK', { skip: OVMF ? false : 'OVMF not installed' }, async () => {
    const exchanges = await bootGuest(UEFI_MAC, ['-bios', OVMF ?? ''], { ip: '10.98.0.51', file: 'uefi-test.efi' });
    assertOffersThenAck(exchanges.map((e) => e.action));
    assert.ok(exchanges.every((e) => e.stage === 'ipxe' && e.firmware === 'uefi-x64'));
  });
});
