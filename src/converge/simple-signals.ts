// The signals that need no help from the OS, as pure functions of what the agent observed: a phone-home, the menu
// served, a DHCP request of the installed OS, a TCP port that answers. Each gives a SignalState like the reducers.
import { converge, enterStep, waitingSignal, type SignalState } from './signal.ts';

/** phoneHome and menuServed: Converged when it happened. */
export function observedSignal(step: string, at: number | undefined): SignalState {
  if (at === undefined) return waitingSignal();
  return converge(enterStep(waitingSignal(), step, at), at);
}

export interface DhcpSeen {
  at: number;
  /** Option 60. */
  vendorClass?: string;
  /** Option 77, as text. */
  userClass?: string;
}

/**
 * A request from boot firmware rather than an installed OS: PXE ROMs send option 60 "PXEClient:Arch:...", UEFI
 * HTTP boot "HTTPClient:...", iPXE user class "iPXE" (PXE specification 2.1 and UEFI 2.x, 24.7; iPXE docs).
 */
export function isFirmwareDhcp(request: Pick<DhcpSeen, 'vendorClass' | 'userClass'>): boolean {
  return /^(PXEClient|HTTPClient)/.test(request.vendorClass ?? '') || request.userClass === 'iPXE';
}

/**
 * dhcpAfterInstall: after forseti answered "boot from disk", a DHCP request from the host's MAC without the
 * firmware's markers is the installed OS on the network. An OS with a static address never sends one.
 */
export function dhcpAfterInstallSignal(requests: readonly DhcpSeen[], diskAnsweredAt: number | undefined): SignalState {
  if (diskAnsweredAt === undefined) return waitingSignal();
  let state = waitingSignal();
  for (const r of [...requests].filter((x) => x.at >= diskAnsweredAt).sort((a, b) => a.at - b.at)) {
    if (isFirmwareDhcp(r)) {
      state = enterStep(state, 'dhcp: boot firmware asked again after the disk answer', r.at, [r.vendorClass, r.userClass].filter(Boolean).join(', '));
      continue;
    }
    return converge(enterStep(state, 'dhcp: the installed OS asked for an address', r.at, r.vendorClass), r.at);
  }
  return state;
}

export interface ProbeResult {
  at: number;
  open: boolean;
}

/**
 * tcpProbe: Converged when the port answered after `from`: the disk answer (Talos' apid answers in maintenance mode
 * too), or for `after: boot` the host's own script served.
 */
export function tcpProbeSignal(port: number, probes: readonly ProbeResult[], from: number | undefined): SignalState {
  if (from === undefined) return waitingSignal();
  const after = [...probes].filter((p) => p.at >= from).sort((a, b) => a.at - b.at);
  const open = after.find((p) => p.open);
  if (open !== undefined) return converge(enterStep(waitingSignal(), `tcp ${port}: answering`, open.at), open.at);
  const first = after[0];
  // Closed probes are no progress: the step keeps the time of the first one.
  return first === undefined ? waitingSignal() : enterStep(waitingSignal(), `tcp ${port}: not answering yet`, first.at, `${after.length} probe(s)`);
}
