/**
 * A job's run: waits, bounded by the job's timeout, for its started container to exit, and says
 * how it ended, with its last lines of output when it failed. Read by polling the container's state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { CREDENTIAL_URL, SECRET_KEY } from '../schedule/container.ts';
import type { HostOps } from './host-ops.ts';

export interface JobRun {
  ok: boolean;
  /** absent when the container vanished before it ended */
  exitCode?: number;
  /** `exit code 0`, or why it failed with its last output (secret-looking env values masked) */
  reason: string;
}

/** How many lines of a failed run's output are kept for the audit and the error. */
export const TAIL_LINES = 10;

/**
 * Waits for the (started) container `id` to exit. One still running after `timeoutMs` is stopped
 * (and kept, for inspection) and the run counts as failed. `since` (seconds since the epoch, the
 * daemon's clock) leaves out the output of the container's earlier runs.
 */
export async function waitJob(host: HostOps, id: string, timeoutMs: number, since?: string, pollMs = 100): Promise<JobRun> {
  const deadline = Date.now() + timeoutMs;
  let poll = pollMs;
  for (;;) {
    const info = await host.inspect(id);
    if (!info) return { ok: false, reason: 'its container was removed before it finished' };
    if (ended(info)) return outcome(host, info, since);
    if (Date.now() >= deadline) {
      await host.stop(id);
      const stopped = (await host.inspect(id)) ?? info;
      return outcome(host, stopped, since, `did not finish within ${duration(timeoutMs)}: stopped`);
    }
    await sleep(Math.max(0, Math.min(poll, deadline - Date.now())));
    poll = Math.min(poll * 2, 1000);
  }
}

const ended = (info: Dockerode.ContainerInspectInfo) => !info.State.Running && (info.State.Status === 'exited' || info.State.Status === 'dead');

async function outcome(host: HostOps, info: Dockerode.ContainerInspectInfo, since: string | undefined, timedOut?: string): Promise<JobRun> {
  const code = info.State.ExitCode;
  if (code === 0 && !timedOut) return { ok: true, exitCode: 0, reason: 'exit code 0' };
  const output = await host.tail(info.Id, info.Config.Env ?? [], TAIL_LINES, since);
  const how = [timedOut, info.State.OOMKilled ? 'killed: out of memory' : undefined, `exit code ${code}`].filter(Boolean).join('; ');
  return { ok: false, exitCode: code, reason: `${how}; ${output ? `last output:\n${output}` : 'no output'}` };
}

/**
 * Docker's `since` (`seconds.nanoseconds`) for one nanosecond after an RFC 3339 time with up to
 * nanoseconds: given the time of a container's last line, the output of its next run only.
 * (Neither the previous run's FinishedAt nor the next one's StartedAt tells them apart: Docker
 * stamps a line when it reads it, which may be after the one and before the other.)
 */
export function justAfter(time: string | undefined): string | undefined {
  const m = /^(.+?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time ?? '');
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) return undefined;
  const nanos = Number((m[2] ?? '').padEnd(9, '0')) + 1;
  const seconds = ms / 1000 + Math.floor(nanos / 1e9);
  return `${seconds}.${String(nanos % 1e9).padStart(9, '0')}`;
}

/**
 * `text` with secrets masked: the values of the container's secret-looking environment variables
 * and credential URLs, and `contents` (what berth wrote into it: its secrets and configs).
 */
export function redact(text: string, env: readonly string[], contents: readonly string[] = []): string {
  return masking([...envSecrets(env), ...contents])(text);
}

/** The values of a container's environment (`KEY=value` entries) that are secrets: a secret-looking name, or a URL with a password. */
export function envSecrets(env: readonly string[]): string[] {
  return env
    .map((e) => [e.slice(0, Math.max(0, e.indexOf('='))), e.slice(e.indexOf('=') + 1)])
    .filter(([k, v]) => k !== '' && (SECRET_KEY.test(k) || CREDENTIAL_URL.test(v)) && v.length >= 4)
    .map(([, v]) => v);
}

/**
 * What masks each of `secrets` in a text, as `<masked>`: the longest first, so that a secret
 * holding another is masked whole.
 */
export function masking(secrets: readonly string[]): (text: string) => string {
  const sorted = [...new Set(secrets)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  if (sorted.length === 0) return (text) => text;
  return (text) => sorted.reduce((out, s) => (out.includes(s) ? out.split(s).join('<masked>') : out), text);
}

/**
 * The strings to mask in output read line by line: each secret of at least `min` characters, trimmed,
 * and each line of one that has several (a key file's lines are printed one at a time too). Shorter
 * ones are left: they would mask ordinary words.
 */
export function secretPieces(secrets: readonly string[], min = 4): string[] {
  const out = new Set<string>();
  for (const s of secrets) {
    const whole = s.trim();
    if (whole.length >= min) out.add(whole);
    if (!whole.includes('\n')) continue;
    for (const line of whole.split('\n')) if (line.trim().length >= min) out.add(line.trim());
  }
  return [...out];
}

/** 600000 -> "10m", 90000 -> "1m30s", 1500 -> "1.5s" */
export function duration(ms: number): string {
  const m = Math.floor(ms / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${m ? `${m}m` : ''}${s || !m ? `${s}s` : ''}`;
}
