import { copyFile, mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Site } from '../model/types.ts';
import type { Generation } from '../render/generation.ts';
import { parseCidr } from '../render/net.ts';
import { createBootHttpServer, listen, type BootHttpOptions } from '../serve/boot-http.ts';
import { createDhcpServer, LeasePool, LeaseStore, type DhcpExchange, type DhcpServer, type LeasePoolRange } from '../serve/dhcp/index.ts';
import { createTftpServer, type TftpServer, type TftpServerOptions, type TftpTransferEvent } from '../serve/tftp/index.ts';
import type { AgentBootBackend } from './boot-backend.ts';
import type { AgentConfig } from './config.ts';
import { IPXE_BINARIES, ReservationPolicy } from './dhcp-policy.ts';

/** The agent's DHCP, TFTP and HTTP services, started once the first good commit says where to serve. */
export class BootServices {
  private http: Server | null = null;
  private dhcp: { server: DhcpServer; key: string } | null = null;
  private pool: { pool: LeasePool; store: LeaseStore } | null = null;
  private tftp: TftpServer | null = null;

  constructor(
    private readonly config: AgentConfig,
    private readonly backend: AgentBootBackend,
    private readonly current: () => Generation | null,
    private readonly log: Logger,
    private readonly httpOptions: BootHttpOptions = {},
  ) {}

  async ensure(site: Site): Promise<void> {
    const bind = this.config.serve.bindAddress;
    if (!this.http) {
      this.http = createBootHttpServer(this.backend, this.log, { ...this.httpOptions, ipxe: ipxeOverHttp(this.config.serve.ipxeDir) });
      await listen(this.http, bind, site.agent.httpPort);
      this.log.info({ address: bind, port: site.agent.httpPort }, 'http listening');
    }
    if (this.config.serve.tftp && !this.tftp) {
      const root = join(this.config.stateDir, 'tftp');
      await mkdir(root, { recursive: true });
      for (const file of Object.values(IPXE_BINARIES)) {
        await copyFile(join(this.config.serve.ipxeDir, file), join(root, file)).catch(() =>
          this.log.warn({ file, dir: this.config.serve.ipxeDir }, 'iPXE binary not found; firmware without iPXE cannot chainload'),
        );
      }
      this.tftp = createTftpServer({
        root,
        address: bind,
        port: site.agent.tftpPort,
        log: this.log,
        resolve: generatedTftpFiles(this.backend),
        ...(this.config.serve.tftpLimits ? { limits: this.config.serve.tftpLimits } : {}),
        onTransfer: (e) => {
          logTftpTransfer(this.log, e);
          this.httpOptions.metrics?.countTftp(e.ok, e.bytes);
        },
      });
      await this.tftp.start();
    }
    await this.ensureDhcp(site);
  }

  /**
   * site.yaml dhcp.mode: full answers with reservations and the pool, proxy only adds boot information
   * for PXE clients next to another DHCP server, off serves no DHCP. A commit that changes the mode,
   * the agent's address, the subnet, the interface, whether there is a pool or (in proxy mode)
   * dhcp.proxyBootFileIn restarts the server;
   * a new pool range or lease time applies to the running one.
   */
  private async ensureDhcp(site: Site): Promise<void> {
    const key = this.config.serve.dhcp && site.dhcp.mode !== 'off' ? dhcpKey(site) : null;
    const pool = site.dhcp.mode === 'full' ? site.dhcp.pool : undefined;
    if (this.dhcp && this.dhcp.key === key) {
      if (pool) await this.leasePool(pool, site.dhcp.leaseSeconds);
      return;
    }
    if (this.dhcp) {
      await this.dhcp.server.stop();
      this.dhcp = null;
      this.log.info({ mode: site.dhcp.mode }, 'dhcp stopped');
    }
    if (key === null) return;
    const dhcpLog = this.log.child({ component: 'dhcp' });
    const common = {
      serverIp: site.agent.address,
      subnet: parseCidr(site.network.subnet),
      interface: site.network.interface,
      log: dhcpLog,
      onExchange: (e: DhcpExchange) => {
        this.httpOptions.metrics?.countDhcp(e.action);
        if (e.action === 'offer' || e.action === 'ack') this.backend.seen(e.client.mac, 'dhcp');
      },
    };
    const server = site.dhcp.mode === 'proxy'
      ? createDhcpServer({ ...common, mode: 'proxy', bootFileIn: site.dhcp.proxyBootFileIn ?? 'offer', policy: new ReservationPolicy(this.current, { log: dhcpLog }) })
      : createDhcpServer({ ...common, policy: new ReservationPolicy(this.current, { log: dhcpLog, ...(pool ? { pool: await this.leasePool(pool, site.dhcp.leaseSeconds) } : {}) }) });
    await server.start();
    this.dhcp = { server, key };
    this.log.info({ serverIp: site.agent.address, mode: site.dhcp.mode, interface: site.network.interface, pool: site.dhcp.pool }, 'dhcp listening');
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
      await this.tftp?.stop();
      const http = this.http;
      if (http) {
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      }
    }
  }
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

/**
 * The TFTP server's resolve hook: the generated names (boot.ipxe, autoexec.ipxe) come from the generation current
 * at the request, everything else from the TFTP root (the iPXE binaries).
 */
export function generatedTftpFiles(backend: Pick<AgentBootBackend, 'tftpFile'>): NonNullable<TftpServerOptions['resolve']> {
  return (name, client) => {
    const file = backend.tftpFile(name, client.address);
    return Promise.resolve(file ? { data: Buffer.from(file.content) } : null);
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
    site.dhcp.mode === 'proxy' ? site.dhcp.proxyBootFileIn ?? 'offer' : null,
  ]);
}
