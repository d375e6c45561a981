// bin/berth.js re-executes itself (the same process) on a Node started with V8's heap flags.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort, runCli, writeConfig } from './harness/berth.ts';
import { waitFor } from './harness/docker.ts';

const DEFAULT = ['--max-semi-space-size=1', '--max-old-space-size=512'];

it('berth serve runs with the heap flags and its malloc settings as one process (no parent left behind) and stops on SIGTERM with 0', async () => {
  const port = await freePort();
  const cfg = writeConfig([], { listen: `127.0.0.1:${port}` });
  const serve = runCli(['--config', cfg.file, 'serve']);
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, {
      what: 'berth serve to be ready',
      timeoutMs: 60_000,
    });
    // the process the test started is berth itself, now a Node with the flags, and has no child
    const pid = serve.child.pid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(1, 3)).toEqual(DEFAULT);
    expect(argv.slice(3)).toEqual([expect.stringMatching(/bin\/berth\.js$/), '--config', cfg.file, 'serve', '']);
    expect(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()).toBe('');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('MALLOC_ARENA_MAX=1');
    expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    serve.child.kill('SIGTERM');
    const ended = await serve;
    expect(ended).toMatchObject({ code: 0, signal: null });
    expect(ended.stderr).toContain('"msg":"stopping"');
  } finally {
    serve.child.kill('SIGKILL');
    cfg.cleanup();
  }
});

// What each way of starting berth ends with: Node's options and V8's heap limit, read back by a
// module Node preloads (in the final process only: execve ends the first one without 'exit').
// The limit is the old space's plus the young generation's (3 semi-spaces, up to 64 MiB each by default).
const cases: Array<{ name: string; env: Record<string, string>; execArgv: string[]; limitMiB?: [number, number] }> = [
  { name: 'by default: both flags', env: {}, execArgv: DEFAULT, limitMiB: [512, 530] },
  {
    name: 'BERTH_NODE_FLAGS replaces them',
    env: { BERTH_NODE_FLAGS: '--max-old-space-size=300' },
    execArgv: ['--max-old-space-size=300'],
    limitMiB: [300, 520],
  },
  { name: 'BERTH_NODE_FLAGS empty: Node as it is, no re-exec', env: { BERTH_NODE_FLAGS: '' }, execArgv: [] },
  {
    name: "the user's NODE_OPTIONS wins over berth's flag of the same name",
    env: { NODE_OPTIONS: '--max-old-space-size=400' },
    execArgv: ['--max-semi-space-size=1'],
    limitMiB: [400, 430],
  },
];

it.each(cases)('$name', async ({ env, execArgv, limitMiB }) => {
  const cfg = writeConfig([]);
  const probe = join(cfg.dir, 'probe.mjs');
  writeFileSync(
    probe,
    `import v8 from 'node:v8';\nprocess.on('exit', () => process.stdout.write('\\nPROBE ' + JSON.stringify({ execArgv: process.execArgv, limit: v8.getHeapStatistics().heap_size_limit / 2 ** 20 })));\n`,
  );
  try {
    const got = await runCli(['--help'], { env: { ...env, NODE_OPTIONS: `--import=${probe} ${env.NODE_OPTIONS ?? ''}` } });
    expect(got.code).toBe(0);
    const { execArgv: args, limit } = JSON.parse(got.stdout.split('\nPROBE ')[1]) as { execArgv: string[]; limit: number };
    expect(args).toEqual(execArgv);
    if (limitMiB) expect(limit).toBeGreaterThanOrEqual(limitMiB[0]);
    if (limitMiB) expect(limit).toBeLessThan(limitMiB[1]);
  } finally {
    cfg.cleanup();
  }
});

it('refuses a BERTH_NODE_FLAGS that is not Node options, with exit code 2', async () => {
  const got = await runCli(['--help'], { env: { BERTH_NODE_FLAGS: '--max-semi-space-size=1 max-old-space-size=96' } });
  expect(got.code).toBe(2);
  expect(got.stderr).toContain("BERTH_NODE_FLAGS holds Node options (--name=value ...); 'max-old-space-size=96' is not one.");
});

it.each<{ from: string; env: Record<string, string>; entry: RegExp; files: number }>([
  { from: 'the bundle', env: {}, entry: /cache for .*dist\/berth\.mjs was accepted/, files: 2 },
  { from: 'the sources', env: { BERTH_FROM_SOURCE: '1' }, entry: /cache for .*src\/cli\/main\.ts was accepted/, files: 20 },
])("keeps berth's compiled form in Node's compile cache, so that the next start skips compiling it ($from)", async ({ env: from, entry, files }) => {
  const cfg = writeConfig([]);
  // berth turns the cache on itself, in the system's temporary folder (here, the test's own)
  const env = { ...from, TMPDIR: cfg.dir, NODE_COMPILE_CACHE: '' };
  try {
    expect((await runCli(['--help'], { env })).code).toBe(0);
    const entries = readdirSync(join(cfg.dir, 'node-compile-cache'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(entries.length).toBeGreaterThanOrEqual(files);
    expect((await runCli(['--help'], { env: { ...env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } })).stderr).toMatch(entry);
  } finally {
    cfg.cleanup();
  }
});
