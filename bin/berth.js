#!/usr/bin/env node
// berth runs its TypeScript sources directly on Node 24+ (built-in type stripping, node:sqlite).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // `npm install` (a checkout, or `npm install -g berth`) brings Node 24 as the `node` package:
  // berth runs on that one, as a child that gets the signals sent to this process and whose exit
  // code (or signal) this process ends with. Older Nodes have no execve to become it.
  const bundled = join(import.meta.dirname, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bundled)) {
    console.error(
      `berth needs Node 24 or newer; this is Node ${process.versions.node}.\n` +
        'Run it through npm (`npm start`, `npm run berth -- ARGS`, `npx berth`), which uses the Node 24 that `npm install` put in node_modules.',
    );
    process.exit(1);
  }
  const child = spawn(bundled, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  // Ctrl-C reaches the child from the terminal already (one process group): passed on, it would
  // be a second SIGINT, which ends `serve` at once instead of letting it stop cleanly.
  process.on('SIGINT', () => {});
  child.on('error', (err) => {
    console.error(`berth: cannot start ${bundled}: ${err.message}`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
  await new Promise(() => {}); // the child's exit ends this process
}

// V8 grows its heap lazily and keeps what it grew: left alone, `berth serve` over 1,000 containers
// peaks at ~370 MB resident, most of it garbage. These flags keep the heap small; the old space's
// limit is ~10x the heap berth uses with 1,000 containers (docs/config.md, "Memory").
// BERTH_NODE_FLAGS replaces them (empty: Node as it is), and a flag the user gave Node (on its
// command line or in NODE_OPTIONS) wins over berth's of the same name.
const DEFAULT_FLAGS = '--max-semi-space-size=1 --max-old-space-size=512';
const wanted = (process.env.BERTH_NODE_FLAGS ?? DEFAULT_FLAGS).split(/\s+/).filter(Boolean);
const notFlag = wanted.find((flag) => !flag.startsWith('--'));
if (notFlag !== undefined) {
  console.error(`berth: BERTH_NODE_FLAGS holds Node options (--name=value ...); '${notFlag}' is not one.`);
  process.exit(2);
}
const flagName = (flag) => flag.split('=')[0].replaceAll('_', '-');
const given = new Set([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map(flagName));
const missing = wanted.filter((flag) => !given.has(flagName(flag)));
// Node takes V8's heap flags at start only: berth becomes a Node started with them, the same
// process (pid, signals, exit code, stdio), not a child. Without execve (Windows), as it is.
// BERTH_REEXEC marks the second start (never a third), and is not passed on to berth's children.
// glibc's malloc: one arena for all of Node's threads instead of 8 per core (~15 MB less at the
// peak than glibc's default, ~5 MB less than two); and blocks of 128 KiB or more (the Docker API's
// answers) always mapped on their own and given back when freed, instead of glibc raising that
// threshold as they are freed and carving them out of its heap, which then stays grown (~5 MB).
// Either, set in the environment, is kept as it is.
if (missing.length > 0 && typeof process.execve === 'function' && !process.env.BERTH_REEXEC) {
  const env = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072', ...process.env, BERTH_REEXEC: '1' };
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], env);
}
delete process.env.BERTH_REEXEC;
// Node's compile cache keeps each source's stripped and compiled form between runs (in
// NODE_COMPILE_CACHE, else the system's temporary folder): a start that finds it skips the type
// stripper, whose WebAssembly costs ~20 MB resident for as long as berth runs, and starts sooner.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
module.enableCompileCache?.();
await import(entry());

/**
 * berth runs from its bundle, dist/berth.mjs (scripts/build.ts: one file, ~10 MB less resident than
 * the ~700 modules it is made of), while the bundle is newer than every source it was made from;
 * else the bundle is made again first, when esbuild is installed (a development install: ~1 s), in
 * a child process; else (or with BERTH_FROM_SOURCE=1) berth runs from its sources.
 */
function entry() {
  const source = '../src/cli/main.ts';
  if (process.env.BERTH_FROM_SOURCE === '1') return source;
  const root = join(import.meta.dirname, '..');
  const bundle = join(root, 'dist', 'berth.mjs');
  // An install without the sources (the npm package, the container image: README, "Run berth as
  // a container") has the bundle only.
  if (!existsSync(join(root, source.slice(3)))) return bundle;
  const fresh = () => {
    try {
      const made = statSync(bundle).mtimeMs;
      const { inputs } = JSON.parse(readFileSync(join(root, 'dist', 'berth.inputs.json'), 'utf8'));
      return inputs.every((file) => statSync(join(root, file), { throwIfNoEntry: false })?.mtimeMs <= made);
    } catch {
      return false;
    }
  };
  if (fresh()) return bundle;
  if (!existsSync(join(root, 'node_modules', 'esbuild'))) return source;
  const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.ts'), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (built.status === 0 && fresh()) return bundle;
  console.error(`berth: could not bundle its sources (running them as they are): ${built.stderr?.trim() || built.error?.message || `exit ${built.status}`}`);
  return source;
}
