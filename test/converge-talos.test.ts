// The Talos reducer (src/converge/talos.ts) over realistic event histories: the events of test/fixtures/talos-node.ts
// (order and encoding as a Talos node publishes them; sources cited there), encoded and decoded by the sink's own
// codec, with the ids a node gives them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTalosCodec, typeUrlOf, xidSequence, type TalosEventPayload } from '../src/serve/talos-events/index.ts';
import { initialTalosState, reduceTalos, talosStateOf, TALOS_STEPS, type TalosEventIn, type TalosState } from '../src/converge/talos.ts';
import {
  diskFirstBoot, pxeBadConfig, pxeBootOnInstalledDisk, pxeFailedInstall, pxeInstallBoot, sequenceError, phase, initializeSequence, sequence, machineStatus,
  type WireEvent,
} from './fixtures/talos-node.ts';

const codec = createTalosCodec();
const LIMITS = { maxStringLength: 2048, maxListItems: 64 };
const T0 = 1_767_225_600_000;

/** The events of one boot as the sink hands them on: wire-encoded and decoded, xid ids, one second apart. */
function boot(events: WireEvent[], bootNumber: number, startAt: number): TalosEventIn[] {
  const ids = xidSequence({ time: 1_767_225_600 + bootNumber * 100, machine: 0x5d1e2a, pid: 1, counter: 0x100000 * (bootNumber + 1) });
  return events.map((e, i) => {
    const payload: TalosEventPayload = codec.decodePayload(typeUrlOf(e.type), codec.encodePayload(e.type, e.fields), LIMITS);
    return { id: ids(), receivedAt: startAt + i * 1000, payload };
  });
}

const names = (s: TalosState): string[] => s.steps.map((st) => st.name);

interface Case {
  name: string;
  history: () => TalosEventIn[];
  want: {
    status: TalosState['status'];
    installed: boolean;
    steps?: string[];
    current?: { name: string; detail?: string };
    failure?: RegExp;
    failureStep?: string;
    halted?: boolean;
  };
}

const worker = diskFirstBoot('worker');
const bootstrapNode = diskFirstBoot('bootstrap-controlplane');
const joining = diskFirstBoot('controlplane');

const cases: Case[] = [
  {
    name: 'PXE install, kexec, first boot of a worker: installed, then Converged on RUNNING ready',
    history: () => [...boot(pxeInstallBoot(), 0, T0), ...boot([...worker.untilBootstrap, ...worker.afterBootstrap], 1, T0 + 600_000)],
    want: {
      status: 'converged',
      installed: true,
      steps: [
        TALOS_STEPS.initialize, TALOS_STEPS.installing, TALOS_STEPS.installedRebooting,
        TALOS_STEPS.initialize, TALOS_STEPS.diskBoot, TALOS_STEPS.runningNotReady, TALOS_STEPS.ready,
      ],
      current: { name: TALOS_STEPS.ready },
    },
  },
  {
    name: 'install ending in a plain restart (through the firmware), then the disk boot of a joining control plane',
    history: () => [...boot(pxeInstallBoot('restart'), 0, T0), ...boot([...joining.untilBootstrap, ...joining.afterBootstrap], 1, T0 + 900_000)],
    want: { status: 'converged', installed: true, current: { name: TALOS_STEPS.ready } },
  },
  {
    name: 'the first control plane waits for etcd until bootstrapped: its current step, not a failure',
    history: () => [...boot(pxeInstallBoot(), 0, T0), ...boot(bootstrapNode.untilBootstrap, 1, T0 + 600_000)],
    want: { status: 'in-progress', installed: true, current: { name: TALOS_STEPS.diskBoot, detail: 'services: etcd not running' } },
  },
  {
    name: 'the first control plane after `talosctl bootstrap`: Converged',
    history: () => [...boot(pxeInstallBoot(), 0, T0), ...boot([...bootstrapNode.untilBootstrap, ...bootstrapNode.afterBootstrap], 1, T0 + 600_000)],
    want: { status: 'converged', installed: true, current: { name: TALOS_STEPS.ready } },
  },
  {
    name: 'install written, kexec pending: installed only once the reboot is under way',
    history: () => boot(pxeInstallBoot().slice(0, pxeInstallBoot().findIndex((e) => e.type === 'PhaseEvent' && e.fields['phase'] === 'reboot')), 0, T0),
    want: { status: 'in-progress', installed: false, current: { name: TALOS_STEPS.installing } },
  },
  {
    name: 'the events of the install were lost (agent restarted): the disk boot alone says installed',
    history: () => boot([...worker.untilBootstrap, ...worker.afterBootstrap], 1, T0),
    want: { status: 'converged', installed: true },
  },
  {
    name: 'RUNNING and ready before any boot from disk is not Converged (a maintenance-mode or foreign history)',
    history: () => boot([sequence('initialize', 'START'), machineStatus('RUNNING', true)], 0, T0),
    want: { status: 'in-progress', installed: false, current: { name: TALOS_STEPS.ready } },
  },
  {
    name: 'the installer fails: Failed, naming the step and Talos\' error',
    history: () => boot(pxeFailedInstall(), 0, T0),
    want: { status: 'failed', installed: false, failure: /install sequence failed: .*disk "\/dev\/sdb" not found/, failureStep: TALOS_STEPS.installing },
  },
  {
    name: 'a config Talos refuses: Failed with its validation error',
    history: () => boot(pxeBadConfig(), 0, T0),
    want: { status: 'failed', installed: false, failure: /refused its machine config: [\s\S]*cluster instructions are required/ },
  },
  {
    name: 'PXE reached an installed disk with talos.halt_if_installed=1: installed, halted, not Converged',
    history: () => boot(pxeBootOnInstalledDisk(), 0, T0),
    want: { status: 'in-progress', installed: true, halted: true, current: { name: TALOS_STEPS.halted } },
  },
  {
    name: 'no config served: maintenance mode is a step',
    history: () => boot([sequence('initialize', 'START'), ...phase('config', ['runningMaintenance'], [machineStatus('MAINTENANCE', false)])], 0, T0),
    want: { status: 'in-progress', installed: false, current: { name: TALOS_STEPS.maintenance } },
  },
  {
    name: 'a sequence refused as LOCKED is no failure',
    history: () => boot([...initializeSequence(), sequenceError('reboot', 'LOCKED', 'sequence not started: locked')], 0, T0),
    want: { status: 'in-progress', installed: false, current: { name: TALOS_STEPS.initialize, detail: 'reboot not started: sequence not started: locked' } },
  },
  {
    name: 'nobody bootstraps within Talos\' boot timeout: the boot sequence fails, named',
    history: () => [
      ...boot(pxeInstallBoot(), 0, T0),
      ...boot([...bootstrapNode.untilBootstrap, sequence('boot', 'STOP'), sequenceError('boot', 'FATAL', 'sequence failed: error running phase 10 in boot sequence: task 1/1: failed, context deadline exceeded')], 1, T0 + 600_000),
    ],
    want: { status: 'failed', installed: true, failure: /boot sequence failed: .*context deadline exceeded/, failureStep: TALOS_STEPS.diskBoot },
  },
];

for (const c of cases) {
  test(`talos: ${c.name}`, () => {
    const state = talosStateOf(c.history());
    assert.equal(state.status, c.want.status);
    assert.equal(state.installed, c.want.installed);
    if (c.want.steps) assert.deepEqual(names(state), c.want.steps);
    if (c.want.current) {
      assert.equal(state.current?.name, c.want.current.name);
      if ('detail' in c.want.current) assert.equal(state.current?.detail, c.want.current.detail);
    }
    if (c.want.failure) assert.match(state.failure?.reason ?? '', c.want.failure);
    if (c.want.failureStep) assert.equal(state.failure?.step, c.want.failureStep);
    if (c.want.halted !== undefined) assert.equal(state.haltedOnInstalledDiskAt !== undefined, c.want.halted);
    for (const s of state.steps) assert.ok(Number.isFinite(s.at), 'every step has its time');
  });
}

test('talos: installed and converged carry the time of the event that proved them', () => {
  const history = [...boot(pxeInstallBoot(), 0, T0), ...boot([...worker.untilBootstrap, ...worker.afterBootstrap], 1, T0 + 600_000)];
  const state = talosStateOf(history);
  // The install's reboot phase starting (just before its RestartEvent) is the first sign of the reboot.
  const reboot = history.find((e) => e.payload.type === 'PhaseEvent' && e.payload.phase === 'reboot');
  assert.equal(state.installedAt, reboot?.receivedAt);
  assert.equal(state.convergedAt, history.at(-1)?.receivedAt);
  assert.ok((state.diskBootAt ?? 0) > (state.installedAt ?? Infinity));
});

test('talos: replays and duplicates (same id) change nothing', () => {
  const boot1 = boot(pxeInstallBoot(), 0, T0);
  const boot2 = boot([...bootstrapNode.untilBootstrap], 1, T0 + 600_000);
  const once = talosStateOf([...boot1, ...boot2]);
  // The whole buffer of boot 2 again (a sink's first connection replays it), with later arrival times.
  const replayed = talosStateOf(boot2.map((e) => ({ ...e, receivedAt: e.receivedAt + 3_600_000 })), once);
  assert.equal(replayed.status, once.status);
  assert.deepEqual({ ...replayed, seenIds: [] }, { ...once, seenIds: [] });
  // A replayed event returns the very same state object.
  const last = boot2.at(-1);
  assert.ok(last);
  assert.equal(reduceTalos(once, last), once);
  // Every event sent twice in a row (an answer lost, the node resends after reconnecting).
  const doubled = talosStateOf([...boot1, ...boot2].flatMap((e) => [e, { ...e, receivedAt: e.receivedAt + 1 }]));
  assert.deepEqual(doubled, once);
});

test('talos: an event stream that stops keeps the last step', () => {
  const partial = boot(pxeInstallBoot().slice(0, 30), 0, T0);
  const state = talosStateOf(partial);
  assert.equal(state.status, 'in-progress');
  assert.ok(state.current);
  assert.ok((state.progressAt ?? 0) >= state.current.at && (state.progressAt ?? Infinity) <= (partial.at(-1)?.receivedAt ?? 0));
  assert.equal(talosStateOf([], state), state);
});

test('talos: unknown payloads and service events change no step', () => {
  const start = talosStateOf(boot(initializeSequence(), 0, T0));
  const after = reduceTalos(start, { id: 'zz1', receivedAt: T0 + 99_000, payload: { type: 'unknown', typeUrl: 'type.googleapis.com/machine.FutureEvent', bytes: 3, reason: 'no definition for this type' } });
  assert.deepEqual(after.steps, start.steps);
  assert.equal(after.progressAt, start.progressAt);
  assert.deepEqual(initialTalosState().steps, []);
});
