// radvd here plays the lab network's router (HEIMDAL/OPNsense in the real lab), not forseti's agent.
// Without any router advertisement, iPXE waits ~16 s on IPv6 autoconfiguration before it boots;
// an advertisement with router lifetime 0 ends that wait and gives the guests no default route.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BRIDGE } from './netns.ts';

export const RADVD = '/usr/sbin/radvd';

/** FORSETI_VLAB_RADVD=0 turns the router off, to see what a lab network without one costs. */
export function radvdWanted(): boolean {
  return process.env.FORSETI_VLAB_RADVD !== '0' && existsSync(RADVD);
}

export async function writeRadvdConfig(workDir: string): Promise<{ config: string; pidFile: string }> {
  const config = join(workDir, 'radvd.conf');
  await writeFile(config, `interface ${BRIDGE} {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 10;
  AdvDefaultLifetime 0;
};
`, { mode: 0o644 });
  return { config, pidFile: join(workDir, 'radvd.pid') };
}

export function radvdArgs(paths: { config: string; pidFile: string }): string[] {
  return ['--nodaemon', '--config', paths.config, '--pidfile', paths.pidFile, '--logmethod', 'stderr'];
}
