import type { Host, ImageFile, Site } from '../model/types.ts';

/** Where the agent serves what it renders; every URL a booting machine sees is built here. */
export class AgentUrls {
  readonly base: string;
  /** Where Talos nodes publish their events (`talos.events.sink=`, EventSinkConfig): `address:port`. */
  readonly talosEventSink: string;

  /** `talosEventsPort`: the port the agent's event sink listens on (agent.yaml serve.talosEvents.port). */
  constructor(site: Site, options: { talosEventsPort?: number } = {}) {
    this.base = `http://${site.agent.address}:${site.agent.httpPort}`;
    this.talosEventSink = `${site.agent.address}:${options.talosEventsPort ?? DEFAULT_TALOS_EVENTS_PORT}`;
  }

  /** Installer progress reports (curtin, subiquity, cloud-init webhooks): the token is in the path, as they send no headers. */
  installerReports(token: string, target = false): string {
    return `${this.base}/v1/report/${token}${target ? '/target' : ''}`;
  }

  bootEntry(): string {
    return `${this.base}/boot.ipxe`;
  }

  /** Files are addressed by content: a new image version is a new URL, so caches never serve stale kernels. */
  imageFile(file: ImageFile): string {
    return `${this.base}/images/${file.sha256}/${imageFileName(file)}`;
  }

  config(host: Host, name: string, token: string): string {
    return `${this.base}/v1/hosts/${host.name}/config/${encodeURIComponent(name)}?token=${token}`;
  }

  /** cloud-init's NoCloud seed base (`ds=nocloud-net;s=`): it must end in `/`; cloud-init appends user-data, meta-data. */
  nocloud(host: Host, token: string): string {
    return `${this.base}/v1/hosts/${host.name}/nocloud/${token}/`;
  }

  phoneHome(): string {
    return `${this.base}/v1/phone-home`;
  }
}

/** agent.yaml serve.talosEvents.port when it names none. */
export const DEFAULT_TALOS_EVENTS_PORT = 4002;

/** The name a file is served under: the last segment of its URL, as iPXE's `initrd=` wants it. */
export function imageFileName(file: ImageFile): string {
  const path = new URL(file.url).pathname;
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last === '' ? 'file' : decodeURIComponent(last);
}
