// A host's config from its role's Talos base (`boot.config.talosBase`): the base (decrypted by the agent, else its
// skeleton), the profile's filled config as a patch, then the host's own values (src/render/talos/base.ts).
import type { Host, Profile } from '../model/types.ts';
import { renderFromTalosBase, talosBaseSkeleton, type RenderedTalosRoleConfig } from './talos/base.ts';
import type { TalosHostValues } from './talos/host-config.ts';
import type { RenderContext } from './host.ts';

export interface TalosConfigInputs {
  host: Host;
  profile: Profile;
  ctx: RenderContext;
  /** `host.hostname`: the host's name, with the site's domain when it has one. */
  hostname: string;
  /** The site subnet's prefix length. */
  prefix: number;
  /** The agent's event sink, when the role converges on talosEvents. */
  eventSink: string | undefined;
}

/** Throws TalosConfigError (the base's file:line when the base is at fault). */
export function talosRoleConfig(inputs: TalosConfigInputs, baseFile: string, patchText: string): RenderedTalosRoleConfig {
  const { profile, ctx } = inputs;
  const committed = profile.boot.kind === 'image' ? profile.boot.config?.talosBase : undefined;
  const base = ctx.talosBases?.get(baseFile) ?? talosBaseSkeleton(baseFile, committed?.text ?? '');
  return renderFromTalosBase(base, patchText, talosHostValues(inputs));
}

/**
 * The host's own values: its name, the first named disk of `hardware.disks` as the install disk (the boot disk is
 * listed first), its boot NIC with its reserved address, the site's gateway and DNS servers, the event sink.
 */
export function talosHostValues({ host, ctx, hostname, prefix, eventSink }: TalosConfigInputs): TalosHostValues {
  const network = ctx.lab.site.network;
  const disk = host.hardware.disks.find((d) => d.name !== undefined)?.name;
  const mac = host.macs[0];
  return {
    host: host.name,
    hostname,
    ...(disk !== undefined && { installDisk: `/dev/${disk}` }),
    ...(mac !== undefined && {
      network: {
        mac,
        addresses: [`${host.ip}/${prefix}`],
        ...(network.gateway !== undefined && { gateway: network.gateway }),
        ...(network.dns.length > 0 && { nameservers: [...network.dns] }),
      },
    }),
    ...(eventSink !== undefined && { eventSink }),
  };
}
