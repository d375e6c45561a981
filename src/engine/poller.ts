/**
 * The poll trigger: each repo is synced on its own interval or cron expression (node-cron), the
 * backstop behind webhooks. A tick that arrives while the repo's pass runs coalesces into it.
 */
import cron from 'node-cron';
import type { Logger } from 'pino';
import { parsePoll, type RepoConfig } from '../config.ts';

/** Starts polling every repo; returns a function that stops all of it. */
export function startPolling(repos: RepoConfig[], sync: (repo: string) => Promise<unknown>, log: Logger): () => void {
  const stops: Array<() => void> = [];
  for (const repo of repos) {
    const tick = () => {
      sync(repo.name).catch((err: unknown) => log.error({ repo: repo.name, err: (err as Error).message }, 'poll failed'));
    };
    const schedule = parsePoll(repo.poll, `repos.${repo.name}.poll`);
    if (schedule.kind === 'interval') {
      const timer = setInterval(tick, schedule.ms);
      stops.push(() => clearInterval(timer));
    } else {
      const task = cron.schedule(schedule.expression, tick, { noOverlap: true });
      stops.push(() => void task.stop());
    }
    log.info({ repo: repo.name, poll: repo.poll }, 'polling');
  }
  return () => stops.forEach((stop) => stop());
}
