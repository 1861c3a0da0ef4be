// A network namespace for booting the forseti OS image in QEMU (TCG) straight from its kernel and initramfs:
// br0 10.77.0.1/24 with one tap, dnsmasq answering DHCP, and report-receiver.ts recording every POST.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForLine } from '../vlab/child-output.ts';
import { AGENT_ADDRESS, createNamespace, deleteNamespace, deleteNamespaceNow, deleteStaleNamespaces, newNamespaceName, tapName } from '../vlab/netns.ts';
import { killAndVerify, killNow, onProcessExit } from '../vlab/processes.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./report-receiver.ts', import.meta.url));
export const RECEIVER_PORT = 8099;

export interface ReceivedRequest {
  method: string;
  path: string;
  authorization: string | null;
  contentType: string | null;
  remote: string;
  body: string;
}

export interface Disk {
  file: string;
  /** QEMU -device for it (virtio-blk-pci or nvme), given its drive id. */
  device: (driveId: string) => string;
}

export interface Boot {
  append: string;
  memoryMiB?: number;
  mac: string;
  disks: Disk[];
  extraArgs?: string[];
  timeoutMs?: number;
  serialLog: string;
}

export interface BootResult {
  exitCode: number | null;
  timedOut: boolean;
}

export class ImageLab {
  readonly requests: ReceivedRequest[] = [];
  readonly reportBase = `http://${AGENT_ADDRESS}:${RECEIVER_PORT}`;
  private readonly children = new Set<ChildProcess>();
  private readonly unregister: () => void;

  private constructor(readonly netns: string, private readonly dir: string) {
    this.unregister = onProcessExit(() => {
      for (const child of this.children) if (child.pid !== undefined) killNow(child.pid, { group: true });
      deleteNamespaceNow(netns);
    });
  }

  static async start(dir: string): Promise<ImageLab> {
    await deleteStaleNamespaces();
    const lab = new ImageLab(newNamespaceName(), dir);
    try {
      await createNamespace(lab.netns, 1);
      lab.spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces',
        '--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h', `--dhcp-leasefile=${join(dir, 'leases')}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`]);
      const receiver = lab.spawn(process.execPath, ['--import', 'tsx', RECEIVER, AGENT_ADDRESS, String(RECEIVER_PORT)]);
      let buffered = '';
      receiver.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('{')) lab.requests.push(JSON.parse(line) as ReceivedRequest);
      });
      await waitForLine(receiver, 'ready', 20_000, 'report receiver');
    } catch (error) {
      await lab.stop();
      throw error;
    }
    return lab;
  }

  private spawn(cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.netns, cmd, ...args], { cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr?.resume();
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Boots kernel + initrd with -kernel/-initrd/-append; resolves when QEMU exits (the guest powered off) or at the timeout. */
  async boot(image: { kernel: string; initrd: string }, opts: Boot): Promise<BootResult> {
    const args = ['-machine', 'pc,accel=tcg', '-m', String(opts.memoryMiB ?? 512), '-smp', '1', '-display', 'none', '-vga', 'none',
      '-no-reboot', '-monitor', 'none', '-serial', `file:${opts.serialLog}`,
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', `console=ttyS0 panic=-1 ${opts.append}`,
      '-netdev', `tap,id=net0,ifname=${tapName(0)},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=net0,mac=${opts.mac}`,
      // before the disks: a disk's -device may name a controller given here
      ...(opts.extraArgs ?? []),
      ...opts.disks.flatMap((disk, index) => ['-drive', `file=${disk.file},if=none,id=disk${index},format=raw`, '-device', disk.device(`disk${index}`)])];
    const qemu = this.spawn('qemu-system-x86_64', args);
    let stderr = '';
    qemu.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (qemu.pid !== undefined) killNow(qemu.pid, { group: true });
    }, opts.timeoutMs ?? 300_000);
    const [code] = (await once(qemu, 'exit')) as [number | null];
    clearTimeout(timer);
    if (code !== 0 && !timedOut) throw new Error(`qemu exited with ${code}: ${stderr}`);
    return { exitCode: code, timedOut };
  }

  async stop(): Promise<void> {
    for (const child of this.children) if (child.pid !== undefined) await killAndVerify(child.pid, { group: true }).catch(() => undefined);
    await deleteNamespace(this.netns);
    this.unregister();
  }
}
