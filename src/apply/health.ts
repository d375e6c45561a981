/**
 * When a replica counts as up (docs/how-it-works.md, "Rollouts"): it runs, and where it has a
 * health check it is `healthy`, and it stays so for `monitor`. Read by polling the container's
 * state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import type { HostOps } from './host-ops.ts';

export type Readiness = { ok: true; health: 'healthy' | 'running' } | { ok: false; reason: string };

export interface ReadyOptions {
  /** wait for `healthy` when the container has a health check (default true) */
  health?: boolean;
  /** after it is ready, it must stay so this long, ms */
  monitorMs?: number;
  /** give up after this long; default: from the health check's timings, or 60 s */
  timeoutMs?: number;
  pollMs?: number;
}

const NS_PER_MS = 1e6;

/** How long a container with this health check may take to become healthy (Docker's defaults when unset). */
export function healthDeadlineMs(hc: Dockerode.HealthConfig | undefined): number {
  if (!hc?.Test || hc.Test[0] === 'NONE') return 60_000;
  const interval = (hc.Interval || 30_000 * NS_PER_MS) / NS_PER_MS;
  const timeout = (hc.Timeout || 30_000 * NS_PER_MS) / NS_PER_MS;
  const start = (hc.StartPeriod || 0) / NS_PER_MS;
  const retries = hc.Retries || 3;
  return start + (interval + timeout) * (retries + 1) + 10_000;
}

/** Waits until the container is ready (or fails: exits, restarts, turns unhealthy, or times out). */
export async function waitReady(host: HostOps, id: string, opts: ReadyOptions = {}): Promise<Readiness> {
  const poll = opts.pollMs ?? 200;
  const started = Date.now();
  let deadline: number | undefined = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined;
  let readySince: number | undefined;
  let restarts: number | undefined;
  for (;;) {
    const info = await host.inspect(id);
    if (!info) return { ok: false, reason: 'the container is gone' };
    deadline ??= Date.now() + healthDeadlineMs(info.Config.Healthcheck);
    restarts ??= info.RestartCount;
    const state = info.State;
    const checked = opts.health !== false && state.Health !== undefined && info.Config.Healthcheck?.Test?.[0] !== 'NONE';
    const failure = await whyNotReady(host, id, info, restarts, checked);
    if (failure) return { ok: false, reason: failure };
    const ready = state.Running && (!checked || state.Health?.Status === 'healthy');
    if (ready) {
      readySince ??= Date.now();
      if (Date.now() - readySince >= (opts.monitorMs ?? 0)) return { ok: true, health: checked ? 'healthy' : 'running' };
    } else if (readySince !== undefined) {
      return { ok: false, reason: `stopped being ${checked ? 'healthy' : 'running'} while monitored (${state.Status})` };
    }
    if (Date.now() > deadline) {
      const waited = Math.round((Date.now() - started) / 1000);
      return { ok: false, reason: `not ${checked ? 'healthy' : 'running'} after ${waited} s (${state.Health?.Status ?? state.Status})` };
    }
    await sleep(poll);
  }
}

async function whyNotReady(host: HostOps, id: string, info: Dockerode.ContainerInspectInfo, restarts: number, checked: boolean): Promise<string | undefined> {
  const state = info.State;
  const tail = async () => {
    const out = await host.tail(id, info.Config.Env ?? []);
    return out ? `; last output: ${out.split('\n').slice(-5).join(' | ')}` : '';
  };
  if (info.RestartCount > restarts || state.Restarting) return `it restarted (exit code ${state.ExitCode})${await tail()}`;
  if (!state.Running && ['exited', 'dead'].includes(state.Status)) return `it exited with code ${state.ExitCode}${await tail()}`;
  if (checked && state.Health?.Status === 'unhealthy') {
    const last = state.Health.Log.at(-1);
    return `unhealthy${last ? `: health check exit code ${last.ExitCode}${last.Output.trim() ? `, ${last.Output.trim().slice(0, 200)}` : ''}` : ''}`;
  }
  return undefined;
}
