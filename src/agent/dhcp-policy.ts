import type { ClientInfo, DhcpAnswer, DhcpPolicy } from '../serve/dhcp/index.ts';
import type { Generation } from '../render/generation.ts';
import { parseCidr } from '../render/net.ts';

/** iPXE binaries served by TFTP to firmware that is not iPXE yet, by what the firmware says it is. */
export const IPXE_BINARIES = { bios: 'undionly.kpxe', uefi: 'ipxe.efi' } as const;

/**
 * DHCP answers from the lab's reservations. The boot file depends on who asks: firmware gets iPXE over TFTP,
 * iPXE gets the HTTP entry script, and the installed OS's own client gets an address only. Because iPXE is
 * recognised by its user class and the firmware by its vendor class, a machine cannot loop between them.
 */
export class ReservationPolicy implements DhcpPolicy {
  constructor(private readonly current: () => Generation | null) {}

  answer(client: ClientInfo): DhcpAnswer | null {
    const gen = this.current();
    const name = gen?.byMac.get(client.mac);
    const host = name ? gen?.lab.hosts.get(name) : undefined;
    if (!gen || !host) return null;
    const site = gen.lab.site;
    const base: DhcpAnswer = {
      ip: host.ip,
      leaseSeconds: site.dhcp.leaseSeconds,
      prefix: parseCidr(site.network.subnet).prefix,
      hostname: host.name,
      ...(site.network.gateway ? { router: site.network.gateway } : {}),
      ...(site.network.dns.length > 0 ? { dns: site.network.dns } : {}),
      ...(site.network.domain ? { domain: site.network.domain } : {}),
    };
    if (client.bootStage === 'ipxe') return { ...base, bootFile: `http://${site.agent.address}:${site.agent.httpPort}/boot.ipxe`, ipxeNoProxyDhcp: true };
    if (client.bootStage === 'firmware') {
      const binary = client.firmware === 'bios' ? IPXE_BINARIES.bios : client.firmware === 'uefi-x64' ? IPXE_BINARIES.uefi : undefined;
      return binary ? { ...base, bootFile: binary, nextServer: site.agent.address } : base;
    }
    return base;
  }
}
