import { copyFile, mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Site } from '../model/types.ts';
import type { Generation } from '../render/generation.ts';
import { parseCidr } from '../render/net.ts';
import { createBootHttpServer, listen, type BootHttpOptions } from './boot-http.ts';
import { createDhcpServer, LeasePool, LeaseStore, type DhcpExchange, type DhcpServer, type LeasePoolRange } from './dhcp/index.ts';
import { createTftpServer, type TftpServer, type TftpServerOptions, type TftpTransferEvent } from './tftp/index.ts';
import type { TftpLimits } from './tftp/limits.ts';
import type { AgentBootBackend } from './boot-backend.ts';
import { IPXE_BINARIES, ReservationPolicy } from './dhcp-policy.ts';
import { errorMessage } from '../core/errors.ts';
import type { TalosEventsSettings } from './converge-signals.ts';

/** agent.yaml's `serve:` section. */
export interface ServeSettings {
  /** Address the HTTP and TFTP services bind; default all addresses. */
  bindAddress: string;
  dhcp: boolean;
  /**
   * The NIC DHCP is served on, and the site's dhcp.mode values it may be served in: the operator's, not the commit's
   * (a site.yaml naming another NIC or mode is rejected, src/agent/dhcp-policy-check.ts). Unset: no DHCP is served.
   */
  interface?: string;
  dhcpModes?: ReadonlyArray<'full' | 'proxy'>;
  /** The DHCP relays (giaddr) a site may list in dhcp.relays; unset or empty: none, so relayed requests go unanswered. */
  dhcpRelays?: readonly string[];
  tftp: boolean;
  /** Caps on concurrent TFTP transfers, from `serve.tftp: {maxTransfers, maxTransfersPerClient}`; unset ones default (serve/tftp/limits.ts). */
  tftpLimits?: Partial<TftpLimits>;
  /** Where the iPXE binaries for non-iPXE firmware are found (Debian's `ipxe` package). */
  ipxeDir: string;
  /** Caps and timeouts of the agent's HTTP server; the loader always sets them, other builders may leave defaults. */
  http?: HttpServiceSettings;
  /** The Talos event sink (`serve.talosEvents`); absent: port 4002. It runs only while a profile converges on talosEvents. */
  talosEvents?: TalosEventsSettings;
}

/** `serve.http` of agent.yaml. */
export interface HttpServiceSettings {
  maxConnections: number;
  maxConnectionsPerClient: number;
  maxEventStreams: number;
  maxEventStreamsPerClient: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
}

/** What the boot services need of the agent's configuration. */
export interface BootServicesConfig {
  stateDir: string;
  serve: ServeSettings;
}

/** A service the agent runs could not take its port: the commit that needs it cannot be served. */
export class ServiceBindError extends Error {
  override readonly name = 'ServiceBindError';
  constructor(readonly service: 'http' | 'tftp' | 'dhcp', readonly address: string, readonly port: number | undefined, readonly code: string | undefined, detail: string, options?: { cause?: unknown }) {
    super(`cannot start the agent's ${service.toUpperCase()} service on ${address}${port !== undefined ? `:${port}` : ''}: ${detail}`, options);
  }

  static from(service: 'http' | 'tftp' | 'dhcp', address: string, port: number | undefined, err: unknown): ServiceBindError {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const errno = cause as NodeJS.ErrnoException & { port?: number; address?: string };
    const at = typeof errno.port === 'number' ? errno.port : port;
    const where = typeof errno.address === 'string' ? errno.address : address;
    const key = service === 'http' ? 'agent.httpPort in site.yaml' : service === 'tftp' ? 'agent.tftpPort in site.yaml' : 'dhcp.mode in site.yaml';
    const detail =
      errno.code === 'EADDRINUSE' ? `the port is in use by another program (EADDRINUSE); stop that program or change ${key}`
      : errno.code === 'EACCES' ? 'permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE'
      : errno.code === 'EADDRNOTAVAIL' ? 'the address is not on this machine (EADDRNOTAVAIL); check serve.bindAddress in the agent configuration'
      : errorMessage(err);
    return new ServiceBindError(service, where, at, errno.code, detail, { cause: err });
  }
}

/**
 * What `ensure` changed, not final yet: `commit` retires the servers the new commit replaced, `rollback` brings the
 * services back to what they were (a later step of the commit failed), the replaced servers still running.
 */
export interface ServicesChange {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * The agent's DHCP, TFTP and HTTP services, started once the first good commit says where to serve. `ensure` is
 * all or nothing: a service that cannot take its port leaves the running ones as they were (ServiceBindError).
 */
export class BootServices {
  private http: { server: Server; port: number } | null = null;
  private dhcp: { server: DhcpServer; key: string; site: Site } | null = null;
  private pool: { pool: LeasePool; store: LeaseStore } | null = null;
  private tftp: { server: TftpServer; port: number } | null = null;

  constructor(
    private readonly config: BootServicesConfig,
    private readonly backend: AgentBootBackend,
    private readonly current: () => Generation | null,
    private readonly log: Logger,
    private readonly httpOptions: BootHttpOptions = {},
  ) {}

  /**
   * Brings the services to what `site` asks: a new HTTP or TFTP port starts a server there, the old one keeps
   * running until the change is committed; a new DHCP setup replaces the server, and the old one is started again
   * if the new one cannot bind or the change is rolled back.
   */
  async ensure(site: Site): Promise<ServicesChange> {
    const undo: Array<() => Promise<void>> = [];
    const retire: Array<() => Promise<void>> = [];
    try {
      if (this.http?.port !== site.agent.httpPort) {
        const old = this.http;
        const server = await this.startHttp(site.agent.httpPort);
        this.http = { server, port: site.agent.httpPort };
        undo.push(async () => {
          await closeHttp(server);
          this.http = old;
        });
        if (old) retire.push(() => closeHttp(old.server));
      }
      if (this.config.serve.tftp && this.tftp?.port !== site.agent.tftpPort) {
        const old = this.tftp;
        const server = await this.startTftp(site.agent.tftpPort);
        this.tftp = { server, port: site.agent.tftpPort };
        undo.push(async () => {
          await server.stop();
          this.tftp = old;
        });
        if (old) retire.push(() => old.server.stop());
      }
      undo.push(await this.ensureDhcp(site));
    } catch (err) {
      await this.undo(undo);
      throw err;
    }
    let settled = false;
    return {
      commit: async () => {
        if (settled) return;
        settled = true;
        for (const step of retire) await step().catch((err: unknown) => this.log.warn({ err }, 'a service replaced by the new commit did not stop cleanly'));
      },
      rollback: async () => {
        if (settled) return;
        settled = true;
        await this.undo(undo);
      },
    };
  }

  private async undo(steps: Array<() => Promise<void>>): Promise<void> {
    for (const step of [...steps].reverse()) await step().catch((e: unknown) => this.log.warn({ err: e }, 'a service started for the refused commit did not stop cleanly'));
  }

  private async startHttp(port: number): Promise<Server> {
    const bind = this.config.serve.bindAddress;
    const settings = this.config.serve.http;
    const server = createBootHttpServer(this.backend, this.log, {
      ...this.httpOptions,
      ipxe: ipxeOverHttp(this.config.serve.ipxeDir),
      ...(settings ? { limits: settings, maxEventStreams: settings.maxEventStreams, maxEventStreamsPerClient: settings.maxEventStreamsPerClient } : {}),
    });
    await listen(server, bind, port).catch((err: unknown) => {
      server.close();
      throw ServiceBindError.from('http', bind, port, err);
    });
    this.log.info({ address: bind, port }, 'http listening');
    return server;
  }

  private async startTftp(port: number): Promise<TftpServer> {
    const bind = this.config.serve.bindAddress;
    const root = join(this.config.stateDir, 'tftp');
    if (!this.tftp) {
      await mkdir(root, { recursive: true });
      for (const file of Object.values(IPXE_BINARIES)) {
        await copyFile(join(this.config.serve.ipxeDir, file), join(root, file)).catch(() =>
          this.log.warn({ file, dir: this.config.serve.ipxeDir }, 'iPXE binary not found; firmware without iPXE cannot chainload'),
        );
      }
    }
    const generated = generatedTftpFiles(this.backend);
    const server = createTftpServer({
      root,
      address: bind,
      port,
      log: this.log,
      resolve: generated.resolve,
      ...(this.config.serve.tftpLimits ? { limits: this.config.serve.tftpLimits } : {}),
      onTransfer: (e) => {
        generated.transferEnded(e);
        logTftpTransfer(this.log, e);
        this.httpOptions.metrics?.countTftp(e.ok, e.bytes);
      },
    });
    await server.start().catch(async (err: unknown) => {
      await server.stop().catch(() => undefined);
      throw ServiceBindError.from('tftp', bind, port, err);
    });
    return server;
  }

  /**
   * site.yaml dhcp.mode: full answers with reservations and the pool, proxy only adds boot information
   * for PXE clients next to another DHCP server, off serves no DHCP. A commit that changes the mode,
   * the agent's address, the subnet, the interface, whether there is a pool or (in proxy mode)
   * dhcp.proxyBootFileIn restarts the server; if the new one cannot bind, the old one is started again.
   * A new pool range or lease time applies to the running one. Returns what undoes it.
   */
  private async ensureDhcp(site: Site): Promise<() => Promise<void>> {
    const key = this.config.serve.dhcp && site.dhcp.mode !== 'off' ? dhcpKey(site) : null;
    const pool = site.dhcp.mode === 'full' ? site.dhcp.pool : undefined;
    const old = this.dhcp;
    if (old && old.key === key) {
      const before = old.site;
      const beforePool = before.dhcp.mode === 'full' ? before.dhcp.pool : undefined;
      if (pool) await this.leasePool(pool, site.dhcp.leaseSeconds);
      old.site = site;
      return async () => {
        if (beforePool) await this.leasePool(beforePool, before.dhcp.leaseSeconds);
        old.site = before;
      };
    }
    if (old) {
      await old.server.stop();
      this.dhcp = null;
      this.log.info({ mode: site.dhcp.mode }, 'dhcp stopped');
    }
    const restoreOld = async (): Promise<void> => {
      if (old) await this.startDhcp(old.site, old.key).catch((e: unknown) => this.log.error({ err: e }, 'the previous DHCP server could not be started again; no DHCP is served'));
    };
    if (key !== null) {
      try {
        await this.startDhcp(site, key);
      } catch (err) {
        await restoreOld();
        throw ServiceBindError.from('dhcp', site.agent.address, undefined, err);
      }
    }
    return async () => {
      const started = this.dhcp;
      if (started) {
        await started.server.stop();
        this.dhcp = null;
      }
      await restoreOld();
    };
  }

  private async startDhcp(site: Site, key: string): Promise<void> {
    const pool = site.dhcp.mode === 'full' ? site.dhcp.pool : undefined;
    const dhcpLog = this.log.child({ component: 'dhcp' });
    const common = {
      serverIp: site.agent.address,
      subnet: parseCidr(site.network.subnet),
      interface: this.config.serve.interface ?? site.network.interface,
      relays: site.dhcp.relays ?? [],
      log: dhcpLog,
      onExchange: (e: DhcpExchange) => {
        this.httpOptions.metrics?.countDhcp(e.action);
        if (e.action === 'offer' || e.action === 'ack') this.backend.seen(e.client.mac, 'dhcp');
        this.backend.dhcpRequest(e.client.mac, { ...(e.client.vendorClass !== undefined ? { vendorClass: e.client.vendorClass } : {}), userClass: e.client.userClasses.join(',') });
      },
    };
    const server = site.dhcp.mode === 'proxy'
      ? createDhcpServer({ ...common, mode: 'proxy', bootFileIn: site.dhcp.proxyBootFileIn ?? 'offer', policy: new ReservationPolicy(this.current, { log: dhcpLog }) })
      : createDhcpServer({ ...common, policy: new ReservationPolicy(this.current, { log: dhcpLog, ...(pool ? { pool: await this.leasePool(pool, site.dhcp.leaseSeconds) } : {}) }) });
    await server.start();
    this.dhcp = { server, key, site };
    this.log.info({ serverIp: site.agent.address, mode: site.dhcp.mode, interface: site.network.interface, pool: site.dhcp.pool }, 'dhcp listening');
  }

  /** The addresses forseti's DHCP pool has leased to this MAC; null when forseti's DHCP hands out no pool addresses. */
  poolAddressesOf(mac: string): string[] | null {
    if (!this.pool || this.dhcp?.site.dhcp.mode !== 'full') return null;
    return this.pool.pool.leases().filter((l) => l.mac === mac && l.state !== 'declined').map((l) => l.ip);
  }

  /** The pool's leases survive restarts in stateDir/dhcp-leases.json. */
  private async leasePool(range: LeasePoolRange, leaseSeconds: number): Promise<LeasePool> {
    if (this.pool) {
      this.pool.pool.configure(range, leaseSeconds);
      return this.pool.pool;
    }
    const store = new LeaseStore(join(this.config.stateDir, LEASE_FILE), this.log.child({ component: 'dhcp' }));
    const pool = new LeasePool({ range, leaseSeconds, leases: await store.load(), onChange: (leases) => store.save(leases) });
    this.pool = { pool, store };
    return pool;
  }

  /** Stops every service; the pool's leases reach the disk and the other services stop even when the DHCP server's stop fails (which still rejects). */
  async stop(): Promise<void> {
    try {
      await this.dhcp?.server.stop();
    } finally {
      this.dhcp = null;
      await this.pool?.store.flush();
      await this.tftp?.server.stop();
      this.tftp = null;
      const http = this.http;
      this.http = null;
      if (http) await closeHttp(http.server);
    }
  }
}

/** Closes the server and every connection it holds (event streams never go idle). */
function closeHttp(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export const LEASE_FILE = 'dhcp-leases.json';

/** Served over HTTP besides the ones DHCP hands out: snponly.efi, for UEFI machines whose NIC iPXE has no driver for. */
const EXTRA_IPXE_BINARIES = ['snponly.efi'] as const;

/**
 * The iPXE binaries the boot HTTP server offers at /<name>: UEFI HTTP boot firmware is sent to http://AGENT/ipxe.efi
 * by DHCP (dhcp-policy.ts), and gets the same binaries TFTP serves, from serve.ipxeDir.
 */
export function ipxeOverHttp(ipxeDir: string): { dir: string; names: string[] } {
  return { dir: ipxeDir, names: [...Object.values(IPXE_BINARIES), ...EXTRA_IPXE_BINARIES] };
}

/** Requests whose host script is on its way, past which the oldest is forgotten (the TFTP caps keep far fewer). */
const MAX_PENDING_SCRIPTS = 4096;

/**
 * The TFTP server's resolve hook: the generated names (boot.ipxe, autoexec.ipxe) come from the generation current
 * at the request, everything else from the TFTP root (the iPXE binaries). A host's own script counts as its `script`
 * step when `transferEnded` sees its transfer complete: a forged source address gets no ACKs back to the server.
 */
export function generatedTftpFiles(backend: Pick<AgentBootBackend, 'tftpFile' | 'scriptDelivered'>): {
  resolve: NonNullable<TftpServerOptions['resolve']>;
  transferEnded: (e: TftpTransferEvent) => void;
} {
  /** "address:port" of each request answered with a host's own script → that host. */
  const pending = new Map<string, string>();
  return {
    resolve: (name, client) => {
      const file = backend.tftpFile(name, client.address);
      if (file?.scriptOf) {
        if (pending.size >= MAX_PENDING_SCRIPTS) pending.delete(pending.keys().next().value ?? '');
        pending.set(`${client.address}:${client.port}`, file.scriptOf);
      }
      return Promise.resolve(file ? { data: Buffer.from(file.content) } : null);
    },
    transferEnded: (e) => {
      const host = pending.get(e.client);
      if (host === undefined) return;
      pending.delete(e.client);
      if (e.ok) backend.scriptDelivered(host);
    },
  };
}

/** The part of the logger logTftpTransfer uses. */
export interface TransferLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

/**
 * One line per TFTP transfer: info when it completed, warn with the reason when it failed. A client that ends a
 * transfer right after the OACK without taking a byte is a size probe (PXE ROMs ask tsize first, then download),
 * and a transfer cut by the agent's own shutdown is expected: both stay at info.
 */
export function logTftpTransfer(log: TransferLog, e: TftpTransferEvent): void {
  if (e.ok) log.info(e, 'tftp transfer');
  else if ((e.failure === 'client-abort' && e.bytes === 0) || e.failure === 'shutdown') log.info(e, `tftp transfer ended early: ${e.error ?? 'no reason given'}`);
  else log.warn(e, `tftp transfer failed: ${e.error ?? 'no reason given'}`);
}

function dhcpKey(site: Site): string {
  return JSON.stringify([
    site.dhcp.mode, site.agent.address, site.network.subnet, site.network.interface, site.dhcp.mode === 'full' && site.dhcp.pool !== undefined,
    site.dhcp.mode === 'proxy' ? site.dhcp.proxyBootFileIn ?? 'offer' : null, site.dhcp.relays ?? [],
  ]);
}
