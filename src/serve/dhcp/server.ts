// The UDP side: receive requests, ask the policy, send replies. Never throws out of the
// message handler: a bad packet or a failing policy costs one log line, not the process.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { classifyClient, type ClientInfo } from './client-info.ts';
import { decide, type Decision } from './decide.ts';
import { DhcpBindError, DhcpConfigError, DhcpParseError } from './errors.ts';
import { inSubnet, isIpv4, isValidPrefix } from './ipv4.ts';
import { BootOp, encodeDhcpPacket, hardwareAddress, parseDhcpPacket, type DhcpPacket } from './packet.ts';
import { buildReply, replyDestination, type ReplyContext, type ReplyKind } from './reply.ts';
import type { DhcpExchange, DhcpLogger, DhcpServer, DhcpServerOptions, Endpoint } from './types.ts';

const DEFAULT_PORT = 67;

const silentLogger: DhcpLogger = { info() {}, warn() {}, debug() {} };

export function createDhcpServer(options: DhcpServerOptions): DhcpServer {
  const ctx = replyContext(options);
  const log = options.log ?? silentLogger;
  const bindAddress = options.bindAddress ?? '0.0.0.0';
  let socket: Socket | undefined;

  function handle(msg: Buffer, rinfo: RemoteInfo): void {
    const from: Endpoint = { address: rinfo.address, port: rinfo.port };
    let request: DhcpPacket;
    try {
      request = parseDhcpPacket(msg);
    } catch (err) {
      if (!(err instanceof DhcpParseError)) throw err;
      log.warn({ from, bytes: msg.length, err: err.message }, 'dropping malformed DHCP packet');
      return;
    }
    if (request.op !== BootOp.request) return; // our own or another server's reply
    const client = classifyClient(request);
    if (client === undefined) {
      log.debug({ from, mac: hardwareAddress(request) }, 'ignoring BOOTP request without DHCP message type');
      return;
    }
    let decision: Decision;
    try {
      decision = decide(client, ctx.serverIp, options.policy);
    } catch (err) {
      log.warn({ from, mac: client.mac, err: errorText(err) }, 'DHCP policy failed; not answering');
      return;
    }
    respond(request, client, decision, from);
  }

  function respond(request: DhcpPacket, client: ClientInfo, decision: Decision, from: Endpoint): void {
    const who = { mac: client.mac, xid: client.xid, type: client.messageType, stage: client.bootStage, firmware: client.firmware };
    switch (decision.action) {
      case 'ignored':
        log.debug({ ...who, reason: decision.reason }, 'not answering DHCP request');
        report({ client, action: 'ignored', reason: decision.reason, from });
        return;
      case 'released':
        log.info({ ...who, ip: client.ciaddr }, 'DHCP release');
        report({ client, action: 'released', from });
        return;
      case 'declined':
        log.warn({ ...who, ip: client.requestedIp }, 'DHCP decline: client found the address in use');
        report({ client, action: 'declined', from });
        return;
    }
    const kind: ReplyKind = decision.action;
    let reply: Buffer;
    try {
      reply = encodeDhcpPacket(buildReply(request, kind, decision.answer, ctx));
    } catch (err) {
      log.warn({ ...who, answer: decision.answer, err: errorText(err) }, 'policy answer cannot be encoded; not answering');
      report({ client, action: 'ignored', reason: 'invalid-answer', answer: decision.answer, from });
      return;
    }
    const to = replyDestination(request, kind, ctx);
    send(reply, to, who);
    const action = kind === 'inform-ack' ? 'ack' : kind;
    log.info({ ...who, ip: decision.answer.ip, to }, `DHCP ${action}`);
    const exchange: DhcpExchange = { client, action, answer: decision.answer, from, sentTo: to };
    if (decision.action === 'nak') exchange.reason = decision.reason;
    report(exchange);
  }

  function send(reply: Buffer, to: Endpoint, who: object): void {
    socket?.send(reply, to.port, to.address, (err) => {
      if (err) log.warn({ ...who, to, err: err.message }, 'sending DHCP reply failed');
    });
  }

  function report(exchange: DhcpExchange): void {
    try {
      options.onExchange?.(exchange);
    } catch (err) {
      log.warn({ mac: exchange.client.mac, err: errorText(err) }, 'onExchange callback failed');
    }
  }

  return {
    async start() {
      if (socket) return;
      const s = createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => {
          s.close();
          reject(new DhcpBindError(`cannot bind DHCP server to ${bindAddress}:${ctx.serverPort}: ${err.message}`, { cause: err }));
        });
        s.bind({ port: ctx.serverPort, address: bindAddress }, () => resolve());
      });
      s.setBroadcast(true);
      s.on('error', (err) => log.warn({ err: err.message }, 'DHCP socket error'));
      s.on('message', (msg, rinfo) => {
        try {
          handle(msg, rinfo);
        } catch (err) {
          log.warn({ from: rinfo.address, err: errorText(err) }, 'unexpected error handling DHCP packet');
        }
      });
      socket = s;
      log.info({ address: bindAddress, port: ctx.serverPort, serverIp: ctx.serverIp }, 'DHCP server listening');
    },
    async stop() {
      const s = socket;
      socket = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}

function replyContext(options: DhcpServerOptions): ReplyContext {
  const { serverIp, subnet } = options;
  if (!isIpv4(serverIp)) throw new DhcpConfigError(`serverIp ${JSON.stringify(serverIp)} is not an IPv4 address`);
  if (!isIpv4(subnet.network) || !isValidPrefix(subnet.prefix)) throw new DhcpConfigError(`subnet ${subnet.network}/${subnet.prefix} is not an IPv4 CIDR`);
  if (!inSubnet(serverIp, subnet.network, subnet.prefix)) throw new DhcpConfigError(`serverIp ${serverIp} is outside ${subnet.network}/${subnet.prefix}`);
  const serverPort = options.port ?? DEFAULT_PORT;
  return { serverIp, subnet, serverPort, clientPort: options.clientPort ?? serverPort + 1 };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
