// The UDP side: receive requests, ask the policy, send replies. Never throws out of the
// message handler: a bad packet or a failing policy costs one log line, not the process.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindSocketToDevice } from './bind-device.ts';
import { classifyClient, type ClientInfo } from './client-info.ts';
import { decideReply, decideProxyReply, type Decision, type ProxyDecision } from './decide.ts';
import { DhcpBindError, DhcpConfigError, DhcpParseError } from './errors.ts';
import { inSubnet, isIpv4, isValidPrefix } from './ipv4.ts';
import { BootOp, encodeDhcpPacket, hardwareAddress, parseDhcpPacket, type DhcpPacket } from './packet.ts';
import { buildProxyReply, buildReply, ciaddrRefusal, proxyDestination, relayRefusal, replyDestination, type ReflectionRefusal, type ReplyContext, type ReplyKind } from './reply.ts';
import type { DhcpExchange, DhcpLogger, DhcpServer, DhcpServerOptions, Endpoint } from './types.ts';
import { WarningThrottle } from './warning-throttle.ts';

const DEFAULT_PORT = 67;
const DEFAULT_PXE_PORT = 4011;
const LIMITED_BROADCAST = '255.255.255.255';

const silentLogger: DhcpLogger = { info() {}, warn() {}, debug() {} };

export function createDhcpServer(options: DhcpServerOptions): DhcpServer {
  const ctx = replyContext(options);
  const log = options.log ?? silentLogger;
  const enabled = (level: 'debug' | 'info'): boolean => log.isLevelEnabled?.(level) ?? log !== silentLogger;
  const bindAddress = options.bindAddress ?? '0.0.0.0';
  const ports = options.mode === 'proxy' ? [ctx.serverPort, options.pxePort ?? DEFAULT_PXE_PORT] : [ctx.serverPort];
  const bootFileIn = options.mode === 'proxy' ? options.bootFileIn ?? 'offer' : 'offer';
  const sockets = new Map<number, Socket>();
  const refusals = new WarningThrottle(log);

  // Everything per packet is synchronous: parse, classify, ask the policy, encode, hand to the socket.
  function handle(msg: Buffer, rinfo: RemoteInfo, port: number): void {
    let request: DhcpPacket;
    try {
      request = parseDhcpPacket(msg);
    } catch (err) {
      if (!(err instanceof DhcpParseError)) throw err;
      log.warn({ from: { address: rinfo.address, port: rinfo.port }, port, bytes: msg.length, err: err.message }, 'dropping malformed DHCP packet');
      return;
    }
    if (request.op !== BootOp.request) return; // our own or another server's reply
    const client = classifyClient(request);
    if (client === undefined) {
      if (enabled('debug')) log.debug({ from: { address: rinfo.address, port: rinfo.port }, mac: hardwareAddress(request) }, 'ignoring BOOTP request without DHCP message type');
      return;
    }
    const seen: Seen = { request, client, from: { address: rinfo.address, port: rinfo.port }, port };
    const relay = relayRefusal(request, ctx);
    if (relay) {
      refuse(seen, relay);
      return;
    }
    if (options.mode === 'proxy') {
      let decision: ProxyDecision;
      try {
        decision = decideProxyReply(client, ctx.serverIp, options.policy, port !== ctx.serverPort);
      } catch (err) {
        log.warn({ from: seen.from, mac: client.mac, err: errorText(err) }, 'DHCP policy failed; not answering');
        return;
      }
      respondProxy(seen, decision);
      return;
    }
    let decision: Decision;
    try {
      decision = decideReply(client, ctx.serverIp, options.policy);
      if (decision.action === 'released') options.policy.release?.(client);
      if (decision.action === 'declined') options.policy.decline?.(client);
    } catch (err) {
      log.warn({ from: seen.from, mac: client.mac, err: errorText(err) }, 'DHCP policy failed; not answering');
      return;
    }
    respond(seen, decision);
  }

  function respond(seen: Seen, decision: Decision): void {
    const { request, client, from, port } = seen;
    switch (decision.action) {
      case 'ignored':
        if (enabled('debug')) log.debug({ ...describe(client), reason: decision.reason }, 'not answering DHCP request');
        report({ client, action: 'ignored', reason: decision.reason, from, port });
        return;
      case 'released':
        log.info({ ...describe(client), ip: client.ciaddr }, 'DHCP release');
        report({ client, action: 'released', from, port });
        return;
      case 'declined':
        log.warn({ ...describe(client), ip: client.requestedIp }, 'DHCP decline: client found the address in use');
        report({ client, action: 'declined', from, port });
        return;
    }
    const kind: ReplyKind = decision.action;
    const refused = ciaddrRefusal(request, kind, decision.answer.ip, ctx);
    if (refused) {
      refuse(seen, refused);
      return;
    }
    let reply: Buffer;
    try {
      reply = encodeDhcpPacket(buildReply(request, kind, decision.answer, ctx));
    } catch (err) {
      log.warn({ ...describe(client), answer: decision.answer, err: errorText(err) }, 'policy answer cannot be encoded; not answering');
      report({ client, action: 'ignored', reason: 'invalid-answer', answer: decision.answer, from, port });
      return;
    }
    const to = replyDestination(request, kind, ctx);
    send(port, reply, to);
    const action = kind === 'inform-ack' ? 'ack' : kind;
    if (enabled('info')) log.info({ ...describe(client), ip: decision.answer.ip, to }, `DHCP ${action}`);
    if (options.onExchange === undefined) return;
    const exchange: DhcpExchange = { client, action, answer: decision.answer, from, port, sentTo: to };
    if (decision.action === 'nak') exchange.reason = decision.reason;
    report(exchange);
  }

  function respondProxy(seen: Seen, decision: ProxyDecision): void {
    const { request, client, from, port } = seen;
    if (decision.action === 'ignored') {
      if (enabled('debug')) log.debug({ ...describe(client), port, reason: decision.reason }, 'proxyDHCP: not answering');
      report({ client, action: 'ignored', reason: decision.reason, from, port });
      return;
    }
    const onPxePort = port !== ctx.serverPort;
    // On the PXE port the reply goes back to where the request came from, not to ciaddr.
    const refused = onPxePort ? null : ciaddrRefusal(request, decision.action, undefined, ctx);
    if (refused) {
      refuse(seen, refused);
      return;
    }
    // With the boot file on the PXE port only, a PXE ROM's offer leaves it out so the ROM asks there.
    const withBootFile = decision.action === 'ack' || client.isHttpBoot || bootFileIn === 'offer';
    let reply: Buffer;
    try {
      reply = encodeDhcpPacket(buildProxyReply(request, decision.action, decision.answer, ctx, client.isHttpBoot, withBootFile));
    } catch (err) {
      log.warn({ ...describe(client), answer: decision.answer, err: errorText(err) }, 'policy answer cannot be encoded; not answering');
      report({ client, action: 'ignored', reason: 'invalid-answer', answer: decision.answer, from, port });
      return;
    }
    const to = proxyDestination(request, from, onPxePort, ctx);
    send(port, reply, to);
    if (!withBootFile) {
      if (enabled('info')) log.info({ ...describe(client), port, to }, 'proxyDHCP offer without boot file: the client asks on the PXE port');
      report({ client, action: decision.action, from, port, sentTo: to });
      return;
    }
    if (enabled('info')) log.info({ ...describe(client), port, bootFile: decision.answer.bootFile, to }, `proxyDHCP ${decision.action}`);
    report({ client, action: decision.action, answer: decision.answer, from, port, sentTo: to });
  }

  function refuse(seen: Seen, reason: ReflectionRefusal): void {
    const { request, client, from, port } = seen;
    const message = reason === 'undeclared-relay'
      ? 'relayed DHCP request dropped: its giaddr is not a declared relay'
      : 'DHCP reply not sent: ciaddr is outside the served subnet and not the address the client is given';
    refusals.warn(reason, { ...describe(client), from, giaddr: request.giaddr, ciaddr: request.ciaddr, relays: options.relays ?? [] }, message);
    report({ client, action: 'ignored', reason, from, port });
  }

  // One callback for every send (no closure per packet); the error names the destination.
  const onSent = (err: Error | null): void => {
    if (err) log.warn({ err: err.message }, 'sending DHCP reply failed');
  };
  function send(port: number, reply: Buffer, to: Endpoint): void {
    sockets.get(port)?.send(reply, to.port, to.address, onSent);
  }

  function report(exchange: DhcpExchange): void {
    if (options.onExchange === undefined) return;
    try {
      options.onExchange(exchange);
    } catch (err) {
      log.warn({ mac: exchange.client.mac, err: errorText(err) }, 'onExchange callback failed');
    }
  }

  async function open(port: number): Promise<Socket> {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      const onBindError = (err: Error): void => {
        s.close();
        reject(new DhcpBindError(`cannot bind DHCP server to ${bindAddress}:${port}: ${err.message}`, { cause: err }));
      };
      s.once('error', onBindError);
      s.bind({ port, address: bindAddress }, () => {
        // Bound: from now on an error concerns one packet (a send refused with EPERM by a firewall,
        // ENETUNREACH, a failed receive) and the socket stays usable, so it is logged and keeps serving.
        s.off('error', onBindError);
        s.on('error', (err: NodeJS.ErrnoException) => log.warn({ port, code: err.code, err: err.message }, 'DHCP socket error'));
        resolve();
      });
    });
    try {
      if (options.interface !== undefined) bindSocketToDevice(port, bindAddress, options.interface);
    } catch (err) {
      await closeSocket(s);
      throw err;
    }
    s.setBroadcast(true);
    s.on('message', (msg, rinfo) => {
      try {
        handle(msg, rinfo, port);
      } catch (err) {
        log.warn({ from: rinfo.address, port, err: errorText(err) }, 'unexpected error handling DHCP packet');
      }
    });
    return s;
  }

  async function closeAll(): Promise<void> {
    const open = [...sockets.values()];
    sockets.clear();
    await Promise.all(open.map(closeSocket));
  }

  return {
    async start() {
      if (sockets.size > 0) return;
      try {
        for (const port of ports) sockets.set(port, await open(port));
      } catch (err) {
        await closeAll();
        throw err;
      }
      log.info({ address: bindAddress, ports, serverIp: ctx.serverIp, mode: options.mode ?? 'full', ...(options.mode === 'proxy' ? { bootFileIn } : {}), interface: options.interface }, 'DHCP server listening');
    },
    stop: closeAll,
  };
}

interface Seen {
  request: DhcpPacket;
  client: ClientInfo;
  from: Endpoint;
  port: number;
}

function describe(client: ClientInfo): object {
  return { mac: client.mac, xid: client.xid, type: client.messageType, stage: client.bootStage, firmware: client.firmware };
}

function replyContext(options: DhcpServerOptions): ReplyContext {
  const { serverIp, subnet } = options;
  if (!isIpv4(serverIp)) throw new DhcpConfigError(`serverIp ${JSON.stringify(serverIp)} is not an IPv4 address`);
  if (!isIpv4(subnet.network) || !isValidPrefix(subnet.prefix)) throw new DhcpConfigError(`subnet ${subnet.network}/${subnet.prefix} is not an IPv4 CIDR`);
  if (!inSubnet(serverIp, subnet.network, subnet.prefix)) throw new DhcpConfigError(`serverIp ${serverIp} is outside ${subnet.network}/${subnet.prefix}`);
  const serverPort = options.port ?? DEFAULT_PORT;
  if (options.mode === 'proxy' && (options.pxePort ?? DEFAULT_PXE_PORT) === serverPort) throw new DhcpConfigError(`pxePort and port are both ${serverPort}`);
  const relays = options.relays ?? [];
  for (const relay of relays) if (!isIpv4(relay) || relay === '0.0.0.0') throw new DhcpConfigError(`relay ${JSON.stringify(relay)} is not an IPv4 address`);
  return {
    serverIp, subnet, serverPort, clientPort: options.clientPort ?? serverPort + 1, relays: new Set(relays),
    ...(options.interface === undefined ? {} : { broadcast: LIMITED_BROADCAST }),
  };
}

/** Closes the socket; one that is closed already (by whoever) is fine, so stopping always finishes. */
function closeSocket(s: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      s.close(() => resolve());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_SOCKET_DGRAM_NOT_RUNNING') resolve();
      else reject(err);
    }
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
