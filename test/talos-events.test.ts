// The Talos event sink (src/serve/talos-events): its .proto files against upstream's names and numbers, the
// generated descriptor, and the gRPC server against a client that plays a Talos node over real HTTP/2 on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import protobuf from 'protobufjs';
import { descriptorFile, descriptorSource } from '../src/serve/talos-events/generate-descriptor.ts';
import { TALOS_EVENTS_DESCRIPTOR } from '../src/serve/talos-events/descriptor.ts';
import {
  encodeXid, parseXid, peerAddress, startTalosEventSink, typeUrlOf, createTalosCodec,
  type ReceivedTalosEvent, type TalosEventSink, type TalosEventSinkLimits, type TalosEventsLogger,
} from '../src/serve/talos-events/index.ts';
import { diskFirstBoot, pxeInstallBoot, talosNode, type TalosNode } from './fixtures/talos-node.ts';
import { importsUnder } from './fixtures/module-imports.ts';

interface LogLine { level: string; msg: string; obj: object }
function recordingLogger(): TalosEventsLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    debug: () => {},
  };
}

async function withSink(
  limits: Partial<TalosEventSinkLimits>,
  body: (ctx: { sink: TalosEventSink; events: ReceivedTalosEvent[]; log: ReturnType<typeof recordingLogger>; node: TalosNode; target: string }) => Promise<void>,
  host = '127.0.0.1',
  onEvent?: (e: ReceivedTalosEvent) => void,
): Promise<void> {
  const events: ReceivedTalosEvent[] = [];
  const log = recordingLogger();
  const sink = await startTalosEventSink({ host, port: 0, limits, log, onEvent: onEvent ?? ((e) => events.push(e)), now: () => 1_767_225_600_000 + events.length });
  const target = `127.0.0.1:${sink.address.port}`;
  const node = talosNode({ target });
  try {
    await body({ sink, events, log, node, target });
  } finally {
    node.close();
    await sink.close();
  }
}

/** Waits for a condition the server reaches asynchronously; fails after `tries` turns of 20 ms. */
async function eventually(what: string, check: () => boolean, tries = 250): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`never: ${what}`);
}

test('descriptor.ts is what proto/*.proto give (run generate-descriptor.ts after changing them)', () => {
  assert.equal(readFileSync(descriptorFile(), 'utf8'), descriptorSource());
});

test('the .proto files carry upstream package names, message names, field numbers and enum values', () => {
  const root = protobuf.Root.fromJSON(TALOS_EVENTS_DESCRIPTOR as protobuf.INamespace);
  const fields = (name: string): Record<string, number> => Object.fromEntries(root.lookupType(name).fieldsArray.map((f) => [f.name, f.id]));
  const values = (name: string): Record<string, number> => ({ ...root.lookupEnum(name).values });
  // siderolabs/siderolink api/events/events.proto @16a84eb and events.pb.go @8866351.
  assert.deepEqual(fields('events.EventRequest'), { data: 1, id: 2, actor_id: 3 });
  assert.deepEqual(fields('events.EventResponse'), {});
  const service = root.lookupService('events.EventSinkService');
  assert.deepEqual(Object.keys(service.methods), ['Publish']);
  // siderolabs/talos api/machine/machine.proto @020a0eb; api/common/common.proto @0f169bf.
  assert.deepEqual(fields('machine.SequenceEvent'), { sequence: 1, action: 2, error: 3 });
  assert.deepEqual(values('machine.SequenceEvent.Action'), { NOOP: 0, START: 1, STOP: 2 });
  assert.deepEqual(fields('machine.PhaseEvent'), { phase: 1, action: 2 });
  assert.deepEqual(values('machine.PhaseEvent.Action'), { START: 0, STOP: 1 });
  assert.deepEqual(fields('machine.TaskEvent'), { task: 1, action: 2 });
  assert.deepEqual(fields('machine.ServiceStateEvent'), { service: 1, action: 2, message: 3, health: 4 });
  assert.deepEqual(values('machine.ServiceStateEvent.Action'), { INITIALIZED: 0, PREPARING: 1, WAITING: 2, RUNNING: 3, STOPPING: 4, FINISHED: 5, FAILED: 6, SKIPPED: 7 });
  assert.deepEqual(fields('machine.ServiceHealth'), { unknown: 1, healthy: 2, last_message: 3, last_change: 4 });
  assert.deepEqual(fields('machine.RestartEvent'), { cmd: 1 });
  assert.equal(root.lookupType('machine.RestartEvent').fields['cmd']?.type, 'int64');
  assert.deepEqual(fields('machine.ConfigLoadErrorEvent'), { error: 1 });
  assert.deepEqual(fields('machine.ConfigValidationErrorEvent'), { error: 1 });
  assert.deepEqual(fields('machine.AddressEvent'), { hostname: 1, addresses: 2 });
  assert.deepEqual(fields('machine.MachineStatusEvent'), { stage: 1, status: 2 });
  assert.deepEqual(fields('machine.MachineStatusEvent.MachineStatus'), { ready: 1, unmet_conditions: 2 });
  assert.deepEqual(fields('machine.MachineStatusEvent.MachineStatus.UnmetCondition'), { name: 1, reason: 2 });
  assert.deepEqual(values('machine.MachineStatusEvent.MachineStage'), { UNKNOWN: 0, BOOTING: 1, INSTALLING: 2, MAINTENANCE: 3, RUNNING: 4, REBOOTING: 5, SHUTTING_DOWN: 6, RESETTING: 7, UPGRADING: 8 });
  assert.deepEqual(fields('common.Error'), { code: 1, message: 2, details: 3 });
  assert.deepEqual(values('common.Code'), { FATAL: 0, LOCKED: 1 });
});

test('payloads are encoded as Go writes proto3: zero values left off', () => {
  const codec = createTalosCodec();
  // PhaseEvent{phase: "install", action: START}: START is 0, so only field 1 (tag 0x0a) goes out.
  assert.equal(Buffer.from(codec.encodePayload('PhaseEvent', { phase: 'install', action: 'START' })).toString('hex'), '0a07696e7374616c6c');
  // ...and STOP = 1 adds field 2 (tag 0x10).
  assert.equal(Buffer.from(codec.encodePayload('PhaseEvent', { phase: 'install', action: 'STOP' })).toString('hex'), '0a07696e7374616c6c1001');
  // An EventRequest without an actor id has fields 1 and 2 only.
  const request = codec.encodeRequest({ id: '9m4e2mr0ui3e8a215n4g', actorId: '', data: { typeUrl: typeUrlOf('PhaseEvent'), value: new Uint8Array([0x0a, 0x00]) } });
  assert.equal(Buffer.from(request).subarray(0, 1).toString('hex'), '0a');
  assert.ok(!Buffer.from(request).includes(0x1a), 'no field 3');
});

test('xid ids as rs/xid writes them (id_test.go vector), strict parsing', () => {
  const bytes = Uint8Array.from([0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4, 0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9]);
  assert.equal(encodeXid(bytes), '9m4e2mr0ui3e8a215n4g');
  assert.deepEqual(parseXid('9m4e2mr0ui3e8a215n4g'), { time: 1300816219, machine: 0x60f486, pid: 0xe428, counter: 4271561 });
  for (const bad of ['9M4E2MR0UI3E8A215N4G', 'c6e52g2mrqcjl44hf179', 'invalid', '9m4e2mr0ui3e8a215n4g0']) assert.equal(parseXid(bad), undefined, bad);
});

test('peer strings become plain IP addresses (IPv4-mapped IPv6 as IPv4)', () => {
  const table: Array<[string, string | undefined]> = [
    ['127.0.0.1:50123', '127.0.0.1'],
    ['::ffff:10.77.0.11:50123', '10.77.0.11'],
    ['::FFFF:10.77.0.11:1', '10.77.0.11'],
    ['[::ffff:10.77.0.11]:50123', '10.77.0.11'],
    ['[fdae:41e4:649b:9303::1]:8091', 'fdae:41e4:649b:9303::1'],
    ['ipv4:10.0.0.1:4000', '10.0.0.1'],
    ['::1', '::1'],
    ['10.0.0.1', '10.0.0.1'],
    ['unix:/tmp/x', undefined],
    ['', undefined],
  ];
  for (const [peer, want] of table) assert.equal(peerAddress(peer), want, peer);
});

test('an install and the first boot from disk arrive in order, decoded, with the peer address, each answered OK', async () => {
  await withSink({}, async ({ events, node }) => {
    const boot1 = await node.publish(pxeInstallBoot());
    node.reboot();
    const { untilBootstrap, afterBootstrap } = diskFirstBoot('bootstrap-controlplane');
    const boot2 = await node.publish([...untilBootstrap, ...afterBootstrap]);
    const sent = [...boot1, ...boot2];
    assert.equal(events.length, sent.length);
    assert.deepEqual(events.map((e) => e.id), sent.map((p) => p.id));
    assert.ok(events.every((e) => e.peer === '127.0.0.1' && e.actorId === ''));
    assert.ok(events.every((e) => e.payload.type !== 'unknown'), 'every payload decodes');
    assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'ids are unique across the two boots');
    const last = events.at(-1)?.payload;
    assert.deepEqual(last, { type: 'MachineStatusEvent', stage: 'RUNNING', ready: true, unmetConditions: [] });
    const fatal = events.find((e) => e.payload.type === 'SequenceEvent' && e.payload.action === 'NOOP')?.payload;
    assert.deepEqual(fatal, {
      type: 'SequenceEvent', sequence: 'install', action: 'NOOP',
      error: { code: 'FATAL', message: 'sequence failed: error running phase 9 in install sequence: task 1/1: failed, unix.Reboot(45584543)' },
    });
    assert.deepEqual(events.find((e) => e.payload.type === 'RestartEvent')?.payload, { type: 'RestartEvent', cmd: 0x45584543 });
    const waiting = events.find((e) => e.payload.type === 'MachineStatusEvent' && e.payload.unmetConditions.some((c) => c.reason === 'etcd not running'));
    assert.ok(waiting, 'the bootstrap node reports its wait for etcd');
  });
});

test('a replay after a reconnect is handed on again with the same ids (dropping them is the reducer\'s job)', async () => {
  await withSink({}, async ({ events, node }) => {
    const sent = await node.publish(pxeInstallBoot().slice(0, 12));
    await node.replay(sent.slice(5));
    assert.equal(events.length, 12 + 7);
    assert.deepEqual(events.slice(12).map((e) => e.id), sent.slice(5).map((p) => p.id));
  });
});

test('unknown types pass through as unknown, the talos/runtime/ prefix decodes, bad requests are answered OK and dropped', async () => {
  await withSink({}, async ({ events, node, log, target }) => {
    const codec = createTalosCodec();
    assert.equal(await node.send({ id: 'a1', actorId: '', data: { typeUrl: 'type.googleapis.com/machine.FutureEvent', value: new Uint8Array([8, 1]) } }), 0);
    assert.equal(await node.send({ id: 'a2', actorId: 'c5d5c8c2-7a1e-4f7b-9a57-0c4c1a2e8f1d', data: { typeUrl: 'talos/runtime/machine.PhaseEvent', value: codec.encodePayload('PhaseEvent', { phase: 'kexec', action: 'STOP' }) } }), 0);
    assert.equal(await node.send({ id: 'a3', actorId: '', data: { typeUrl: typeUrlOf('PhaseEvent'), value: new Uint8Array([0xff]) } }), 0);
    assert.equal(await node.send({ id: 'a4', actorId: '' }), 0);
    assert.equal(await node.send({ id: '', actorId: '', data: { typeUrl: typeUrlOf('PhaseEvent'), value: new Uint8Array() } }), 0, 'no id: answered OK');
    assert.equal(await node.send({ id: 'x'.repeat(65), actorId: '' }), 0, 'an over-long id: answered OK');
    assert.deepEqual(events.map((e) => [e.id, e.payload.type]), [['a1', 'unknown'], ['a2', 'PhaseEvent'], ['a3', 'unknown'], ['a4', 'unknown']]);
    assert.deepEqual(events[0]?.payload, { type: 'unknown', typeUrl: 'type.googleapis.com/machine.FutureEvent', bytes: 2, reason: 'no definition for this type' });
    assert.deepEqual(events[1]?.payload, { type: 'PhaseEvent', phase: 'kexec', action: 'STOP' });
    assert.equal(events[1]?.actorId, 'c5d5c8c2-7a1e-4f7b-9a57-0c4c1a2e8f1d');
    assert.match(events[2]?.payload.type === 'unknown' ? events[2].payload.reason : '', /does not decode as machine.PhaseEvent/);
    assert.equal(log.lines.filter((l) => /id or actor id/.test(l.msg)).length, 2);
    // Bytes that are no EventRequest at all, through a raw client.
    const raw = await import('@grpc/grpc-js');
    const client = new raw.Client(target, raw.credentials.createInsecure());
    const code = await new Promise<number>((resolve) =>
      client.makeUnaryRequest('/events.EventSinkService/Publish', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff, 0xff]), (err) => resolve(err ? err.code : 0)),
    );
    client.close();
    assert.equal(code, 0);
    assert.ok(log.lines.some((l) => l.level === 'warn' && /not an EventRequest/.test(l.msg)));
    assert.equal(events.length, 4);
  });
});

test('an event handler that throws costs a log line, never the answer', async () => {
  const log: string[] = [];
  const sink = await startTalosEventSink({
    host: '127.0.0.1', port: 0,
    onEvent: () => { throw new Error('store is full'); },
    log: { info() {}, debug() {}, warn: (_o, m) => log.push(m) },
  });
  const node = talosNode({ target: `127.0.0.1:${sink.address.port}` });
  try {
    await node.publish(pxeInstallBoot().slice(0, 3));
    assert.equal(log.filter((m) => /handler failed/.test(m)).length, 3);
  } finally {
    node.close();
    await sink.close();
  }
});

test('a message over maxMessageBytes is refused (RESOURCE_EXHAUSTED) with a log line; the next one is served', async () => {
  await withSink({ maxMessageBytes: 1024 }, async ({ events, node, log }) => {
    const big = { id: 'big1', actorId: '', data: { typeUrl: typeUrlOf('ConfigLoadErrorEvent'), value: new Uint8Array(2000).fill(0x41) } };
    assert.equal(await node.send(big), 8 /* RESOURCE_EXHAUSTED */);
    await eventually('the cap is logged', () => log.lines.some((l) => /1024-byte cap/.test(l.msg)));
    assert.equal(events.length, 0);
    await node.publish(pxeInstallBoot().slice(0, 2));
    assert.equal(events.length, 2);
  });
});

function openRaw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Flowing, so that the server's FIN is read and 'close' comes.
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s.resume()));
    s.on('error', reject);
  });
}

test('connections per address are capped with a log line; a connection that makes no call is closed', async () => {
  await withSink({ maxConnectionsPerPeer: 2, firstCallTimeoutMs: 300 }, async ({ sink, log, node, events }) => {
    const a = await openRaw(sink.address.port);
    const b = await openRaw(sink.address.port);
    await eventually('two connections', () => sink.connections() === 2);
    const c = await openRaw(sink.address.port);
    await new Promise<void>((resolve) => c.once('close', () => resolve()));
    assert.ok(log.lines.some((l) => l.level === 'warn' && /maxConnectionsPerPeer/.test(l.msg)), 'the refusal is logged');
    // The two silent ones are closed once firstCallTimeoutMs passed without a call.
    await Promise.all([a, b].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())))));
    assert.ok(log.lines.some((l) => /made no call in time/.test(l.msg)));
    await eventually('the slots are free again', () => sink.connections() === 0);
    // A node that publishes keeps its connection.
    await node.publish(pxeInstallBoot().slice(0, 2));
    assert.equal(events.length, 2);
  });
});

test('connections in all are capped with a log line', async () => {
  await withSink({ maxConnections: 2, maxConnectionsPerPeer: 8 }, async ({ sink, log }) => {
    const open = [await openRaw(sink.address.port), await openRaw(sink.address.port)];
    await eventually('two connections', () => sink.connections() === 2);
    const third = await openRaw(sink.address.port);
    await new Promise<void>((resolve) => third.once('close', () => resolve()));
    await eventually('the refusal is logged', () => log.lines.some((l) => /maxConnections\)/.test(l.msg)));
    for (const s of open) s.destroy();
  });
});

test('an idle connection is closed after idleTimeoutMs; the node redials for its next event', async () => {
  await withSink({ idleTimeoutMs: 300 }, async ({ sink, node, events }) => {
    await node.publish(pxeInstallBoot().slice(0, 2));
    assert.equal(sink.connections(), 1);
    await eventually('the idle connection is closed', () => sink.connections() === 0);
    await node.publish(pxeInstallBoot().slice(2, 4));
    assert.equal(events.length, 4);
  });
});

test('bound to :: (dual stack), an IPv4 peer is reported as plain IPv4', async (t) => {
  try {
    await withSink({}, async ({ node, events }) => {
      await node.publish(pxeInstallBoot().slice(0, 1));
      assert.equal(events[0]?.peer, '127.0.0.1');
    }, '::');
  } catch (err) {
    if (/EAFNOSUPPORT|EADDRNOTAVAIL/.test(String(err))) t.skip('no IPv6 on this machine');
    else throw err;
  }
});

test('bad options are refused before anything listens', async () => {
  await assert.rejects(startTalosEventSink({ host: 'localhost', port: 0, onEvent() {} }), /must be an IP address/);
  await assert.rejects(startTalosEventSink({ host: '127.0.0.1', port: 0, onEvent() {}, limits: { maxConnections: 0 } }), /maxConnections must be a positive integer/);
  const first = await startTalosEventSink({ host: '127.0.0.1', port: 0, onEvent() {} });
  try {
    await assert.rejects(startTalosEventSink({ host: '127.0.0.1', port: first.address.port, onEvent() {} }), { name: 'TalosEventSinkBindError' });
  } finally {
    await first.close();
  }
});

test('the event sink imports nothing of the product: node built-ins, @grpc/grpc-js, protobufjs and its own files', () => {
  const imports = importsUnder(new URL('../src/serve/talos-events/', import.meta.url));
  assert.ok(imports.length > 3, 'the scan sees the imports');
  for (const i of imports) {
    const ok = i.specifier.startsWith('node:') || i.specifier.startsWith('./') || i.specifier === '@grpc/grpc-js' || i.specifier.startsWith('protobufjs');
    assert.ok(ok, `${i.file} imports ${i.specifier}`);
  }
});

test('bundled into one CommonJS file (as scripts/build-release.mjs bundles), the sink reads no file at run time and serves', async () => {
  const result = await build({
    entryPoints: [new URL('../src/serve/talos-events/index.ts', import.meta.url).pathname],
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', write: false, logLevel: 'error',
  });
  const dir = mkdtempSync(join(tmpdir(), 'forseti-sink-bundle-'));
  try {
    // Outside the repository: no node_modules and no .proto file to find.
    const file = join(dir, 'sink.cjs');
    writeFileSync(file, result.outputFiles[0]?.contents ?? new Uint8Array());
    const bundled = createRequire(file)(file) as typeof import('../src/serve/talos-events/index.ts');
    const events: ReceivedTalosEvent[] = [];
    const sink = await bundled.startTalosEventSink({ host: '127.0.0.1', port: 0, onEvent: (e) => events.push(e) });
    const node = talosNode({ target: `127.0.0.1:${sink.address.port}` });
    try {
      await node.publish(pxeInstallBoot().slice(-3));
      assert.deepEqual(events.map((e) => e.payload.type), ['PhaseEvent', 'SequenceEvent', 'SequenceEvent']);
      assert.deepEqual(events[2]?.payload, { type: 'SequenceEvent', sequence: 'install', action: 'NOOP', error: { code: 'FATAL', message: 'sequence failed: error running phase 9 in install sequence: task 1/1: failed, unix.Reboot(45584543)' } });
    } finally {
      node.close();
      await sink.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
