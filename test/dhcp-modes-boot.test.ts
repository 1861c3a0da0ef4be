// Every DHCP mode of site.yaml boots real firmware through the whole chain to the boot script. One
// segment per mode: the agent's namespace holds the guest's tap, forseti's boot services and, in
// `full`, forseti's DHCP; in `off` the site's DHCP server is dnsmasq running exactly what
// `forseti render --dnsmasq` prints, and forseti answers no DHCP at all. (`proxy` is booted the same
// way in serve-dhcp.test.ts and dhcp-proxy-4011.test.ts.) Two firmwares per mode:
// - SeaBIOS with QEMU's e1000 iPXE ROM: iPXE asks with user class iPXE and is given the entry script.
// - OVMF with EDK2's own PXE client and no option ROM: it is given ipxe.efi over TFTP, and the iPXE it
//   starts asks again and is given the entry script, never ipxe.efi again: reaching the script's marker
//   line proves there is no loop between firmware PXE and iPXE.
// Both get their reservation from lab-repo-template (bld-001 10.77.0.101, bld-002 10.77.0.102).
// Skipped without root, QEMU, dnsmasq or Debian's iPXE (`apt-get install qemu-system-x86 ipxe-qemu ovmf ipxe dnsmasq-base`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createSegmentLab, OVMF, pxeGuest, QEMU, REPO_ROOT, startDnsmasq, stopNsProcess, type NsProcess, type SegmentLab, hasCommand,
} from './fixtures/dhcp/netns.ts';
import { startServe, type LogLine, type ServeProcess } from './fixtures/tftp/serve-process.ts';
import './fixtures/api-contract.ts';

const AGENT = '10.77.0.5'; // agent.address in lab-repo-template
const ROUTER = '10.77.0.1/24'; // HEIMDAL in lab-repo-template; the site's DHCP server in `off`
const BLD_001 = { mac: '9c:8e:99:4a:10:01', ip: '10.77.0.101' };
const BLD_002 = { mac: '9c:8e:99:4a:10:02', ip: '10.77.0.102' };
const SCRIPT_URL = `http://${AGENT}:8080/boot.ipxe`;
const MARKER = 'forseti-modes-script-reached';
const IPXE_DIR = '/usr/lib/ipxe';
/** TCG firmware is slow and iPXE waits for IPv6 router adverts: a safety net only. */
const GUEST_SAFETY_NET_MS = 180_000;

const skip = process.getuid?.() !== 0 ? 'needs root'
  : !existsSync(QEMU) ? 'qemu-system-x86_64 not installed'
  : !hasCommand('dnsmasq') ? 'dnsmasq not installed'
  : !existsSync(join(IPXE_DIR, 'ipxe.efi')) ? 'ipxe not installed' : false;
const ovmfSkip = OVMF ? false : 'OVMF not installed';

/** The agent's boot services alone: TFTP with the iPXE binaries, HTTP with an entry script that prints a marker. */
interface BootServices { tftp: ServeProcess; http: ServeProcess; stop(): Promise<void> }

async function startBootServices(lab: SegmentLab, root: string): Promise<BootServices> {
  // Debian's ipxe.efi is a symlink out of /usr/lib/ipxe, which TFTP does not follow: serve copies.
  for (const file of ['ipxe.efi', 'undionly.kpxe']) if (existsSync(join(IPXE_DIR, file))) copyFileSync(join(IPXE_DIR, file), join(root, file));
  writeFileSync(join(root, 'boot.ipxe'), `#!ipxe\necho ${MARKER} \${net0/mac} \${net0/ip}\nexit\n`);
  const tftp = await startServe(['tftp', '--root', root, '--listen', `${AGENT}:69`], lab.agent);
  const http = await startServe(['http', '--root', root, '--listen', `${AGENT}:8080`], lab.agent);
  return { tftp, http, async stop() { await tftp.stop(); await http.stop(); } };
}

/**
 * Boots `firmware` with `host`'s MAC until the entry script prints its marker with the reserved address,
 * then checks what the boot services saw: the script fetched from that address and, for OVMF, ipxe.efi
 * downloaded over TFTP exactly once (iPXE in a NIC ROM needs none).
 */
async function bootToScript(lab: SegmentLab, services: BootServices, firmware: 'seabios' | 'ovmf', host: { mac: string; ip: string }): Promise<void> {
  const guest = pxeGuest(lab, firmware, host.mac);
  try {
    if (firmware === 'ovmf') {
      await guest.waitForLine((l) => l.includes(`Station IP address is ${host.ip}`), 'EDK2 PXE configured with the reservation', GUEST_SAFETY_NET_MS);
      await guest.waitForLine((l) => l.includes('NBP filename is ipxe.efi'), 'the iPXE binary as boot file', GUEST_SAFETY_NET_MS);
    }
    await guest.waitForLine((l) => l.includes(`net0: ${host.ip}/255.255.255.0 gw 10.77.0.1`), 'iPXE configured with the reservation', GUEST_SAFETY_NET_MS);
    await guest.waitForLine((l) => l.includes(`Filename: ${SCRIPT_URL}`), 'iPXE given the entry script', GUEST_SAFETY_NET_MS);
    await guest.waitForLine((l) => l.includes(`${MARKER} ${host.mac} ${host.ip}`), 'the entry script running', GUEST_SAFETY_NET_MS);
  } finally {
    await stopNsProcess(guest);
  }
  const fetched = (l: LogLine): boolean => l.path === '/boot.ipxe' && l.status === 200 && String(l.remote).startsWith(`${host.ip}:`);
  await services.http.waitFor(fetched, 'the script fetched over HTTP'); // logged before the guest could print the marker
  // EDK2 first asks for the size alone and aborts after the OACK (a failed transfer), then downloads.
  const binaries = services.tftp.lines.filter((l) => l.file === 'ipxe.efi' && l.ok === true && String(l.client).startsWith(`${host.ip}:`));
  assert.equal(binaries.length, firmware === 'ovmf' ? 1 : 0, `ipxe.efi downloads: ${JSON.stringify(services.tftp.lines)}`);
}

describe('dhcp.mode full: forseti serve dhcp gives addresses and boot files', { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fdhcp-full-boot-'));
  let lab: SegmentLab | undefined;
  let dhcp: ServeProcess | undefined;
  let services: BootServices | undefined;

  before(async () => {
    lab = createSegmentLab({ agentCidr: `${AGENT}/24`, dhcpCidr: ROUTER });
    services = await startBootServices(lab, tmp);
    dhcp = await startServe(['dhcp', '--lab', 'lab-repo-template', '--interface', lab.bridge, '--mode', 'full'], lab.agent);
  });
  after(async () => {
    await dhcp?.stop();
    await services?.stop();
    lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** forseti's own record of the exchanges: firmware is given the iPXE binary, iPXE only ever the script. */
  function assertBootChain(mac: string, firmwareFile: string | undefined): void {
    const answered = (dhcp?.lines ?? []).filter((l) => l.mac === mac && (l.action === 'offer' || l.action === 'ack'));
    const byStage = (stage: string): LogLine[] => answered.filter((l) => l.stage === stage);
    assert.ok(byStage('ipxe').length > 0, JSON.stringify(answered));
    for (const l of byStage('ipxe')) assert.equal(l.bootFile, SCRIPT_URL, JSON.stringify(l));
    if (firmwareFile) {
      assert.ok(byStage('firmware').some((l) => l.action === 'ack'), JSON.stringify(answered));
      for (const l of byStage('firmware')) assert.equal(l.bootFile, firmwareFile, JSON.stringify(l));
    }
    for (const l of answered) assert.equal(l.ip, l.mac === BLD_001.mac ? BLD_001.ip : BLD_002.ip);
  }

  it('SeaBIOS + iPXE ROM: reservation and entry script from forseti, script run', async () => {
    assert.ok(lab && services);
    await bootToScript(lab, services, 'seabios', BLD_001);
    assertBootChain(BLD_001.mac, undefined);
  });

  it('OVMF\'s own PXE client: ipxe.efi over TFTP, then iPXE gets the script, never the binary again', { skip: ovmfSkip }, async () => {
    assert.ok(lab && services);
    await bootToScript(lab, services, 'ovmf', BLD_002);
    assertBootChain(BLD_002.mac, 'ipxe.efi');
  });
});

describe('dhcp.mode off: dnsmasq runs `forseti render --dnsmasq`, forseti serves only TFTP and HTTP', { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fdhcp-off-boot-'));
  let lab: SegmentLab | undefined;
  let dnsmasq: NsProcess | undefined;
  let services: BootServices | undefined;
  const acks = (mac: string): string[] => [...(dnsmasq?.stderr() ?? '').matchAll(new RegExp(`DHCPACK\\(dhcp0\\) (\\S+) ${mac}`, 'g'))].map((m) => m[1] ?? '');

  before(async () => {
    lab = createSegmentLab({ agentCidr: `${AGENT}/24`, dhcpCidr: ROUTER });
    const conf = join(tmp, 'forseti.conf');
    const snippet = execFileSync(process.execPath, [join(REPO_ROOT, 'bin/forseti.js'), 'render', '--dnsmasq', join(REPO_ROOT, 'lab-repo-template')], { encoding: 'utf8' });
    writeFileSync(conf, snippet);
    dnsmasq = await startDnsmasq(lab, [`--conf-file=${conf}`], join(tmp, 'dnsmasq.leases'));
    services = await startBootServices(lab, tmp);
  });
  after(async () => {
    await services?.stop();
    await stopNsProcess(dnsmasq);
    lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('SeaBIOS + iPXE ROM: reservation and entry script from dnsmasq, script from forseti run', async () => {
    assert.ok(lab && services);
    await bootToScript(lab, services, 'seabios', BLD_001);
    assert.ok(acks(BLD_001.mac).length > 0 && acks(BLD_001.mac).every((a) => a === BLD_001.ip), dnsmasq?.stderr());
  });

  it('OVMF\'s own PXE client: ipxe.efi from forseti over TFTP, then the script, never the binary again', { skip: ovmfSkip }, async () => {
    assert.ok(lab && services);
    await bootToScript(lab, services, 'ovmf', BLD_002);
    // The firmware's lease and iPXE's: two ACKs, both the reservation.
    assert.ok(acks(BLD_002.mac).length >= 2 && acks(BLD_002.mac).every((a) => a === BLD_002.ip), dnsmasq?.stderr());
  });
});
