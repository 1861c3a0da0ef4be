// `converge:` in a profile (issue 13): accepted by profile.schema.json (which takes converge.schema.json), problems
// at file:line:col, the phone-home when absent, and shown per role by `forseti plan`.
import { deepStrictEqual, ok } from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeConverge } from '../src/converge/converge-spec.ts';
import { formatProblem, loadLab } from '../src/model/load.ts';

const MINIMAL = fileURLToPath(new URL('./fixtures/labs/minimal/', import.meta.url));

async function withWorker(converge: string[]): Promise<Awaited<ReturnType<typeof loadLab>>> {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-converge-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    const worker = ['apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0', ...converge];
    writeFileSync(join(dir, 'profiles/worker.yaml'), `${worker.join('\n')}\n`);
    return await loadLab(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a profile without converge converges on the phone-home, as before', async () => {
  const { lab, problems } = await withWorker([]);
  deepStrictEqual(problems.map(formatProblem), []);
  deepStrictEqual(lab?.profiles.get('worker')?.converge, { mode: 'any', signals: [{ kind: 'phoneHome' }] });
});

test('converge is read into the profile', async () => {
  const { lab, problems } = await withWorker(['converge:', '  all: [talosEvents, {tcpProbe: {port: 50000}}]', '  stepTimeoutSeconds: 1800']);
  deepStrictEqual(problems.map(formatProblem), []);
  deepStrictEqual(lab?.profiles.get('worker')?.converge, { mode: 'all', signals: [{ kind: 'talosEvents' }, { kind: 'tcpProbe', port: 50000 }], stepTimeoutSeconds: 1800 });
});

test('a wrong converge is a schema problem at its file:line:col', async () => {
  const { lab, problems } = await withWorker(['converge:', '  any: [talosEvents, smoke]', '  all: [phoneHome]', '  stepTimeoutSeconds: 0', '  colour: blue']);
  ok(lab === null);
  deepStrictEqual(problems.map(formatProblem), [
    'profiles/worker.yaml:8:3: converge: converge needs exactly one of all or any',
    'profiles/worker.yaml:8:22: converge.any.1: a signal is one of phoneHome, talosEvents, installerReports, dhcpAfterInstall, tcpProbe, menuServed (tcpProbe as {tcpProbe: {port: N}})',
    'profiles/worker.yaml:10:23: converge.stepTimeoutSeconds: must be >= 1',
    'profiles/worker.yaml:11:3: converge.colour: unknown field (allowed: all, any, stepTimeoutSeconds, provisionTimeoutSeconds)',
  ]);
});

test('plan says a declaration in one line', () => {
  deepStrictEqual(describeConverge({ mode: 'any', signals: [{ kind: 'phoneHome' }] }), 'phoneHome');
  deepStrictEqual(describeConverge({ mode: 'all', signals: [{ kind: 'talosEvents' }, { kind: 'tcpProbe', port: 50000 }], stepTimeoutSeconds: 1800 }), 'all of talosEvents, tcpProbe:50000 (step timeout 1800 s)');
});
