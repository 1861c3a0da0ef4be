// The pull request's title and body for a discovered machine: the facts a reviewer needs, and nothing the machine
// reported outside a code span (no mention, link, image or HTML can come from it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { factsFromInventory } from '../src/discover/from-inventory.ts';
import { InventoryReader } from '../src/discover/inventory-report.ts';
import { code, pullRequestText } from '../src/discover/pull-request-text.ts';
import type { HostDocument } from '../src/discover/host-yaml.ts';
import { bl460cGen8, withValue } from './fixtures/inventory-reports.ts';
import type { Json } from './fixtures/inventory-reports.ts';

const reader = new InventoryReader();
const branch = 'forseti/discovered/9c-8e-99-4a-20-02';

function textFor(report: Json, model: string, serial: string): { title: string; body: string } {
  const facts = factsFromInventory(reader.read(JSON.stringify(report), { from: 'test' }));
  const document: HostDocument = {
    apiVersion: 'forseti/v1',
    kind: 'Host',
    name: 'cz3401xy17',
    macs: ['9c:8e:99:4a:20:02', '9c:8e:99:4a:20:01'],
    ip: '10.77.0.2',
    bmc: { type: 'manual' },
    hardware: { model, cpus: 2, cores: 16, memoryGiB: 128, disks: [{ name: 'sda', sizeGB: 300, type: 'hdd' }] },
    role: 'off',
    labels: { serial, 'management-address': '10.77.1.117' },
  };
  return pullRequestText({ name: 'cz3401xy17', file: 'hosts/cz3401xy17.yaml', branch, document }, facts);
}

describe('pullRequestText', () => {
  it('a BL460c Gen8: model, serial, CPUs, memory, disks, NICs, the BMC, the address, and what merging does', () => {
    const { title, body } = textFor(bl460cGen8(), 'HP ProLiant BL460c Gen8', 'CZ3401XY17');
    assert.equal(title, 'Discovered cz3401xy17: HP ProLiant BL460c Gen8, serial CZ3401XY17, 9c:8e:99:4a:20:02');
    assert.equal(
      body,
      [
        'forseti found a machine that no host declares and proposes `hosts/cz3401xy17.yaml` for it (branch `forseti/discovered/9c-8e-99-4a-20-02`).',
        '',
        '- **Boot NIC**: `9c:8e:99:4a:20:02`; other NICs: `9c:8e:99:4a:20:01`',
        '- **Model**: `HP ProLiant BL460c Gen8`',
        '- **Serial**: `CZ3401XY17`',
        '- **CPUs**: 2 × `Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz`, 16 cores',
        '- **Memory**: 128 GiB',
        '- **Disks**: `sda` 300 GB hdd `HP LOGICAL VOLUME`',
        '- **BMC**: `10.77.1.117` (not used: `bmc: {type: manual}` until you set it)',
        "- **Address**: `10.77.0.2`, the lowest free one of the site's subnet",
        '',
        'The role is `off`: merged as it is, the machine stays off and is never network-booted. Set its role and its BMC on this branch to adopt it. To ignore the machine, close this pull request and keep the branch: forseti proposes a machine once, and never while its branch exists.',
        '',
      ].join('\n'),
    );
  });

  it('mentions, links, images, HTML and backticks from the machine stay inside code spans', () => {
    const hostile = ['@lab-admins/everyone please merge', '![x](https://evil.example/t.png)', '[click](https://evil.example)', '<img src=x onerror=alert(1)>', '`code` ``double``', '#1 closes #2', '**bold** _it_ ~~s~~'];
    for (const text of hostile) {
      let doc = withValue(bl460cGen8(), '/cpus/model', text);
      doc = withValue(doc, '/disks/0/model', text);
      const { title, body } = textFor(doc, text, text);
      assert.doesNotMatch(title, /[@#<>[\]!`*_~]/, title);
      const spans = [code(text), code(`HP ${text}`)];
      let rest = body;
      for (const span of spans) rest = rest.split(span).join('');
      assert.ok(body.includes(code(text)), text);
      assert.doesNotMatch(rest, /@|<|!\[|\]\(|``|\*\*bold|#1/, `outside a code span: ${rest}`);
    }
  });

  it('code(): the fence is longer than any backtick run inside; a span starting or ending with one is padded', () => {
    assert.equal(code('plain'), '`plain`');
    assert.equal(code('a `b` c'), '``a `b` c``');
    assert.equal(code('``x``'), '``` ``x`` ```');
    assert.equal(code('line\nbreak'), '`line break`');
    assert.equal(code(''), '(empty)');
  });
});
