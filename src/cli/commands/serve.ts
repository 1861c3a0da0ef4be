// `forseti serve tftp|http|dhcp`: one boot service alone, in the foreground, for debugging a lab
// and for tests. Every exchange is one log line; SIGINT or SIGTERM stops the service cleanly.
import type { Server } from 'node:http';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { createLogger, type Logger } from '../../log.ts';
import type { Lab } from '../../model/types.ts';
import type { Generation } from '../../render/generation.ts';
import { parseCidr } from '../../render/net.ts';
import { listen } from '../../serve/boot-http.ts';
import type { BootAnswer, DhcpAnswer, DhcpExchange } from '../../serve/dhcp/index.ts';
import { createStaticServer, type HttpExchange } from '../../serve/http/static-server.ts';
import { createTftpServer, type TftpServerOptions, type TftpTransferEvent } from '../../serve/tftp/index.ts';
import { flag, parseArgs, UsageError, type ParsedArgs } from '../args.ts';

const USAGE = `forseti serve tftp --root DIR [--listen ADDR:PORT] [--timeout-ms N] [--retries N] [--pump auto|native|js]
                   [--max-transfers N] [--max-transfers-per-client N] [--max-client-timeout S] [--max-transfer-seconds N]
forseti serve http --root DIR [--listen ADDR:PORT] [--max-connections N] [--max-connections-per-client N]
forseti serve dhcp --lab DIR --interface IF [--mode full|proxy]`;

export async function serveCommand(argv: string[]): Promise<number> {
  const [service, ...rest] = argv;
  const args = parseArgs(rest);
  const log = createLogger({ name: `forseti-serve-${service ?? ''}` });
  switch (service) {
    case 'tftp':
      return serveTftp(args, log);
    case 'http':
      return serveHttp(args, log);
    case 'dhcp':
      return serveDhcp(args);
    default:
      throw new UsageError(`serve needs a service: tftp, http or dhcp\n${USAGE}`);
  }
}

async function serveTftp(args: ParsedArgs, log: Logger): Promise<number> {
  const root = resolve(required(args, 'root'));
  const { address, port } = parseListen(flag(args, 'listen') ?? '0.0.0.0:69');
  const timeoutMs = optionalInt(args, 'timeout-ms', 1, 60_000);
  const retries = optionalInt(args, 'retries', 0, 100);
  const pump = tftpPump(flag(args, 'pump'));
  const maxTransfers = optionalInt(args, 'max-transfers', 1, 1_000_000);
  const maxTransfersPerClient = optionalInt(args, 'max-transfers-per-client', 1, 1_000_000);
  const maxClientTimeoutS = optionalInt(args, 'max-client-timeout', 1, 255);
  const maxTransferSeconds = optionalInt(args, 'max-transfer-seconds', 1, 86_400);
  const server = createTftpServer({
    root,
    address,
    port,
    pump,
    limits: { ...(maxTransfers !== undefined ? { maxTransfers } : {}), ...(maxTransfersPerClient !== undefined ? { maxTransfersPerClient } : {}) },
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(retries !== undefined ? { retries } : {}),
    ...(maxClientTimeoutS !== undefined ? { maxClientTimeoutS } : {}),
    ...(maxTransferSeconds !== undefined ? { maxTransferMs: maxTransferSeconds * 1000 } : {}),
    log: quietOutcomes(log),
    onTransfer: (e) => (e.ok ? log.info(e, describeTftp(e)) : log.warn(e, describeTftp(e))),
  });
  const bound = await server.start();
  log.info({ root, address: bound.address, port: bound.port, ...server.limits }, `tftp serving ${root} on ${bound.address}:${bound.port}`);
  const signal = await untilSignal();
  await server.stop();
  log.info({ signal }, `tftp stopped on ${signal}`);
  return 0;
}

async function serveHttp(args: ParsedArgs, log: Logger): Promise<number> {
  const root = resolve(required(args, 'root'));
  const { address, port } = parseListen(flag(args, 'listen') ?? '0.0.0.0:8080');
  const maxConnections = optionalInt(args, 'max-connections', 1, 1_000_000);
  const maxConnectionsPerClient = optionalInt(args, 'max-connections-per-client', 1, 1_000_000);
  const server = createStaticServer({
    root,
    log,
    limits: { ...(maxConnections ? { maxConnections } : {}), ...(maxConnectionsPerClient ? { maxConnectionsPerClient } : {}) },
    onExchange: (e) => (e.status >= 500 || !e.complete ? log.warn(e, describeHttp(e)) : log.info(e, describeHttp(e))),
  });
  const bound = await listen(server, address, port);
  log.info({ root, address: bound.address, port: bound.port }, `http serving ${root} on ${bound.address}:${bound.port}`);
  const signal = await untilSignal();
  await closeHttp(server);
  log.info({ signal }, `http stopped on ${signal}`);
  return 0;
}

async function serveDhcp(args: ParsedArgs): Promise<number> {
  // Loaded here: serving TFTP or HTTP needs neither the lab model nor DHCP.
  const { formatProblem, loadLab } = await import('../../model/load.ts');
  const { ReservationPolicy } = await import('../../serve/dhcp-policy.ts');
  const { createDhcpServer } = await import('../../serve/dhcp/index.ts');
  const { createDhcpServeLog } = await import('./serve-dhcp-log.ts');
  const out = createDhcpServeLog('forseti-serve-dhcp');
  const log = out.log;
  const labDir = resolve(required(args, 'lab'));
  const ifName = required(args, 'interface');
  const { lab, problems } = await loadLab(labDir);
  if (!lab) {
    for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  const mode = flag(args, 'mode') ?? lab.site.dhcp.mode;
  if (mode !== 'full' && mode !== 'proxy') throw new UsageError(`--mode must be full or proxy, not ${mode}`);
  const serverIp = interfaceIpv4(ifName);
  if (!serverIp) {
    process.stderr.write(`forseti serve dhcp: interface ${ifName} has no IPv4 address (interfaces: ${Object.keys(networkInterfaces()).join(', ')})\n`);
    return 1;
  }
  if (serverIp !== lab.site.agent.address) {
    log.warn({ serverIp, agent: lab.site.agent.address }, `${ifName} has ${serverIp} but site.yaml says the agent is ${lab.site.agent.address}: boot files point there`);
  }
  const generation = reservationsOnly(lab);
  const reservations = new ReservationPolicy(() => generation);
  const common = {
    serverIp,
    subnet: parseCidr(lab.site.network.subnet),
    interface: ifName,
    relays: lab.site.dhcp.relays ?? [],
    log: quietOutcomes(log),
    onExchange: (e: DhcpExchange) => out.exchange(e, generation.byMac.get(e.client.mac)),
  };
  const server = mode === 'full'
    ? createDhcpServer({ ...common, mode, policy: reservations })
    // Proxy: another server gives the addresses; the reservation's boot file is all this one adds.
    : createDhcpServer({ ...common, mode, bootFileIn: lab.site.dhcp.proxyBootFileIn ?? 'offer', policy: { boot: (client) => bootOnly(reservations.answer(client)) } });
  await server.start();
  log.info({ interface: ifName, serverIp, port: 67, hosts: lab.hosts.size, mode }, `dhcp serving ${lab.hosts.size} reservations (${mode}) as ${serverIp} on ${ifName}`);
  const signal = await untilSignal();
  await server.stop();
  log.info({ signal }, `dhcp stopped on ${signal}`);
  await out.close();
  return 0;
}

/**
 * ReservationPolicy reads only the lab and the MAC index of a generation; nothing is rendered, so
 * the reservations are served without writing a generation to disk.
 */
function reservationsOnly(lab: Lab): Generation {
  const byMac = new Map<string, string>();
  for (const host of lab.hosts.values()) for (const mac of host.macs) byMac.set(mac, host.name);
  return { id: 'serve-dhcp', revision: 'working-tree', dir: '', lab, hosts: new Map(), byMac };
}

function bootOnly(answer: DhcpAnswer | null): BootAnswer | null {
  if (!answer?.bootFile) return null;
  return { bootFile: answer.bootFile, ...(answer.nextServer ? { nextServer: answer.nextServer } : {}) };
}

function interfaceIpv4(name: string): string | undefined {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4' && !a.internal)?.address
    ?? networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
}

/** The services' own per-exchange lines go to debug: the command writes one line per exchange itself. */
function quietOutcomes(log: Logger): { info(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void; isLevelEnabled(level: string): boolean } {
  return {
    info: (o, m) => log.debug(o, m), warn: (o, m) => log.warn(o, m), debug: (o, m) => log.debug(o, m),
    isLevelEnabled: (level) => log.isLevelEnabled(level === 'info' ? 'debug' : level),
  };
}

function describeTftp(e: TftpTransferEvent): string {
  const shape = e.blksize ? ` (blksize ${e.blksize}, windowsize ${e.windowsize ?? 1})` : '';
  return e.ok
    ? `tftp ${e.client} ${e.file}: ${e.bytes} bytes in ${e.ms} ms${shape}`
    : `tftp ${e.client} ${e.file}: failed after ${e.bytes} bytes in ${e.ms} ms${shape}: ${e.error ?? 'unknown error'}`;
}

function describeHttp(e: HttpExchange): string {
  const tail = e.error ? `: ${e.error}` : !e.complete ? ', client went away' : '';
  return `http ${e.remote} ${e.method} ${e.path} ${e.status} ${e.bytes} bytes in ${e.ms} ms${tail}`;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      done(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

function closeHttp(server: Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections();
  });
}

function required(args: ParsedArgs, name: string): string {
  const value = flag(args, name);
  if (!value) throw new UsageError(`serve needs --${name}\n${USAGE}`);
  return value;
}

/** Who moves the data of files under the root; `native` makes the start fail when the C pump was not built. */
function tftpPump(value: string | undefined): NonNullable<TftpServerOptions['pump']> {
  if (value === undefined) return 'auto';
  if (value !== 'auto' && value !== 'native' && value !== 'js') throw new UsageError(`--pump must be auto, native or js, not ${value}`);
  return value;
}

function optionalInt(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = flag(args, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** `ADDR:PORT`, `[V6ADDR]:PORT`; port 0 picks a free one (the listening line shows which). */
export function parseListen(value: string): { address: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
  const address = m?.[1];
  const port = Number(m?.[2]);
  if (!address || !Number.isInteger(port) || port > 65535 || (value.startsWith('[') && !isIPv6(address))) {
    throw new UsageError(`--listen ${JSON.stringify(value)} is not ADDR:PORT`);
  }
  return { address, port };
}
