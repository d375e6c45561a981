// Helpers to run berth itself in tests: an engine config for the test daemon and git server, the
// CLI as a real child process, and an in-process Engine.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { Engine, type PassOptions } from '../../src/engine/engine.ts';
import type { AuditRow } from '../../src/audit/log.ts';
import { buildServer } from '../../src/server/server.ts';
import { removeContainers, testDocker, uniqueName } from './docker.ts';
import { startGitServer, type GitServer } from './git-server.ts';

export const BERTH_BIN = resolve(import.meta.dirname, '../../bin/berth.js');

export interface TestRepo {
  name: string;
  url: string;
  token?: string;
  poll?: string;
  /** more keys of the repo's entry (secrets, policy, ...) */
  settings?: Record<string, unknown>;
}

/** A host in a test config (paths in `tls` and `ssh` best absolute: the config lives in a temp folder). */
export interface TestHost {
  name: string;
  endpoint: string;
  labels?: Record<string, string>;
  tls?: { ca: string; cert: string; key: string };
  ssh?: { keyFile: string; knownHostsFile?: string; insecureIgnoreHostKey?: boolean };
}

/** The shared test daemons (`inject('dockers')`) as hosts `d1`, `d2`, `d3` on their unix sockets, `labels[i]` on the i-th. */
export function testHosts(labels: Array<Record<string, string>> = []): TestHost[] {
  return inject('dockers').map((d, i) => ({ name: `d${i + 1}`, endpoint: `unix://${d.socketPath}`, labels: labels[i] ?? {} }));
}

/**
 * A temp folder with a berth.config.yaml for the given repos and, by default, the first shared
 * test daemon as the one host `test`; `extra` adds or replaces top-level keys (`hosts: testHosts()`).
 */
export function writeConfig(
  repos: TestRepo[],
  extra: Record<string, unknown> & { hosts?: TestHost[] } = {},
): { dir: string; file: string; dataDir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-cfg-'));
  const config = {
    dataDir: join(dir, 'data'),
    hosts: [{ name: 'test', endpoint: `unix://${inject('docker').socketPath}` }],
    repos: repos.map((r) => {
      if (r.token) writeFileSync(join(dir, `${r.name}.token`), r.token);
      return { name: r.name, url: r.url, branch: 'main', poll: r.poll ?? '1h', ...(r.token ? { auth: { tokenFile: `${r.name}.token` } } : {}), ...r.settings };
    }),
    ...extra,
  };
  const file = join(dir, 'berth.config.yaml');
  writeFileSync(file, stringify(config));
  return { dir, file, dataDir: config.dataDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A logger for tests: nowhere, unless BERTH_TEST_LOG is set: 1 for standard output, or a file to append to. */
export const testLog = (): Logger => {
  const to = process.env.BERTH_TEST_LOG;
  if (!to) return pino({ level: 'silent' });
  return to === '1' ? pino({ level: 'debug' }) : pino({ level: 'debug' }, pino.destination({ dest: to, append: true, sync: true }));
};

/** A pino logger writing into a string (to check what berth logs). */
export function capturedLogger(): { log: Logger; text: () => string } {
  let buffer = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      buffer += chunk.toString();
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), text: () => buffer };
}

/** An engine in this process, logging nowhere (set BERTH_TEST_LOG to see its logs: see testLog). */
export function testEngine(configFile: string): Engine {
  return new Engine(loadConfig(configFile), testLog());
}

/** berth's HTTP server (API, webhooks, dashboard) for `engine`, ready and listening on a free loopback port at `base`. */
export async function serveEngine(
  engine: Engine,
  log: Logger = testLog(),
  opts: { heartbeatMs?: number } = {},
): Promise<{ app: FastifyInstance; base: string }> {
  const app = buildServer({ ready: () => true, engine, ...opts }, log);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `berth ARGS` as a child process on the Node running the tests (24+). */
export function runCli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> & { child: ReturnType<typeof spawn>; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BERTH_BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, BERTH_LOG_JSON: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolveDone) => child.on('close', (code, signal) => resolveDone({ code, signal, stdout, stderr })));
  return Object.assign(done, { child, output: () => ({ stdout, stderr }) });
}

/** A TCP port on loopback that nothing listens on now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The stack's audit rows, oldest first, optionally of some kinds only. */
export function auditRows(engine: Engine, stack: string, kinds?: string[]): AuditRow[] {
  return engine.audit
    .query({ stack, limit: 1000 })
    .rows.reverse()
    .filter((r) => !kinds || kinds.includes(r.kind));
}

/**
 * A stack of its own on a repo of its own on `server`, with an in-process engine (`engine` makes
 * it, else testEngine): `commit` puts a Compose file at the head, `sync` runs a pass and returns
 * the stack's outcome, `done` closes the engine and removes the stack's containers from `docker`.
 */
export async function ownStack(server: GitServer, docker: Dockerode, prefix: string, engine?: (file: string) => Engine) {
  const stack = uniqueName(prefix).replaceAll('-', '');
  const repo = await server.createRepo(uniqueName(`${prefix}repo`));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const e = engine ? engine(cfg.file) : testEngine(cfg.file);
  const commit = (compose: string, message?: string) => repo.commit({ [`${stack}/compose.yaml`]: compose }, { message });
  const sync = async (trigger: PassOptions['trigger'] = 'poll') => (await e.syncRepo(repo.name, { trigger })).stacks[0];
  const done = async () => {
    e.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg.cleanup();
  };
  return { stack, engine: e, commit, sync, done };
}

/** For a test file: a git server of its own (started before its tests, closed after them) and the test daemon, as `server` and `docker` once its tests run. */
export function gitServerAndDocker(): { server: GitServer; docker: Dockerode } {
  const ctx = {} as { server: GitServer; docker: Dockerode };
  beforeAll(async () => {
    ctx.server = await startGitServer();
    ctx.docker = testDocker();
  });
  afterAll(async () => ctx.server?.close());
  return ctx;
}
