// The agent's boot services on shutdown: every pool lease reaches stateDir/dhcp-leases.json even when the
// DHCP server's sockets misbehaved or its stop() fails. The DHCP server here binds loopback (a port the kernel chose),
// not port 67 on the site's interface as ensure() would, so the test puts it and the pool in place itself.
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { BootServices, LEASE_FILE } from '../src/serve/boot-services.ts';
import type { AgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { createDhcpServer, LeasePool, LeaseStore, type DhcpServer, type Lease } from '../src/serve/dhcp/index.ts';
import './fixtures/api-contract.ts';
import { freeUdpPort } from './fixtures/free-port.ts';

/** BootServices' private state, which ensure() fills from a site; stop() is what is tested. */
interface Internals {
  dhcp: { server: DhcpServer; key: string } | null;
  pool: { pool: LeasePool; store: LeaseStore } | null;
}

const CLIENT = { leaseKey: 'id:ff0102', mac: '02:00:00:27:00:02' };

describe('BootServices.stop', () => {
  const root = mkdtempSync(join(tmpdir(), 'fdhcp-stop-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** Services whose pool has just bound one lease (saved, not yet on disk) and whose DHCP server is `server`. */
  function servicesWith(name: string, server: DhcpServer): { services: BootServices; file: string } {
    const stateDir = mkdtempSync(join(root, `${name}-`));
    const config: AgentConfig = {
      lab: { url: 'file:///nowhere', branch: 'main', pollSeconds: 60 },
      status: { branch: 'status', batchSeconds: 1, author: { name: 't', email: 't@example.test' } },
      stateDir,
      serve: { bindAddress: '127.0.0.1', dhcp: true, tftp: false, ipxeDir: stateDir },
      bmc: { minIntervalMs: 0, timeoutMs: 1000, retries: 0 },
      reconcileIntervalMs: 1000,
    };
    // stop() never asks the backend anything.
    const services = new BootServices(config, {} as AgentBootBackend, () => null, createLogger({ level: 'silent' }));
    const file = join(stateDir, LEASE_FILE);
    const store = new LeaseStore(file);
    const pool = new LeasePool({ range: { start: '10.0.0.100', end: '10.0.0.110' }, leaseSeconds: 600, onChange: (l) => store.save(l) });
    assert.deepEqual(pool.request(CLIENT, '10.0.0.105', () => false), { ip: '10.0.0.105', granted: true });
    Object.assign(services as unknown as Internals, { dhcp: { server, key: 'test' }, pool: { pool, store } } satisfies Internals);
    return { services, file };
  }

  const leasesIn = (file: string): Lease[] => (JSON.parse(readFileSync(file, 'utf8')) as { leases: Lease[] }).leases;

  it('flushes the leases even when the DHCP server fails to stop, and still reports that failure', async () => {
    const failing: DhcpServer = { start: async () => {}, stop: async () => { throw new Error('cannot stop'); } };
    const { services, file } = servicesWith('failing', failing);
    await assert.rejects(services.stop(), /cannot stop/);
    assert.deepEqual(leasesIn(file).map((l) => [l.ip, l.client, l.state]), [['10.0.0.105', CLIENT.leaseKey, 'bound']]);
  });

  it('stops cleanly and flushes after a runtime error on the DHCP socket', async () => {
    const sockets: Socket[] = [];
    const onSocket = (m: unknown): void => { sockets.push((m as { socket: Socket }).socket); };
    const server = createDhcpServer({
      serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 }, bindAddress: '127.0.0.1', port: await freeUdpPort(), policy: { answer: () => null },
    });
    subscribe('udp.socket', onSocket);
    try {
      await server.start();
    } finally {
      unsubscribe('udp.socket', onSocket);
    }
    // What libuv reports when a firewall refuses one reply; it cannot be provoked on demand here.
    sockets[0]?.emit('error', Object.assign(new Error('send EPERM 10.0.0.5:68'), { code: 'EPERM', errno: -1, syscall: 'send' }));
    const { services, file } = servicesWith('socket-error', server);
    await services.stop();
    assert.deepEqual(leasesIn(file).map((l) => l.ip), ['10.0.0.105']);
  });
});
