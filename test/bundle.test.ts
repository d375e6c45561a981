// bin/berth.js runs berth's bundle (dist/berth.mjs, scripts/build.ts) while it is newer than every
// source it was made from, makes it again first when it is not, and runs the sources themselves
// when it cannot make it.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './harness/berth.ts';

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/** Runs `root`'s bin/berth.js; returns its output. */
async function runIn(root: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [join(root, 'bin', 'berth.js'), ...args], { env: { ...process.env, BERTH_FROM_SOURCE: '', ...env } });
}

/** Runs `root`'s bin/berth.js; returns its stdout. */
const berth = async (root: string, args: string[], env: Record<string, string> = {}) => (await runIn(root, args, env)).stdout.trim();

const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds);

describe('which berth bin/berth.js runs', () => {
  let root: string;
  beforeAll(() => {
    // an install with stand-ins for the sources and the bundle, and no esbuild to make the bundle again
    root = mkdtempSync(join(tmpdir(), 'berth-bundle-'));
    mkdirSync(join(root, 'bin'));
    cpSync(join(ROOT, 'bin', 'berth.js'), join(root, 'bin', 'berth.js'));
    mkdirSync(join(root, 'src', 'cli'), { recursive: true });
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), "const from: string = 'the sources';\nconsole.log(from);\n");
    writeFileSync(join(root, 'src', 'config.ts'), 'export {};\n');
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'dist', 'berth.mjs'), "console.log('the bundle');\n");
    writeFileSync(join(root, 'dist', 'berth.inputs.json'), JSON.stringify({ inputs: ['src/cli/main.ts', 'src/config.ts'] }));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the bundle, while it is newer than each of its sources', async () => {
    at(join(root, 'src', 'cli', 'main.ts'), 1000);
    at(join(root, 'src', 'config.ts'), 1000);
    at(join(root, 'dist', 'berth.mjs'), 2000);
    expect(await berth(root, ['--help'])).toBe('the bundle');
  });

  it('the sources, when one of them is newer and esbuild is not there to make the bundle again', async () => {
    at(join(root, 'src', 'config.ts'), 3000);
    const { stdout, stderr } = await runIn(root, []);
    expect(stdout.trim()).toBe('the sources');
    expect(stderr).toBe('');
    at(join(root, 'src', 'config.ts'), 1000);
  });

  it('the sources, when a source it was made from is gone', async () => {
    rmSync(join(root, 'src', 'config.ts'));
    try {
      expect(await berth(root, [])).toBe('the sources');
    } finally {
      writeFileSync(join(root, 'src', 'config.ts'), 'export {};\n');
      at(join(root, 'src', 'config.ts'), 1000);
    }
  });

  it('the sources, with BERTH_FROM_SOURCE=1', async () => {
    expect(await berth(root, [])).toBe('the bundle');
    expect(await berth(root, [], { BERTH_FROM_SOURCE: '1' })).toBe('the sources');
  });
});

it('makes the bundle again on start once a source is newer, and the new bundle runs berth', async () => {
  // a copy of berth's sources and build script, with the installed packages
  const root = mkdtempSync(join(tmpdir(), 'berth-rebuild-'));
  try {
    for (const path of ['bin', 'src', 'scripts', 'examples', 'package.json', 'package-lock.json'])
      cpSync(join(ROOT, path), join(root, path), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const bundle = join(root, 'dist', 'berth.mjs');
    expect(await berth(root, ['--help'])).toContain('Usage: berth');
    const first = statSync(bundle).mtimeMs;
    expect(JSON.parse(readFileSync(join(root, 'dist', 'berth.inputs.json'), 'utf8')).inputs).toContain('src/engine/engine.ts');
    // unchanged: the same bundle
    expect(await berth(root, ['--help'])).toContain('Usage: berth');
    expect(statSync(bundle).mtimeMs).toBe(first);
    // a source changes (here the CLI's description): the bundle is made again and says so
    const main = join(root, 'src', 'cli', 'main.ts');
    writeFileSync(main, readFileSync(main, 'utf8').replace('GitOps for plain Docker hosts', 'GitOps (changed) for plain Docker hosts'));
    utimesSync(main, new Date(), new Date(Date.now() + 5000));
    expect(await berth(root, ['--help'])).toContain('GitOps (changed) for plain Docker hosts');
    expect(statSync(bundle).mtimeMs).toBeGreaterThan(first);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

it('the bundle is ASCII (V8 keeps its text one byte a character), holds neither gRPC nor ssh2, and does not load them until they are needed', async () => {
  const bundle = readFileSync(join(ROOT, 'dist', 'berth.mjs'));
  expect(bundle.findIndex((b) => b > 0x7f)).toBe(-1);
  // esbuild names each CommonJS module it wraps by its path: dockerode is in, what it would load is
  // not, and docker-modem (loaded from node_modules, see scripts/build.ts) is not either
  const text = bundle.toString('latin1');
  expect(text).toContain('"node_modules/dockerode/lib/docker.js"');
  expect(text).not.toMatch(/"node_modules\/(@grpc|ssh2|protobufjs|cpu-features|docker-modem|simple-get)\//);
  expect(text).not.toContain('"node_modules/dockerode/lib/session.js"');
  const dir = mkdtempSync(join(tmpdir(), 'berth-probe-'));
  try {
    // what the process has loaded when `berth hosts` (which connects to a host) ends
    const probe = join(dir, 'probe.mjs');
    writeFileSync(
      probe,
      "import { createRequire } from 'node:module';\nconst cache = createRequire(import.meta.url).cache;\nprocess.on('exit', () => process.stderr.write('\\nPROBE ' + JSON.stringify(Object.keys(cache).filter((k) => /node_modules\\/(@grpc|ssh2|protobufjs|docker-modem\\/lib\\/(modem|ssh))/.test(k)).map((k) => k.split('node_modules/')[1]))));\n",
    );
    const config = join(dir, 'berth.config.yaml');
    writeFileSync(config, `dataDir: ${dir}/data\nhosts:\n  - name: h\n    endpoint: unix://${dir}/none.sock\nrepos: []\n`);
    const got = await runCli(['--config', config, 'hosts'], { env: { NODE_OPTIONS: `--import=${probe}` } });
    expect(got.stdout).toContain('h');
    // docker-modem came from node_modules, without its ssh (and ssh2)
    expect(JSON.parse(got.stderr.split('\nPROBE ')[1])).toEqual(['docker-modem/lib/modem.js']);
    expect(got.stderr.split('\nPROBE ')[0]).toBe('1 of 1 host(s) not up: h unreachable\n'); // and nothing else
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
