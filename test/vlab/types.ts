import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { ExecResult } from '../../src/os-image/run-command.ts';
import type { RedfishBmc } from '../fixtures/redfish/bmc.ts';

export interface GuestAssets {
  kernel: string;
  initrd: string;
  kernelSha256: string;
  initrdSha256: string;
  /** iPXE for legacy PXE ROMs, served by TFTP (QEMU's own NIC ROMs are iPXE already). */
  undionly: string;
  ipxeEfi: string;
}

export type Firmware = 'bios' | 'uefi';
export type NicModel = 'virtio-net-pci' | 'e1000';
/** ipmi: OpenIPMI's ipmi_sim on UDP 623. redfish: the fixture Redfish BMC over HTTPS on 443, its certificate issued by a CA of its own. */
export type VlabBmcType = 'ipmi' | 'redfish';

export interface VlabNodeSpec {
  name: string;
  mac: string;
  firmware?: Firmware;
  nic?: NicModel;
  memoryMiB?: number;
  /** Default ipmi. */
  bmcType?: VlabBmcType;
  /** Virtio disks (disk.qcow2, disk2.qcow2, ...; 64 MiB each until replaced); default 1. */
  disks?: number;
}

export interface BmcEndpoint {
  address: string;
  port: number;
  user: string;
  password: string;
  /** Redfish BMCs: PEM of the CA that issued the BMC's certificate (which names `address`). */
  ca?: string;
}

export interface VlabNode extends Required<VlabNodeSpec> {
  bmc: BmcEndpoint;
  dir: string;
  serialLog: string;
}

export type { ExecResult } from '../../src/os-image/run-command.ts';

export interface Vlab {
  netns: string;
  bridge: string;
  agentAddress: string;
  subnet: string;
  nodes: VlabNode[];
  /** Runs inside the namespace; never throws on a non-zero exit. */
  exec(cmd: string, args: string[]): Promise<ExecResult>;
  /** Runs inside the namespace; killed on stop(). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Makes a Unix socket of the root namespace reachable at `listen` (HOST:PORT) inside the namespace. */
  forwardUnixSocket(listen: string, socketPath: string): Promise<void>;
  /** Real `ipmitool -I lanplus -C 3` against the node's BMC; throws on failure (and for a Redfish node). */
  ipmitool(node: string, ...args: string[]): Promise<string>;
  /** The fixture behind a Redfish node's BMC: its request log and resources, for assertions. */
  redfish(node: string): RedfishBmc;
  serial(node: string): string;
  waitForSerial(node: string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  powerLog(node: string): string[];
  stop(): Promise<void>;
}

export interface StartVlabOptions {
  nodes: VlabNodeSpec[];
  /** Defaults to a fresh temporary directory, removed on stop() unless FORSETI_VLAB_KEEP=1. */
  workDir?: string;
}
