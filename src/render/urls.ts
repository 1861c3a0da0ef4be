import type { Host, ImageFile, Site } from '../model/types.ts';

/** Where the agent serves what it renders; every URL a booting machine sees is built here. */
export class AgentUrls {
  readonly base: string;

  constructor(site: Site) {
    this.base = `http://${site.agent.address}:${site.agent.httpPort}`;
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

  phoneHome(): string {
    return `${this.base}/v1/phone-home`;
  }
}

/** The name a file is served under: the last segment of its URL, as iPXE's `initrd=` wants it. */
export function imageFileName(file: ImageFile): string {
  const path = new URL(file.url).pathname;
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last === '' ? 'file' : decodeURIComponent(last);
}
