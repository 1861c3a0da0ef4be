// Generates a lab of N hosts from the template's profiles, for the scale benchmarks. Its images are small local
// files (file:// URLs with their real sha256) so that an agent run on the lab never reaches beyond the machine.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const TEMPLATE = fileURLToPath(new URL('../../lab-repo-template/', import.meta.url));
/** Where the generated images' files live, inside the lab directory (ignored by the loader). */
export const MIRROR_DIR = 'mirror';

export function hostYaml(i: number, role: string): string {
  const a = Math.floor(i / 250) + 1;
  const b = (i % 250) + 3;
  const mac = [0x02, 0, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((x) => x.toString(16).padStart(2, '0')).join(':');
  return `apiVersion: forseti/v1\nkind: Host\nname: h${i}\nmacs: ['${mac}']\nip: 10.0.${a}.${b}\nbmc: {type: manual}\nhardware: {memoryGiB: 64, disks: [{sizeGB: 100}]}\nrole: ${role}\nlabels: {rack: r${i % 20}}\n`;
}

export function generateLab(dir: string, hosts: number, role: (i: number) => string = (i) => (i % 2 ? 'slurm-compute' : 'talos-worker'), httpPort = 8080): void {
  rmSync(dir, { recursive: true, force: true });
  cpSync(TEMPLATE, dir, { recursive: true });
  rmSync(join(dir, 'hosts'), { recursive: true });
  mkdirSync(join(dir, 'hosts'));
  writeLocalImages(dir);
  dropCredentialProfiles(dir);
  writeFileSync(join(dir, 'site.yaml'), 'apiVersion: forseti/v1\nkind: Site\nname: big\nnetwork: {interface: eth0, subnet: 10.0.0.0/16, gateway: 10.0.0.1, dns: [10.0.0.1]}\nagent: {address: 10.0.0.2, httpPort: ' + httpPort + '}\n');
  for (let i = 0; i < hosts; i++) writeFileSync(join(dir, 'hosts', `h${i}.yaml`), hostYaml(i, role(i)));
}

/** Removes the template's roles that name a credential the agent holds (talos-omni's join token): the benchmarks' agents hold none. */
function dropCredentialProfiles(dir: string): void {
  for (const entry of readdirSync(join(dir, 'profiles'))) {
    if (/^\s*credential:/m.test(readFileSync(join(dir, 'profiles', entry), 'utf8'))) rmSync(join(dir, 'profiles', entry));
  }
}

/** Replaces each template image by one whose kernel and initrd are a few bytes under `<dir>/mirror/`. */
function writeLocalImages(dir: string): void {
  const mirror = join(dir, MIRROR_DIR);
  mkdirSync(mirror, { recursive: true });
  const file = (name: string): string => {
    const path = join(mirror, name);
    const content = `forseti benchmark file ${name}\n`;
    writeFileSync(path, content);
    return `{url: '${pathToFileURL(path).href}', sha256: ${createHash('sha256').update(content).digest('hex')}}`;
  };
  for (const entry of readdirSync(join(dir, 'images'))) {
    const name = entry.replace(/\.ya?ml$/, '');
    writeFileSync(join(dir, 'images', entry), `apiVersion: forseti/v1\nkind: Image\nname: ${name}\nkernel: ${file(`${name}-kernel`)}\ninitrd: ${file(`${name}-initrd.img`)}\n`);
  }
}
