// The converge signals of every host's provisioning attempt (issue 13), fed by what the agent sees: Talos events
// from its event sink (mapped to a host by the peer's address, the host's reserved `ip`), installer reports POSTed
// with the attempt's token, the phone-home, the "boot from disk" answer, the menu served, DHCP requests. Each
// signal is reduced by src/converge; what moved becomes a host event (a step with its detail, installed,
// converged, failed) recorded by the HostTracker, so status, the boot answer and the reconcile decision follow.
// Signal states live for one attempt (its nonce) and in memory: an agent restart starts them afresh, while the
// host's phase, steps and "installed" stay in the journal.
import { connect } from 'node:net';
import type { Logger } from '../log.ts';
import { hostConvergence, signalKey, type ConvergeSpec, type TcpProbeAfter } from '../converge/converge-spec.ts';
import { initialInstallerState, parseInstallerReport, reduceInstallerReport, type InstallerState } from '../converge/installer-reports.ts';
import { dhcpAfterInstallSignal, observedSignal, tcpProbeSignal, type DhcpSeen, type ProbeResult } from '../converge/simple-signals.ts';
import type { SignalState } from '../converge/signal.ts';
import { initialTalosState, reduceTalos, TALOS_STEPS, type TalosState } from '../converge/talos.ts';
import type { ConvergeStepRecord, ObservedHost } from '../core/host-state.ts';
import type { Host, Lab } from '../model/types.ts';
import type { HostTracker } from '../observe/host-tracker.ts';
import type { Generation } from '../render/generation.ts';
import { startTalosEventSink, type ReceivedTalosEvent, type TalosEventSink, type TalosEventSinkLimits } from './talos-events/index.ts';

/** agent.yaml `serve.talosEvents`. */
export interface TalosEventsSettings {
  /** 0: an ephemeral port (tests). */
  port: number;
  limits?: Partial<TalosEventSinkLimits>;
}

/** One attempt's signals. */
interface AttemptSignals {
  nonce: string;
  talos: TalosState;
  installer: InstallerState;
  dhcp: DhcpSeen[];
  /** tcpProbe results by port. */
  probes: Array<ProbeResult & { port: number }>;
  lastProbeAt?: number;
  probing?: boolean;
  phoneHomeAt?: number;
  menuServedAt?: number;
  diskAnsweredAt?: number;
  /** forseti served the host its own script (tcpProbe after: boot counts from here). */
  scriptServedAt?: number;
  /** The last step recorded per signal, so only a change is recorded. */
  recorded: Map<string, string>;
}

/** Events from addresses no host has are logged at most once per this interval, with the count since. */
const IGNORED_LOG_INTERVAL_MS = 60_000;
/** Requests a host's DHCP signal keeps. */
const MAX_DHCP_SEEN = 32;
/** How often a host's tcpProbe ports are tried, how long a connect may take, and how many results are kept. */
const PROBE_INTERVAL_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;
const MAX_PROBES = 64;

/** Whether `ip:port` accepts a TCP connection within PROBE_TIMEOUT_MS; the connection is closed at once. */
function probe(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class ConvergeSignals {
  private readonly attempts = new Map<string, AttemptSignals>();
  private sink: { sink: TalosEventSink; bind: string } | null = null;
  private starting: Promise<number> | null = null;
  private readonly ignored = { count: 0, loggedAt: Number.NEGATIVE_INFINITY, suppressed: 0 };

  constructor(
    private readonly current: () => Generation | null,
    private readonly tracker: HostTracker,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Events from addresses that are no host's reserved address, since the start. */
  get ignoredEvents(): number {
    return this.ignored.count;
  }

  /**
   * Starts the Talos event sink when a profile of `lab` converges on talosEvents (once; it keeps running) and
   * returns the port it listens on; undefined when no profile needs it and it does not run.
   */
  async ensureSink(lab: Lab, bindAddress: string, settings: TalosEventsSettings): Promise<number | undefined> {
    if (this.sink) return this.sink.sink.address.port;
    const needed = [...lab.profiles.values()].some((p) => p.converge.signals.some((s) => s.kind === 'talosEvents'));
    if (!needed) return undefined;
    this.starting ??= startTalosEventSink({
      host: bindAddress,
      port: settings.port,
      onEvent: (event) => this.talosEvent(event),
      log: this.log.child({ component: 'talos-events' }),
      ...(settings.limits ? { limits: settings.limits } : {}),
      now: this.now,
    }).then((sink) => {
      this.sink = { sink, bind: bindAddress };
      return sink.address.port;
    }).finally(() => (this.starting = null));
    return this.starting;
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.sink?.sink.close();
    this.sink = null;
  }

  /** One event from the sink: to the host whose reserved address sent it, if it is provisioning a Talos role. */
  talosEvent(event: ReceivedTalosEvent): void {
    const host = this.hostAt(event.peer);
    if (!host) return this.ignore(event.peer);
    const attempt = this.attemptOf(host, 'talosEvents');
    if (!attempt) return;
    const next = reduceTalos(attempt.talos, { id: event.id, receivedAt: event.receivedAt, payload: event.payload });
    if (next === attempt.talos) return;
    attempt.talos = next;
    this.moved(host.name, attempt, 'talosEvents', next, next.installed);
  }

  /**
   * One installer report POSTed with `token` already checked against the host's attempt (boot-backend.ts). `target`:
   * the installed system's own endpoint (its cloud-init), whose modules-final counts without an installer's finish.
   */
  installerReport(host: Host, body: string, target: boolean): { status: number; message: string } {
    const parsed = parseInstallerReport(body);
    if (!parsed.ok) {
      this.log.warn({ host: host.name, reason: parsed.refusal }, 'installer report refused');
      return { status: 400, message: `refused: ${parsed.refusal}` };
    }
    const attempt = this.attemptOf(host, 'installerReports');
    if (!attempt) return { status: 409, message: `refused: ${host.name} is not installing (or wiping with) a role that converges on installerReports` };
    const next = reduceInstallerReport(attempt.installer, { report: parsed.report, receivedAt: this.now() }, { finalNeedsInstall: !target });
    if (next !== attempt.installer) {
      attempt.installer = next;
      this.moved(host.name, attempt, 'installerReports', next, next.installFinishedAt !== undefined);
    }
    return { status: 200, message: `ok ${host.name}` };
  }

  /** The phone-home of a host whose role declares converge signals (the default one records phone-home itself). */
  phoneHome(host: Host): void {
    const attempt = this.attemptOf(host, 'phoneHome');
    if (!attempt || attempt.phoneHomeAt !== undefined) return;
    attempt.phoneHomeAt = this.now();
    this.moved(host.name, attempt, 'phoneHome', observedSignal('phoned home', attempt.phoneHomeAt), false);
  }

  /** A host was given its menu (a chain role). */
  menuServed(host: Host): void {
    const attempt = this.attemptOf(host, 'menuServed');
    if (!attempt || attempt.menuServedAt !== undefined) return;
    attempt.menuServedAt = this.now();
    this.moved(host.name, attempt, 'menuServed', observedSignal('menu served', attempt.menuServedAt), false);
  }

  /** The host was answered "boot from disk" during its attempt: what dhcpAfterInstall and tcpProbe wait for. */
  diskAnswered(host: Host): void {
    const attempt = this.attemptOf(host);
    if (attempt && attempt.diskAnsweredAt === undefined) attempt.diskAnsweredAt = this.now();
  }

  /** The host was served its own script during its attempt. */
  scriptServed(host: Host): void {
    const attempt = this.attemptOf(host);
    if (attempt && attempt.scriptServedAt === undefined) attempt.scriptServedAt = this.now();
  }

  /** A DHCP request from one of the host's MACs. */
  dhcp(host: Host, request: Omit<DhcpSeen, 'at'>): void {
    const attempt = this.attemptOf(host, 'dhcpAfterInstall');
    if (!attempt || attempt.diskAnsweredAt === undefined) return;
    attempt.dhcp = [...attempt.dhcp, { ...request, at: this.now() }].slice(-MAX_DHCP_SEEN);
    const state = dhcpAfterInstallSignal(attempt.dhcp, attempt.diskAnsweredAt);
    this.moved(host.name, attempt, 'dhcpAfterInstall', state, false);
  }

  /**
   * tcpProbe: each host whose role declares it, once answered "disk" (or installed, as a kexec skips PXE), gets its
   * ports tried at most every PROBE_INTERVAL_MS with a connect timeout; called on every reconcile pass.
   */
  tick(): void {
    const gen = this.current();
    if (!gen) return;
    const t = this.now();
    for (const host of gen.lab.hosts.values()) {
      const attempt = this.attemptOf(host);
      if (!attempt || t - (attempt.lastProbeAt ?? 0) < PROBE_INTERVAL_MS || attempt.probing) continue;
      const due = (this.specNow(host)?.signals ?? []).flatMap((s) => (s.kind === 'tcpProbe' && this.probeFrom(host, attempt, s.after) !== undefined ? [s] : []));
      if (due.length === 0) continue;
      attempt.lastProbeAt = t;
      attempt.probing = true;
      void Promise.all(due.map((s) => probe(host.ip, s.port).then((open) => ({ port: s.port, open, at: this.now() })))).then((results) => {
        attempt.probing = false;
        attempt.probes = [...attempt.probes, ...results].slice(-MAX_PROBES);
        for (const s of due) this.moved(host.name, attempt, signalKey(s), this.probeState(host, attempt, s), false);
      });
    }
  }

  private probeFrom(host: Host, attempt: AttemptSignals, after: TcpProbeAfter = 'disk'): number | undefined {
    if (after === 'boot') return attempt.scriptServedAt;
    return attempt.diskAnsweredAt ?? this.tracker.get(host.name).attemptInstalledAt;
  }

  private probeState(host: Host, attempt: AttemptSignals, signal: { port: number; after?: TcpProbeAfter }): SignalState {
    return tcpProbeSignal(signal.port, attempt.probes.filter((p) => p.port === signal.port), this.probeFrom(host, attempt, signal.after));
  }

  /** The host's profile's declaration in the served generation. */
  private specOf(host: Host): ConvergeSpec | undefined {
    return this.current()?.lab.profiles.get(host.role)?.converge;
  }

  /** The declaration of what the host runs now: during a wipe, the site's wipe role's; else its own role's. */
  specNow(host: Host, state: ObservedHost = this.tracker.get(host.name)): ConvergeSpec | undefined {
    if (state.phase !== 'Wiping') return this.specOf(host);
    const lab = this.current()?.lab;
    return lab?.profiles.get(lab.site.wipe.profile)?.converge;
  }

  private hostAt(ip: string): Host | undefined {
    const gen = this.current();
    return gen ? [...gen.lab.hosts.values()].find((h) => h.ip === ip) : undefined;
  }

  /**
   * The signals of the host's attempt under way, when it is provisioning a role that declares `signal`, or being
   * wiped (a site-wide wipe) by a wipe role that declares it.
   */
  private attemptOf(host: Host, signal?: string): AttemptSignals | undefined {
    const state = this.tracker.get(host.name);
    const spec = this.specNow(host, state);
    const under = state.phase === 'Wiping' || (state.phase === 'Provisioning' && state.attemptRole === host.role);
    if (!under || state.attemptNonce === undefined || !spec) return undefined;
    if (signal !== undefined && !spec.signals.some((s) => signalKey(s) === signal)) return undefined;
    let attempt = this.attempts.get(host.name);
    if (attempt?.nonce !== state.attemptNonce) {
      attempt = { nonce: state.attemptNonce, talos: talosFromJournal(state), installer: initialInstallerState(), dhcp: [], probes: [], recorded: new Map() };
      this.attempts.set(host.name, attempt);
    }
    return attempt;
  }

  /** A signal changed: its current step is recorded when new, then the declaration decides Converged or Failed. */
  private moved(host: string, attempt: AttemptSignals, signal: string, state: SignalState, installed: boolean): void {
    const current = state.current;
    const record = (event: Parameters<HostTracker['record']>[1]): void => {
      void this.tracker.record(host, event).catch((err: unknown) => this.log.error({ err, host }, 'cannot record a converge signal'));
    };
    if (current) {
      // A closed port tried again is no progress: a probe's detail (a count) is not recorded.
      const detail = signal.startsWith('tcpProbe:') ? undefined : current.detail;
      const step: ConvergeStepRecord = { signal, name: current.name, at: current.at, ...(detail !== undefined ? { detail } : {}), ...(current.result ? { result: current.result } : {}) };
      const key = JSON.stringify([step.name, step.detail, step.result, installed]);
      if (attempt.recorded.get(signal) !== key) {
        attempt.recorded.set(signal, key);
        this.log.info({ host, signal, step: step.name, detail: step.detail, installed: installed || undefined }, 'converge step');
        record({ kind: 'converge-step', step, ...(installed ? { installed: true as const } : {}) });
      }
    }
    this.decide(host, attempt, record);
  }

  private decide(host: string, attempt: AttemptSignals, record: (event: Parameters<HostTracker['record']>[1]) => void): void {
    const hostModel = this.current()?.lab.hosts.get(host);
    const spec = hostModel ? this.specNow(hostModel, this.tracker.get(host)) : undefined;
    if (!spec) return;
    const signals: Record<string, SignalState> = {
      talosEvents: attempt.talos,
      installerReports: attempt.installer,
      phoneHome: observedSignal('phoned home', attempt.phoneHomeAt),
      menuServed: observedSignal('menu served', attempt.menuServedAt),
      dhcpAfterInstall: dhcpAfterInstallSignal(attempt.dhcp, attempt.diskAnsweredAt),
    };
    for (const s of spec.signals) if (s.kind === 'tcpProbe' && hostModel) signals[signalKey(s)] = this.probeState(hostModel, attempt, s);
    // Timeouts are the reconcile decision's (src/plan/decide.ts, with the role's overrides): here only what the signals say.
    const state: ObservedHost = this.tracker.get(host);
    const verdict = hostConvergence({ spec, signals }, { now: this.now(), since: state.since, provisionTimeoutMs: Number.MAX_SAFE_INTEGER, stepTimeoutMs: Number.MAX_SAFE_INTEGER });
    if (verdict.state === 'converged') {
      this.log.info({ host, by: verdict.by }, 'converged');
      record({ kind: 'converged', by: verdict.by });
    } else if (verdict.state === 'failed') {
      this.log.warn({ host, signal: verdict.signal, step: verdict.step, reason: verdict.reason }, 'converge signal failed');
      record({ kind: 'failed', message: verdict.reason, step: verdict.step });
    }
  }

  private ignore(peer: string): void {
    this.ignored.count++;
    const t = this.now();
    if (t - this.ignored.loggedAt < IGNORED_LOG_INTERVAL_MS) {
      this.ignored.suppressed++;
      return;
    }
    this.log.warn({ peer, ignoredSinceLast: this.ignored.suppressed || undefined, ignoredInAll: this.ignored.count }, `Talos event from ${peer}, which is no host's reserved address: ignored`);
    this.ignored.loggedAt = t;
    this.ignored.suppressed = 0;
  }
}

/**
 * An attempt's Talos state as the journal leaves it across an agent restart: the node resumes after its last
 * acknowledged event, so what the agent knew (installed, the disk boot began) is where its reducer starts again.
 */
function talosFromJournal(state: ObservedHost): TalosState {
  const fresh = initialTalosState();
  if (state.attemptInstalledAt === undefined) return fresh;
  const diskBoot = state.convergeSteps?.find((s) => s.signal === 'talosEvents' && s.name === TALOS_STEPS.diskBoot);
  return { ...fresh, installed: true, installedAt: state.attemptInstalledAt, ...(diskBoot ? { diskBootAt: diskBoot.at } : {}) };
}
