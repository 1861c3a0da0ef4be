// Property: whatever a lab tree holds (symbolic links in and out of it, chains and loops of them, links to
// directories, FIFOs and devices, `..`, `.git` and control characters in names and in the paths its YAML names),
// every file forseti opens while loading it (whole, then incrementally, and the agent's SOPS read) is a regular
// file inside the tree and outside `.git`; nothing blocks; no byte of an outside file reaches a problem; an
// incremental update equals a whole load. Opens are traced at node:fs itself, so a read that bypassed the safe
// reader would be seen too. Random trees from a seeded PRNG: a failure names its seed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs, { lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { mock, test } from 'node:test';
import { Secrets } from '../src/secrets/secrets.ts';
import { LabLoader, type LoadResult } from '../src/model/incremental.ts';
import { ROOT } from './fixtures/forseti-cli.ts';
import { mulberry32 } from './fixtures/prng.ts';

const CASES = 40;
const SECRET = 'OUTSIDE-SECRET-7f3a';
const MINIMAL = join(ROOT, 'test/fixtures/labs/minimal');

type Rnd = () => number;
const pick = <T>(rnd: Rnd, items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;

const DIRS = ['hosts', 'profiles', 'images', 'configs', 'certs', 'shared', 'shared/deep', ''];
const NAMES = ['n1.yaml', 'n2.yml', 'user-data', 'ca.pem', 'line\nbreak.yaml', 'cr\r.yaml', 'del\x7f.yaml', 'sep\u2028.yaml', '..x.yaml', 'x...yaml', '.hidden.yaml', 'notes.txt'];
const PATH_PARTS = ['configs', 'certs', 'hosts', 'shared', 'user-data', 'ca.pem', 'link', 'fifo', 'n1.yaml', '..', '.', '.git', 'config', 'a\nb', 'x\r', '', 'missing'];

/** One random case: a lab directory next to an `outside` directory that holds what must never be read. */
class RandomLab {
  readonly lab: string;
  readonly outside: string;
  readonly created: string[] = [];

  constructor(readonly dir: string, private readonly rnd: Rnd) {
    this.lab = join(dir, 'lab');
    this.outside = join(dir, 'outside');
    fs.cpSync(MINIMAL, this.lab, { recursive: true });
    mkdirSync(join(this.outside, 'hosts'), { recursive: true });
    writeFileSync(join(this.outside, 'secret.txt'), `${SECRET}\n`);
    writeFileSync(join(this.outside, 'hosts/stolen.yaml'), `apiVersion: forseti/v1\nkind: Host\nname: stolen\nlabels: {x: ${SECRET}}\n`);
    execFileSync('mkfifo', [join(this.outside, 'fifo')]);
    // a .git directory inside the lab, as in a CI checkout: not part of the lab
    mkdirSync(join(this.lab, '.git'));
    writeFileSync(join(this.lab, '.git/config'), `[http]\n\textraheader = ${SECRET}\n`);
  }

  /** A path as a commit might name it: components, `..`, control characters, absolute, the newline trick. */
  namedPath(): string {
    const r = this.rnd();
    if (r < 0.1) return pick(this.rnd, ['/etc/passwd', join(this.outside, 'secret.txt'), 'x\n/../../outside/secret.txt', '.git/config', '../outside/secret.txt']);
    if (r < 0.4 && this.created.length > 0) return pick(this.rnd, this.created);
    const n = 1 + Math.floor(this.rnd() * 3);
    return Array.from({ length: n }, () => pick(this.rnd, PATH_PARTS)).join('/');
  }

  private target(at: string): string {
    const depth = at.split('/').length - 1;
    const up = '../'.repeat(depth);
    return pick(this.rnd, [
      'user-data',
      'n1.yaml',
      `${up}configs/user-data`,
      `${up}shared`,
      `${up}hosts`,
      '.',
      '..',
      `${up}..`,
      at.split('/').pop() ?? 'self', // a loop onto itself
      'missing',
      join(this.outside, 'secret.txt'),
      `${up}../outside/secret.txt`,
      join(this.outside, 'hosts'),
      join(this.outside, 'fifo'),
      '/dev/zero',
      '/etc/passwd',
      '/proc/self/environ',
      `${up}.git/config`,
      join(this.lab, '.git/config'),
      join(this.lab, 'configs'),
      ...(this.created.length > 0 ? [`${up}${pick(this.rnd, this.created)}`] : []),
    ]);
  }

  /** Makes `dir` (relative) a real directory of the lab, replacing links or files on the way, so writes stay in the lab. */
  private realDir(dir: string): void {
    let at = this.lab;
    for (const part of dir.split('/').filter(Boolean)) {
      at = join(at, part);
      let isDir = false;
      try {
        isDir = lstatSync(at).isDirectory();
      } catch {
        // absent: made below
      }
      if (!isDir) {
        rmSync(at, { recursive: true, force: true });
        mkdirSync(at);
      }
    }
  }

  private place(): string {
    const dir = pick(this.rnd, DIRS);
    const path = dir === '' ? pick(this.rnd, NAMES) : `${dir}/${pick(this.rnd, NAMES)}`;
    this.realDir(dir);
    rmSync(join(this.lab, path), { recursive: true, force: true });
    this.created.push(path);
    return path;
  }

  /** One random change; returns the paths it touched (as a commit's diff would list them). */
  step(): string[] {
    const r = Math.floor(this.rnd() * 9);
    if (r === 0) {
      const path = this.place();
      symlinkSync(this.target(path), join(this.lab, path));
      return [path];
    }
    if (r === 1) {
      const path = this.place();
      execFileSync('mkfifo', [join(this.lab, path)]);
      return [path];
    }
    if (r === 2) {
      const kind = pick(this.rnd, ['hosts', 'profiles', 'images', 'site.yaml', 'secrets.sops.yaml']);
      rmSync(join(this.lab, kind), { recursive: true, force: true });
      symlinkSync(pick(this.rnd, [join(this.outside, kind === 'site.yaml' ? 'secret.txt' : 'hosts'), 'shared', join(this.outside, 'fifo'), '.git/config', 'configs/user-data']), join(this.lab, kind));
      return [kind];
    }
    if (r === 3) {
      const path = `profiles/p${Math.floor(this.rnd() * 3)}.yaml`;
      const name = path.slice(9, -5);
      this.realDir('profiles');
      rmSync(join(this.lab, path), { recursive: true, force: true });
      writeFileSync(join(this.lab, path), `apiVersion: forseti/v1\nkind: Profile\nname: ${name}\nboot:\n  image: tiny\n  cmdline: x\n  config: {name: c, file: ${JSON.stringify(this.namedPath())}}\n`);
      return [path];
    }
    if (r === 4) {
      const n = 3 + Math.floor(this.rnd() * 3);
      const path = `hosts/node-${n}.yaml`;
      this.realDir('hosts');
      rmSync(join(this.lab, path), { recursive: true, force: true });
      writeFileSync(
        join(this.lab, path),
        `apiVersion: forseti/v1\nkind: Host\nname: node-${n}\nmacs: [aa:bb:cc:00:01:0${n}]\nip: 10.9.0.${30 + n}\nbmc: {type: redfish, address: 10.9.1.${30 + n}, credential: c, tls: {ca: ${JSON.stringify(this.namedPath())}}}\nrole: off\n`,
      );
      return [path];
    }
    if (r === 5) {
      const path = this.place();
      writeFileSync(join(this.lab, path), pick(this.rnd, ['#cloud-config\n', 'apiVersion: forseti/v1\n', `a: ${'['.repeat(80)}${']'.repeat(80)}\n`, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']));
      return [path];
    }
    if (r === 6) {
      const path = this.place();
      mkdirSync(join(this.lab, path), { recursive: true });
      return [path];
    }
    if (r === 7 && this.created.length > 0) {
      // re-point an existing path: the incremental loader must see what its link now leads to
      const path = pick(this.rnd, this.created);
      this.realDir(dirname(path) === '.' ? '' : dirname(path));
      rmSync(join(this.lab, path), { recursive: true, force: true });
      symlinkSync(this.target(path), join(this.lab, path));
      return [path];
    }
    const path = 'configs/user-data';
    this.realDir('configs');
    rmSync(join(this.lab, path), { recursive: true, force: true });
    writeFileSync(join(this.lab, path), `#cloud-config ${this.rnd()}\n`);
    return [path];
  }
}

/** Every open of a file through node:fs while `run` runs (the loader's and anything that bypassed it). */
function traceOpens<T>(run: () => T): { result: T; opened: string[] } {
  const opened: string[] = [];
  const openSync = fs.openSync;
  const readFileSync = fs.readFileSync;
  mock.method(fs, 'openSync', (...args: Parameters<typeof fs.openSync>) => {
    opened.push(String(args[0]));
    return openSync(...args);
  });
  mock.method(fs, 'readFileSync', (...args: Parameters<typeof fs.readFileSync>) => {
    if (typeof args[0] !== 'number') opened.push(String(args[0]));
    return Reflect.apply(readFileSync, fs, args) as unknown;
  });
  syncBuiltinESMExports(); // the loader imports these by name
  try {
    return { result: run(), opened };
  } finally {
    mock.restoreAll();
    syncBuiltinESMExports();
  }
}

function assertInsideAndRegular(lab: string, opened: readonly string[], where: string): void {
  const root = realpathSync(lab);
  for (const path of opened) {
    const real = realpathSync(path);
    const rel = relative(root, real);
    assert.ok(rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel), `${where}: opened ${JSON.stringify(path)} outside the tree (${real})`);
    assert.ok(!rel.split(sep).some((p) => p.toLowerCase() === '.git'), `${where}: opened ${JSON.stringify(path)} inside .git`);
    assert.ok(lstatSync(real).isFile(), `${where}: opened ${JSON.stringify(path)}, not a regular file`);
  }
}

function assertSafeProblems(result: LoadResult, where: string): void {
  for (const p of result.problems) {
    const line = `${p.ref.file}:${p.ref.line}:${p.ref.col}: ${p.message}`;
    assert.doesNotMatch(line, /[\p{Cc}\p{Zl}\p{Zp}]/u, `${where}: a problem line holds a control character: ${JSON.stringify(line)}`);
    assert.ok(!line.includes(SECRET), `${where}: a problem carries outside content: ${line}`);
  }
  assert.ok(!JSON.stringify(result.lab ?? null).includes(SECRET), `${where}: the lab carries outside content`);
}

const observable = (r: LoadResult): unknown => ({ problems: r.problems, lab: r.lab && { site: r.lab.site, hosts: [...r.lab.hosts], profiles: [...r.lab.profiles], images: [...r.lab.images] } });

test('random lab trees: every file opened is a regular file inside the tree, whole loads and updates alike', { timeout: 300_000 }, async () => {
  new LabLoader().load(MINIMAL); // compiles the schemas (read from forseti's own directory) before tracing starts
  const work = mkdtempSync(join(tmpdir(), 'forseti-tree-paths-'));
  let refusals = 0;
  let opens = 0;
  try {
    for (let seed = 1; seed <= CASES; seed++) {
      const rnd = mulberry32(seed);
      const lab = new RandomLab(join(work, `case-${seed}`), rnd);
      const hooked: string[] = [];
      const loader = new LabLoader({ onOpen: (path) => hooked.push(path) });
      for (let i = 0, n = 4 + Math.floor(rnd() * 12); i < n; i++) lab.step();
      const whole = traceOpens(() => loader.load(lab.lab, 'r0'));
      assertInsideAndRegular(lab.lab, whole.opened, `seed ${seed} load`);
      opens += whole.opened.length;
      assertInsideAndRegular(lab.lab, hooked.splice(0), `seed ${seed} load (safe reader)`);
      assertSafeProblems(whole.result, `seed ${seed} load`);
      refusals += whole.result.problems.filter((p) => p.code === 'unsafe-path').length;

      for (let round = 1; round <= 3; round++) {
        const changed = lab.step();
        const where = `seed ${seed} update ${round} (${JSON.stringify(changed)})`;
        const update = traceOpens(() => loader.update(lab.lab, changed, `r${round}`));
        assertInsideAndRegular(lab.lab, update.opened, where);
        assertInsideAndRegular(lab.lab, hooked.splice(0), `${where} (safe reader)`);
        assertSafeProblems(update.result, where);
        assert.deepEqual(observable(update.result), observable(new LabLoader().load(lab.lab)), `${where}: an update equals a whole load`);
      }
      const secrets = await Secrets.load(undefined, {});
      const sops = traceOpens(() => secrets.withLab(lab.lab));
      await sops.result;
      assertInsideAndRegular(lab.lab, sops.opened, `seed ${seed} SOPS`);
      rmSync(lab.dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  assert.ok(refusals >= CASES / 2, `the cases do try to leave the tree (${refusals} refusals)`);
  assert.ok(opens >= CASES * 3, `the trace sees the loader's opens (${opens})`);
});
