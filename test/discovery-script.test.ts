// The inventory script an unknown machine gets (src/discover/agent-discovery.ts), over the lab-repository template:
// only while discovery is enabled, read-only (forseti.mode=inventory), powering off or staying as the site says, and
// where forseti's DHCP pool hands out addresses only to the address the pool leased to that MAC.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentDiscovery } from '../src/discover/agent-discovery.ts';
import { createLogger } from '../src/log.ts';
import type { DiscoverySettings } from '../src/model/site-discovery.ts';
import type { Lab } from '../src/model/types.ts';
import { generationOf, templateLab } from './fixtures/dhcp/template-lab.ts';
import { tokenIn } from './fixtures/as-host.ts';

const UNKNOWN = '02:00:00:77:00:01';
const log = createLogger({ level: 'silent' });
let lab: Lab;
let dir = '';

before(async () => {
  lab = await templateLab();
  dir = await mkdtemp(join(tmpdir(), 'forseti-discovery-script-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function discovering(settings: Partial<DiscoverySettings>): Lab {
  return { ...lab, site: { ...lab.site, discovery: { ...lab.site.discovery, enabled: true, image: 'wipe', ...settings } } };
}

function discovery(leasedTo?: (mac: string) => string[] | null): AgentDiscovery {
  return new AgentDiscovery({ dir, agentKey: randomBytes(32), lab: { url: 'http://127.0.0.1:9/lab.git', branch: 'main' }, author: { name: 'forseti', email: 'forseti@localhost' }, log, ...(leasedTo ? { leasedTo } : {}) });
}

describe('the inventory script', () => {
  it('none while discovery is off: the machine is told no host is declared', () => {
    assert.equal(discovery().scriptFor(UNKNOWN, '10.77.0.200', generationOf(lab)), null);
  });

  it('the forseti OS image in inventory mode, reporting for this MAC, powering off or staying as the site says', () => {
    const off = discovery().scriptFor(UNKNOWN, '10.77.0.200', generationOf(discovering({})));
    assert.equal(off?.answer, 'inventory');
    const kernel = off?.script.split('\n').find((l) => l.startsWith('kernel ')) ?? '';
    assert.match(kernel, /^kernel http:\/\/10\.77\.0\.5:8080\/images\/[0-9a-f]{64}\/\S+ initrd=\S+ forseti\.mode=inventory forseti\.report=http:\/\/10\.77\.0\.5:8080\/v1\/discovery\/inventory\/02-00-00-77-00-01 forseti\.token=[0-9a-f]{32} forseti\.poweroff=1 console=tty0 console=ttyS0,115200n8$/);
    assert.doesNotMatch(off?.script ?? '', /forseti\.wipe/);
    const stay = discovery().scriptFor(UNKNOWN, '10.77.0.200', generationOf(discovering({ afterReport: 'stay' })));
    assert.match(stay?.script ?? '', / forseti\.poweroff=0 /);
  });

  it('tokens differ per MAC and per address', () => {
    const d = discovery();
    const gen = generationOf(discovering({}));
    const token = (mac: string, ip: string): string => tokenIn(d.scriptFor(mac, ip, gen)?.script ?? '');
    assert.equal(token(UNKNOWN, '10.77.0.200'), token(UNKNOWN, '10.77.0.200'));
    assert.notEqual(token(UNKNOWN, '10.77.0.200'), token(UNKNOWN, '10.77.0.201'));
    assert.notEqual(token(UNKNOWN, '10.77.0.200'), token('02:00:00:77:00:02', '10.77.0.200'));
  });

  it('where forseti leases the pool: only to the address leased to that MAC', () => {
    const leases: Record<string, string[]> = { [UNKNOWN]: ['10.77.0.200'] };
    const d = discovery((mac) => leases[mac] ?? []);
    const gen = generationOf(discovering({}));
    assert.equal(d.scriptFor(UNKNOWN, '10.77.0.200', gen)?.answer, 'inventory');
    const elsewhere = d.scriptFor(UNKNOWN, '10.77.0.213', gen);
    assert.equal(elsewhere?.answer, 'refused');
    assert.equal(tokenIn(elsewhere?.script ?? ''), '');
    assert.match(elsewhere?.refused ?? '', /served only to the address the DHCP pool leased to 02:00:00:77:00:01 \(10\.77\.0\.200\), not to 10\.77\.0\.213/);
    assert.equal(d.scriptFor('02:00:00:77:00:09', '10.77.0.200', gen)?.answer, 'refused', 'a MAC the pool leased nothing to');
  });

  it('a report counts from the address its script went to, or from another the pool leased to the same MAC', async () => {
    const leases: Record<string, string[]> = { [UNKNOWN]: ['10.77.0.200', '10.77.0.201'] };
    const d = discovery((mac) => leases[mac] ?? []);
    const gen = generationOf(discovering({}));
    const token = tokenIn(d.scriptFor(UNKNOWN, '10.77.0.200', gen)?.script ?? '');
    const body = new TextEncoder().encode('{}');
    // Past the token, the document is read: a 400 says the token counted.
    assert.equal((await d.receive(UNKNOWN, token, body, '10.77.0.200', gen)).status, 400);
    assert.equal((await d.receive(UNKNOWN, token, body, '10.77.0.201', gen)).status, 400, 'the image\'s own DHCP lease of this MAC');
    assert.equal((await d.receive(UNKNOWN, token, body, '10.77.0.213', gen)).status, 403, 'an address leased to another MAC');
    assert.equal((await d.receive('02-00-00-77-00-02', token, body, '10.77.0.200', gen)).status, 403, 'another MAC');
    assert.equal((await d.receive(UNKNOWN, token, body, '10.77.0.200', generationOf(lab))).status, 404, 'discovery off');
    assert.equal((await d.receive('9c:8e:99:4a:10:01', token, body, '10.77.0.200', gen)).status, 409, 'a declared host\'s MAC');
  });

  it('an image the lab lacks (a generation older than the check): refused, no token', () => {
    const answer = discovery().scriptFor(UNKNOWN, '10.77.0.200', generationOf(discovering({ image: 'inventory' })));
    assert.equal(answer?.answer, 'refused');
    assert.match(answer?.script ?? '', /the discovery image inventory is not in the lab/);
  });
});
