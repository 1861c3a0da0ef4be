// Talos machine configs per host (src/render/talos): the role's base as `talosctl gen config --with-secrets`
// writes it (test/fixtures/talos/, fake keys) merged with a host's values by Talos' patch rules, checked, and
// rendered with every secret replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  checkTalosConfig, mergeConfigDocuments, parseConfigDocuments, redactTalosConfig, renderTalosHostConfig, talosConfigSecrets, TALOS_REDACTED,
  type ConfigDocument, type JsonMap, type TalosHostValues,
} from '../src/render/talos/index.ts';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/talos/${name}`, import.meta.url), 'utf8');
const CONTROLPLANE = fixture('controlplane.yaml');
const WORKER = fixture('worker.yaml');
const FAKE = JSON.parse(fixture('fake-secrets.json')) as { secrets: Record<string, string>; certificates: Record<string, string> };

const oden: TalosHostValues = {
  host: 'oden',
  hostname: 'oden',
  installDisk: '/dev/sdb',
  network: { mac: 'e4:1f:13:6c:2a:10', addresses: ['10.77.0.11/24'], gateway: '10.77.0.1', nameservers: ['10.77.0.1'] },
  eventSink: '10.77.0.5:4002',
};
const blade: TalosHostValues = {
  host: 'bld-003',
  hostname: 'bld-003',
  installDisk: '/dev/sda',
  network: { mac: '9c:8e:99:4a:10:03', addresses: ['10.77.0.103/24'], gateway: '10.77.0.1', nameservers: ['10.77.0.1', '9.9.9.9'] },
  eventSink: '10.77.0.5:4002',
};

/** The documents of a rendering, re-read from its text (what a node gets). */
function served(text: string): { main: JsonMap; others: ConfigDocument[] } {
  const docs = parseConfigDocuments(text);
  const main = docs.find((d) => d.key === 'v1alpha1');
  assert.ok(main, 'a v1alpha1 document');
  return { main: main.body, others: docs.filter((d) => d.key !== 'v1alpha1') };
}

const at = (m: JsonMap, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), m);

test('the generated bases are valid Talos configs as they are', () => {
  assert.deepEqual(checkTalosConfig(CONTROLPLANE), []);
  assert.deepEqual(checkTalosConfig(WORKER), []);
});

test('a control plane host: its hostname, disk, interface, nameserver and event sink merged in; the cluster\'s secrets kept', () => {
  const { text } = renderTalosHostConfig(CONTROLPLANE, oden);
  assert.deepEqual(checkTalosConfig(text, oden), []);
  const { main, others } = served(text);
  assert.equal(at(main, 'machine.network.hostname'), 'oden');
  assert.deepEqual(at(main, 'machine.install'), { disk: '/dev/sdb', image: 'ghcr.io/siderolabs/installer:v1.10.1', wipe: false });
  assert.deepEqual(at(main, 'machine.network.interfaces'), [
    { deviceSelector: { hardwareAddr: 'e4:1f:13:6c:2a:10' }, addresses: ['10.77.0.11/24'], routes: [{ network: '0.0.0.0/0', gateway: '10.77.0.1' }] },
  ]);
  assert.deepEqual(at(main, 'machine.network.nameservers'), ['10.77.0.1']);
  assert.deepEqual(others, [{ key: 'v1alpha1/EventSinkConfig', body: { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '10.77.0.5:4002' } }]);
  assert.equal(at(main, 'machine.token'), FAKE.secrets['machineToken']);
  assert.equal(at(main, 'cluster.secretboxEncryptionSecret'), FAKE.secrets['secretbox']);
  assert.deepEqual(at(main, 'cluster.network.podSubnets'), ['10.244.0.0/16']);
  // Everything else of the base is there unchanged.
  const base = parse(CONTROLPLANE) as JsonMap;
  assert.deepEqual(at(main, 'cluster'), at(base, 'cluster'));
  assert.deepEqual(at(main, 'machine.features'), at(base, 'machine.features'));
  assert.ok(text.startsWith('version: v1alpha1\n'), 'the v1alpha1 document first');
});

test('a worker host: the same, with no CA key anywhere', () => {
  const { text } = renderTalosHostConfig(WORKER, blade);
  assert.deepEqual(checkTalosConfig(text, blade), []);
  const { main } = served(text);
  assert.equal(at(main, 'machine.type'), 'worker');
  assert.deepEqual(at(main, 'machine.network.nameservers'), ['10.77.0.1', '9.9.9.9']);
  for (const key of ['machineCaKey', 'clusterCaKey', 'etcdKey', 'saKey', 'aggKey']) assert.ok(!text.includes(FAKE.secrets[key] ?? '?'), key);
});

test('Talos 1.12+: a base with a HostnameConfig document gets the hostname there (auto: off), not in v1alpha1', () => {
  const base = `${CONTROLPLANE.replace('        stableHostname: true # Enable stable default hostname.\n', '')}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n`;
  const { text } = renderTalosHostConfig(base, oden);
  assert.deepEqual(checkTalosConfig(text, oden), []);
  const { main, others } = served(text);
  assert.equal(at(main, 'machine.network.hostname'), undefined);
  assert.deepEqual(others.find((d) => d.key === 'v1alpha1/HostnameConfig')?.body, { apiVersion: 'v1alpha1', kind: 'HostnameConfig', auto: 'off', hostname: 'oden' });
});

test('what the base already holds is merged by Talos\' rules, not repeated', () => {
  const base = `${CONTROLPLANE.replace(
    '    network: {}\n',
    '    network:\n        nameservers:\n            - 10.77.0.1\n        interfaces:\n            - deviceSelector:\n                  hardwareAddr: e4:1f:13:6c:2a:10\n              mtu: 9000\n',
  )}---\napiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 192.0.2.1:9999\n---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: remote-log\nurl: tcp://10.77.0.5:5044\n`;
  const { text } = renderTalosHostConfig(base, oden);
  assert.deepEqual(checkTalosConfig(text, oden), []);
  const { main, others } = served(text);
  assert.deepEqual(at(main, 'machine.network.nameservers'), ['10.77.0.1'], 'not twice');
  assert.deepEqual(at(main, 'machine.network.interfaces'), [
    { deviceSelector: { hardwareAddr: 'e4:1f:13:6c:2a:10' }, mtu: 9000, addresses: ['10.77.0.11/24'], routes: [{ network: '0.0.0.0/0', gateway: '10.77.0.1' }] },
  ], 'merged into the entry with the same deviceSelector');
  assert.deepEqual(others.map((d) => d.key), ['v1alpha1/EventSinkConfig', 'v1alpha1/KmsgLogConfig/remote-log']);
  assert.equal(others[0]?.body['endpoint'], '10.77.0.5:4002', 'the agent\'s sink replaces the one in the base: a node has one sink');
});

const doc = (yamlText: string): ConfigDocument[] => parseConfigDocuments(yamlText);

/** An extension's config document with one file. */
const nut = (content: string): string =>
  `apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: nut\nconfigFiles:\n  - mountPath: /usr/local/etc/nut/upsmon.conf\n    content: ${content}\n`;

const audit = (level: string): string => `  apiServer:\n    auditPolicy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: ${level}}]}`;

test('strategic merge: the rules of talos.dev configuration/patching', () => {
  const base = doc(`version: v1alpha1
machine:
  certSANs: [a]
  network:
    interfaces:
      - interface: eth0
        addresses: [10.0.0.2/24]
        vlans:
          - vlanId: 10
            mtu: 1500
      - interface: eth1
        dhcp: true
cluster:
  network:
    podSubnets: [10.244.0.0/16]
    serviceSubnets: [10.96.0.0/12]
${audit('Metadata')}
---
${nut('old')}---
apiVersion: v1alpha1
kind: KmsgLogConfig
name: old-log
url: udp://10.0.0.9:514
`);
  const patch = doc(`version: v1alpha1
machine:
  certSANs: [b]
  network:
    interfaces:
      - interface: eth0
        addresses: [10.0.0.3/24]
        vlans:
          - vlanId: 10
            mtu: 9000
          - vlanId: 20
      - interface: eth1
        $patch: delete
cluster:
  network:
    podSubnets: [10.32.0.0/12]
${audit('None')}
---
${nut('new')}---
apiVersion: v1alpha1
kind: KmsgLogConfig
name: old-log
$patch: delete
`);
  const merged = mergeConfigDocuments(base, patch);
  const main = merged.find((d) => d.key === 'v1alpha1')?.body ?? {};
  assert.deepEqual(at(main, 'machine.certSANs'), ['a', 'b'], 'lists are appended');
  assert.deepEqual(at(main, 'machine.network.interfaces'), [
    { interface: 'eth0', addresses: ['10.0.0.2/24', '10.0.0.3/24'], vlans: [{ vlanId: 10, mtu: 9000 }, { vlanId: 20 }] },
  ], 'interfaces merge on interface:, vlans on vlanId:, $patch: delete removes one');
  assert.deepEqual(at(main, 'cluster.network.podSubnets'), ['10.32.0.0/12'], 'podSubnets are overwritten');
  assert.deepEqual(at(main, 'cluster.network.serviceSubnets'), ['10.96.0.0/12']);
  assert.deepEqual(at(main, 'cluster.apiServer.auditPolicy'), { apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'None' }] }, 'auditPolicy is replaced');
  const ext = merged.find((d) => d.key === 'v1alpha1/ExtensionServiceConfig/nut')?.body;
  assert.deepEqual(ext?.['configFiles'], [{ mountPath: '/usr/local/etc/nut/upsmon.conf', content: 'new' }], 'configFiles merge on mountPath');
  assert.equal(merged.some((d) => d.key === 'v1alpha1/KmsgLogConfig/old-log'), false, 'a document is deleted');
  assert.equal(JSON.stringify(merged).includes('$patch'), false);
  assert.throws(() => mergeConfigDocuments(base, doc('version: v1alpha1\n$patch: delete\n')), /v1alpha1 document cannot be deleted/);
  // The inputs are left as they were.
  assert.deepEqual(at(base[0]?.body ?? {}, 'machine.certSANs'), ['a']);
});

test('a base or host values that cannot make a config are refused, naming the host', () => {
  const table: Array<[string, TalosHostValues, RegExp]> = [
    ['machine: [unclosed', oden, /^oden: Talos machine config: the base config does not parse: document 1/],
    ['apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 10.0.0.1:1\n', oden, /no v1alpha1 document/],
    ['just text\n', oden, /document 1 is not a mapping/],
    ['version: v1alpha1\nmachine: {}\nmachine: {}\n', oden, /does not parse/],
    [CONTROLPLANE, { ...oden, hostname: 'Oden_1' }, /hostname "Oden_1" is not a DNS name/],
    [CONTROLPLANE, { ...oden, installDisk: 'sdb' }, /install disk "sdb" is not a \/dev path/],
    [CONTROLPLANE, { ...oden, eventSink: 'fd00::5:4002' }, /event sink "fd00::5:4002" is not host:port/],
    [CONTROLPLANE, { ...oden, network: { mac: 'e4:1f:13:6c:2a', addresses: ['10.77.0.11/24'] } }, /MAC "e4:1f:13:6c:2a"/],
    [CONTROLPLANE, { ...oden, network: { mac: 'e4:1f:13:6c:2a:10', addresses: ['10.77.0.11'] } }, /address "10.77.0.11" is not an address with a prefix/],
  ];
  for (const [base, values, why] of table) {
    assert.throws(() => renderTalosHostConfig(base, values), (err: Error) => err.name === 'TalosConfigError' && why.test(err.message), String(why));
  }
  const v6 = renderTalosHostConfig(CONTROLPLANE, { ...oden, eventSink: '[fd00::5]:4002' });
  assert.deepEqual(checkTalosConfig(v6.text), []);
});

test('the structural check names what a node would refuse or miss', () => {
  const table: Array<[string, TalosHostValues | undefined, RegExp]> = [
    ['apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 10.0.0.1:1\n', undefined, /the v1alpha1 document is missing/],
    ['version: v1alpha1\nmachine: {type: worker}\n', undefined, /cluster instructions are required/],
    [CONTROLPLANE.replace('type: controlplane', 'type: master'), undefined, /unknown machine type "master"/],
    [CONTROLPLANE.replace(/ {4}token: q8w2xe\S+/, '    token: ""'), undefined, /machine.token: is required/],
    [CONTROLPLANE.replace(/ {4}serviceAccount:\n {8}key: \S+\n/, ''), undefined, /cluster.serviceAccount.key: is required on a control plane/],
    [CONTROLPLANE.replace(/ {4}secretboxEncryptionSecret: \S+/, '    # none'), undefined, /encryption secret/],
    [CONTROLPLANE.replace('endpoint: https://10.77.0.10:6443', 'endpoint: 10.77.0.10'), undefined, /not a URL like https/],
    [WORKER.replace('    type: worker', '    type: worker\n    ca:\n        key: c2VjcmV0').replace(/ {4}# The root certificate authority of the PKI.\n {4}ca:\n {8}crt: \S+\n {8}key: ""\n/, ''), undefined, /machine.ca.key: must not be on a worker/],
    [WORKER.replace('    discovery:', '    etcd:\n        ca: {crt: x}\n    discovery:'), undefined, /etcd config is only allowed on control plane machines/],
    [CONTROLPLANE.replace(/ {4}id: \S+/, '    id: ""'), undefined, /cluster.id: is required when discovery is enabled/],
    [CONTROLPLANE.replace('persist: true', 'persist: false'), undefined, /persist: false is not supported/],
    [`${CONTROLPLANE}---\napiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: a:1\n---\napiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: b:2\n`, undefined, /appears twice/],
    [`${CONTROLPLANE}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n`, undefined, /stableHostname/],
    [`${CONTROLPLANE.replace('    network: {}', '    network:\n        hostname: x')}---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\nauto: "off"\n`, undefined, /static hostname is already set in v1alpha1 config/],
    [renderTalosHostConfig(CONTROLPLANE, oden).text, { ...oden, hostname: 'loke' }, /hostname: is "oden", not "loke"/],
    [renderTalosHostConfig(CONTROLPLANE, oden).text, { ...oden, network: { mac: 'e4:1f:13:6c:2a:10', addresses: ['10.77.0.12/24'] } }, /has addresses \["10.77.0.11\/24"\], not the host's/],
    [renderTalosHostConfig(CONTROLPLANE, { ...oden, eventSink: undefined }).text, oden, /EventSinkConfig: endpoint is undefined, not the agent's 10.77.0.5:4002/],
  ];
  for (const [text, expect, why] of table) {
    const problems = checkTalosConfig(text, expect).map((p) => `${p.where}: ${p.message}`).join('\n');
    assert.match(problems, why, String(why));
  }
});

test('the redacted rendering hides every secret (Talos\' Redact list and more) and keeps the rest', () => {
  const extra = `${CONTROLPLANE.replace(
    '    registries: {}\n',
    [
      '    registries:',
      '        config:',
      '            registry.lab:',
      '                auth: {username: puller, password: Pull-Pass-1234, auth: cHVsbGVyOlB1bGwtUGFzcy0xMjM0, identityToken: id-token-5678}',
      '                tls: {clientIdentity: {crt: Y2VydA==, key: client-key-9999}}',
      '    env:',
      '        https_proxy: http://proxyuser:Proxy-Pass-4321@10.77.0.1:3128',
      '',
    ].join('\n'),
  ).replace(
    '    inlineManifests: []\n',
    '    inlineManifests:\n        - name: creds\n          contents: |\n            apiVersion: v1\n            kind: Secret\n            data: {token: aW5saW5lLXNlY3JldA==}\n        - name: ns\n          contents: |\n            apiVersion: v1\n            kind: Namespace\n            metadata: {name: ci}\n',
  )}---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://asgard.siderolink.omni.example?jointoken=Join-Token-abcdef&grpc_tunnel=true\n---\napiVersion: v1alpha1\nkind: WireguardConfig\nname: wg0\nprivateKey: WG-Private-Key-0000\n`;
  const secrets = [...Object.values(FAKE.secrets), 'Pull-Pass-1234', 'cHVsbGVyOlB1bGwtUGFzcy0xMjM0', 'id-token-5678', 'client-key-9999', 'Proxy-Pass-4321', 'aW5saW5lLXNlY3JldA==', 'Join-Token-abcdef', 'WG-Private-Key-0000'];
  const rendered = renderTalosHostConfig(extra, oden).text;
  for (const s of secrets) assert.ok(rendered.includes(s), `the served config keeps ${s}`);
  const redacted = redactTalosConfig(rendered);
  for (const s of secrets) assert.ok(!redacted.includes(s), `the redacted one hides ${s}`);
  const { main, others } = served(redacted);
  for (const path of [
    'machine.token', 'machine.ca.key', 'cluster.id', 'cluster.secret', 'cluster.token', 'cluster.secretboxEncryptionSecret', 'cluster.ca.key',
    'cluster.aggregatorCA.key', 'cluster.serviceAccount.key', 'cluster.etcd.ca.key',
  ]) assert.equal(at(main, path), TALOS_REDACTED, path);
  // Certificates, the host's values and the rest stay readable.
  for (const crt of Object.values(FAKE.certificates)) assert.ok(redacted.includes(crt));
  assert.equal(at(main, 'machine.network.hostname'), 'oden');
  assert.equal(at(main, 'cluster.controlPlane.endpoint'), 'https://10.77.0.10:6443');
  assert.equal(at(main, 'machine.env.https_proxy'), `http://proxyuser:${TALOS_REDACTED}@10.77.0.1:3128`);
  assert.match(String(others.find((d) => d.key === 'v1alpha1/SideroLinkConfig')?.body['apiUrl']), /jointoken=\[redacted\]&grpc_tunnel=true$/);
  assert.match(redacted, /kind: Namespace/, 'an inline manifest without a Secret stays');
  // The secrets, for the log redactor.
  const found = talosConfigSecrets(rendered);
  // (an inline Secret manifest is one secret as a whole)
  for (const s of secrets) assert.ok(found.some((f) => f.includes(s)), `talosConfigSecrets finds ${s}`);
  assert.ok(!found.some((s) => Object.values(FAKE.certificates).includes(s)), 'no certificate is a secret');
});
