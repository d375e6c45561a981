/**
 * What a service's merged files make of it as a job (after all its Compose files are merged): its
 * JobSpec, and the errors of what cannot go together. The parsing of `x-berth:` per file is job.ts.
 */
import type { JobSpec, SourceError } from '../model.ts';
import { JOB_TIMEOUT_MS } from './job.ts';
import type { ServicePart } from './normalize.ts';
import { siteError, type Site } from './positions.ts';

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
    errors.push(
      siteError(at, `'${s.restart}' cannot be used on a job: its containers run to completion and are never restarted (use restart: no, or leave it out)`),
    );
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
