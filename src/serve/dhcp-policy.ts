import { directedBroadcast, type BootAnswer, type ClientInfo, type DhcpAnswer, type DhcpLogger, type DhcpPolicy, type LeasePool, type ProxyDhcpPolicy } from './dhcp/index.ts';
import type { Site } from '../model/types.ts';
import type { Generation } from '../render/generation.ts';
import { parseCidr } from '../render/net.ts';

/** iPXE binaries served by TFTP to firmware that is not iPXE yet, by what the firmware says it is. */
export const IPXE_BINARIES = { bios: 'undionly.kpxe', uefi: 'ipxe.efi' } as const;

/** Where UEFI HTTP boot firmware (arch 16, vendor class HTTPClient) fetches iPXE from the agent's HTTP server. */
export const IPXE_HTTP_PATH = `/${IPXE_BINARIES.uefi}`;

export function agentHttpBase(agent: Site['agent']): string {
  return `http://${agent.address}:${agent.httpPort}`;
}

/**
 * What a booting client is told to load, by where it is in the boot chain. Firmware gets iPXE (TFTP for
 * PXE ROMs, HTTP for UEFI HTTP boot), iPXE gets the HTTP entry script, an OS's DHCP client nothing.
 * iPXE is recognised by its user class and the firmware by its vendor class, so a machine cannot loop
 * between firmware PXE and iPXE.
 */
export function bootFor(client: ClientInfo, agent: Site['agent']): BootAnswer | undefined {
  if (client.bootStage === 'ipxe') return { bootFile: `${agentHttpBase(agent)}/boot.ipxe` };
  if (client.bootStage !== 'firmware') return undefined;
  switch (client.firmware) {
    case 'bios': return { bootFile: IPXE_BINARIES.bios, nextServer: agent.address };
    case 'uefi-x64': return { bootFile: IPXE_BINARIES.uefi, nextServer: agent.address };
    case 'uefi-http': return { bootFile: `${agentHttpBase(agent)}${IPXE_HTTP_PATH}`, vendorClass: 'HTTPClient' };
    default: return undefined;
  }
}

export interface ReservationPolicyOptions {
  /** Dynamic addresses for machines not declared in hosts/ (site.yaml dhcp.pool); none without it. */
  pool?: LeasePool;
  log?: DhcpLogger;
}

/**
 * DHCP answers from the lab: declared hosts get their reserved address and their boot chain; unknown
 * machines get a pool address when the site has a pool, else silence, and a boot file only while
 * site.yaml's discovery is enabled (their script is then the inventory image's). In proxy mode only
 * declared hosts, and unknown machines while discovery is enabled, get boot information.
 */
export class ReservationPolicy implements DhcpPolicy, ProxyDhcpPolicy {
  private exhausted = false;
  /** The addresses the pool never hands out, worked out once per generation, not per packet. */
  private taken: { generation: Generation; addresses: ReadonlySet<string> } | null = null;

  constructor(private readonly current: () => Generation | null, private readonly options: ReservationPolicyOptions = {}) {}

  answer(client: ClientInfo): DhcpAnswer | null {
    const gen = this.current();
    if (!gen) return null;
    const site = gen.lab.site;
    const name = gen.byMac.get(client.mac);
    const host = name ? gen.lab.hosts.get(name) : undefined;
    if (host) {
      const boot = bootFor(client, site.agent);
      return {
        ...this.base(site, host.ip),
        hostname: host.name,
        ...boot,
        ...(client.bootStage === 'ipxe' ? { ipxeNoProxyDhcp: true } : {}),
      };
    }
    const ip = this.fromPool(client, gen);
    if (ip === null) return null;
    if (!site.discovery.enabled) return this.base(site, ip);
    return { ...this.base(site, ip), ...bootFor(client, site.agent), ...(client.bootStage === 'ipxe' ? { ipxeNoProxyDhcp: true } : {}) };
  }

  boot(client: ClientInfo): BootAnswer | null {
    const gen = this.current();
    if (!gen || (!gen.byMac.has(client.mac) && !gen.lab.site.discovery.enabled)) return null;
    return bootFor(client, gen.lab.site.agent) ?? null;
  }

  release(client: ClientInfo): void {
    if (this.options.pool?.release(client, client.ciaddr)) this.options.log?.info({ mac: client.mac, ip: client.ciaddr }, 'DHCP pool lease released');
  }

  decline(client: ClientInfo): void {
    const ip = client.requestedIp;
    if (ip !== undefined && this.options.pool?.decline(client, ip)) {
      this.options.log?.warn({ mac: client.mac, ip }, 'DHCP pool address declined: another machine uses it; kept out of the pool for a while');
    }
  }

  private base(site: Site, ip: string): DhcpAnswer {
    return {
      ip,
      leaseSeconds: site.dhcp.leaseSeconds,
      prefix: parseCidr(site.network.subnet).prefix,
      ...(site.network.gateway ? { router: site.network.gateway } : {}),
      ...(site.network.dns.length > 0 ? { dns: site.network.dns } : {}),
      ...(site.network.domain ? { domain: site.network.domain } : {}),
    };
  }

  private fromPool(client: ClientInfo, gen: Generation): string | null {
    const pool = this.options.pool;
    if (!pool) return null;
    if (this.taken?.generation !== gen) this.taken = { generation: gen, addresses: takenAddresses(gen) };
    const taken = this.taken.addresses;
    const excluded = (ip: string): boolean => taken.has(ip);
    let ip: string | null;
    switch (client.messageType) {
      case 'discover':
        ip = pool.offer(client, client.requestedIp, excluded);
        break;
      case 'request': {
        const wanted = client.requestedIp ?? client.ciaddr;
        ip = pool.request(client, wanted, excluded)?.ip ?? null;
        break;
      }
      case 'inform':
        // RFC 2131 4.3.5: configuration only, for whatever address the client has; no lease is touched.
        return client.ciaddr === '0.0.0.0' ? null : client.ciaddr;
      default:
        return null;
    }
    if (ip === null) {
      if (!this.exhausted) this.options.log?.warn({ mac: client.mac, size: pool.size }, 'DHCP pool exhausted: unknown machines get no address until a lease expires');
      else this.options.log?.debug({ mac: client.mac }, 'DHCP pool still exhausted');
      this.exhausted = true;
    } else {
      this.exhausted = false;
    }
    return ip;
  }
}

/** Addresses the pool never hands out: every reservation in Git, the agent, the gateway, network and broadcast. */
function takenAddresses(gen: Generation): Set<string> {
  const site = gen.lab.site;
  const taken = new Set<string>([site.agent.address]);
  if (site.network.gateway) taken.add(site.network.gateway);
  for (const host of gen.lab.hosts.values()) taken.add(host.ip);
  const { network, prefix } = parseCidr(site.network.subnet);
  if (prefix < 31) taken.add(network).add(directedBroadcast(network, prefix));
  return taken;
}
