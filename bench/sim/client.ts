/**
 * Starts the simulated fleet as a child process (bench/sim/main.ts) and asks it, over its control
 * socket, what its hosts were asked and what they made their callers wait.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import type { StartRecord } from './host.ts';
import type { HostCalls, SimEndpoint } from './server.ts';

const MAIN = resolve(import.meta.dirname, 'main.ts');

export interface SimProcess {
  pid: number;
  endpoints: SimEndpoint[];
  calls(): Promise<Record<string, HostCalls>>;
  starts(): Promise<Record<string, StartRecord[]>>;
  usage(): Promise<{ cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }>;
  reset(): Promise<void>;
  /** health probes take `ms` from now on */
  probeMs(ms: number): Promise<void>;
  close(): Promise<void>;
}

function ask<T>(socketPath: string, method: string, path: string): Promise<T> {
  return new Promise((done, fail) => {
    const req = request({ socketPath, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          done(JSON.parse(Buffer.concat(chunks).toString()) as T);
        } catch (err) {
          fail(err as Error);
        }
      });
    });
    req.on('error', fail);
    req.end();
  });
}

/** `hosts` simulated hosts with `cpus` CPUs and `memoryGib` GiB each, their sockets in `dir`. */
export async function spawnSimFleet(dir: string, hosts: number, { cpus = 4, memoryGib = 8 } = {}): Promise<SimProcess> {
  const child = spawn(process.execPath, [MAIN, dir, String(hosts), String(cpus), String(memoryGib)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const endpoints = await new Promise<SimEndpoint[]>((done, fail) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) done((JSON.parse(line) as { endpoints: SimEndpoint[] }).endpoints);
    });
    child.once('exit', (code) => fail(new Error(`the simulator exited (${code}) before it was ready`)));
  });
  const control = join(dir, 'control.sock');
  return {
    pid: child.pid!,
    endpoints,
    calls: () => ask(control, 'GET', '/calls'),
    starts: () => ask(control, 'GET', '/starts'),
    usage: () => ask(control, 'GET', '/usage'),
    reset: async () => {
      await ask(control, 'POST', '/reset');
    },
    probeMs: async (ms) => {
      await ask(control, 'POST', `/probe-ms/${Math.round(ms)}`);
    },
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
