// Jobs on a real daemon from a real git remote: replicated-jobs run once per spec, failures fail
// the sync (with their exit code and last lines), pre-sync / post-sync hooks around a sync, and
// scheduled jobs on their cron schedule (docs/manifests.md, "Jobs, schedules and hooks").
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { serviceContainers, testDocker, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { auditRows, ownStack, testEngine } from './harness/berth.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';

let server: GitServer;
let docker: Dockerode;
beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => server?.close());

const containers = (stack: string, service: string) => serviceContainers(docker, stack, service);

const rows = auditRows;

/** A container's output (stdout and stderr), without the stream's frame headers. */
async function logs(id: string): Promise<string> {
  const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true })) as unknown as Buffer;
  let out = '';
  for (let i = 0; i + 8 <= buf.length; i += 8 + buf.readUInt32BE(i + 4)) out += buf.subarray(i + 8, i + 8 + buf.readUInt32BE(i + 4)).toString();
  return out;
}

const setup = (prefix: string, engine?: (file: string) => Engine) => ownStack(server, docker, prefix, engine);

describe('replicated-job', () => {
  const file = (run: string, seed = `echo seeding ${run}`) => `services:
  seed:
    image: ${IMAGES.base}
    command: ["sh", "-c", "${seed}"]
    environment: { RUN: "${run}" }
    deploy: { mode: replicated-job }
  web:
    image: ${IMAGES.webV1}
    depends_on:
      seed: { condition: service_completed_successfully }
`;

  it('runs once per spec: audited, not run again by a sync without change, run anew by a change; its dependant starts after it', async () => {
    const t = await setup('job');
    try {
      await t.commit(file('1'));
      const first = await t.sync('manual');
      expect(first.status, first.errors?.join('\n')).toBe('synced');
      const [seed] = await containers(t.stack, 'seed');
      expect(seed.State).toBe('exited');
      expect(seed.Status).toMatch(/^Exited \(0\)/);
      expect(seed.Labels['berth.job']).toBe('once');
      expect((await docker.getContainer(seed.Id).inspect()).HostConfig.RestartPolicy?.Name).toBe('');
      expect(await logs(seed.Id)).toContain('seeding 1');
      expect(rows(t.engine, t.stack, ['container.created', 'job.succeeded']).map((r) => `${r.kind} ${r.service} ${r.message}`)).toEqual([
        'container.created seed seed#1: missing',
        'job.succeeded seed seed#1: exit code 0',
        'container.created web web#1: missing',
      ]);
      await waitFor(async () => (await t.engine.status(t.stack))[0].health === 'Healthy', { what: 'the stack to be healthy, its job exited 0' });
      expect((await t.engine.status(t.stack))[0]).toMatchObject({ sync: 'Synced', health: 'Healthy' });

      // No change: the job that ran is kept, not run again.
      expect((await t.sync()).status).toBe('unchanged');
      expect((await containers(t.stack, 'seed')).map((c) => c.Id)).toEqual([seed.Id]);
      expect(await logs(seed.Id)).not.toMatch(/seeding 1[\s\S]*seeding 1/);

      // A change of its spec runs it anew; web, unchanged, is left alone.
      const [web] = await containers(t.stack, 'web');
      await t.commit(file('2'));
      expect((await t.sync()).status).toBe('synced');
      const [seed2] = await containers(t.stack, 'seed');
      expect(seed2.Id).not.toBe(seed.Id);
      expect(await logs(seed2.Id)).toContain('seeding 2');
      expect((await containers(t.stack, 'web')).map((c) => c.Id)).toEqual([web.Id]);
      expect(rows(t.engine, t.stack, ['job.succeeded'])).toHaveLength(2);
    } finally {
      await t.done();
    }
  });

  it('a failing job fails the sync with its exit code and last lines; kept through the back-off, it runs again at the next sync', async () => {
    const t = await setup('jobfail');
    try {
      await t.commit(file('1', '{ echo step 1; echo boom: the disk is full; } >&2; exit 3'), 'a seed that fails');
      const failed = await t.sync('manual');
      expect(failed.status).toBe('failed');
      expect(failed.errors?.[0]).toMatch(/^seed: job seed#1@test failed: exit code 3; last output:\nstep 1\nboom: the disk is full$/);
      const [jobRow] = rows(t.engine, t.stack, ['job.failed']);
      expect(jobRow).toMatchObject({ service: 'seed', host: 'test', outcome: 'error' });
      expect(jobRow.message).toBe('seed#1: exit code 3; last output:\nstep 1\nboom: the disk is full');
      expect(rows(t.engine, t.stack, ['sync.failed'])[0].message).toContain('boom: the disk is full');
      // web waited for the job to complete: it was never created.
      expect(await containers(t.stack, 'web')).toEqual([]);
      const [status] = await t.engine.status(t.stack);
      expect(status).toMatchObject({ sync: 'OutOfSync', health: 'Degraded', condition: 'Failed' });

      // The failed container stays for inspection while the back-off runs; a sync by hand runs it again.
      const [seed] = await containers(t.stack, 'seed');
      expect((await t.sync('poll')).status).toBe('outofsync');
      expect((await containers(t.stack, 'seed')).map((c) => c.Id)).toEqual([seed.Id]);
      expect((await t.sync('manual')).status).toBe('failed');
      const [again] = await containers(t.stack, 'seed');
      expect(again.Id).not.toBe(seed.Id);
      expect(rows(t.engine, t.stack, ['container.replaced']).map((r) => r.message)).toEqual(['seed#1: its last run failed (exit code 3): run again']);
      expect(rows(t.engine, t.stack, ['job.failed'])).toHaveLength(2);
      // Re-running a failed job is not drift.
      expect(rows(t.engine, t.stack, ['drift.detected'])).toEqual([]);
    } finally {
      await t.done();
    }
  });

  it('a job that runs past its timeout is stopped and fails the sync', async () => {
    const t = await setup('jobslow');
    try {
      await t.commit(`services:
  slow:
    image: ${IMAGES.base}
    command: ["sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"]
    deploy: { mode: replicated-job }
    x-berth: { timeout: 1s }
`);
      const out = await t.sync('manual');
      expect(out.status).toBe('failed');
      expect(out.errors?.[0]).toMatch(/^slow: job slow#1@test failed: did not finish within 1s: stopped; exit code 143; no output$/);
      const [slow] = await containers(t.stack, 'slow');
      expect(slow.State).toBe('exited');
    } finally {
      await t.done();
    }
  });
});

describe('hooks', () => {
  const file = (version: string, migration: string, post = true) => `services:
  migrate:
    image: ${IMAGES.base}
    command: ["sh", "-c", "${migration}"]
    x-berth: { hook: pre-sync, timeout: 30s }
  web:
    image: ${version === '1' ? IMAGES.webV1 : IMAGES.webV2}
    environment: { VERSION: "${version}" }
${
  post
    ? `  notify:
    image: ${IMAGES.base}
    command: ["sh", "-c", "echo web is at ${version}"]
    x-berth: { hook: post-sync }
`
    : ''
}`;

  it('a failing pre-sync migration stops the sync before web is touched; once fixed, web updates and post-sync runs after', async () => {
    const t = await setup('hook');
    try {
      await t.commit(file('1', 'echo migrated to 1', false));
      expect((await t.sync('manual')).status).toBe('synced');
      const [web1] = await containers(t.stack, 'web');
      expect(rows(t.engine, t.stack, ['job.started', 'job.succeeded', 'container.created']).map((r) => `${r.kind} ${r.service}`)).toEqual([
        'job.started migrate',
        'job.succeeded migrate',
        'container.created web',
      ]);

      // v2 with a migration that fails: nothing of the stack changes.
      const bad = await t.commit(
        file('2', '{ echo applying 0002; echo migration failed: column users.email already exists; } >&2; exit 1'),
        'v2 with a broken migration',
      );
      const failed = await t.sync();
      expect(failed.status).toBe('failed');
      expect(failed.errors?.[0]).toBe(
        'pre-sync hook migrate failed on test: exit code 1; last output:\napplying 0002\nmigration failed: column users.email already exists; nothing was updated, the stack runs as before',
      );
      const badRows = t.engine.audit.query({ stack: t.stack, commit: bad, limit: 100 }).rows.reverse();
      expect(badRows.map((r) => r.kind)).toEqual(['sync.started', 'job.started', 'job.failed', 'sync.failed']);
      expect(badRows[2]).toMatchObject({
        service: 'migrate',
        outcome: 'error',
        message: 'migrate#1: pre-sync hook: exit code 1; last output:\napplying 0002\nmigration failed: column users.email already exists',
      });
      const [webStill] = await containers(t.stack, 'web');
      expect(webStill.Id).toBe(web1.Id);
      expect(webStill.Image).toBe(IMAGES.webV1);
      expect((await docker.getContainer(webStill.Id).inspect()).Config.Env).toContain('VERSION=1');
      expect(await containers(t.stack, 'notify')).toEqual([]);
      // The failed run is kept for inspection: one migrate container, the last run's.
      const migrates = await containers(t.stack, 'migrate');
      expect(migrates.map((c) => c.Status.slice(0, 10))).toEqual(['Exited (1)']);

      // The fix: the migration runs again, then web updates, then post-sync.
      const fixed = await t.commit(file('2', 'echo migrated to 2'), 'fix the migration');
      const ok = await t.sync();
      expect(ok.status, ok.errors?.join('\n')).toBe('synced');
      const okRows = t.engine.audit.query({ stack: t.stack, commit: fixed, limit: 100 }).rows.reverse();
      expect(okRows.filter((r) => !['container.healthy', 'rollout.batch'].includes(r.kind)).map((r) => `${r.kind} ${r.service ?? ''}`.trim())).toEqual([
        'sync.started',
        'job.started migrate',
        'job.succeeded migrate',
        'container.replaced web',
        'job.started notify',
        'job.succeeded notify',
        'sync.succeeded',
      ]);
      expect(okRows[1].containerBefore).toBe(migrates[0].Id);
      const [web2] = await containers(t.stack, 'web');
      expect(web2.Image).toBe(IMAGES.webV2);
      expect((await docker.getContainer(web2.Id).inspect()).Config.Env).toContain('VERSION=2');
      const [migrate] = await containers(t.stack, 'migrate');
      expect(await logs(migrate.Id)).toContain('migrated to 2');
      const [notify] = await containers(t.stack, 'notify');
      expect(await logs(notify.Id)).toContain('web is at 2');

      // In sync and healthy; a pass without change runs no hook.
      expect((await t.engine.status(t.stack))[0]).toMatchObject({ sync: 'Synced', health: 'Healthy' });
      expect((await t.sync()).status).toBe('unchanged');
      expect((await containers(t.stack, 'migrate')).map((c) => c.Id)).toEqual([migrate.Id]);
      expect(await containers(t.stack, 'migrate')).toHaveLength(1);
    } finally {
      await t.done();
    }
  });
});

describe('scheduled jobs', () => {
  it('run on their schedule, audited, never two runs at once; at sync they are only created', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const t = await setup('cron', (configFile) => new Engine(loadConfig(configFile), logger));
    const stop = t.engine.startSchedules();
    const file = (yearlyEnv: string, withTick = true) => `services:
${
  withTick
    ? `  tick:
    image: ${IMAGES.base}
    command: ["sh", "-c", "trap 'exit 143' TERM; echo start; sleep 2 & wait; echo end"]
    x-berth: { schedule: "* * * * * *" }
  failing:
    image: ${IMAGES.base}
    command: ["sh", "-c", "echo run $$RANDOM >&2; exit 4"]
    x-berth: { schedule: "*/2 * * * * *" }
`
    : ''
}  yearly:
    image: ${IMAGES.base}
    command: ["echo", "happy new year"]
    environment: { N: "${yearlyEnv}" }
    x-berth: { schedule: "0 0 1 1 *" }
`;
    try {
      await t.commit(file('1'));
      expect((await t.sync('manual')).status).toBe('synced');
      expect(
        t.engine
          .scheduled()
          .map((j) => `${j.service} ${j.schedule}`)
          .sort(),
      ).toEqual(['failing */2 * * * * *', 'tick * * * * * *', 'yearly 0 0 1 1 *']);
      const [yearly] = await containers(t.stack, 'yearly');
      expect(yearly.State).toBe('created');

      const runs = () => rows(t.engine, t.stack, ['job.succeeded', 'job.failed']).filter((r) => r.service === 'tick');
      await waitFor(() => runs().length >= 2, { what: 'two scheduled runs', timeoutMs: 30_000 });
      expect(runs().every((r) => r.trigger === 'schedule' && r.kind === 'job.succeeded' && r.message === 'tick#1: exit code 0')).toBe(true);
      expect(lines.some((l) => l.includes('this tick is skipped'))).toBe(true);
      // Each run ended before the next started: the container's output alternates.
      const [tick] = await containers(t.stack, 'tick');
      const out = (await logs(tick.Id)).split('\n').filter(Boolean);
      expect(out.length).toBeGreaterThanOrEqual(4);
      expect(out).toEqual(out.map((_, i) => (i % 2 === 0 ? 'start' : 'end')));
      // A failing run is audited with its exit code and its own last lines (not those of the runs before).
      const failures = () => rows(t.engine, t.stack, ['job.failed']).filter((r) => r.service === 'failing');
      await waitFor(() => failures().length >= 2, { what: 'two failed scheduled runs' });
      for (const r of failures())
        expect(r).toMatchObject({ trigger: 'schedule', outcome: 'error', message: expect.stringMatching(/^failing#1: exit code 4; last output:\nrun \d+$/) });
      // Between its runs (not while one goes), the stack says the last one failed.
      const degraded = await waitFor(async () => (await t.engine.status(t.stack)).find((st) => st.health === 'Degraded'), { what: 'the stack to be Degraded' });
      expect(degraded).toMatchObject({ sync: 'Synced', reason: 'failing#1 on test: exited (exit code 4)' });

      // A changed spec replaces the container without running it; a service gone takes its schedule along.
      await t.commit(file('2', false));
      expect((await t.sync()).status).toBe('synced');
      const [yearly2] = await containers(t.stack, 'yearly');
      expect(yearly2.Id).not.toBe(yearly.Id);
      expect(yearly2.State).toBe('created');
      expect(t.engine.scheduled().map((j) => j.service)).toEqual(['yearly']);
      expect(await containers(t.stack, 'tick')).toEqual([]);
      expect(await containers(t.stack, 'failing')).toEqual([]);
    } finally {
      stop();
      await t.done();
    }
  });

  it('a job starting and exiting is not drift; its container removed by hand is', async () => {
    let passes = 0;
    const t = await setup('jobdrift', (configFile) => {
      const e = testEngine(configFile);
      const syncRepo = e.syncRepo.bind(e);
      e.syncRepo = (repo, opts) => {
        if (opts.trigger === 'drift') passes++;
        return syncRepo(repo, opts);
      };
      return e;
    });
    const stopSchedules = t.engine.startSchedules();
    const stopWatching = t.engine.watchDrift({ resyncMs: 3_600_000, restartGraceMs: 300, debounceMs: 100 });
    try {
      await t.commit(`services:
  tick:
    image: ${IMAGES.base}
    command: ["sh", "-c", "trap 'exit 143' TERM; sleep 1 & wait"]
    x-berth: { schedule: "* * * * * *" }
`);
      expect((await t.sync('manual')).status).toBe('synced');
      const runs = () => rows(t.engine, t.stack, ['job.succeeded']).length;
      await waitFor(() => runs() >= 1, { what: 'a first scheduled run' });
      const before = passes;
      // Each run started on schedule and exited by itself, outside any sync: none of it asks for a pass.
      await waitFor(() => runs() >= 3, { what: 'two more scheduled runs' });
      await sleep(1000); // more than restartGraceMs after the last exit
      expect(passes).toBe(before);
      expect(rows(t.engine, t.stack, ['drift.detected'])).toEqual([]);

      // The control: removing its container by hand is drift, put back at once.
      const [tick] = await containers(t.stack, 'tick');
      await docker.getContainer(tick.Id).remove({ force: true });
      await waitFor(() => rows(t.engine, t.stack, ['drift.corrected']).length > 0, { what: "the job's container to be put back" });
      expect(passes).toBeGreaterThan(before);
      expect(rows(t.engine, t.stack, ['drift.detected']).map((r) => r.service)).toEqual(['tick']);
    } finally {
      stopWatching();
      stopSchedules();
      await t.done();
    }
  });
});
