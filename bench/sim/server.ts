/**
 * A fleet of simulated Docker hosts in this process: one SimHost per host, each answering the
 * Docker API on its own unix socket (`DIR/hNNN.sock`, for a berth host `endpoint:
 * unix://DIR/hNNN.sock`). With `control`, `DIR/control.sock` answers the fleet's bookkeeping
 * (bench/sim/client.ts asks it when the fleet runs in a process of its own):
 *
 * - `GET /calls`: per host, the calls answered by `METHOD /template`, and those that matched no route
 * - `POST /reset`: counts and start records back to nothing
 * - `GET /starts`: per host, each container start since the reset and when it was ready
 * - `GET /usage`: the simulator process's CPU time and memory
 * - `POST /probe-ms/N`: health probes take N ms on every host, for the containers started from then on
 */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { handle } from './api.ts';
import { SimHost, type StartRecord } from './host.ts';
import type { SimImageSpec } from './images.ts';

export interface SimFleetOptions {
  /** where the sockets go (a short path: unix socket paths are limited to 107 bytes) */
  dir: string;
  /** how many hosts (named h001, h002, ...), or their names */
  hosts: number | string[];
  cpus?: number;
  memoryBytes?: number;
  /** the images every host has from the start (default: the test images) */
  images?: SimImageSpec[];
  /** serve DIR/control.sock */
  control?: boolean;
  /** how long a health probe takes (default 0) */
  probeMs?: number;
}

export interface SimEndpoint {
  name: string;
  socketPath: string;
}

/** What a host was asked: calls by `METHOD /template`, and calls to endpoints the simulator does not have. */
export interface HostCalls {
  calls: Record<string, number>;
  unknown: Record<string, number>;
}

export interface SimFleet {
  dir: string;
  hosts: SimHost[];
  endpoints: SimEndpoint[];
  calls(): Record<string, HostCalls>;
  starts(): Record<string, StartRecord[]>;
  reset(): void;
  close(): Promise<void>;
}

export const hostName = (i: number): string => `h${String(i + 1).padStart(3, '0')}`;

export async function startSimFleet(opts: SimFleetOptions): Promise<SimFleet> {
  const names = typeof opts.hosts === 'number' ? Array.from({ length: opts.hosts }, (_, i) => hostName(i)) : opts.hosts;
  const hosts = names.map((name) => new SimHost({ name, cpus: opts.cpus, memoryBytes: opts.memoryBytes, images: opts.images, probeMs: opts.probeMs }));
  const servers: Server[] = [];
  const endpoints: SimEndpoint[] = [];
  const listen = async (server: Server, socketPath: string) => {
    rmSync(socketPath, { force: true });
    // dockerd keeps an idle connection open as long as the client does (Go's server has no idle
    // timeout): Node's 5 s default would close kept-alive sockets under berth's feet
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // thousands of calls at once in a cold deploy: a longer queue of connections than Node's 511
      server.listen({ path: socketPath, backlog: 4096 }, () => resolve());
    });
    servers.push(server);
  };
  for (const host of hosts) {
    const socketPath = join(opts.dir, `${host.name}.sock`);
    await listen(
      createServer((req, res) => handle(host, req, res)),
      socketPath,
    );
    endpoints.push({ name: host.name, socketPath });
  }
  const fleet: SimFleet = {
    dir: opts.dir,
    hosts,
    endpoints,
    calls: () => Object.fromEntries(hosts.map((h) => [h.name, { calls: Object.fromEntries(h.calls), unknown: Object.fromEntries(h.unknown) }])),
    starts: () => Object.fromEntries(hosts.map((h) => [h.name, [...h.starts]])),
    reset: () => hosts.forEach((h) => h.resetCounts()),
    close: async () => {
      hosts.forEach((h) => h.close());
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
  if (opts.control) {
    await listen(
      createServer((req, res) => {
        const reply = (body: unknown) => {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        req.resume();
        if (req.method === 'GET' && req.url === '/calls') return reply(fleet.calls());
        if (req.method === 'GET' && req.url === '/starts') return reply(fleet.starts());
        if (req.method === 'GET' && req.url === '/usage') return reply({ cpu: process.cpuUsage(), memory: process.memoryUsage() });
        const probe = /^\/probe-ms\/(\d+)$/.exec(req.url ?? '');
        if (req.method === 'POST' && probe) {
          hosts.forEach((h) => (h.probeMs = Number(probe[1])));
          return reply({});
        }
        if (req.method === 'POST' && req.url === '/reset') {
          fleet.reset();
          return reply({});
        }
        res.writeHead(404).end();
      }),
      join(opts.dir, 'control.sock'),
    );
  }
  return fleet;
}
