/**
 * The evidence of a failed rollout step (docs/how-it-works.md, "Evidence of a failure"): what the
 * failing container shows, read once it failed and before berth removes or replaces anything: its
 * exit code, whether it was killed for memory, its health check's last results and its last lines
 * of output, secrets masked, bounded in size. Kept with the step's audit row, the sync, the stack's
 * reason, `berth sync --wait`'s output and the notifications.
 *
 * buildEvidence and the functions it uses are pure (plain data in and out); readEvidence is the
 * thin edge that reads a container through HostOps, only when a step failed.
 */
import type Dockerode from 'dockerode';
import type { NotReadyCode } from './health.ts';
import type { HostOps } from './host-ops.ts';
import { redact } from './job.ts';

/** How many of a failed container's last lines of output are read. */
export const EVIDENCE_LOG_LINES = 50;

/** The most one piece of evidence takes, as JSON (UTF-8 bytes): what does not fit is cut, oldest output first. */
export const EVIDENCE_MAX_BYTES = 8 * 1024;

/** How a replica failed: killed for memory, or NotReadyCode (exited, restarted, unhealthy, timeout, unstable, gone, start-error). */
export type EvidenceCause = 'oom' | NotReadyCode;

/** One result of a health check: how it exited and what it printed. */
export interface HealthResult {
  exitCode: number;
  output: string;
}

/** What a failing container showed (secret-looking values masked), at most EVIDENCE_MAX_BYTES as JSON. */
export interface Evidence {
  /** the container's name (the slot's name; `NAME-next` for a start-first one), or the name it was to have */
  container: string;
  /** the container's id (12 characters); absent when it was never created */
  id?: string;
  host: string;
  service: string;
  slot: number;
  cause: EvidenceCause;
  /** how it exited; absent while it runs (unhealthy) or when it never ran */
  exitCode?: number;
  /** whether the kernel killed it for memory (its memory limit) */
  oomKilled: boolean;
  /** its health check's last results (Docker keeps five), oldest first */
  health: HealthResult[];
  /** its last lines of output, stdout and stderr as they came, oldest first */
  logs: string[];
  /** the daemon's words, for a container that could not be created or started */
  error?: string;
  /** the first telling line: `OOM-killed`, the health check's output, the last line of output, or the daemon's words */
  telling: string;
  /** the replica and what it did, one line: `web.1@h1 exited 137 (OOM-killed)` */
  summary: string;
  /** true when lines were left out or cut to keep within EVIDENCE_MAX_BYTES */
  truncated?: boolean;
}

/** What was read of a failed container: the facts buildEvidence turns into Evidence. */
export interface FailureFacts {
  host: string;
  service: string;
  slot: number;
  /** its name as inspected, or the name it was to have */
  container: string;
  id?: string;
  code: NotReadyCode;
  /** why the executor gave up on it (health.ts's words), for the causes its state does not tell */
  reason: string;
  /** its state as inspected (absent when it was never created, or is gone) */
  state?: Pick<Dockerode.ContainerInspectInfo['State'], 'Running' | 'ExitCode' | 'OOMKilled'> & {
    Health?: { Log?: ReadonlyArray<{ ExitCode: number; Output: string }> } | null;
  };
  /** its last lines of output */
  logs: readonly string[];
  /** the daemon's words when it could not be created or started */
  error?: string;
}

/** The longest a log line, a health check's output and the daemon's words are kept. */
const LINE_MAX = 1000;
const OUTPUT_MAX = 2000;
/** The telling line's length in a summary. */
const TELLING_MAX = 300;

/** The replica as the progress lines and the failure summaries name it: `web.1@h1` (a plan names it `web#1@h1`). */
export const stepLabel = (w: { service: string; slot: number; host: string }): string => `${w.service}.${w.slot}@${w.host}`;

const clip = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
const firstNonEmpty = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '') ?? '';
const lastNonEmpty = (lines: readonly string[]) =>
  [...lines]
    .reverse()
    .find((l) => l.trim() !== '')
    ?.trim() ?? '';

/** Whether the health check's last result failed: what tells of a replica that was unhealthy or not healthy in time. */
const failingHealth = (health: readonly HealthResult[]) => health.length > 0 && health.at(-1)!.exitCode !== 0;

/**
 * The first telling line of a failure: for one killed for memory, `OOM-killed`; for a failing
 * health check, the first non-empty line of its last output (else its exit code); for a container
 * that exited or restarted, its last non-empty line of output; for one that could not start, the
 * daemon's words; else why the executor gave up. '' when there is nothing to tell.
 */
export function tellingLine(e: Pick<Evidence, 'cause' | 'oomKilled' | 'health' | 'logs' | 'error'> & { reason?: string }): string {
  if (e.oomKilled || e.cause === 'oom') return 'OOM-killed';
  if (e.cause === 'start-error') return firstNonEmpty(e.error ?? e.reason ?? '');
  const health = e.health.at(-1);
  if (health && (e.cause === 'unhealthy' || ((e.cause === 'timeout' || e.cause === 'unstable') && failingHealth(e.health)))) {
    return firstNonEmpty(health.output) || `exit code ${health.exitCode}`;
  }
  if (e.cause === 'exited' || e.cause === 'restarted') return lastNonEmpty(e.logs);
  return e.reason ?? '';
}

/** The summary line: the replica, what it did, and the telling line (see Evidence.summary). */
export function summarize(e: Omit<Evidence, 'summary' | 'telling' | 'truncated'>, reason: string): string {
  const label = stepLabel(e);
  const telling = clip(tellingLine({ ...e, reason }), TELLING_MAX);
  const said = telling ? `: ${telling}` : '';
  const code = e.exitCode ?? '?';
  if (e.cause === 'oom') return `${label} ${e.exitCode === undefined ? 'OOM-killed' : `exited ${code} (OOM-killed)`}`;
  switch (e.cause) {
    case 'exited':
      return `${label} exited ${code}${said}`;
    case 'restarted':
      return `${label} restarted${e.exitCode === undefined ? '' : ` (exit ${e.exitCode})`}${said}`;
    case 'start-error':
      return `${label} did not start${said}`;
    case 'unhealthy': {
      const last = e.health.at(-1);
      if (!last) return `${label} unhealthy`;
      return firstNonEmpty(last.output) ? `${label} unhealthy: health check: ${telling}` : `${label} unhealthy: health check exit code ${last.exitCode}`;
    }
    case 'timeout':
    case 'unstable':
      return `${label} ${reason}${failingHealth(e.health) ? `: health check: ${telling}` : ''}`;
    default:
      return `${label}: ${reason}`;
  }
}

/**
 * The evidence of a failure from what was read: the cause (killed for memory over what the
 * executor saw), everything masked by `mask` (the container's secrets), the telling line and the
 * summary, bounded to `maxBytes` (bound).
 */
export function buildEvidence(f: FailureFacts, mask: (text: string) => string, maxBytes = EVIDENCE_MAX_BYTES): Evidence {
  const state = f.state;
  const oomKilled = state?.OOMKilled === true;
  const ran = state !== undefined && !state.Running && (f.code !== 'start-error' || state.ExitCode !== 0);
  const base: Omit<Evidence, 'summary' | 'telling' | 'truncated'> = {
    container: f.container,
    ...(f.id ? { id: f.id.slice(0, 12) } : {}),
    host: f.host,
    service: f.service,
    slot: f.slot,
    cause: oomKilled ? 'oom' : f.code,
    ...(ran ? { exitCode: state.ExitCode } : {}),
    oomKilled,
    health: (state?.Health?.Log ?? []).map((h) => ({ exitCode: h.ExitCode, output: clip(mask(h.Output.trimEnd()), OUTPUT_MAX) })),
    logs: f.logs.map((l) => clip(mask(l), LINE_MAX)),
    ...(f.error !== undefined ? { error: clip(mask(f.error), OUTPUT_MAX) } : {}),
  };
  const reason = mask(f.reason);
  return bound({ ...base, telling: clip(tellingLine({ ...base, reason }), TELLING_MAX), summary: summarize(base, reason) }, maxBytes);
}

const size = (e: Evidence) => Buffer.byteLength(JSON.stringify(e));

/**
 * The evidence within `maxBytes` as JSON: the oldest lines of output go first, then the oldest
 * health results, then the daemon's words and the health outputs are cut short; `truncated` says
 * so. The summary and the telling line are always kept.
 */
export function bound(e: Evidence, maxBytes = EVIDENCE_MAX_BYTES): Evidence {
  if (size(e) <= maxBytes) return e;
  const out: Evidence = { ...e, logs: [...e.logs], health: [...e.health], truncated: true };
  while (out.logs.length > 0 && size(out) > maxBytes) out.logs.shift();
  while (out.health.length > 1 && size(out) > maxBytes) out.health.shift();
  if (size(out) > maxBytes) {
    out.health = out.health.map((h) => ({ ...h, output: clip(h.output, 200) }));
    if (out.error !== undefined) out.error = clip(out.error, 200);
  }
  if (size(out) > maxBytes) out.health = [];
  return out;
}

/** Where the failed replica is, and what the executor knows of its failure. */
export interface FailedReplica {
  host: string;
  service: string;
  slot: number;
  /** the container, when it was created */
  id?: string;
  /** the name it has, or was to have */
  name: string;
  code: NotReadyCode;
  reason: string;
  /** what the daemon answered, when it could not be created or started */
  error?: unknown;
  /** the environment it was to have: masks the daemon's words when no container was created */
  env?: readonly string[];
}

/**
 * Reads a failed replica's container (inspect, then its last lines of output) and makes its
 * evidence. Called only when a step failed, before the container is removed or replaced; a host
 * that does not answer leaves the evidence with what the executor knows.
 */
export async function readEvidence(h: HostOps, f: FailedReplica): Promise<Evidence> {
  const info = f.id ? await h.inspect(f.id).catch(() => undefined) : undefined;
  const env = info?.Config.Env ?? f.env ?? [];
  const output = info ? await h.tail(info.Id, env, EVIDENCE_LOG_LINES) : '';
  const error = f.error === undefined ? undefined : daemonWords(f.error);
  const facts: FailureFacts = {
    host: f.host,
    service: f.service,
    slot: f.slot,
    container: info ? info.Name.replace(/^\//, '') : f.name,
    id: info?.Id ?? f.id,
    code: f.code,
    reason: f.reason,
    state: info?.State,
    logs: output ? output.split('\n') : [],
    ...(error !== undefined ? { error } : {}),
  };
  const mask = (text: string) => (info ? h.mask(info.Id, env, text) : redact(text, env));
  return buildEvidence(facts, mask);
}

/** The daemon's own words of a failed call (DockerError.said), else the error's message. */
function daemonWords(err: unknown): string {
  const e = err as { said?: unknown; message?: unknown };
  return typeof e.said === 'string' ? e.said : typeof e.message === 'string' ? e.message : String(err);
}
