/** Shared pieces of the benchmarks: medians, polling, a generated repo, a request-counting Docker proxy, the result rows. */
import { createServer, request, type Server } from 'node:http';
import { Agent } from 'node:http';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';

/** The median of a non-empty list. */
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

/** Deterministic repo shape: `stacks` stacks, `services` services, `containers` containers in all (replicas 1-3). */
export function repoShape(stacks: number, services: number, containers: number): Array<Array<{ name: string; replicas: number }>> {
  if (services < stacks || containers < services || containers > services * 3) throw new Error('bench: impossible repo shape');
  const out: Array<Array<{ name: string; replicas: number }>> = Array.from({ length: stacks }, () => []);
  for (let i = 0; i < services; i++) out[i % stacks].push({ name: `svc${Math.floor(i / stacks)}`, replicas: 1 });
  let extra = containers - services;
  const all = out.flat();
  for (let round = 0; extra > 0; round++) for (const s of all) if (extra > 0 && s.replicas < 3) { s.replicas++; extra--; }
  return out;
}

/** The Compose file of one stack: services of `image` with `deploy.replicas`. */
export function composeFile(services: Array<{ name: string; replicas: number }>, image: string): string {
  // the image's 1 s health check, x100 containers, would load a 2-core machine more than the deploys themselves
  return `services:\n${services.map((s) => `  ${s.name}:\n    image: ${image}\n    healthcheck:\n      disable: true\n    deploy:\n      replicas: ${s.replicas}\n`).join('')}`;
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
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  await docker.pruneNetworks();
}

/**
 * An HTTP proxy on a unix socket in front of a daemon's unix socket that counts requests by
 * `METHOD /path` (the API version prefix dropped, container ids folded to `{id}`).
 */
export async function countingProxy(upstreamSocket: string, socketPath: string) {
  const counts = new Map<string, number>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0].replace(/^\/v[\d.]+/, '').replace(/\/[0-9a-f]{64}\b/g, '/{id}');
    const key = `${req.method} ${path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const up = request({ socketPath: upstreamSocket, path: req.url, method: req.method, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (err) => { if (!res.headersSent) res.writeHead(502); res.end(String(err)); });
    req.pipe(up);
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
