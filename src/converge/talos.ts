// A host's Talos event history reduced to its convergence: a pure reducer over the events the event sink hands
// on (src/serve/talos-events), in the order they arrived. What the events mean comes from Talos' sources
// (siderolabs/talos; issue 13's research notes name the commits):
//   - internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_controller.go: a sequence is SequenceEvent START, its
//     phases and tasks, STOP; a sequence that returned an error adds SequenceEvent NOOP with common.Error
//     {FATAL, "sequence failed: ..."}; LOCKED means it did not start because another one runs.
//   - v1alpha1_sequencer.go: the install sequence runs on every boot and has phases only when nothing is
//     installed; its `reboot` task publishes RestartEvent and fails with "unix.Reboot(<cmd>)", so a finished
//     install ends in a FATAL NOOP that is success. "The boot sequence should never be reached if an
//     installation is not found." The `haltIfInstalled` phase runs when PXE finds Talos on the disk and
//     talos.halt_if_installed=1.
//   - controllers/runtime/machine_status.go: MachineStatusEvent stages and readiness (unmet conditions time,
//     network, services, staticPods, nodeReady). The first control plane stays BOOTING, ready false, with
//     `services: etcd ...` until it is bootstrapped: a step, not a failure.
// Installed: the install sequence wrote the disk and then rebooted (RestartEvent, the reboot phase, or the
// unix.Reboot NOOP; kexec skips the firmware and PXE), or a boot sequence started after an install sequence.
// Converged: MachineStatus RUNNING and ready after that boot from the disk.
import type { TalosEventPayload, UnmetCondition } from '../serve/talos-events/types.ts';
import { clip, converge, enterStep, fail, type SignalState } from './signal.ts';

export interface TalosEventIn {
  id: string;
  /** When the sink received it (events carry no time of their own). */
  receivedAt: number;
  payload: TalosEventPayload;
}

export interface TalosState extends SignalState {
  /** Ids already applied, newest last (at most SEEN_IDS): the same id again is a replay and changes nothing. */
  seenIds: string[];
  /** The sequence running now. */
  sequence?: string;
  /** An install sequence ran in this boot (with or without phases). */
  installSequenceSeen: boolean;
  /** The running install sequence wrote the disk (its `install` phase started). */
  installPhaseRan: boolean;
  installed: boolean;
  installedAt?: number;
  /** The boot sequence of the installed system started (from disk, or by kexec into it). */
  diskBootAt?: number;
  /** A PXE boot found Talos on the disk and halted (talos.halt_if_installed=1): answer "disk" and power-cycle. */
  haltedOnInstalledDiskAt?: number;
  stage?: string;
  ready: boolean;
  unmet: UnmetCondition[];
}

export const SEEN_IDS = 2048;

/** The reboot(2) commands of RestartEvent (<linux/reboot.h>). */
const REBOOT_COMMANDS: Record<number, string> = { 0x01234567: 'restart', 0x45584543: 'kexec', 0x4321fedc: 'power off', 0xcdef0123: 'halt' };

/** Step names a Talos host goes through. */
export const TALOS_STEPS = {
  initialize: 'talos: initialize',
  maintenance: 'talos: maintenance mode, waiting for a config',
  installing: 'talos: installing to disk',
  installedRebooting: 'talos: installed, rebooting',
  halted: 'talos: PXE found Talos installed, halted',
  diskBoot: 'talos: booting the installed system',
  booting: 'talos: booting',
  runningNotReady: 'talos: running, not ready',
  ready: 'talos: running, ready',
  rebooting: 'talos: rebooting',
} as const;

export function initialTalosState(): TalosState {
  return { status: 'waiting', steps: [], seenIds: [], installSequenceSeen: false, installPhaseRan: false, installed: false, ready: false, unmet: [] };
}

export function talosStateOf(events: Iterable<TalosEventIn>, from: TalosState = initialTalosState()): TalosState {
  let state = from;
  for (const event of events) state = reduceTalos(state, event);
  return state;
}

export function reduceTalos(state: TalosState, event: TalosEventIn): TalosState {
  if (state.seenIds.includes(event.id)) return state;
  const seenIds = [...state.seenIds, event.id];
  return apply({ ...state, seenIds: seenIds.length > SEEN_IDS ? seenIds.slice(seenIds.length - SEEN_IDS) : seenIds }, event.payload, event.receivedAt);
}

function apply(s: TalosState, p: TalosEventPayload, at: number): TalosState {
  switch (p.type) {
    case 'SequenceEvent':
      return sequenceEvent(s, p.sequence, p.action, p.error, at);
    case 'PhaseEvent':
    case 'TaskEvent': {
      const name = p.type === 'PhaseEvent' ? p.phase : p.task;
      if (p.action !== 'START') return s;
      if (name === 'haltIfInstalled') return markInstalled(enterStep({ ...s, haltedOnInstalledDiskAt: s.haltedOnInstalledDiskAt ?? at }, TALOS_STEPS.halted, at), at);
      if (p.type === 'TaskEvent' && name === 'runningMaintenance') return enterStep(s, TALOS_STEPS.maintenance, at);
      if (p.type !== 'PhaseEvent' || s.sequence !== 'install') return s;
      if (name === 'install') return enterStep({ ...s, installPhaseRan: true }, TALOS_STEPS.installing, at);
      if (name === 'reboot' && s.installPhaseRan) return installFinished(s, at);
      return s;
    }
    case 'RestartEvent': {
      const how = rebootCommand(p.cmd);
      if (s.sequence === 'install' && s.installPhaseRan) return installFinished(s, at, how);
      return enterStep(s, TALOS_STEPS.rebooting, at, how);
    }
    case 'ConfigLoadErrorEvent':
    case 'ConfigValidationErrorEvent':
      return fail(s, { step: s.current?.name ?? TALOS_STEPS.initialize, reason: `Talos refused its machine config: ${p.error}`, at });
    case 'MachineStatusEvent':
      return machineStatus(s, p.stage, p.ready, p.unmetConditions, at);
    default:
      // ServiceStateEvent, AddressEvent and payloads this sink does not know: the MachineStatus carries what matters.
      return s;
  }
}

function sequenceEvent(s: TalosState, sequence: string, action: 'NOOP' | 'START' | 'STOP', error: { code: string | number; message: string } | undefined, at: number): TalosState {
  if (action === 'START') {
    if (sequence === 'initialize') {
      // A new boot: its install sequence has not run yet.
      return enterStep({ ...s, sequence, installSequenceSeen: false, installPhaseRan: false }, TALOS_STEPS.initialize, at);
    }
    if (sequence === 'install') return { ...s, sequence, installSequenceSeen: true, installPhaseRan: false };
    if (sequence === 'boot') {
      // Talos runs the boot sequence only on an installed system; with halt_if_installed on the PXE line a PXE
      // boot never gets here, so this is the installed system.
      const booted = markInstalled({ ...s, sequence, diskBootAt: at }, at);
      return enterStep(booted, TALOS_STEPS.diskBoot, at);
    }
    if (sequence === 'reboot') return enterStep({ ...s, sequence }, TALOS_STEPS.rebooting, at);
    return enterStep({ ...s, sequence }, `talos: ${sequence}`, at);
  }
  if (action === 'STOP') return s.sequence === sequence ? { ...s, sequence: undefined } : s;
  if (error === undefined) return s;
  if (error.code === 'LOCKED') return enterStep(s, s.current?.name ?? `talos: ${sequence}`, at, `${sequence} not started: ${error.message}`);
  // The reboot at the end of an install (or an upgrade) surfaces as the sequence's error: it is its success.
  const reboot = /unix\.Reboot\(([0-9a-f]+)\)/.exec(error.message);
  if (reboot) return sequence === 'install' && s.installPhaseRan ? installFinished(s, at, rebootCommand(Number.parseInt(reboot[1] ?? '', 16))) : s;
  return fail(s, { step: s.current?.name ?? `talos: ${sequence}`, reason: `Talos ${sequence} sequence failed: ${error.message}`, at });
}

/** The install's reboot: the reboot phase starting, its RestartEvent (kexec or restart), its unix.Reboot NOOP. */
function installFinished(s: TalosState, at: number, how?: string): TalosState {
  const already = s.current?.name === TALOS_STEPS.installedRebooting;
  const entered = already && (how === undefined || s.current?.detail === how) ? s : enterStep(s, TALOS_STEPS.installedRebooting, at, how);
  return markInstalled(entered, at);
}

function rebootCommand(cmd: number): string {
  return REBOOT_COMMANDS[cmd] ?? `reboot(2) command 0x${cmd.toString(16)}`;
}

function markInstalled(s: TalosState, at: number): TalosState {
  return s.installed ? s : { ...s, installed: true, installedAt: at, progressAt: at };
}

function machineStatus(s: TalosState, stage: string | number, ready: boolean, unmet: UnmetCondition[], at: number): TalosState {
  const stageName = typeof stage === 'number' ? `stage ${stage}` : stage;
  const withStatus: TalosState = { ...s, stage: stageName, ready, unmet };
  const detail = clip(unmet.map((c) => (c.reason === '' ? c.name : `${c.name}: ${c.reason}`)).join('; '));
  const step = stepOfStage(stageName, ready, s);
  if (step === undefined) return withStatus;
  const entered = enterStep(withStatus, step, at, detail);
  return stageName === 'RUNNING' && ready && s.diskBootAt !== undefined ? converge(entered, at) : entered;
}

function stepOfStage(stage: string, ready: boolean, s: TalosState): string | undefined {
  switch (stage) {
    case 'BOOTING':
      // The stage change that follows the boot sequence's start keeps that step's name.
      return s.current?.name === TALOS_STEPS.diskBoot ? TALOS_STEPS.diskBoot : s.current?.name === TALOS_STEPS.initialize ? TALOS_STEPS.initialize : TALOS_STEPS.booting;
    case 'INSTALLING':
      return TALOS_STEPS.installing;
    case 'MAINTENANCE':
      return TALOS_STEPS.maintenance;
    case 'RUNNING':
      return ready ? TALOS_STEPS.ready : TALOS_STEPS.runningNotReady;
    case 'REBOOTING':
      // The install's own kexec/reboot is already its step.
      return s.current?.name === TALOS_STEPS.installedRebooting || s.current?.name === TALOS_STEPS.installing ? undefined : TALOS_STEPS.rebooting;
    case 'UNKNOWN':
      return undefined;
    default:
      return `talos: ${stage.toLowerCase().replace(/_/g, ' ')}`;
  }
}
