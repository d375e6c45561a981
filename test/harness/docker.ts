// Helpers for test files that use the shared test daemon (see global-setup.ts).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { inject } from 'vitest';

/** A Docker client for the shared test daemon (its private unix socket). */
export function testDocker(): Dockerode {
  return new Dockerode({ socketPath: inject('docker').socketPath });
}

/** A name no other test (or test run) uses: test files share one daemon. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export interface WaitForOptions {
  /** What is awaited, for the error on time-out ("web container to be healthy"). */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Calls fn until it returns a truthy value and returns that value. Errors thrown by fn count as
 * "not yet"; on time-out the error names `what` and the last value or error seen.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, { what, timeoutMs = 30_000, intervalMs = 200 }: WaitForOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      last = `last result: ${JSON.stringify(value)}`;
    } catch (err) {
      last = `last error: ${(err as Error).message}`;
    }
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (${last}).`);
    await sleep(intervalMs);
  }
}

/** Force-removes (with their anonymous volumes) all containers carrying every one of these labels. */
export async function removeContainers(docker: Dockerode, filterLabels: Record<string, string>): Promise<void> {
  const label = Object.entries(filterLabels).map(([k, v]) => `${k}=${v}`);
  if (!label.length) throw new Error('removeContainers needs at least one label to filter on.');
  const containers = await docker.listContainers({ all: true, filters: { label } });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err; // already gone / removal in progress
        }),
    ),
  );
}

/** Runs a command in a running container; returns its output (stdout and stderr) and exit code. */
export async function execIn(container: Dockerode.Container, cmd: string[]): Promise<{ output: string; exitCode: number }> {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  let raw = Buffer.alloc(0);
  for await (const chunk of stream) raw = Buffer.concat([raw, chunk as Buffer]);
  let output = '';
  for (let i = 0; i + 8 <= raw.length;) {
    const size = raw.readUInt32BE(i + 4);
    output += raw.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return { output, exitCode: (await exec.inspect()).ExitCode ?? -1 };
}

/** The containers (running or not) of one service of a stack, by slot. */
export async function serviceContainers(docker: Dockerode, stack: string, service: string): Promise<Dockerode.ContainerInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`, `berth.service=${service}`] } });
  return list.sort((a, b) => Number(a.Labels['berth.slot']) - Number(b.Labels['berth.slot']));
}

/**
 * The daemon's lifecycle events of one stack's objects between two moments (ms), by action (health
 * checks' execs left out): containers by default, `types` for networks and volumes too.
 */
export async function containerEvents(
  docker: Dockerode,
  stack: string,
  since: number,
  until: number,
  types: Array<'container' | 'network' | 'volume'> = ['container'],
): Promise<string[]> {
  const stream = (await docker.getEvents({
    since: (since / 1000).toFixed(3),
    until: (until / 1000).toFixed(3),
    filters: {
      type: types,
      label: [`berth.stack=${stack}`],
      event: ['create', 'start', 'stop', 'kill', 'die', 'destroy', 'rename', 'update', 'pause', 'restart', 'remove', 'connect', 'disconnect'],
    },
  } as unknown as Parameters<Dockerode['getEvents']>[0])) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { Action: string }).Action);
}
