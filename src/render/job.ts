/**
 * Jobs (docs/manifests.md, "Jobs, schedules and hooks"): services whose containers run to
 * completion. `deploy.mode: replicated-job | global-job` runs them once per change of their spec;
 * berth's `x-berth: { schedule, hook, timeout }` on a service runs them on a cron schedule or
 * around each sync. Read per file here (every value checked and located) and merged key by key;
 * checked as a whole once the files are merged in jobspec.ts.
 */
import cron from 'node-cron';
import { siteOf, type At, type Path, type YamlSource } from './positions.ts';
import { closest } from './validate.ts';
import { parseDuration, scalarText } from './values.ts';

/** One file's `x-berth:` of a service (after merging, the stack's). Absent fields were not set. */
export interface JobPart {
  schedule?: At<string>;
  hook?: At<'pre-sync' | 'post-sync'>;
  timeoutMs?: At<number>;
  /** `watch-image`: the image's tag is followed (docs/manifests.md, "Following an image's tag"); not a job setting */
  watchImage?: At<boolean>;
}

/** How long a job's run may take when `x-berth.timeout` is not given. */
export const JOB_TIMEOUT_MS = 10 * 60_000;

const KEYS = ['schedule', 'hook', 'timeout', 'watch-image'];

type Fail = (path: Path, message: string, key?: boolean) => void;

/** A service's `x-berth:` in one file (`path` is the x-berth key's path). */
export function jobPart(src: YamlSource, value: unknown, path: Path, fail: Fail): JobPart {
  const part: JobPart = {};
  if (value === undefined) return part;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(path, 'must be a mapping (with schedule, hook, timeout or watch-image)');
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
    } else if (key === 'watch-image') {
      if (typeof v === 'boolean') part.watchImage = { value: v, at: siteOf(src, p) };
      else fail(p, `'${scalarText(v)}' is not true or false`);
    } else {
      const hint = closest(key, KEYS);
      fail(p, `unknown key (${hint ? `did you mean '${hint}'?` : 'x-berth has schedule, hook, timeout and watch-image'})`, true);
    }
  }
  return part;
}

/** `x-berth:` of two files merged key by key, the later file's values winning. */
export function mergeJob(base: JobPart, over: JobPart): JobPart {
  return { ...base, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) };
}
