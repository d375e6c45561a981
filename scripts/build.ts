/**
 * Bundles berth into dist/berth.mjs: src/cli/main.ts and the packages it imports, as one
 * JavaScript file (and the PostgreSQL store's worker thread into dist/pg-worker.mjs) with comments and blank space taken out (names kept, so stack traces still read).
 * bin/berth.js runs that file when it is newer than every source it was made from, and runs this
 * script first when it is not (it runs the sources themselves when esbuild is not installed).
 *
 * Why: run from its sources, berth holds every module's text in V8's heap (~10 MB, twice that for
 * a file with one character beyond Latin-1, which V8 then keeps two bytes a character), a module
 * record per file (~800), and the type stripper's output in Node's compile cache. The bundle holds
 * ~3 MB of text, ASCII only (docs/benchmarks.md, "Peak RSS").
 *
 * Left out of the bundle, loaded from node_modules: pino (its transports start worker threads from
 * files of its own); docker-modem and simple-get, which call `url.parse()`, whose deprecation
 * warning Node prints only for a caller outside node_modules (as the bundle is); ssh2
 * (src/observe/ssh.ts, on the first ssh:// host); and, until used, what src/observe/lazy-deps.ts
 * keeps from loading (dockerode's BuildKit session, docker-modem's ssh) and dockerode's BuildKit
 * progress decoder (protobufjs).
 *
 * `node scripts/build.ts` (also `npm run build`); `--quiet`: nothing on stdout.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT } from '../src/paths.ts';
import { LAZY_STUBS } from '../src/observe/lazy-deps.ts';

export const BUNDLE = join(ROOT, 'dist', 'berth.mjs');
/** The bundle's sources (paths under ROOT), which bin/berth.js compares with the bundle's time. */
export const INPUTS = join(ROOT, 'dist', 'berth.inputs.json');
/** The PostgreSQL store's worker (src/audit/pg-worker.ts), bundled beside berth.mjs. */
export const WORKER = join(ROOT, 'dist', 'pg-worker.mjs');

/** Required lazily inside a function by a bundled module: left a require of the installed file. */
const LAZY_EXTERNAL = [{ specifier: './buildkit', parent: '/dockerode/lib/docker.js', external: 'dockerode/lib/buildkit.js' }];

const lazyDeps: esbuild.Plugin = {
  name: 'berth-lazy-deps',
  setup(build) {
    build.onResolve({ filter: /^\.\/(session|ssh|buildkit)$/ }, ({ path, importer }) => {
      const stub = LAZY_STUBS.find((s) => s.specifier === path && importer.endsWith(s.parent));
      if (stub) return { path: stub.stub };
      const lazy = LAZY_EXTERNAL.find((s) => s.specifier === path && importer.endsWith(s.parent));
      return lazy ? { path: lazy.external, external: true } : undefined;
    });
  },
};

/** What both bundles are: ESM for Node 24, blank space taken out, ASCII only, with the inputs listed. */
const NODE_BUNDLE = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minifyWhitespace: true,
  charset: 'ascii',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
} as const satisfies esbuild.BuildOptions;

/** Builds the bundle; returns its size and how many files it was made from. */
export async function build(): Promise<{ bytes: number; inputs: number }> {
  const result = await esbuild.build({
    ...NODE_BUNDLE,
    entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')],
    write: false,
    outfile: BUNDLE,
    external: ['pino', 'pino-pretty', 'docker-modem', 'simple-get', 'ssh2', 'cpu-features', ...LAZY_STUBS.map((s) => s.real)],
    minifySyntax: true,
    // the CommonJS packages' require() of Node's modules and of the externals above
    banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
    plugins: [lazyDeps],
  });
  // V8 keeps a script's text one byte a character only if every character is Latin-1, else two:
  // esbuild writes non-ASCII characters in strings and names as escapes but leaves those in regular
  // expressions (two here, ~3 MB more heap), so those are escaped too (\uXXXX means the same in both).
  const text = result.outputFiles[0].text.replace(/[^\t\n\r\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  // A CommonJS module that reads a file beside itself would look for it beside the bundle instead.
  const local = /\b__(dirname|filename)\b/.exec(text);
  if (local)
    throw new Error(
      `build: a bundled module uses ${local[0]} (near "${text.slice(Math.max(0, local.index - 120), local.index + 40)}"): leave its package out of the bundle (external)`,
    );
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  // The PostgreSQL store's worker thread (src/audit/pg.ts) runs from a file of its own, beside the bundle.
  const worker = await esbuild.build({ ...NODE_BUNDLE, entryPoints: [join(ROOT, 'src', 'audit', 'pg-worker.ts')], outfile: WORKER, external: ['pg'] });
  const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(worker.metafile.inputs)])].filter((p) => !p.startsWith('node_modules/'));
  // Written aside, then renamed: a berth starting meanwhile reads the old bundle or the new, whole.
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  writeFileSync(`${INPUTS}.${process.pid}.tmp`, JSON.stringify({ inputs: [...inputs, 'package-lock.json', 'scripts/build.ts'] }));
  writeFileSync(tmp, text);
  renameSync(`${INPUTS}.${process.pid}.tmp`, INPUTS);
  renameSync(tmp, BUNDLE);
  return { bytes: text.length, inputs: Object.keys(result.metafile.inputs).length };
}

if (import.meta.main) {
  const t0 = performance.now();
  const { bytes, inputs } = await build();
  if (!process.argv.includes('--quiet')) {
    console.log(
      `build: ${relative(process.cwd(), BUNDLE) || BUNDLE}: ${(bytes / 1e6).toFixed(1)} MB from ${inputs} files in ${Math.round(performance.now() - t0)} ms`,
    );
  }
}
