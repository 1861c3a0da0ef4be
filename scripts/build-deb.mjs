// `npm run deb`: a Debian package of the single executable (dist/forseti, made by `npm run build` first), the
// systemd unit and a default configuration, built with dpkg-deb. Writes dist/forseti_<version>_amd64.deb.
//   /usr/bin/forseti                        the single executable
//   /lib/systemd/system/forseti.service     packaging/forseti.service
//   /etc/forseti/agent.yaml, secrets.yaml   conffiles: kept on upgrade and remove, gone on purge
//   /usr/share/doc/forseti/                 README, getting started, reference, copyright
// Maintainer scripts (packaging/debian/) create the forseti user and /var/lib/forseti and enable the unit.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const DIST = resolve(ROOT, args.includes('--dist') ? args[args.indexOf('--dist') + 1] : 'dist');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const version = pkg.version;
const binary = join(DIST, 'forseti');
if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm run build first`);

const stage = join(DIST, 'deb', `forseti_${version}_amd64`);
rmSync(join(DIST, 'deb'), { recursive: true, force: true });

function put(from, to, mode) {
  const target = join(stage, to);
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  copyFileSync(join(ROOT, from), target);
  chmodSync(target, mode);
}

put(relativeToRoot(binary), 'usr/bin/forseti', 0o755);
put('packaging/forseti.service', 'lib/systemd/system/forseti.service', 0o644);
put('packaging/agent.yaml', 'etc/forseti/agent.yaml', 0o644);
put('packaging/secrets.yaml', 'etc/forseti/secrets.yaml', 0o600);
put('README.md', 'usr/share/doc/forseti/README.md', 0o644);
for (const doc of ['getting-started.md', 'reference.md']) if (existsSync(join(ROOT, 'docs', doc))) put(`docs/${doc}`, `usr/share/doc/forseti/${doc}`, 0o644);
writeFileSync(join(stage, 'usr/share/doc/forseti/copyright'), `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: forseti\n\nFiles: *\nLicense: ${pkg.license}\n\nFiles: usr/bin/forseti\nComment: a Node.js ${process.version} single executable; Node.js is MIT-licensed (https://github.com/nodejs/node/blob/main/LICENSE)\n`);
for (const script of ['postinst', 'prerm', 'postrm']) put(`packaging/debian/${script}`, `DEBIAN/${script}`, 0o755);
writeFileSync(join(stage, 'DEBIAN/conffiles'), '/etc/forseti/agent.yaml\n/etc/forseti/secrets.yaml\n');

const installedKiB = Math.ceil(duKiB(stage));
writeFileSync(join(stage, 'DEBIAN/control'), [
  'Package: forseti',
  `Version: ${version}`,
  'Architecture: amd64',
  'Section: admin',
  'Priority: optional',
  'Maintainer: forseti developers <forseti@localhost>',
  // The executable is Node's: it links libc, libstdc++ and libgcc_s dynamically.
  'Depends: adduser, libc6 (>= 2.28), libstdc++6, libgcc-s1',
  'Recommends: ipxe, ipmitool',
  `Installed-Size: ${installedKiB}`,
  `Description: ${pkg.description.split(':')[0]}`,
  ' forseti keeps bare-metal machines in the roles a Git repository declares: it serves DHCP, TFTP and HTTP',
  ' boot, drives BMCs (Redfish, IPMI, HP Onboard Administrator, Wake-on-LAN) and commits each host\'s status',
  ' back to the repository. This package holds the agent and the forseti command as one executable.',
  '',
].join('\n'));

const out = join(DIST, `forseti_${version}_amd64.deb`);
// gzip: xz takes most of a minute on the ~90 MB executable and saves little on machine code.
const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, out], { encoding: 'utf8' });
if (r.status !== 0) throw new Error(`dpkg-deb failed: ${r.stderr}${r.stdout}`);
rmSync(join(DIST, 'deb'), { recursive: true, force: true });
process.stdout.write(`deb: ${out} (${(statSync(out).size / 1048576).toFixed(1)} MiB)\n`);

function relativeToRoot(path) {
  return path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path;
}

function duKiB(dir) {
  const du = spawnSync('du', ['-sk', '--exclude=DEBIAN', dir], { encoding: 'utf8' });
  return Number(du.stdout.split('\t')[0]);
}
