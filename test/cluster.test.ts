// Several `berth serve` processes on one real PostgreSQL and a real Docker daemon (docs/how-it-works.md,
// "Running two engines"): one leads and applies, the others follow, serve reads and hand what they
// are asked to the leader; a leader cut off from the database stops acting before another takes over;
// a leader killed in the middle of a rollout is replaced, and its successor finishes the rollout.
import { createHmac } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, runCli, writeConfig } from './harness/berth.ts';
import { containerEvents, removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';
import { createDatabase, sql } from './harness/postgres.ts';
import { proxyTo } from './harness/proxy.ts';
import type { ClusterView } from '../src/engine/cluster.ts';
import type { AuditRow } from '../src/audit/log.ts';

const server = inject('postgres');
const docker = testDocker();
const SECRET = 'cluster-hook-secret';
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
let git: GitServer;
beforeAll(async () => {
  git = await startGitServer();
});
afterAll(async () => {
  await git?.close();
});

interface RunningEngine {
  port: number;
  url: string;
  run: ReturnType<typeof runCli>;
  cleanup: () => void;
  /** the engine's id, as GET /api/v1/cluster names it */
  id: string;
}

/** One `berth serve` on the database, with its own config folder, listen port and data folder; ready when returned. */
async function startEngine(database: Record<string, unknown>, repos: Parameters<typeof writeConfig>[0]): Promise<RunningEngine> {
  const port = await freePort();
  const cfg = writeConfig(repos, { listen: `127.0.0.1:${port}`, database, hostCheck: { interval: '1s', timeout: '1s' } });
  writeFileSync(join(cfg.dir, 'hook.secret'), SECRET);
  writeFileSync(join(cfg.dir, 'db.password'), server.password);
  const run = runCli(['--config', cfg.file, 'serve']);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, { what: 'berth to be ready', timeoutMs: 60_000 });
  const id = (await cluster(url)).self.id;
  return { port, url, run, id, cleanup: cfg.cleanup };
}

async function cluster(url: string): Promise<ClusterView> {
  const r = await fetch(`${url}/api/v1/cluster`);
  if (r.status !== 200) throw new Error(`GET /api/v1/cluster: ${r.status} ${await r.text()}`);
  return (await r.json()) as ClusterView;
}

/** Waits until one of the engines leads; returns it and the others. */
async function leaderOf(engines: RunningEngine[]): Promise<{ leader: RunningEngine; followers: RunningEngine[] }> {
  const leader = await waitFor(
    async () => {
      for (const e of engines) if ((await cluster(e.url).catch(() => undefined))?.self.role === 'leader') return e;
      return undefined;
    },
    { what: 'an engine to lead', timeoutMs: 30_000 },
  );
  return { leader, followers: engines.filter((e) => e !== leader) };
}

async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

const stop = async (e: RunningEngine | undefined) => {
  if (!e) return;
  e.run.child.kill('SIGKILL');
  await e.run;
  e.cleanup();
};

const stackFile = (stack: string, image: string, more = '') => ({
  [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${image}\n${more}`,
});

const auditRows = async (db: { url: string; password: string }, filter = ''): Promise<AuditRow[]> =>
  sql<AuditRow>(db, `SELECT id, kind, stack, message, "commitSha", actor, "syncId" FROM audit ${filter} ORDER BY id`);

describe('two engines on one database', () => {
  let db: { url: string; password: string; name: string };
  let engines: RunningEngine[] = [];
  let polled: RemoteRepo;
  let hooked: RemoteRepo;
  const polledStack = uniqueName('clpoll').replaceAll('-', '');
  const hookedStack = uniqueName('clhook').replaceAll('-', '');

  beforeAll(async () => {
    db = await createDatabase(server);
    polled = await git.createRepo(uniqueName('clpollrepo'));
    hooked = await git.createRepo(uniqueName('clhookrepo'));
    await polled.commit(stackFile(polledStack, IMAGES.webV1, '    deploy:\n      replicas: 2\n'));
    await hooked.commit(stackFile(hookedStack, IMAGES.webV1));
    const database = { url: db.url, passwordFile: 'db.password', lease: '3s' };
    const repos = [
      { name: polled.name, url: polled.url, poll: '1s' },
      { name: hooked.name, url: hooked.url, poll: '1h', settings: { webhookSecretFile: 'hook.secret' } },
    ];
    engines = [await startEngine(database, repos), await startEngine(database, repos)];
  }, 180_000);

  afterAll(async () => {
    await Promise.all(engines.map(stop));
    await removeContainers(docker, { 'berth.stack': polledStack });
    await removeContainers(docker, { 'berth.stack': hookedStack });
  });

  it('one leads and applies; the other follows, is ready and serves the same reads', async () => {
    const { leader, followers } = await leaderOf(engines);
    const [follower] = followers;
    const views = await Promise.all(engines.map((e) => cluster(e.url)));
    expect(views.filter((v) => v.self.role === 'leader')).toHaveLength(1);
    for (const v of views) {
      expect(v.leader?.id).toBe(leader.id);
      expect(v.engines.map((e) => e.id).sort()).toEqual(engines.map((e) => e.id).sort());
      expect(v.engines.find((e) => e.id === leader.id)?.role).toBe('leader');
    }
    expect((await fetch(`${follower!.url}/readyz`)).status).toBe(200);
    expect(await metric(leader.url, 'berth_leader')).toBe(1);
    expect(await metric(follower!.url, 'berth_leader')).toBe(0);
    await waitFor(async () => (await docker.listContainers({ filters: { label: [`berth.stack=${polledStack}`] } })).length === 2, {
      what: 'the polled stack to run',
      timeoutMs: 60_000,
    });
    // the follower reads the hosts itself: the same stack, synced, with its replicas
    await waitFor(
      async () => {
        const r = (await (await fetch(`${follower!.url}/api/v1/stacks/${polledStack}`)).json()) as { sync?: string; replicas?: unknown[] };
        return r.sync === 'Synced' && r.replicas?.length === 2;
      },
      { what: 'the follower to show the stack synced', timeoutMs: 30_000 },
    );
    // the follower's dashboard shows the engines and which leads
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
    try {
      const page = await browser.newPage();
      await page.goto(`${follower!.url}/#/hosts`);
      await page.locator('#leader', { hasText: `Engine ${leader.id} leads since` }).waitFor();
      const rows = page.locator('#engines tbody tr');
      await expect.poll(() => rows.count()).toBe(2);
      expect(await page.locator('#engines tbody tr', { hasText: follower!.id }).textContent()).toMatch(/\(this one\).*follower/);
      expect(await page.locator('#engines tbody tr', { hasText: leader.id }).textContent()).toContain('leader');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'cluster.png'), fullPage: true });
    } finally {
      await browser.close();
    }
    const started = await auditRows(db, `WHERE stack = '${polledStack}' AND kind = 'sync.started'`);
    expect(started).toHaveLength(1);
    expect((await auditRows(db, `WHERE kind = 'engine.leader'`)).map((r) => r.message)).toEqual([
      expect.stringContaining(`engine ${leader.id} leads from term`),
    ]);
  });

  it('changes nothing at rest while both engines poll every second', async () => {
    await waitFor(async () => (await docker.listContainers({ filters: { label: [`berth.stack=${polledStack}`] } })).length === 2, {
      what: 'the polled stack to run',
      timeoutMs: 60_000,
    });
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 6000));
    expect(await containerEvents(docker, polledStack, since, Date.now())).toEqual([]);
  });

  it('a webhook sent to the follower is applied once, by the leader', async () => {
    const { leader, followers } = await leaderOf(engines);
    await waitFor(async () => (await docker.listContainers({ filters: { label: [`berth.stack=${hookedStack}`] } })).length === 1, {
      what: 'the hooked stack to run',
      timeoutMs: 60_000,
    });
    const v2 = await hooked.commit(stackFile(hookedStack, IMAGES.webV2), { message: 'v2' });
    const since = Date.now();
    const body = JSON.stringify({ repo: hooked.url, branch: 'main', after: v2 });
    const r = await fetch(`${followers[0]!.url}/webhooks/generic`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-berth-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
        'x-berth-delivery': uniqueName('delivery'),
      },
      body,
    });
    expect(r.status).toBe(202);
    await waitFor(
      async () => {
        const [c] = await docker.listContainers({ filters: { label: [`berth.stack=${hookedStack}`] } });
        return c?.Image === IMAGES.webV2;
      },
      { what: 'the leader to apply the commit', timeoutMs: 60_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 2000)); // a second pass would have begun by now
    expect((await containerEvents(docker, hookedStack, since, Date.now())).filter((a) => a === 'create')).toHaveLength(1);
    const rows = await auditRows(db, `WHERE stack = '${hookedStack}' AND kind = 'sync.started' AND "commitSha" = '${v2}'`);
    expect(rows).toHaveLength(1);
    const webhook = await sql<{ engine: string; state: string; takenBy: string }>(db, `SELECT engine, state, "takenBy" FROM handoffs WHERE kind = 'pass'`);
    expect(webhook).toEqual([{ engine: followers[0]!.id, state: 'done', takenBy: leader.id }]);
  });

  it("an action asked of the follower is the leader's, with the leader's answer, and `berth sync --wait` through it", async () => {
    const { followers } = await leaderOf(engines);
    const follower = followers[0]!;
    const r = await fetch(`${follower.url}/api/v1/stacks/${hookedStack}/sync`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ wait: true }),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ outcome: { stack: hookedStack, status: 'unchanged' } });
    const missing = await fetch(`${follower.url}/api/v1/stacks/${hookedStack}x/pause`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'unknown-stack' });
    const paused = await fetch(`${follower.url}/api/v1/stacks/${hookedStack}/pause`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(paused.status).toBeLessThan(300);
    expect(await sql(db, `SELECT stack, reason FROM holds`)).toEqual([{ stack: hookedStack, reason: 'pause' }]);
    const resumed = await runCli(['resume', hookedStack], { env: { BERTH_URL: follower.url } });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await sql(db, `SELECT stack FROM holds`)).toEqual([]);
    // a change synced through the follower: the leader's rollout steps stream back through it as they happen
    await hooked.commit(stackFile(hookedStack, IMAGES.webV1, '    environment: { SYNCED_THROUGH: follower }\n'), { message: 'v1, with a mark' });
    const synced = await runCli(['sync', '--stack', hookedStack, '--wait'], { env: { BERTH_URL: follower.url } });
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toMatch(new RegExp(`^  ${hookedStack}: web\\.1@test .*healthy`, 'm'));
    const [running] = await docker.listContainers({ filters: { label: [`berth.stack=${hookedStack}`] } });
    expect(running?.Image).toBe(IMAGES.webV1);
  });

  it('the audit chain that both engines appended to holds (`berth audit verify` on the database)', async () => {
    const rows = await sql<{ actor: string; n: number }>(db, `SELECT count(*)::int AS n FROM audit`);
    expect(rows[0]!.n).toBeGreaterThan(5);
    const cfg = writeConfig([], { database: { url: db.url, passwordFile: 'db.password' } });
    writeFileSync(join(cfg.dir, 'db.password'), server.password);
    try {
      const verified = await runCli(['--config', cfg.file, 'audit', 'verify']);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toMatch(/^ok: \d+ row\(s\), chain intact/);
    } finally {
      cfg.cleanup();
    }
  });
});

describe('a leader cut off from the database', () => {
  it('stops acting before the other engine leads, and follows once it reaches the database again', async () => {
    const db = await createDatabase(server);
    const socket = join(server.socketDir, `.s.PGSQL.${server.port}`);
    const fronts = [await proxyTo(socket), await proxyTo(socket)];
    const repo = await git.createRepo(uniqueName('clcutrepo'));
    const stack = uniqueName('clcut').replaceAll('-', '');
    await repo.commit(stackFile(stack, IMAGES.webV1));
    const engines: RunningEngine[] = [];
    try {
      for (const front of fronts) {
        const url = `postgres://${server.user}@127.0.0.1:${front.port}/${db.name}`;
        engines.push(await startEngine({ url, passwordFile: 'db.password', lease: '3s', timeout: '1s' }, [{ name: repo.name, url: repo.url, poll: '1s' }]));
      }
      const { leader } = await leaderOf(engines);
      const other = engines.find((e) => e !== leader)!;
      await fronts[engines.indexOf(leader)]!.hang();
      await waitFor(async () => (await cluster(other.url).catch(() => undefined))?.self.role === 'leader', {
        what: 'the other engine to lead',
        timeoutMs: 30_000,
      });
      expect(await metric(leader.url, 'berth_leader')).toBe(0);
      // The cut-off leader stopped acting (its fence refused every step from then on) before the
      // other engine took the lease in the database; both times are on this machine's clock. Its
      // log line comes later when the renewal that finds it out waits on the hanging database.
      const lost = logEntry(leader.run, /lost its lease/) as { stoppedAt?: string } | undefined;
      const taken = (await cluster(other.url)).leader?.since;
      expect(lost?.stoppedAt).toBeDefined();
      expect(taken).toBeDefined();
      expect(Date.parse(lost!.stoppedAt!)).toBeLessThan(Date.parse(taken!));
      await fronts[engines.indexOf(leader)]!.resume();
      await waitFor(async () => (await cluster(leader.url).catch(() => undefined))?.leader?.id === other.id, {
        what: 'the former leader to follow the new one',
        timeoutMs: 30_000,
      });
      expect((await cluster(leader.url)).self.role).toBe('follower');
      const leaders = (await auditRows(db, `WHERE kind = 'engine.leader'`)).map((r) => r.message);
      expect(leaders).toEqual([expect.stringContaining(`engine ${leader.id} leads`), expect.stringContaining(`engine ${other.id} leads`)]);
      expect(leaders[1]).toContain(`taking over from engine ${leader.id}`);
    } finally {
      await Promise.all(engines.map(stop));
      await Promise.all(fronts.map((f) => f.stop()));
      await removeContainers(docker, { 'berth.stack': stack });
    }
  }, 120_000);
});

describe('a leader killed in the middle of a rollout', () => {
  it('is replaced by the other engine, which finishes the rollout: no replica lost, none twice', async () => {
    const db = await createDatabase(server);
    const repo = await git.createRepo(uniqueName('clkillrepo'));
    const stack = uniqueName('clkill').replaceAll('-', '');
    // three replicas, one at a time, each waited for until healthy: a rollout of several seconds
    const deploy = `    deploy:\n      replicas: 3\n      update_config: { parallelism: 1, order: start-first, monitor: 3s }\n`;
    await repo.commit(stackFile(stack, IMAGES.webV1, deploy));
    const database = { url: db.url, passwordFile: 'db.password' }; // the default lease, 10 s
    const repos = [{ name: repo.name, url: repo.url, poll: '1s' }];
    const engines = [await startEngine(database, repos), await startEngine(database, repos)];
    const list = () => docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    try {
      const { leader, followers } = await leaderOf(engines);
      await waitFor(async () => (await list()).filter((c) => c.State === 'running').length === 3, { what: 'three replicas of v1', timeoutMs: 90_000 });
      const v2 = await repo.commit(stackFile(stack, IMAGES.webV2, deploy), { message: 'v2' });
      // killed once the first replica was replaced and the rollout goes on
      await waitFor(async () => (await auditRows(db, `WHERE stack = '${stack}' AND kind = 'container.replaced' AND "commitSha" = '${v2}'`)).length >= 1, {
        what: 'the rollout to be under way',
        timeoutMs: 60_000,
        intervalMs: 50,
      });
      leader.run.child.kill('SIGKILL');
      const killedAt = Date.now();
      await leader.run;
      const next = followers[0]!;
      await waitFor(async () => (await cluster(next.url).catch(() => undefined))?.self.role === 'leader', {
        what: 'the other engine to lead',
        timeoutMs: 30_000,
      });
      console.log(`failover: the other engine led ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the leader was killed`);
      // finished: every replica on v2 and the sync recorded (the last old container goes a moment
      // before the sync's row: a replica's temporary name is given back, then the row written)
      await waitFor(
        async () => {
          const cs = await list();
          const done = await auditRows(db, `WHERE stack = '${stack}' AND kind = 'sync.succeeded' AND "commitSha" = '${v2}'`);
          return cs.length === 3 && cs.every((c) => c.Image === IMAGES.webV2 && c.State === 'running') && done.length > 0;
        },
        { what: 'the rollout to be finished by the new leader', timeoutMs: 90_000 },
      );
      // one container per replica: a start-first replica whose old container was removed before the
      // kill may keep its temporary name (NAME-next) until its next replacement, never beside NAME
      const slots = (await list()).map((c) => c.Names[0]!.replace(/-next$/, ''));
      expect(new Set(slots).size).toBe(3);
      const rows = await auditRows(db, `WHERE kind = 'engine.leader' OR stack = '${stack}'`);
      const handover = rows.filter((r) => r.kind === 'engine.leader').at(-1)!;
      expect(handover.message).toContain(`engine ${next.id} leads`);
      expect(handover.message).toContain(`taking over from engine ${leader.id}`);
      const interrupted = rows.find((r) => r.kind === 'sync.failed' && r.message?.includes('interrupted'));
      expect(interrupted?.message).toContain(leader.id);
      expect(interrupted?.message).toMatch(/its last step: (container|rollout)\.[a-z]+ web/);
      expect(rows.filter((r) => r.kind === 'sync.succeeded' && r.commitSha === v2)).toHaveLength(1);
    } finally {
      await Promise.all(engines.map(stop));
      await removeContainers(docker, { 'berth.stack': stack });
    }
  }, 240_000);
});

/** When (ms, this machine's clock) the engine logged a line matching `pattern` (serve logs JSON lines with `time`). */
function logEntry(run: RunningEngine['run'], pattern: RegExp): Record<string, unknown> | undefined {
  const { stdout, stderr } = run.output();
  for (const line of `${stdout}\n${stderr}`.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string };
    if (entry.msg && pattern.test(entry.msg)) return entry;
  }
  return undefined;
}
