import { copyFile, mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Site } from '../model/types.ts';
import type { Generation } from '../render/generation.ts';
import { parseCidr } from '../render/net.ts';
import { createBootHttpServer, listen } from '../serve/boot-http.ts';
import { createDhcpServer, type DhcpServer } from '../serve/dhcp/index.ts';
import { createTftpServer, type TftpServer } from '../serve/tftp/index.ts';
import type { AgentBootBackend } from './boot-backend.ts';
import type { AgentConfig } from './config.ts';
import { IPXE_BINARIES, ReservationPolicy } from './dhcp-policy.ts';

/** The agent's DHCP, TFTP and HTTP services, started once the first good commit says where to serve. */
export class BootServices {
  private http: Server | null = null;
  private dhcp: DhcpServer | null = null;
  private tftp: TftpServer | null = null;

  constructor(
    private readonly config: AgentConfig,
    private readonly backend: AgentBootBackend,
    private readonly current: () => Generation | null,
    private readonly log: Logger,
  ) {}

  async ensure(site: Site): Promise<void> {
    const bind = this.config.serve.bindAddress;
    if (!this.http) {
      this.http = createBootHttpServer(this.backend, this.log);
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
        onTransfer: (e) => this.log.info(e, 'tftp transfer'),
      });
      await this.tftp.start();
    }
    if (this.config.serve.dhcp && site.dhcp.mode === 'full' && !this.dhcp) {
      const { network, prefix } = parseCidr(site.network.subnet);
      this.dhcp = createDhcpServer({
        serverIp: site.agent.address,
        subnet: { network, prefix },
        policy: new ReservationPolicy(this.current),
        log: this.log,
        onExchange: (e) => {
          if (e.action === 'offer' || e.action === 'ack') this.backend.seen(e.client.mac, 'dhcp');
        },
      });
      await this.dhcp.start();
      this.log.info({ serverIp: site.agent.address }, 'dhcp listening');
    }
  }

  async stop(): Promise<void> {
    await this.dhcp?.stop();
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
