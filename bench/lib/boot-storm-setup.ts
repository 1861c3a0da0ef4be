// What a boot storm runs in (bench/boot-storm.bench.ts, test/boot-storm.test.ts): a server namespace and
// a client namespace joined by a veth pair, the boot files, the reservations, the commands of forseti's
// three services and of the references (dnsmasq for DHCP and TFTP, nginx for HTTP), and the summary of
// a storm's results.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLab, ip } from '../../test/fixtures/dhcp/netns.ts';
import { stormIp, stormMac, stormScript, type Digest, type MachineResult } from './boot-storm-client.ts';
import { nginxCommand } from './nginx.ts';
import { FORSETI } from './proc.ts';
import { dnsmasqHostsFile, writeReservationLab } from './reservation-lab.ts';

export const SERVER_IP = '10.77.255.1';
const CLIENT_IP = '10.77.255.250';
/** Every machine's reserved address is in here; the client namespace takes all of it as its own. */
const MACHINE_RANGE = '10.77.16.0/20';
export const HTTP_PORT = 8080;
export const BOOT_FILE = 'undionly.kpxe';
export const SCRIPT_PATH = '/scripts/{mac}.ipxe';

export interface StormNet {
  server: string;
  client: string;
  serverIf: string;
  destroy(): void;
}

export function createStormNet(): StormNet {
  const lab = createLab({ serverCidr: `${SERVER_IP}/16`, clientMac: '02:b5:ff:ff:ff:fe' });
  try {
    // The generator's DHCP socket needs an address for broadcast replies and a route for its broadcasts;
    // a local route makes every reserved address the client namespace's own (sources of TFTP and HTTP).
    ip('-n', lab.client, 'addr', 'add', `${CLIENT_IP}/16`, 'dev', lab.clientIf);
    ip('-n', lab.client, 'route', 'add', '255.255.255.255', 'dev', lab.clientIf);
    ip('-n', lab.client, 'route', 'add', 'local', MACHINE_RANGE, 'dev', lab.clientIf);
    // The server reaches that range through the client namespace's one address: a thousand machines
    // would otherwise be a thousand ARP entries, past the kernel's table size (gc_thresh3, 1024, shared
    // by every namespace on the machine).
    ip('-n', lab.server, 'route', 'add', MACHINE_RANGE, 'via', CLIENT_IP, 'dev', lab.serverIf);
  } catch (err) {
    lab.destroy();
    throw err;
  }
  return { server: lab.server, client: lab.client, serverIf: lab.serverIf, destroy: () => lab.destroy() };
}

export interface StormFiles {
  tftpRoot: string;
  httpRoot: string;
  lab: string;
  dnsmasqHosts: string;
  expect: { bootFile: Digest; kernel: Digest; initrd: Digest };
}

async function randomFile(file: string, size: number): Promise<Digest> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w', 0o644);
  try {
    for (let done = 0; done < size;) {
      const chunk = randomBytes(Math.min(4 * 1024 * 1024, size - done));
      hash.update(chunk);
      await handle.write(chunk);
      done += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** Boot files, scripts and reservations for `machines` machines and one more (index `machines`: the readiness probe). */
export async function writeStormFiles(dir: string, machines: number, sizes: { bootFile: number; kernel: number; initrd: number }): Promise<StormFiles> {
  const tftpRoot = path.join(dir, 'tftp');
  const httpRoot = path.join(dir, 'http');
  await mkdir(tftpRoot, { recursive: true });
  await mkdir(path.join(httpRoot, 'scripts'), { recursive: true });
  await mkdir(path.join(httpRoot, 'images'), { recursive: true });
  // dnsmasq and nginx's worker drop privileges: everything must be readable by anyone.
  for (const d of [dir, tftpRoot, httpRoot, path.join(httpRoot, 'scripts'), path.join(httpRoot, 'images')]) await chmod(d, 0o755);
  const expect = {
    bootFile: await randomFile(path.join(tftpRoot, BOOT_FILE), sizes.bootFile),
    kernel: await randomFile(path.join(httpRoot, 'images', 'kernel'), sizes.kernel),
    initrd: await randomFile(path.join(httpRoot, 'images', 'initrd'), sizes.initrd),
  };
  const reservations = Array.from({ length: machines + 1 }, (_, i) => ({ mac: stormMac(i), ip: stormIp(i) }));
  for (const r of reservations) {
    await writeFile(path.join(httpRoot, SCRIPT_PATH.replace('{mac}', r.mac.replaceAll(':', '-'))), stormScript(r.mac, SERVER_IP, HTTP_PORT), { mode: 0o644 });
  }
  const lab = path.join(dir, 'lab');
  await writeReservationLab(lab, { interface: 'srv0', subnet: '10.77.0.0/16', gateway: '10.77.0.1', agent: SERVER_IP }, reservations);
  const dnsmasqHosts = path.join(dir, 'dnsmasq.hosts');
  await writeFile(dnsmasqHosts, dnsmasqHostsFile(reservations));
  return { tftpRoot, httpRoot, lab, dnsmasqHosts, expect };
}

/** Connections at once each HTTP server is configured for, as an operator would for this many machines. */
export function httpConnectionsFor(machines: number): number {
  return Math.max(1024, 4 * machines);
}

/**
 * forseti's three services, each its own `forseti serve` process, with their defaults but for the HTTP connections
 * at once, raised as nginx's are (`httpConnectionsFor`); without, past 512 machines the rest would be told 503 and
 * to come back (none of them is a lab host here, whom the agent never refuses for the cap in all).
 */
export function forsetiCommands(files: StormFiles, serverIf: string, machines: number): Record<'dhcp' | 'tftp' | 'http', string[]> {
  return {
    dhcp: [...FORSETI, 'serve', 'dhcp', '--lab', files.lab, '--interface', serverIf],
    tftp: [...FORSETI, 'serve', 'tftp', '--root', files.tftpRoot, '--listen', `${SERVER_IP}:69`],
    http: [...FORSETI, 'serve', 'http', '--root', files.httpRoot, '--listen', `${SERVER_IP}:${HTTP_PORT}`, '--max-connections', String(httpConnectionsFor(machines))],
  };
}

/**
 * dnsmasq for DHCP and TFTP and nginx for HTTP, configured as an operator would for this many machines:
 * dnsmasq's tftp-max raised from its default of 50 to the number of machines (each machine runs one
 * transfer at a time), nginx with sendfile and one worker (forseti's HTTP is one thread).
 */
export async function referenceCommands(files: StormFiles, dir: string, serverIf: string, machines: number): Promise<Record<'dnsmasq' | 'nginx', string[]>> {
  return {
    dnsmasq: ['dnsmasq', '--conf-file=/dev/null', '--no-daemon', '--port=0', `--interface=${serverIf}`, '--bind-interfaces',
      '--dhcp-range=10.77.0.0,static,255.255.0.0', `--dhcp-hostsfile=${files.dnsmasqHosts}`, `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
      '--dhcp-authoritative', '--no-ping', `--dhcp-boot=${BOOT_FILE}`, '--enable-tftp', `--tftp-root=${files.tftpRoot}`, `--tftp-max=${Math.max(50, machines)}`,
      '--pid-file=', '--log-facility=-', '--quiet-dhcp', '--quiet-tftp'],
    nginx: await nginxCommand({ prefix: path.join(dir, 'nginx'), root: files.httpRoot, listen: `${SERVER_IP}:${HTTP_PORT}`, connections: httpConnectionsFor(machines), accessLog: false }),
  };
}

export interface StormSummary {
  machines: number;
  failed: number;
  /** Machines whose address is not their reservation, and addresses more than one machine got. */
  wrongAddress: number;
  duplicateAddresses: number;
  /** From the storm's start until the last machine held its initrd. */
  lastMs: number;
  /** 99th percentile of one machine's time from its start to its initrd. */
  p99Ms: number;
  /** The first few failures, for the report. */
  errors: string[];
  /** Per step of the machines that booted: median and slowest, ms. */
  steps: Record<string, { p50: number; max: number }>;
  /** TFTP blocks the server sent again, and requests or ACKs the machines sent again, over all machines. */
  resent: { byServer: number; byMachine: number };
  /** HTTP requests answered 503 with Retry-After and asked again, over all machines. */
  httpRetries: number;
}

export function summarize(results: MachineResult[]): StormSummary {
  const failed = results.filter((r) => !r.ok);
  const seen = new Map<string, number>();
  for (const r of results) if (r.ip) seen.set(r.ip, (seen.get(r.ip) ?? 0) + 1);
  const durations = results.filter((r) => r.ok).map((r) => r.endMs - r.startMs).sort((a, b) => a - b);
  return {
    machines: results.length,
    failed: failed.length,
    wrongAddress: results.filter((r) => r.ip !== undefined && r.ip !== stormIp(r.index)).length,
    duplicateAddresses: [...seen.values()].filter((n) => n > 1).length,
    lastMs: Math.max(...results.map((r) => r.endMs)),
    p99Ms: durations[Math.min(durations.length - 1, Math.ceil(durations.length * 0.99) - 1)] ?? NaN,
    errors: failed.slice(0, 5).map((r) => `${r.mac}: ${r.error ?? 'failed'}`),
    resent: { byServer: results.reduce((n, r) => n + r.resent.byServer, 0), byMachine: results.reduce((n, r) => n + r.resent.byMachine, 0) },
    httpRetries: results.reduce((n, r) => n + r.httpRetries, 0),
    steps: Object.fromEntries(['dhcp', 'tftp', 'script', 'kernel', 'initrd'].map((step) => {
      const ms = results.filter((r) => r.ok).map((r) => r.steps[step] ?? 0).sort((a, b) => a - b);
      return [step, { p50: ms[Math.floor(ms.length / 2)] ?? NaN, max: ms.at(-1) ?? NaN }];
    })),
  };
}
