import { resolve } from 'node:path';
import { formatProblem, loadLab } from '../../model/load.ts';
import { RenderError, renderHost } from '../../render/host.ts';
import { AgentUrls } from '../../render/urls.ts';
import { TalosBaseResolver } from '../../render/talos/index.ts';
import { Secrets } from '../../secrets/secrets.ts';
import { SopsError } from '../../secrets/sops.ts';
import { renderDnsmasqConfig } from '../../render/dnsmasq.ts';
import { flag, parseArgs, UsageError } from '../args.ts';

/**
 * Prints the iPXE script a host would get now, as if it were being (re)installed. Tokens are placeholders:
 * the real ones derive from the agent's key, which never leaves the agent's box.
 */
export async function renderCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['dnsmasq']);
  const name = flag(args, 'host');
  const dnsmasq = args.flags.has('dnsmasq');
  if (!name && !dnsmasq) throw new UsageError('render needs --host NAME or --dnsmasq');
  const dir = resolve(args.positional[0] ?? '.');
  const { lab, problems } = await loadLab(dir);
  if (!lab) {
    for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  if (dnsmasq || !name) {
    // For `dhcp.mode: off`: the dnsmasq settings that give every host its reservation and boot chain.
    process.stdout.write(renderDnsmasqConfig(lab));
    return 0;
  }
  const host = lab.hosts.get(name);
  if (!host) {
    process.stderr.write(`no host named ${name} (hosts: ${[...lab.hosts.keys()].join(', ')})\n`);
    return 1;
  }
  try {
    // With the agent's age key at hand (FORSETI_AGE_KEY, FORSETI_AGE_KEY_FILE) the Talos bases are decrypted, and the
    // secrets of the result replaced by placeholders; without it the bases show as their skeleton.
    const identities = await (await Secrets.load(undefined)).ageIdentities().catch((err: unknown) => {
      if (err instanceof SopsError) throw new UsageError(err.message);
      throw err;
    });
    const talosBases = await new TalosBaseResolver().resolve(lab, identities.length > 0 ? identities : undefined);
    const rendered = renderHost(host, { lab, urls: new AgentUrls(lab.site), revision: 'working-tree', token: () => 'TOKEN', talosBases, redactConfigs: true });
    if (flag(args, 'what') === 'config') process.stdout.write(rendered.config?.content ?? '');
    else process.stdout.write(rendered.script ?? `#!ipxe\necho ${name} has role ${host.role}: nothing to boot\nexit\n`);
    return 0;
  } catch (err) {
    if (err instanceof RenderError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
