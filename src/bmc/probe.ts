// `forseti bmc probe`: what answers at an address (Redfish over HTTPS, an HP Onboard Administrator over SSH, IPMI
// over RMCP+), the authentication it takes, what it can do and the quirks it shows, and the `bmc:` block a host file
// needs for it. Read only, except the boot check it is asked for (written, read back, and set back as it was).
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CommandQueue } from './command-queue.ts';
import type { BmcDriver, BmcTarget } from './driver.ts';
import { BootOnceNotKeptError, BootOverrideNotAppliedError } from './errors.ts';
import { BmcGate } from './gate.ts';
import { createIpmiDriver } from './ipmi-driver.ts';
import type { IpmiIdentity } from './ipmi-driver.ts';
import { GENERIC_FACTS } from './ipmi/vendor-facts.ts';
import type { IpmitoolRunOptions } from './ipmi/ipmitool.ts';
import { probeIpmiPresence } from './ipmi/presence.ts';
import * as oa from './oa/index.ts';
import { createRedfishDriver } from './redfish-driver.ts';
import { RedfishClient } from './redfish/client.ts';
import { probeServiceRoot, probeSystem } from './redfish/probe.ts';
import type { RedfishFindings } from './redfish/probe.ts';
import { bmcDispatcher } from './tls.ts';
import { errorMessage } from '../core/errors.ts';

export type ProbeType = 'redfish' | 'ipmi' | 'hp-oa';
export const PROBE_TYPES: readonly ProbeType[] = ['redfish', 'hp-oa', 'ipmi'];

export interface ProbeOptions {
  type: ProbeType | 'auto';
  port?: number;
  /** Without one only what answers without credentials is found. */
  credential?: { name: string; username: string; password: string };
  /** Write a one-time PXE override, read it back, set the previous one back (Redfish, IPMI). */
  checkBoot?: boolean;
  timeoutMs?: number;
  ipmitool?: IpmitoolRunOptions;
}

/** The host file's `bmc:` mapping (schemas/host.schema.json). */
export interface BmcBlock {
  type: ProbeType;
  address: string;
  port?: number;
  credential: string;
  tls?: { fingerprint: string };
  /** hp-oa: the SSH host key seen, pinned. */
  sshHostKey?: string;
}

export interface ProbeReport {
  address: string;
  /** null: nothing answered as a BMC. */
  type: ProbeType | null;
  port?: number;
  /** What was tried and what it answered, in order. */
  tried: string[];
  transport?: string;
  identity: string[];
  auth?: string;
  capabilities: string[];
  quirks: string[];
  notes: string[];
  /** IPMI: what the vendor facts (src/bmc/ipmi/vendor-facts.ts) make the driver do with this BMC, with their sources. */
  facts?: string[];
  bmc?: BmcBlock;
  /** hp-oa: the populated bays, one host file each (enclosure.bay). */
  bays?: number[];
}

/** A credential name that validates, for a probe run without one; the operator names the real one. */
export const CREDENTIAL_PLACEHOLDER = 'CHANGE-ME';

const DEFAULT_PORTS: Record<ProbeType, number> = { redfish: 443, 'hp-oa': 22, ipmi: 623 };

export async function probeBmc(address: string, options: ProbeOptions): Promise<ProbeReport> {
  const types = options.type === 'auto' ? PROBE_TYPES : [options.type];
  const tried: string[] = [];
  for (const type of types) {
    const found = await (type === 'redfish' ? probeRedfish : type === 'hp-oa' ? probeOa : probeIpmi)(address, options, tried);
    if (found) return { ...found, tried };
  }
  return { address, type: null, tried, identity: [], capabilities: [], quirks: [], notes: ['nothing answered as a Redfish service, an Onboard Administrator or an IPMI BMC'] };
}

function blockOf(type: ProbeType, address: string, port: number, options: ProbeOptions): BmcBlock {
  return { type, address, ...(port !== DEFAULT_PORTS[type] ? { port } : {}), credential: options.credential?.name ?? CREDENTIAL_PLACEHOLDER };
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = errorMessage(err);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

interface Peer {
  fingerprint256: string;
  trusted: boolean;
  problem?: string;
}

/** The certificate the address presents, and whether the system's CAs trust it for this address. */
function tlsPeer(address: string, port: number, timeoutMs: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: address, port, rejectUnauthorized: false, timeout: timeoutMs, ...(/^[\d.:]+$/.test(address) ? {} : { servername: address }) });
    socket.once('secureConnect', () => {
      const fingerprint256 = socket.getPeerCertificate()?.fingerprint256 ?? '';
      const problem = socket.authorizationError ? String(socket.authorizationError) : undefined;
      socket.destroy();
      resolve({ fingerprint256, trusted: socket.authorized, ...(problem ? { problem } : {}) });
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    socket.once('error', reject);
  });
}

async function probeRedfish(address: string, options: ProbeOptions, tried: string[]): Promise<Omit<ProbeReport, 'tried'> | null> {
  const port = options.port ?? 443;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let peer: Peer;
  try {
    peer = await tlsPeer(address, port, timeoutMs);
  } catch (err) {
    tried.push(`Redfish over HTTPS at ${address}:${port}: ${errorText(err)}`);
    return null;
  }
  const bmc = `${address}:${port}`;
  const tls = { fingerprint256: peer.fingerprint256 };
  const dispatcher = bmcDispatcher({ bmc, host: address, tls, connectTimeoutMs: timeoutMs });
  const host = address.includes(':') ? `[${address}]` : address;
  const client = new RedfishClient(
    { baseUrl: `https://${host}:${port}`, username: options.credential?.username ?? '', password: options.credential?.password ?? '' },
    { dispatcher, timeoutMs, retries: 0, busyRetries: 1 },
  );
  try {
    let findings: RedfishFindings | null;
    try {
      findings = await probeServiceRoot(client);
    } catch (err) {
      tried.push(`Redfish over HTTPS at ${bmc}: ${errorText(err)}`);
      return null;
    }
    if (findings === null) {
      tried.push(`Redfish over HTTPS at ${bmc}: answers HTTPS, but /redfish/v1 is no Redfish service root`);
      return null;
    }
    tried.push(`Redfish over HTTPS at ${bmc}: a Redfish service`);
    const report: Omit<ProbeReport, 'tried'> = {
      address,
      type: 'redfish',
      port,
      transport: `HTTPS, certificate sha256 ${peer.fingerprint256}${peer.trusted ? ' (trusted by the system CAs)' : ` (not trusted by the system CAs: ${peer.problem ?? 'unverified'})`}`,
      identity: [`Redfish ${findings.redfishVersion ?? '(version not said)'}${findings.vendor ? `, ${findings.vendor}` : ''}${findings.product ? ` ${findings.product}` : ''}`],
      capabilities: [],
      quirks: [],
      notes: [],
      bmc: { ...blockOf('redfish', address, port, options), ...(peer.trusted ? {} : { tls: { fingerprint: `sha256:${peer.fingerprint256}` } }) },
    };
    if (!peer.trusted) report.notes.push('the block pins the certificate seen now: check its fingerprint on the BMC (or give tls.ca, the CA that issued it)');
    if (!findings.sessionsOffered) report.quirks.push('the service root names no session service: forseti logs in with HTTP Basic');
    if (!options.credential) {
      report.notes.push('no --credential: the login, the system and its quirks are not known yet');
      return report;
    }
    try {
      findings = await probeSystem(client, findings);
    } catch (err) {
      report.auth = `refused or failed: ${errorText(err)}`;
      return report;
    }
    describeRedfish(findings, report);
    if (options.checkBoot) await checkRedfishBoot(address, port, tls, options, report);
    return report;
  } finally {
    await client.close().catch(() => undefined);
    await dispatcher.close().catch(() => undefined);
  }
}

function describeRedfish(f: RedfishFindings, report: Omit<ProbeReport, 'tried'>): void {
  const login = f.login;
  report.auth = login?.kind === 'session' ? 'session login (X-Auth-Token)' : `HTTP Basic${login?.tried.length ? ` (tried first: ${login.tried.join('; ')})` : ''}`;
  const s = f.system;
  if (!s) return;
  report.identity.push(`system ${s.path}: ${[s.manufacturer, s.model].filter(Boolean).join(' ') || 'unnamed'}, power ${s.powerState ?? 'not said'}`);
  const resets = s.resetTypes;
  report.capabilities.push(`reset types: ${resets?.join(', ') ?? 'not said (forseti sends On, ForceOff, PowerCycle)'}`);
  if (resets && !resets.includes('PowerCycle')) report.quirks.push(`no PowerCycle: a power cycle is ${resets.includes('ForceRestart') ? 'ForceRestart' : 'off, then on'}`);
  if (resets && !resets.includes('GracefulShutdown')) report.quirks.push(resets.includes('PushPowerButton') ? 'no GracefulShutdown: a soft off presses the power button' : 'no GracefulShutdown: no soft off');
  if (s.resetTypesVia === 'actioninfo') report.quirks.push('reset types behind @Redfish.ActionInfo');
  report.capabilities.push(`boot targets: ${s.bootTargets?.join(', ') ?? 'not said'}`);
  if (s.bootTargets && !s.bootTargets.includes('Pxe')) report.quirks.push('Pxe is not an allowed boot target: forseti cannot choose a network boot on this BMC');
  if (s.bootTargetsOem) report.quirks.push('boot targets in BootSourceOverrideSupported (iLO 4), not @Redfish.AllowableValues');
  if (s.bootEnabled && !s.bootEnabled.includes('Once')) report.quirks.push('Once is not an allowed BootSourceOverrideEnabled: PXE for every boot, the disk after install');
  if (s.bootMode === undefined && s.bootModes === undefined) report.quirks.push('no BootSourceOverrideMode: forseti leaves the Mode out');
  else report.capabilities.push(`boot mode: ${s.bootMode ?? '?'}${s.bootModes ? ` (allowed: ${s.bootModes.join(', ')})` : ''}`);
  if (s.etag) report.capabilities.push('ETag on the system: every PATCH carries If-Match');
  if (s.postState !== undefined) report.quirks.push(`HPE PostState (now ${s.postState}): boot changes are refused during POST; forseti waits for its end`);
}

/** A one-time PXE override written, read back, and the previous override set back. */
async function checkRedfishBoot(address: string, port: number, tls: { fingerprint256: string }, options: ProbeOptions, report: Omit<ProbeReport, 'tried'>): Promise<void> {
  const target: BmcTarget = { host: address, address, port, username: options.credential!.username, password: options.credential!.password, tls };
  const driver = createRedfishDriver(target, { queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), http: { timeoutMs: options.timeoutMs ?? 10_000, retries: 0 } });
  try {
    await bootCheck(driver, report);
  } finally {
    await driver.close();
  }
}

/** Writes PXE once, reads it back, sets back what was there; what it found goes into the report. */
async function bootCheck(driver: Pick<BmcDriver, 'getBootOverride' | 'setBootOverride'>, report: Omit<ProbeReport, 'tried'>): Promise<void> {
  const before = await driver.getBootOverride();
  try {
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    report.capabilities.push('boot check: a one-time PXE override is kept as written');
  } catch (err) {
    if (err instanceof BootOnceNotKeptError) report.quirks.push('keeps no one-time boot override (Once read back as Continuous): the agent provisions it with PXE for every boot and sets the disk after install');
    else if (err instanceof BootOverrideNotAppliedError) report.quirks.push(`boot check: ${err.message}`);
    else throw err;
  }
  await driver.setBootOverride(before ?? { device: 'none', persistent: false }).catch((err: unknown) => report.notes.push(`could not set the boot override back: ${errorText(err)}`));
  report.notes.push(`boot check: set back to ${before ? `${before.device} (${before.persistent ? 'every boot' : 'next boot'})` : 'no override'}`);
}

/** The vendor Get Device ID names, the facts applied to it with their sources, and its factory account if in use. */
function describeIpmiVendor({ mc, vendor }: IpmiIdentity, credential: { username: string; password: string }, report: Omit<ProbeReport, 'tried'>): void {
  report.identity.push(`vendor: ${vendor.name}${mc.manufacturerId !== null ? ` (manufacturer ID ${mc.manufacturerId})` : ''}${vendor.id === 'generic' ? ': no vendor facts, the generic ones apply' : ''}`);
  report.facts = [...vendor.facts, ...GENERIC_FACTS].map((f) => `${f.fact} (${f.status === 'reported' ? 'user report' : 'documented'}: ${f.source})`);
  const factory = vendor.factoryAccount;
  if (factory && credential.username === factory.username && credential.password === factory.password) {
    report.quirks.push(`logs in with the factory account ${factory.username} and its factory password: change the password (${factory.source})`);
  }
}

function sshBanner(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: address, port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no SSH banner within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const line = /^(SSH-[^\r\n]*)\r?\n/m.exec(text);
      if (line || text.length > 512) {
        clearTimeout(timer);
        socket.destroy();
        line ? resolve(line[1]!) : reject(new Error('not an SSH server'));
      }
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function probeOa(address: string, options: ProbeOptions, tried: string[]): Promise<Omit<ProbeReport, 'tried'> | null> {
  const port = options.port ?? 22;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let banner: string;
  try {
    banner = await sshBanner(address, port, timeoutMs);
  } catch (err) {
    tried.push(`Onboard Administrator over SSH at ${address}:${port}: ${errorText(err)}`);
    return null;
  }
  tried.push(`Onboard Administrator over SSH at ${address}:${port}: ${banner}`);
  let hostKey: string | undefined;
  try {
    hostKey = await oa.scanHostKey(address, port, timeoutMs);
  } catch (err) {
    tried.push(`SSH host key of ${address}:${port}: ${errorText(err)}`);
  }
  const report: Omit<ProbeReport, 'tried'> = {
    address,
    type: 'hp-oa',
    port,
    transport: `SSH (${banner})${hostKey ? `, host key ${hostKey}` : ''}`,
    identity: [],
    capabilities: [],
    quirks: [],
    notes: ['one host file per blade, with enclosure: {name: …, bay: N}; the blades share one SSH session'],
    bmc: { ...blockOf('hp-oa', address, port, options), ...(hostKey ? { sshHostKey: hostKey } : {}) },
  };
  if (hostKey) report.notes.push(`the block pins the SSH host key seen now: check it on the OA (SHOW SSHFINGERPRINT on its console) before the agent trusts it; the password goes only to this key`);
  if (!options.credential) {
    report.notes.push('no --credential: whether this SSH server is an Onboard Administrator, and its bays, are not known yet');
    return report;
  }
  // The login goes only to the key just reported (a key that changes between the two is refused, the password kept).
  const session = new oa.OaSession({ address, port, username: options.credential.username, password: options.credential.password, connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs, retries: 0, ...(hostKey ? { hostKey: { pin: hostKey } } : {}) });
  try {
    const bays: number[] = [];
    for (let bay = 1; bay <= 16; bay++) {
      try {
        const status = await oa.showServerStatus(session, bay);
        bays.push(bay);
        if (bay === bays[0]) report.identity.push(`bay ${bay}: power ${status.power}`);
      } catch (err) {
        if (err instanceof oa.OaCommandError) continue; // an empty bay
        throw err;
      }
    }
    report.auth = 'password login over SSH';
    report.bays = bays;
    report.identity.push(`blades in bays ${bays.join(', ') || 'none'}`);
    report.capabilities.push('power on/off/cycle, one-time and first boot device per bay (SET SERVER BOOT ONCE/FIRST), inventory, power draw');
  } catch (err) {
    report.auth = `refused or failed: ${errorText(err)}`;
  } finally {
    await session.close().catch(() => undefined);
  }
  return report;
}

async function probeIpmi(address: string, options: ProbeOptions, tried: string[]): Promise<Omit<ProbeReport, 'tried'> | null> {
  const port = options.port ?? 623;
  const presence = await probeIpmiPresence(address, port, Math.min(options.timeoutMs ?? 10_000, 3000));
  if (presence === null) {
    tried.push(`IPMI over RMCP at ${address}:${port}: no answer to Get Channel Authentication Capabilities`);
    return null;
  }
  tried.push(`IPMI over RMCP at ${address}:${port}: ${presence.ipmi20 ? 'IPMI v2.0 (RMCP+)' : 'IPMI v1.5 only'}`);
  const report: Omit<ProbeReport, 'tried'> = {
    address,
    type: 'ipmi',
    port,
    transport: presence.ipmi20 ? 'RMCP+ (IPMI v2.0, lanplus)' : 'RMCP (IPMI v1.5 only: forseti speaks lanplus, v2.0)',
    identity: [],
    capabilities: [],
    quirks: presence.ipmi20 ? [] : ['IPMI v1.5 only: forseti needs IPMI v2.0 (lanplus)'],
    notes: [],
    bmc: blockOf('ipmi', address, port, options),
  };
  if (!options.credential) {
    report.notes.push('no --credential: the cipher suite, the identity and the boot flags are not known yet');
    return report;
  }
  const driver = createIpmiDriver(
    { host: address, address, port, username: options.credential.username, password: options.credential.password },
    { queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), ipmitool: { timeoutMs: options.timeoutMs ?? 10_000, retries: 0, ...options.ipmitool } },
  );
  try {
    const power = await driver.powerState();
    const suite = driver.cipherSuite();
    const passed = driver.passedOver().map((p) => `${p.slice(0, p.indexOf(':'))} ${p.endsWith(': no answer') ? 'unanswered' : 'refused'}`);
    report.auth = `RMCP+ session, cipher suite ${suite}${passed.length > 0 ? ` (${passed.join(', ')})` : ''}`;
    const inventory = await driver.inventory();
    report.identity.push(`${[inventory.manufacturer, inventory.model].filter(Boolean).join(' ') || 'unnamed'}${inventory.bmcFirmware ? `, firmware ${inventory.bmcFirmware}` : ''}, power ${power}`);
    describeIpmiVendor(await driver.identify(), options.credential, report);
    const boot = await driver.getBootOverride();
    report.capabilities.push(`boot override now: ${boot ? `${boot.device} (${boot.persistent ? 'every boot' : 'next boot'})` : 'none'}`);
    const watts = await driver.powerDraw();
    if (watts === null) report.quirks.push('no DCMI power reading');
    else report.capabilities.push(`DCMI power reading: ${watts} W`);
    if (options.checkBoot) await bootCheck(driver, report);
  } catch (err) {
    report.auth ??= `refused or failed: ${errorText(err)}`;
    if (report.auth.startsWith('RMCP+')) report.notes.push(`stopped: ${errorText(err)}`);
  }
  return report;
}
