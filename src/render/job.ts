/**
 * Jobs (docs/manifests.md, "Jobs, schedules and hooks"): services whose containers run to
 * completion. `deploy.mode: replicated-job | global-job` runs them once per change of their spec;
 * berth's `x-berth: { schedule, hook, timeout }` on a service runs them on a cron schedule or
 * around each sync. Read per file (every
 * value checked and located), merged key by key, then checked as a whole once the files are merged.
 */
import cron from 'node-cron';
import type { JobSpec, SourceError } from '../model.ts';
import { siteError, siteOf, type At, type Path, type Site, type YamlSource } from './positions.ts';
import type { ServicePart } from './normalize.ts';
import { closest } from './validate.ts';
import { parseDuration, scalarText } from './values.ts';

/** One file's `x-berth:` of a service (after merging, the stack's). Absent fields were not set. */
export interface JobPart {
  schedule?: At<string>;
  hook?: At<'pre-sync' | 'post-sync'>;
  timeoutMs?: At<number>;
}

/** How long a job's run may take when `x-berth.timeout` is not given. */
export const JOB_TIMEOUT_MS = 10 * 60_000;

const KEYS = ['schedule', 'hook', 'timeout'];

type Fail = (path: Path, message: string, key?: boolean) => void;

/** A service's `x-berth:` in one file (`path` is the x-berth key's path). */
export function jobPart(src: YamlSource, value: unknown, path: Path, fail: Fail): JobPart {
  const part: JobPart = {};
  if (value === undefined) return part;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(path, 'must be a mapping (with schedule, hook or timeout)');
    return part;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const p = [...path, key];
    const text = scalarText(v).trim();
    if (key === 'schedule') {
      if (typeof v === 'string' && cron.validate(text)) part.schedule = { value: text, at: siteOf(src, p) };
      else fail(p, `'${scalarText(v)}' is not a cron expression (5 fields, or 6 with seconds first, like "*/5 * * * *")`);
    } else if (key === 'hook') {
      if (text === 'pre-sync' || text === 'post-sync') part.hook = { value: text, at: siteOf(src, p) };
      else fail(p, `'${text}' is not a hook (pre-sync or post-sync)`);
    } else if (key === 'timeout') {
      const ns = parseDuration(text);
      if (ns === undefined || ns <= 0) fail(p, `'${text}' is not a duration above zero (like 30s, 5m or 1h)`);
      else part.timeoutMs = { value: Math.max(1, Math.round(ns / 1e6)), at: siteOf(src, p) };
    } else {
      const hint = closest(key, KEYS);
      fail(p, `unknown key (${hint ? `did you mean '${hint}'?` : 'x-berth has schedule, hook and timeout'})`, true);
    }
  }
  return part;
}

/** `x-berth:` of two files merged key by key, the later file's values winning. */
export function mergeJob(base: JobPart, over: JobPart): JobPart {
  return { ...base, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) };
}

/** What a service's merged files make of it: a job of some kind, or undefined (a service). */
function kindOf(s: ServicePart): JobSpec['kind'] | undefined {
  if (s.job.schedule) return 'schedule';
  if (s.job.hook) return s.job.hook.value;
  return s.deploy.mode === 'replicated-job' || s.deploy.mode === 'global-job' ? 'once' : undefined;
}

/** The service's JobSpec (undefined for a service that is not a job); errors for what cannot go together. */
export function jobSpec(s: ServicePart, errors: SourceError[]): JobSpec | undefined {
  const { schedule, hook, timeoutMs } = s.job;
  const kind = kindOf(s);
  if (schedule && hook) errors.push(siteError(hook.at, 'cannot be set together with x-berth.schedule (a hook runs at sync, a scheduled job on its schedule)'));
  if (kind === undefined) {
    if (timeoutMs) errors.push(siteError(timeoutMs.at, 'only applies to jobs (deploy.mode: replicated-job or global-job, x-berth.schedule or x-berth.hook)'));
    return undefined;
  }
  if (s.restart !== undefined && s.restart !== 'no') {
    const at: Site = s.restartAt ?? s.at;
    errors.push(siteError(at, `'${s.restart}' cannot be used on a job: its containers run to completion and are never restarted (use restart: no, or leave it out)`));
  }
  if (hook) {
    const mode = s.deploy.mode;
    const replicas = s.deploy.replicas;
    if (mode === 'global' || mode === 'global-job') errors.push(siteError(hook.at, `a hook runs one container: it cannot be used with deploy.mode: ${mode}`));
    else if (replicas && replicas.value !== 1) errors.push(siteError(replicas.at, `a hook runs one container: replicas must be 1, not ${replicas.value}`));
  }
  const spec: JobSpec = { kind, timeoutMs: timeoutMs?.value ?? JOB_TIMEOUT_MS };
  if (schedule) spec.schedule = schedule.value;
  return spec;
}

/**
 * `depends_on: { x: { condition: service_completed_successfully } }` waits for x to run to
 * completion at sync: x must be a job that runs at sync (once, or a pre-sync hook, which always
 * runs before the services). Errors for the others.
 */
export function completionErrors(services: ReadonlyMap<string, ServicePart>): SourceError[] {
  const errors: SourceError[] = [];
  for (const s of services.values()) {
    for (const [dep, { value: condition, at }] of s.dependsOn) {
      const target = services.get(dep);
      if (condition !== 'service_completed_successfully' || !target) continue;
      const kind = kindOf(target);
      const why =
        kind === undefined
          ? `'${dep}' is not a job: service_completed_successfully waits for it to run to completion (make it one with deploy.mode: replicated-job)`
          : kind === 'schedule'
            ? `'${dep}' is a scheduled job: it runs on its schedule, not at sync, so nothing can wait for it to complete`
            : kind === 'post-sync'
              ? `'${dep}' is a post-sync hook: it runs after every service, so nothing can wait for it to complete`
              : undefined;
      if (why) errors.push(siteError(at, why));
    }
  }
  return errors;
}
