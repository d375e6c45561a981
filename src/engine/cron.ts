/**
 * Scheduled jobs (`x-berth.schedule`; docs/manifests.md, "Jobs, schedules and hooks"): one
 * node-cron task per service, (re)installed from the stacks each pass rendered and removed when
 * the service or its stack goes. A tick runs the job: its containers, created at sync (or exited
 * from their last run), start again on their hosts. A tick that comes while the job's last run
 * still goes is skipped, and logged, so that two runs of one job never overlap.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { LABEL, type CommitInfo, type RenderResult } from '../model.ts';
import type { DockerHost } from '../apply/docker-host.ts';
import type { StepEvent } from '../apply/execute.ts';
import { justAfter, waitJob } from '../apply/job.ts';

export interface ScheduledJob {
  repo: string;
  stack: string;
  service: string;
  /** the cron expression */
  schedule: string;
  timeoutMs: number;
  /** the commit whose render installed it: its runs are audited against it */
  commit: CommitInfo;
}

export class JobScheduler {
  readonly #tasks = new Map<string, { job: ScheduledJob; task: ScheduledTask }>();
  readonly #running = new Set<string>();
  readonly #run: (job: ScheduledJob) => Promise<void>;
  readonly #log: Logger;

  constructor(run: (job: ScheduledJob) => Promise<void>, log: Logger) {
    this.#run = run;
    this.#log = log;
  }

  /**
   * Makes the repo's schedules those of the stacks `rendered` holds: new ones installed, changed
   * ones replaced, gone ones removed. A stack that did not render (or a repo whose berth.yaml is
   * broken) keeps the schedules it had, as its containers stay as they are.
   */
  install(repo: string, commit: CommitInfo, rendered: RenderResult): void {
    if (rendered.errors.length > 0) return;
    const invalid = new Set(rendered.stacks.filter((s) => !s.ok).map((s) => s.def.name));
    const wanted = new Map<string, ScheduledJob>();
    for (const r of rendered.stacks) {
      if (!r.ok) continue;
      for (const svc of r.stack.services) {
        if (svc.job?.kind !== 'schedule' || !svc.job.schedule) continue;
        const job = { repo, stack: r.stack.name, service: svc.name, schedule: svc.job.schedule, timeoutMs: svc.job.timeoutMs, commit };
        wanted.set(keyOf(job), job);
      }
    }
    for (const [key, entry] of this.#tasks) {
      if (entry.job.repo !== repo || invalid.has(entry.job.stack)) continue;
      const next = wanted.get(key);
      if (next?.schedule === entry.job.schedule) {
        entry.job = next;
        continue;
      }
      void entry.task.destroy();
      this.#tasks.delete(key);
      this.#log.info({ ...where(entry.job), schedule: entry.job.schedule }, 'schedule removed');
    }
    for (const [key, job] of wanted) {
      if (this.#tasks.has(key)) continue;
      const task = cron.schedule(job.schedule, () => this.#tick(key), { name: key });
      this.#tasks.set(key, { job, task });
      this.#log.info({ ...where(job), schedule: job.schedule }, 'schedule installed');
    }
  }

  /** The schedules installed now. */
  jobs(): ScheduledJob[] {
    return [...this.#tasks.values()].map((e) => e.job);
  }

  /** Removes every schedule (runs under way go on to their end). */
  stop(): void {
    for (const { task } of this.#tasks.values()) void task.destroy();
    this.#tasks.clear();
  }

  async #tick(key: string): Promise<void> {
    const entry = this.#tasks.get(key);
    if (!entry) return;
    if (this.#running.has(key)) {
      this.#log.warn({ ...where(entry.job), schedule: entry.job.schedule }, 'scheduled job still running from the last tick: this tick is skipped');
      return;
    }
    this.#running.add(key);
    try {
      await this.#run(entry.job);
    } catch (err) {
      this.#log.error({ ...where(entry.job), err: (err as Error).message }, 'scheduled job could not run');
    } finally {
      this.#running.delete(key);
    }
  }
}

const keyOf = (j: Pick<ScheduledJob, 'repo' | 'stack' | 'service'>) => `${j.repo}/${j.stack}/${j.service}`;
const where = (j: ScheduledJob) => ({ repo: j.repo, stack: j.stack, service: j.service });

/**
 * One run of a scheduled job: each of its containers on `hosts` is started (a container that
 * already runs is left to finish), waited for, and reported (`job.succeeded` / `job.failed`).
 */
export async function runScheduledJob(job: ScheduledJob, hosts: DockerHost[], onStep: (e: StepEvent) => void, log: Logger): Promise<void> {
  const label = [
    `${LABEL.managed}=true`,
    `${LABEL.repo}=${job.repo}`,
    `${LABEL.stack}=${job.stack}`,
    `${LABEL.service}=${job.service}`,
    `${LABEL.job}=schedule`,
  ];
  await Promise.all(
    hosts.map(async (h) => {
      const containers = await h.docker.listContainers({ all: true, filters: { label } }).catch((err: unknown) => {
        log.warn({ host: h.name, err: (err as Error).message }, "cannot list the scheduled job's containers: not run there this time");
        return [];
      });
      await Promise.all(
        containers.map(async (c) => {
          const where = { host: h.name, service: job.service, slot: Number(c.Labels[LABEL.slot] ?? 0) };
          if (c.State === 'running') return log.warn(where, "the scheduled job's container is still running: this tick is skipped");
          let since: string | undefined; // the runs before printed up to here
          try {
            since = justAfter(await h.lastOutputTime(c.Id));
            await h.start(c.Id, (c.Names[0] ?? '').replace(/^\//, ''));
          } catch (err) {
            return log.warn({ ...where, err: (err as Error).message }, "cannot start the scheduled job's container (replaced meanwhile?)");
          }
          const run = await waitJob(h, c.Id, job.timeoutMs, since);
          onStep({ ...where, kind: run.ok ? 'job.succeeded' : 'job.failed', containerAfter: c.Id, exitCode: run.exitCode, reason: run.reason });
        }),
      );
    }),
  );
}
