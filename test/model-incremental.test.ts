import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { LabLoader, type LoadResult } from '../src/model/incremental.ts';
import { GenerationWriter, readGeneration, renderLab } from '../src/render/generation.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { mulberry32 as random } from './fixtures/prng.ts';
import { checkWholeLab } from './fixtures/whole-lab-check.ts';

const TEMPLATE = 'lab-repo-template';
const token = (h: string): string => `tok-${h}`;


type Doc = Record<string, unknown>;

/** A copy of the template lab that random edits are applied to; each edit returns the paths it touched. */
class EditableLab {
  readonly originals = new Map<string, string>();
  /** Files that differ from the template (edited, removed or added). */
  private readonly dirty = new Set<string>();
  private added = 0;

  constructor(readonly dir: string, private readonly rnd: () => number) {
    for (const sub of ['hosts', 'profiles', 'images', 'configs', 'certs']) {
      for (const f of readdirSync(join(dir, sub))) this.originals.set(`${sub}/${f}`, readFileSync(join(dir, sub, f), 'utf8'));
    }
    this.originals.set('site.yaml', readFileSync(join(dir, 'site.yaml'), 'utf8'));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)] as T;
  }

  files(sub: string): string[] {
    return existsSync(join(this.dir, sub)) ? readdirSync(join(this.dir, sub)).map((f) => `${sub}/${f}`) : [];
  }

  read(file: string): Doc | null {
    try {
      const value: unknown = parse(readFileSync(join(this.dir, file), 'utf8'));
      return value && typeof value === 'object' ? (value as Doc) : null;
    } catch {
      return null;
    }
  }

  write(file: string, text: string): string {
    writeFileSync(join(this.dir, file), text);
    if (this.originals.get(file) === text) this.dirty.delete(file);
    else this.dirty.add(file);
    return file;
  }

  /** Edits one field of a document that still parses; returns the path, or nothing when it does not parse. */
  edit(file: string, change: (doc: Doc) => void): string[] {
    const doc = this.read(file);
    if (!doc) return [];
    change(doc);
    return [this.write(file, stringify(doc))];
  }

  remove(file: string): string[] {
    rmSync(join(this.dir, file), { force: true });
    if (this.originals.has(file)) this.dirty.add(file);
    else this.dirty.delete(file);
    return [file];
  }

  /** Puts some edited files back as the template has them (so that the lab is often valid again). */
  restore(all: boolean): string[] {
    const files = all ? [...this.dirty] : [this.pick([...this.dirty])].filter((f) => f !== undefined);
    return files.flatMap((file) => {
      const original = this.originals.get(file);
      return original === undefined ? this.remove(file) : [this.write(file, original)];
    });
  }

  hostValue(field: 'ip' | 'mac'): string {
    const doc = this.read(this.pick(this.files('hosts')));
    if (field === 'ip') return typeof doc?.ip === 'string' ? doc.ip : '10.77.0.150';
    return Array.isArray(doc?.macs) && typeof doc.macs[0] === 'string' ? doc.macs[0] : '52:54:00:00:00:01';
  }

  /** One random edit among those a lab repository sees: hosts, profiles, images, the site, configs and the CA. */
  step(): string[] {
    const host = this.pick(this.files('hosts'));
    const profile = this.pick(this.files('profiles'));
    const roles = [...this.files('profiles').map((f) => f.replace(/^profiles\/|\.ya?ml$/g, '')), 'nope'];
    if (this.rnd() < 0.4) return this.restore(this.rnd() < 0.15);
    switch (Math.floor(this.rnd() * 22)) {
      case 0:
        return host ? this.edit(host, (d) => (d.role = this.pick(roles))) : [];
      case 1:
        return host ? this.edit(host, (d) => (d.hardware = { ...(d.hardware as Doc), memoryGiB: this.pick([4, 8, 32, 64, 256]) })) : [];
      case 2: {
        const ip = this.pick([this.hostValue('ip'), `10.77.0.${Math.floor(this.rnd() * 256)}`, '10.78.0.5', '10.77.0.1']);
        return host ? this.edit(host, (d) => (d.ip = ip)) : [];
      }
      case 3: {
        const mac = this.pick([this.hostValue('mac'), `52:54:00:00:00:${Math.floor(this.rnd() * 256).toString(16).padStart(2, '0')}`]);
        return host ? this.edit(host, (d) => (d.macs = this.rnd() < 0.2 ? [mac, mac.toUpperCase()] : [mac])) : [];
      }
      case 4:
        return host ? this.edit(host, (d) => (d.wipe === undefined ? (d.wipe = `w${Math.floor(this.rnd() * 3)}`) : delete d.wipe)) : [];
      case 5:
        return host ? this.edit(host, (d) => (d.name = this.pick(['bld-003', 'bld-004', 'oden', 'renamed']))) : [];
      case 6:
        return host ? this.remove(host) : [];
      case 7: {
        const doc = host && this.read(host);
        if (!doc) return [];
        const name = this.rnd() < 0.3 ? 'bld-003' : `new-${this.added++}`;
        doc.name = name;
        doc.ip = `10.77.0.${150 + (this.added % 40)}`;
        doc.macs = [`52:54:00:00:01:${(this.added % 256).toString(16).padStart(2, '0')}`];
        return [this.write(`hosts/${name}${this.rnd() < 0.3 ? '.yml' : '.yaml'}`, stringify(doc))];
      }
      case 8:
        return host ? [this.write(host, this.pick(['macs: [unclosed\n', 'apiVersion: forseti/v1\nkind: Host\nname: x\nmacs: 5\n', '']))] : [];
      case 9:
        return profile ? this.edit(profile, (d) => (d.requires = { ...(d.requires as Doc), memoryGiB: this.pick([1, 16, 64]) })) : [];
      case 10:
        return profile ? this.edit(profile, (d) => { const boot = d.boot as Doc | undefined; if (boot?.cmdline !== undefined) boot.cmdline = `${String(boot.cmdline)} ${this.pick(['x={{ host.ip }}', 'y={{ host.colour }}', 'z=1'])}`; }) : [];
      case 11:
        return profile ? this.edit(profile, (d) => { const boot = d.boot as Doc | undefined; if (boot?.image !== undefined) boot.image = this.pick(['talos', 'debian-12', 'wipe', 'nope']); }) : [];
      case 12:
        return profile ? this.remove(profile) : [];
      case 13: {
        const image = this.pick(this.files('images'));
        return image ? this.edit(image, (d) => (d.kernel = { ...(d.kernel as Doc), sha256: this.pick(['a', 'b', 'c']).repeat(64) })) : [];
      }
      case 14: {
        const image = this.pick(this.files('images'));
        return image ? this.remove(image) : [];
      }
      case 15:
        return this.edit('site.yaml', (d) => {
          const network = (d.network ??= {}) as Doc;
          const which = Math.floor(this.rnd() * 5);
          if (which === 0) network.gateway = this.pick(['10.77.0.1', '10.77.0.103', '10.77.0.254']);
          if (which === 1) network.subnet = this.pick(['10.77.0.0/24', '10.77.0.0/16', '10.77.0.0/25']);
          if (which === 2) d.dhcp = { mode: 'full', pool: { start: this.pick(['10.77.0.100', '10.77.0.200']), end: '10.77.0.249' } };
          if (which === 3) d.rollout = { groups: [{ name: 'g', selector: this.pick([{ hosts: ['bld-003', 'gone'] }, { roles: ['talos-worker'] }]), maxUnavailable: 1 }] };
          if (which === 4) d.wipe = { profile: this.pick(['wipe', 'off', 'missing']) };
        });
      case 16:
        return [this.write('site.yaml', this.pick(['name: [\n', 'apiVersion: forseti/v1\nkind: Site\n']))];
      case 17: {
        const config = this.pick(this.files('configs'));
        if (!config) return [];
        if (this.rnd() < 0.2) return this.remove(config);
        return [this.write(config, `${readFileSync(join(this.dir, config), 'utf8')}\n${this.pick(['password: hunter2', '# {{ host.bogus }}', '# fine'])}\n`)];
      }
      case 18: {
        const ca = 'certs/asgard-ilo-ca.pem';
        return this.rnd() < 0.3 ? this.remove(ca) : [this.write(ca, this.pick(['not a certificate\n', this.originals.get(ca) ?? '']))];
      }
      case 19:
        return host ? this.edit(host, (d) => (d.bmc = { ...(d.bmc as Doc), type: this.pick(['ipmi', 'redfish']) })) : [];
      case 20:
        return this.edit('profiles/wipe.yaml', (d) => { const boot = d.boot as Doc | undefined; if (boot) boot.cmdline = `wipe ${Math.floor(this.rnd() * 4)}`; });
      default:
        return [this.write('README.md', `edited ${this.rnd()}\n`)];
    }
  }
}

/** Everything a caller can observe of a load, with the order of the maps made explicit. */
function observable(r: LoadResult): unknown {
  const lab = r.lab && { site: r.lab.site, hosts: [...r.lab.hosts], profiles: [...r.lab.profiles], images: [...r.lab.images] };
  return { problems: r.problems, lab };
}

test('incremental updates equal an independent whole-lab check over random edit sequences, and so do the rendered generations', async () => {
  let valid = 0;
  let commits = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const dir = mkdtempSync(join(tmpdir(), 'forseti-inc-'));
    const state = mkdtempSync(join(tmpdir(), 'forseti-inc-state-'));
    try {
      cpSync(TEMPLATE, dir, { recursive: true });
      const rnd = random(seed);
      const lab = new EditableLab(dir, rnd);
      const loader = new LabLoader();
      loader.load(dir, 'r0');
      const writer = new GenerationWriter(state, token);
      for (let step = 1; step <= 40; step++) {
        const changed = new Set<string>();
        const edits = 1 + Math.floor(rnd() * 3);
        for (let e = 0; e < edits; e++) for (const path of lab.step()) changed.add(path);
        const revision = `r${step}`.padEnd(40, '0');
        const incremental = loader.update(dir, [...changed], revision);
        // The reference is not the loader's own whole load but a check of the whole lab written without its indexes.
        const scratch = checkWholeLab(dir);
        const where = `seed ${seed} step ${step} (${[...changed].join(', ')})`;
        assert.deepEqual(observable(incremental), observable(scratch), where);
        assert.equal(loader.revision, revision);
        commits++;
        if (!incremental.lab || !scratch.lab) continue;
        valid++;
        const generation = await writer.write(incremental.lab, revision);
        const expected = renderLab({ lab: scratch.lab, urls: new AgentUrls(scratch.lab.site), revision, token });
        assert.deepEqual(generation.hosts, expected.hosts, where);
        assert.deepEqual(generation.byMac, expected.byMac, where);
        assert.deepEqual((await readGeneration(generation.dir)).hosts, expected.hosts, where);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
    }
  }
  assert.ok(valid >= 20, `enough commits were valid to compare renderings (${valid} of ${commits})`);
});

test('a change the loader cannot follow file by file falls back to a whole load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-inc-fallback-'));
  try {
    cpSync(TEMPLATE, dir, { recursive: true });
    const loader = new LabLoader();
    assert.ok(loader.load(dir).lab);
    rmSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'images'), 'now a file\n');
    const result = loader.update(dir, ['images']);
    assert.deepEqual(observable(result), observable(new LabLoader().load(dir)));
    assert.ok(result.problems.some((p) => p.code === 'read-error' && p.ref.file === 'images'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unchanged entities keep their identity across updates; changed ones are new objects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-inc-identity-'));
  try {
    cpSync(TEMPLATE, dir, { recursive: true });
    const loader = new LabLoader();
    const before = loader.load(dir).lab;
    assert.ok(before);
    const file = join(dir, 'hosts/bld-003.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('memoryGiB: 32', 'memoryGiB: 96'));
    const after = loader.update(dir, ['hosts/bld-003.yaml']).lab;
    assert.ok(after);
    assert.notEqual(after.hosts.get('bld-003'), before.hosts.get('bld-003'));
    assert.equal(after.hosts.get('bld-004'), before.hosts.get('bld-004'));
    assert.equal(after.site, before.site);
    assert.equal(after.profiles.get('talos-worker'), before.profiles.get('talos-worker'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function withTemplateCopy(name: string, run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), `forseti-inc-${name}-`));
  try {
    cpSync(TEMPLATE, dir, { recursive: true });
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function editFile(dir: string, file: string, from: string, to: string): void {
  const text = readFileSync(join(dir, file), 'utf8');
  assert.ok(text.includes(from), `${file} holds ${from}`);
  writeFileSync(join(dir, file), text.replace(from, to));
}

test('an update that throws midway leaves no revision, and the next update loads the whole tree', () => {
  withTemplateCopy('throw-update', (dir) => {
    const loader = new LabLoader();
    assert.ok(loader.load(dir, 'r0').lab);
    // bld-003 leaves the subnet (a problem only its host checks find); a file name longer than the file system
    // allows makes the update throw after bld-003 was read again but before its checks ran
    editFile(dir, 'hosts/bld-003.yaml', 'ip: 10.77.0.103', 'ip: 10.99.0.103');
    assert.throws(() => loader.update(dir, ['hosts/bld-003.yaml', `hosts/${'x'.repeat(300)}.yaml`], 'r1'), { code: 'ENAMETOOLONG' });
    assert.equal(loader.revision, null);
    const next = loader.update(dir, ['README.md'], 'r2');
    const scratch = new LabLoader().load(dir);
    assert.ok(scratch.problems.some((p) => p.ref.file === 'hosts/bld-003.yaml'));
    assert.deepEqual(observable(next), observable(scratch));
    assert.equal(loader.revision, 'r2');
  });
});

test('a load that throws midway leaves no revision, and the next update loads the whole tree', () => {
  withTemplateCopy('throw-load', (dir) => {
    const loader = new LabLoader();
    assert.ok(loader.load(dir, 'r0').lab);
    // No file system error escapes a load (they become problems), so the fault is injected: the fifth file read fails.
    const put = Reflect.get(loader, 'put') as (...args: unknown[]) => void;
    let calls = 0;
    Reflect.set(loader, 'put', function (this: LabLoader, ...args: unknown[]): void {
      if (++calls === 5) throw new Error('injected read failure');
      put.apply(this, args);
    });
    assert.throws(() => loader.load(dir, 'r1'), /injected read failure/);
    Reflect.deleteProperty(loader, 'put');
    assert.equal(loader.revision, null);
    const next = loader.update(dir, [], 'r2');
    assert.deepEqual(observable(next), observable(new LabLoader().load(dir)));
    assert.ok(next.lab && next.lab.hosts.size > 5);
  });
});

test('an update reads each CA file once, however many hosts name it', () => {
  withTemplateCopy('ca-reads', (dir) => {
    const ca = 'certs/asgard-ilo-ca.pem';
    const naming = readdirSync(join(dir, 'hosts')).filter((f) => readFileSync(join(dir, 'hosts', f), 'utf8').includes(ca));
    assert.ok(naming.length >= 3, 'several hosts name the CA');
    let reads = 0;
    // every file the loader reads is opened through its lab tree, which reports each open
    const loader = new LabLoader({ onOpen: (path) => void (path.endsWith(ca) && reads++) });
    assert.ok(loader.load(dir).lab);
    // the CA changes, and so does one of the hosts naming it
    editFile(dir, ca, '-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\nbroken');
    editFile(dir, `hosts/${naming[0]}`, 'rack:', 'note: edited\n  rack:');
    reads = 0;
    const changed = loader.update(dir, [ca, `hosts/${naming[0]}`]);
    assert.equal(reads, 1, 'the CA was read once');
    assert.deepEqual(observable(changed), observable(new LabLoader().load(dir)));
    reads = 0;
    const unchanged = loader.update(dir, ['README.md']);
    assert.equal(reads, 1, 'the CA was read once');
    assert.deepEqual(observable(unchanged), observable(changed));
  });
});
