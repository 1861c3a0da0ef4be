// `npm run build`: the release form of forseti, with no TypeScript loader at run time.
//   dist/forseti.cjs   one CommonJS bundle of the CLI and everything it imports (esbuild)
//   dist/assets/       the files the code reads at run time, at their paths in the repository
//   dist/forseti       a single executable for linux-x64: Node's own single-executable-application support
//                      (node --experimental-sea-config, then postject), the bundle and the assets inside
// The executable is made again only when the bundle, an asset or the Node binary changed (dist/.sea-stamp);
// the bundle itself takes about a second. Options: --no-sea (bundle and assets only), --out DIR.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const OUT = resolve(ROOT, args.includes('--out') ? args[args.indexOf('--out') + 1] : 'dist');
const WANT_SEA = !args.includes('--no-sea');
// The fuse Node's binary carries for postject (Node's documentation, "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Every module that reads a file through `import.meta.url`, and the files it reads (paths in the repository).
 * The build fails on a module not listed here, so a new run-time file cannot be forgotten by the binary.
 */
const RUNTIME_FILES = {
  'src/model/schemas.ts': () => listDir('schemas', (n) => n.endsWith('.json')),
  'src/serve/openapi-route.ts': () => ['schemas/openapi.json'],
  'src/serve/dashboard/dashboard-route.ts': () => ['src/serve/dashboard/index.html', 'src/serve/dashboard/app.js'],
  'src/cli/commands/init-files.ts': () => ['lab-repo-template/.github/workflows/forseti.yml', 'lab-repo-template/.gitea/workflows/forseti.yml'],
  // Optional: without a C compiler they are not built; TFTP then uses the JavaScript pump, HTTP its read loop.
  'src/serve/tftp/native-engine.ts': () => builtAddon('tftp_engine.node'),
  'src/serve/http/native-sendfile.ts': () => builtAddon('http_sendfile.node'),
};

const ADDONS = ['tftp_engine.node', 'http_sendfile.node'];

/**
 * First thing the bundle runs: for the agent, V8's young generation stays at its first size (src/cli/young-generation.ts
 * says why). Evaluating the bundle's modules grows it to 8 MB per semi-space before the agent command is reached, and
 * it never shrinks back; a start flag would make the single executable reject its code cache.
 */
// The bundle is strict code: its directive must come first, so the banner carries it.
const YOUNG_GENERATION_BANNER = "'use strict';if(process.argv[2]==='agent')require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');";

function builtAddon(name) {
  return existsSync(join(ROOT, 'build/Release', name)) ? [`build/Release/${name}`] : [];
}

function listDir(dir, keep) {
  return readdirSync(join(ROOT, dir)).filter(keep).sort().map((n) => `${dir}/${n}`);
}

const log = (line) => process.stdout.write(`build: ${line}\n`);

/** Rewrites `import.meta.url` in our sources to the module's own path, resolved by src/release/asset-root.ts. */
function moduleUrlPlugin(seen) {
  return {
    name: 'forseti-module-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (a) => {
        const path = relative(ROOT, a.path).split('\\').join('/');
        const text = readFileSync(a.path, 'utf8');
        if (path.startsWith('node_modules/') || !text.includes('import.meta.url')) return undefined;
        if (!Object.hasOwn(RUNTIME_FILES, path)) {
          return { errors: [{ text: `${path} reads a file through import.meta.url: list it and its files in RUNTIME_FILES (scripts/build-release.mjs)` }] };
        }
        seen.add(path);
        return { contents: text.replaceAll('import.meta.url', `__forsetiModuleUrl(${JSON.stringify(path)})`), loader: 'ts' };
      });
      // Optional native parts of dependencies (ssh2's crypto binding, cpu-features) stay outside: their require
      // sits in a try block and the pure-JavaScript path is taken when it fails.
      b.onResolve({ filter: /\.node$/ }, (a) => ({ path: a.path, external: true }));
    },
  };
}

async function bundle() {
  ensureNativePump();
  const seen = new Set();
  const assets = [...new Set(Object.values(RUNTIME_FILES).flatMap((list) => list()))];
  const result = await build({
    entryPoints: [join(ROOT, 'src/cli/main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: join(OUT, 'forseti.cjs'),
    write: false,
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'none',
    banner: { js: YOUNG_GENERATION_BANNER },
    inject: [join(ROOT, 'src/release/module-url-global.ts')],
    define: { FORSETI_ASSET_NAMES: JSON.stringify(assets) },
    plugins: [moduleUrlPlugin(seen)],
    logLevel: 'error',
  });
  const emptyMeta = result.warnings.filter((w) => w.id === 'empty-import-meta');
  if (emptyMeta.length > 0) throw new Error(`import.meta is empty in the bundle: ${emptyMeta.map((w) => w.location?.file).join(', ')}`);
  const missing = Object.keys(RUNTIME_FILES).filter((m) => !seen.has(m));
  if (missing.length > 0) throw new Error(`RUNTIME_FILES lists modules that no longer read files: ${missing.join(', ')}`);
  const code = asciiOnly(result.outputFiles[0].text);
  return { code, assets };
}

/**
 * V8 keeps a script's source for compiling its functions lazily, and one character outside Latin-1 makes it keep the
 * whole bundle (4 MB) as two-byte text: 8 MB of the idle agent's heap. esbuild's ASCII output escapes strings but
 * leaves a regular expression's characters as written (isomorphic-git's `/[\ud800-\uffff]/` holds U+FFFF), so the
 * few that remain are escaped here; `\uXXXX` means the same code unit in a string, a regular expression or a name.
 */
function asciiOnly(text) {
  const escaped = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  new Script(escaped, { filename: 'forseti.cjs' }); // parses only: a syntax error here is the escaping's fault
  return escaped;
}

/** The addons are built at `npm ci`; a checkout without them gets one attempt here (scripts/build-native.mjs). */
function ensureNativePump() {
  if (ADDONS.every((a) => builtAddon(a).length > 0)) return;
  spawnSync(process.execPath, [join(ROOT, 'scripts/build-native.mjs')], { cwd: ROOT, stdio: 'inherit' });
  if (builtAddon('tftp_engine.node').length === 0) log('no native TFTP engine: the binary serves TFTP with the JavaScript pump');
  if (builtAddon('http_sendfile.node').length === 0) log('no native sendfile: the binary serves HTTP files with its read loop');
}

function writeJsForm(code, assets) {
  mkdirSync(OUT, { recursive: true });
  writeAtomic(join(OUT, 'forseti.cjs'), code, 0o644);
  rmSync(join(OUT, 'assets'), { recursive: true, force: true });
  for (const name of assets) {
    mkdirSync(dirname(join(OUT, 'assets', name)), { recursive: true });
    copyFileSync(join(ROOT, name), join(OUT, 'assets', name));
  }
}

function stampOf(code, assets) {
  const h = createHash('sha256').update(code);
  for (const name of assets) h.update(`\0${name}\0`).update(readFileSync(join(ROOT, name)));
  const node = statSync(process.execPath);
  h.update(`\0node ${process.version} ${process.execPath} ${node.size} ${node.mtimeMs}`);
  return h.digest('hex');
}

function buildSea(code, assets) {
  const binary = join(OUT, 'forseti');
  const stampFile = join(OUT, '.sea-stamp');
  const stamp = stampOf(code, assets);
  if (existsSync(binary) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    log(`${relative(ROOT, binary)} is up to date`);
    return;
  }
  const work = join(OUT, '.sea-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const config = {
    main: join(OUT, 'forseti.cjs'),
    output: join(work, 'sea-prep.blob'),
    disableExperimentalSEAWarning: true,
    // V8's code cache for the bundle, made at build time: the binary starts without compiling it first.
    useCodeCache: true,
    assets: Object.fromEntries(assets.map((name) => [name, join(ROOT, name)])),
  };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
  run(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')]);
  const target = join(work, 'forseti');
  // Node's release binary carries its symbols (about 12 MB); the executable does not need them.
  const stripped = spawnSync('strip', ['--strip-all', '-o', target, process.execPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (stripped.status !== 0) copyFileSync(process.execPath, target);
  chmodSync(target, 0o755);
  run(process.execPath, [join(ROOT, 'node_modules/postject/dist/cli.js'), target, 'NODE_SEA_BLOB', config.output, '--sentinel-fuse', SEA_FUSE]);
  renameSync(target, binary);
  writeFileSync(stampFile, stamp);
  rmSync(work, { recursive: true, force: true });
  log(`${relative(ROOT, binary)}: ${(statSync(binary).size / 1048576).toFixed(1)} MiB, Node ${process.version}, ${assets.length} assets`);
}

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

function writeAtomic(file, data, mode) {
  writeFileSync(`${file}.tmp`, data, { mode });
  renameSync(`${file}.tmp`, file);
}

const started = Date.now();
const { code, assets } = await bundle();
writeJsForm(code, assets);
log(`${relative(ROOT, join(OUT, 'forseti.cjs'))}: ${(code.length / 1024).toFixed(0)} KiB, ${assets.length} assets in ${relative(ROOT, join(OUT, 'assets'))}/`);
if (WANT_SEA) {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the single executable is built for linux-x64, not ${process.platform}-${process.arch}`);
  buildSea(code, assets);
}
log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
