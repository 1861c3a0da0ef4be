// A Redfish BMC for a vlab node: the fixture BMC (test/fixtures/redfish) over HTTPS with a certificate issued by
// a CA made for this node, acting on the node's QEMU through the same chassis-control.sh that ipmi_sim runs.
// It listens on a Unix socket of the root namespace, forwarded to the node's BMC address inside the lab.
import { join } from 'node:path';
import { startRedfishBmc, type RedfishBmc } from '../fixtures/redfish/bmc.ts';
import { issuedCert, testCa } from '../fixtures/redfish/certs.ts';
import { MACHINE_RESET_TYPES, type BootChoice, type RedfishMachine } from '../fixtures/redfish/machine.ts';
import { syntheticBmc, type Json } from '../fixtures/redfish/resources.ts';
import type { NodeMachine } from './node-machine.ts';
import { isAlive } from './processes.ts';
import { runChecked } from '../../src/os-image/run-command.ts';
import { readText } from './serial.ts';

export const REDFISH_PORT = 443;

export interface VlabRedfishOptions {
  netns: string;
  machine: NodeMachine;
  /** The node's directory (node.env, qemu.pid, power.log). */
  nodeDir: string;
  chassisControl: string;
  /** The BMC's address inside the lab: its certificate names it. */
  address: string;
  socketPath: string;
  user: string;
  password: string;
}

export interface VlabRedfishBmc {
  bmc: RedfishBmc;
  /** PEM of the CA that issued the BMC's certificate (and nothing else): what the lab repository trusts. */
  ca: string;
}

/** The node's QEMU, driven as ipmi_sim drives it. */
function qemuMachine(o: VlabRedfishOptions): RedfishMachine {
  const control = (...args: string[]) => runChecked('ip', ['netns', 'exec', o.netns, '/bin/bash', o.chassisControl, o.nodeDir, 'set', ...args]);
  const mode = (boot: BootChoice): string => (boot.mode === 'UEFI' ? 'uefi' : boot.mode === 'Legacy' ? 'bios' : 'default');
  return {
    async isOn() {
      const pid = Number.parseInt(readText(join(o.nodeDir, 'qemu.pid')), 10);
      return Number.isInteger(pid) && pid > 0 && isAlive(pid);
    },
    async start(boot) {
      await control('boot', boot.device === 'pxe' ? 'pxe' : 'default', 'bootmode', mode(boot), 'power', '1');
    },
    async stop() {
      await control('power', '0');
    },
    async pressPowerButton() {
      await control('shutdown', '1');
    },
  };
}

/** The synthetic rack server, told what the guest really is. */
function resourcesFor(machine: NodeMachine): Map<string, Json> {
  const resources = syntheticBmc({ powerState: 'Off', resetTypes: MACHINE_RESET_TYPES, bootTargets: ['None', 'Pxe', 'Hdd'] });
  const system = resources.get('/redfish/v1/Systems/1')!;
  Object.assign(system, {
    Manufacturer: 'QEMU',
    Model: machine.firmware === 'uefi' ? 'Standard PC (Q35 + ICH9, 2009)' : 'Standard PC (i440FX + PIIX, 1996)',
    SerialNumber: machine.name,
    ProcessorSummary: { Count: 1, Model: 'QEMU TCG CPU' },
    MemorySummary: { TotalSystemMemoryGiB: machine.memoryMiB / 1024 },
  });
  Object.assign(system['Boot'] as Json, {
    BootSourceOverrideMode: machine.firmware === 'uefi' ? 'UEFI' : 'Legacy',
    'BootSourceOverrideMode@Redfish.AllowableValues': ['Legacy', 'UEFI'],
    'BootSourceOverrideEnabled@Redfish.AllowableValues': ['Disabled', 'Once', 'Continuous'],
  });
  resources.set('/redfish/v1/Systems/1/EthernetInterfaces', { Members: [{ '@odata.id': '/redfish/v1/Systems/1/EthernetInterfaces/NIC1' }] });
  resources.set('/redfish/v1/Systems/1/EthernetInterfaces/NIC1', { '@odata.id': '/redfish/v1/Systems/1/EthernetInterfaces/NIC1', Id: 'NIC1', MACAddress: machine.mac.toUpperCase() });
  return resources;
}

export async function startVlabRedfishBmc(o: VlabRedfishOptions): Promise<VlabRedfishBmc> {
  const ca = testCa(`vlab BMC CA of ${o.machine.name}`);
  const cert = issuedCert(ca, `IP:${o.address}`);
  const bmc = await startRedfishBmc({
    resources: resourcesFor(o.machine),
    username: o.user,
    password: o.password,
    tls: { key: cert.key, cert: cert.cert },
    machine: qemuMachine(o),
    socketPath: o.socketPath,
  });
  return { bmc, ca: ca.cert };
}
