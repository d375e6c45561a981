/** Shared pieces of the benchmarks: medians, polling, a generated repo, the result rows (the request-counting Docker proxy is the test harness's). */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { Engine, type RepoPass } from '../src/engine/engine.ts';
import { buildServer } from '../src/server/server.ts';
import { IMAGES } from '../test/harness/images.ts';
import { createServer } from 'node:net';

const execFileAsync = promisify(execFile);

/** Runs a CLI (docker, docker-compose) against a daemon's unix socket; fails with its stderr. */
export async function cli(cmd: string, args: string[], socketPath: string, cwd?: string): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { cwd, env: { ...process.env, DOCKER_HOST: `unix://${socketPath}` }, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`bench: ${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Delivers a signed generic webhook for `sha` on branch main of `repoUrl` to berth on `port`; fails unless it is accepted (202). */
export async function pushWebhook(port: number, secret: string, repoUrl: string, sha: string, delivery: string): Promise<void> {
  const body = JSON.stringify({ repo: repoUrl, branch: 'main', after: sha });
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-berth-signature': signature, 'x-berth-delivery': delivery },
    body,
  });
  if (res.status !== 202) throw new Error(`bench: the webhook was answered ${res.status}: ${await res.text()}`);
}

/** The median of a non-empty list. */
/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Polls fn every intervalMs until it returns a value; throws after timeoutMs. */
export async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 120_000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The floor: `runs` times, the test image created and started straight through the Docker API (no health check; on the default bridge, or on `on`), in ms. */
export async function floorRuns(docker: Dockerode, runs = 5, on?: OnNetwork): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const c = await docker.createContainer(probeContainer(`floor-${i}`, on));
    await c.start();
    out.push(performance.now() - t0);
    await c.remove({ force: true });
  }
  return out;
}

/** A user-defined network to put a probe container on, with the aliases it answers to there. */
export interface OnNetwork {
  network: string;
  aliases: string[];
}

/** The create options of a container of the test image without its health check: on the default bridge, or on `on`. */
export function probeContainer(name: string, on?: OnNetwork): Dockerode.ContainerCreateOptions {
  const base = { Image: IMAGES.webV1, name, Healthcheck: { Test: ['NONE'] } };
  if (!on) return base;
  return { ...base, HostConfig: { NetworkMode: on.network }, NetworkingConfig: { EndpointsConfig: { [on.network]: { Aliases: on.aliases } } } };
}

/** One line of the final table: a figure, what it is compared with, and the target (if any) it meets or misses. */
export interface Row {
  scenario: string;
  value: string;
  against?: string;
  target?: string;
  met?: boolean;
}

export const ms = (x: number): string => `${x.toFixed(0)} ms`;

/** Prints rows as a Markdown table. */
export function printTable(title: string, rows: Row[]): void {
  console.log(`\n${title}\n`);
  console.log('| scenario | figure | against | target |');
  console.log('| --- | ---: | --- | --- |');
  for (const r of rows) {
    const target = r.target ? `${r.target}: ${r.met ? 'met' : 'MISSED'}` : '';
    console.log(`| ${r.scenario} | ${r.value} | ${r.against ?? ''} | ${target} |`);
  }
}

/** One service of a generated stack; `image` overrides the stack's image. */
export interface ShapeService {
  name: string;
  replicas: number;
  image?: string;
  /** its `deploy.update_config.parallelism` (berth's and Swarm's default: 1) */
  parallelism?: number;
}

/** Deterministic repo shape: `stacks` stacks, `services` services, `containers` containers in all (replicas 1-3). */
export function repoShape(stacks: number, services: number, containers: number): ShapeService[][] {
  if (services < stacks || containers < services || containers > services * 3) throw new Error('bench: impossible repo shape');
  const out: ShapeService[][] = Array.from({ length: stacks }, () => []);
  for (let i = 0; i < services; i++) out[i % stacks].push({ name: `svc${Math.floor(i / stacks)}`, replicas: 1 });
  let extra = containers - services;
  const all = out.flat();
  for (let round = 0; extra > 0; round++)
    for (const s of all)
      if (extra > 0 && s.replicas < 3) {
        s.replicas++;
        extra--;
      }
  return out;
}

/** The Compose file of one stack: services of `image` (or their own) with `deploy.replicas`. */
export function composeFile(services: ShapeService[], image: string): string {
  // the image's 1 s health check, x100 containers, would load a 2-core machine more than the deploys themselves
  const update = (s: ShapeService) => (s.parallelism === undefined ? '' : `      update_config:\n        parallelism: ${s.parallelism}\n`);
  return `services:\n${services.map((s) => `  ${s.name}:\n    image: ${s.image ?? image}\n    healthcheck:\n      disable: true\n    deploy:\n      replicas: ${s.replicas}\n${update(s)}`).join('')}`;
}

/** The repo's files: `s<i>/compose.yaml` per stack of the shape. */
export function repoFiles(shape: ShapeService[][], image: string): Record<string, string> {
  return Object.fromEntries(shape.map((services, i) => [`s${i}/compose.yaml`, composeFile(services, image)]));
}

/** How many containers on a daemon run, and how many of those are healthy. */
export async function containerStates(docker: Dockerode): Promise<{ running: number; healthy: number; all: number }> {
  const list = await docker.listContainers({ all: true });
  return {
    all: list.length,
    running: list.filter((c) => c.State === 'running').length,
    healthy: list.filter((c) => c.State === 'running' && c.Status.includes('(healthy)')).length,
  };
}

/** Removes every container and every unused network of a bench daemon. */
export async function wipe(docker: Dockerode): Promise<void> {
  const list = await docker.listContainers({ all: true });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  await docker.pruneNetworks();
}

export { countingProxy } from '../test/harness/proxy.ts';

/** berth in this process: an engine on `hosts` for one repo, with its HTTP server (webhooks) on a loopback port. */
export interface BenchBerth {
  engine: Engine;
  port: number;
  secret: string;
  close(): Promise<void>;
}

/**
 * Writes a berth.config.yaml under `dir` (one repo, polled hourly so that only the bench triggers
 * passes, with a webhook secret) and starts an engine and its HTTP server, logging nowhere.
 */
export async function startBerth(dir: string, hosts: Array<{ name: string; socketPath: string }>, repo: { name: string; url: string }): Promise<BenchBerth> {
  mkdirSync(dir, { recursive: true });
  const secret = 'bench-webhook-secret';
  writeFileSync(join(dir, 'hook-secret'), secret);
  const file = join(dir, 'berth.config.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      hosts: hosts.map((h) => ({ name: h.name, endpoint: `unix://${h.socketPath}` })),
      repos: [{ name: repo.name, url: repo.url, branch: 'main', poll: '1h', webhookSecretFile: 'hook-secret' }],
    }),
  );
  const engine = new Engine(loadConfig(file), pino({ level: 'silent' }));
  const app = buildServer({ ready: () => true, engine }, pino({ level: 'silent' }));
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    engine.close();
    throw err;
  }
  return {
    engine,
    port: (app.server.address() as { port: number }).port,
    secret,
    close: async () => {
      await app.close();
      await engine.drain();
      engine.close();
    },
  };
}

/** The errors of a pass, flattened; empty when every stack went well. */
export function passErrors(passes: RepoPass[]): string[] {
  return passes.flatMap((p) => [...(p.error ? [p.error] : []), ...p.stacks.flatMap((s) => s.errors ?? [])]);
}
