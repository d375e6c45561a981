/**
 * When a replica counts as up (docs/how-it-works.md, "Rollouts"): it runs, and where it has a
 * health check it is `healthy`, and it stays so for `monitor`. Read by polling the container's
 * state, again as soon as the host's events say it changed (when berth follows them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import type { HostOps } from './host-ops.ts';

/**
 * Why a container is not ready: it exited, restarted, turned unhealthy, was not ready in time,
 * stopped being ready while monitored, or is gone. (A container that could not be started at all is
 * `start-error`, said by the executor.)
 */
export type NotReadyCode = 'exited' | 'restarted' | 'unhealthy' | 'timeout' | 'unstable' | 'gone' | 'start-error';

export type Readiness = { ok: true; health: 'healthy' | 'running' } | { ok: false; reason: string; code: NotReadyCode };

type NotReady = Extract<Readiness, { ok: false }>;

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

/**
 * Waits until the container is ready (or fails: exits, restarts, turns unhealthy, or times out).
 * A failure says what the container's state shows; its output is the caller's to read (the
 * evidence of a failed step, src/apply/evidence.ts), only then.
 */
export async function waitReady(host: HostOps, id: string, opts: ReadyOptions = {}): Promise<Readiness> {
  const poll = opts.pollMs ?? 200;
  const started = Date.now();
  let deadline: number | undefined = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined;
  let readySince: number | undefined;
  let restarts: number | undefined;
  for (;;) {
    const info = await host.inspect(id);
    if (!info) return { ok: false, reason: 'the container is gone', code: 'gone' };
    deadline ??= Date.now() + healthDeadlineMs(info.Config.Healthcheck);
    restarts ??= info.RestartCount;
    const state = info.State;
    const checked = opts.health !== false && state.Health !== undefined && info.Config.Healthcheck?.Test?.[0] !== 'NONE';
    const failure = whyNotReady(host, info, restarts, checked);
    if (failure) return failure;
    const ready = state.Running && (!checked || state.Health?.Status === 'healthy');
    if (ready) {
      readySince ??= Date.now();
      if (Date.now() - readySince >= (opts.monitorMs ?? 0)) return { ok: true, health: checked ? 'healthy' : 'running' };
    } else if (readySince !== undefined) {
      return { ok: false, reason: `stopped being ${checked ? 'healthy' : 'running'} while monitored (${state.Status})`, code: 'unstable' };
    }
    if (Date.now() > deadline) {
      const waited = Math.round((Date.now() - started) / 1000);
      return { ok: false, reason: `not ${checked ? 'healthy' : 'running'} after ${waited} s (${state.Health?.Status ?? state.Status})`, code: 'timeout' };
    }
    // the next look when the host says the container changed (its health check's verdict, its exit), else after the poll's interval
    await (host.changed ? host.changed(id, poll) : sleep(poll));
  }
}

function whyNotReady(host: HostOps, info: Dockerode.ContainerInspectInfo, restarts: number, checked: boolean): NotReady | undefined {
  const state = info.State;
  if (info.RestartCount > restarts || state.Restarting) return { ok: false, reason: `it restarted (exit code ${state.ExitCode})`, code: 'restarted' };
  if (!state.Running && ['exited', 'dead'].includes(state.Status)) return { ok: false, reason: `it exited with code ${state.ExitCode}`, code: 'exited' };
  if (checked && state.Health?.Status === 'unhealthy') {
    const last = state.Health.Log.at(-1);
    const output = last ? host.mask(info.Id, info.Config.Env ?? [], last.Output.trim()) : '';
    const said = last ? `: health check exit code ${last.ExitCode}${output ? `, ${output.slice(0, 200)}` : ''}` : '';
    return { ok: false, reason: `unhealthy${said}`, code: 'unhealthy' };
  }
  return undefined;
}
