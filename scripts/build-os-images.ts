// npm run build:os-images -- [--out DIR] [--cache DIR] [--firmware-dir DIR]...
// Builds the forseti OS image (wipe and inventory: one kernel + initramfs, the job chosen by kernel arguments)
// from Debian packages, or finds it in the cache, and with --out copies vmlinuz, initrd.img and manifest.json
// there for the agent's local mirror. Needs apt-get and dpkg-deb (any Debian or Ubuntu host; no root needed
// when the cache directory is writable).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureOsImage } from '../src/os-image/build.ts';

const USAGE = 'usage: npm run build:os-images -- [--out DIR] [--cache DIR] [--firmware-dir DIR]...';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string' },
        cache: { type: 'string' },
        'firmware-dir': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const image = await ensureOsImage({ cacheDir: values.cache, firmwareDirs: values['firmware-dir']?.map((dir) => resolve(dir)) });
  const { manifest } = image;
  let dir = image.dir;
  if (values.out) {
    dir = resolve(values.out);
    mkdirSync(dir, { recursive: true });
    for (const file of ['vmlinuz', 'initrd.img', 'manifest.json']) copyFileSync(join(image.dir, file), join(dir, file));
  }
  const lines = [
    `${manifest.name} ${manifest.key}: linux ${manifest.kernel.release} (${manifest.kernel.package} ${manifest.kernel.version}), ${manifest.packages.length} packages, ${manifest.modules.length} modules`,
    `  kernel: ${join(dir, 'vmlinuz')}  sha256 ${manifest.kernel.sha256}`,
    `  initrd: ${join(dir, 'initrd.img')}  sha256 ${manifest.initrd.sha256} (${manifest.initrd.bytes} bytes)`,
  ];
  for (const name of manifest.firmware.unavailablePackages) lines.push(`  note: ${name} is not in the apt sources (Debian non-free-firmware): built without it`);
  for (const [module, files] of Object.entries(manifest.firmware.missing)) lines.push(`  note: ${module} may need firmware the image lacks: ${files.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

main().then((code) => (process.exitCode = code), (error: unknown) => {
  process.stderr.write(`build-os-images: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
