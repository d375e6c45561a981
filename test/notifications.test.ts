// Notifications against the real thing: pushes to the harness git server synced onto the test
// daemon, and a recording HTTP receiver on loopback standing in for each forge's status API, a
// webhook endpoint, Slack, Discord and Teams (docs/notifications.md). Deliveries never hold up a
// sync, are tried again as documented, outlive a restart, and never show a secret.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotificationRecord } from '../src/audit/notifications.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import type { NotifyOptions } from '../src/notify/deliver.ts';
import { clip } from '../src/notify/targets.ts';
import { FORGES } from '../src/server/forges.ts';
import { capturedLogger, gitServerAndDocker, serveEngine, testLog, writeConfig } from './harness/berth.ts';
import { removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from './harness/receiver.ts';

const ctx = gitServerAndDocker();
const PUBLIC = 'https://berth.example.com';
/** Retries after 50 ms: the schedule is the engine's option, so that a test does not wait minutes. */
const QUICK: NotifyOptions = { retryDelaysMs: [50, 50, 50, 50, 50], requestTimeoutMs: 10_000, pollMs: 200 };

const engineFor = (file: string, notify: NotifyOptions = QUICK, log: Logger = testLog()) => new Engine(loadConfig(file), log, { notify });
const recordsOf = (engine: Engine, target: string): NotificationRecord[] => engine.notifier.query({ target, limit: 1000 }).rows.reverse();
const settled = (engine: Engine, target: string, n: number) =>
  waitFor(
    () => {
      const rows = recordsOf(engine, target);
      return rows.length >= n && rows.every((r) => r.outcome !== 'pending') ? rows : undefined;
    },
    { what: `${n} notification(s) to ${target} to be settled` },
  );
const json = (r: ReceivedRequest) => JSON.parse(r.body) as Record<string, unknown>;
const web = (image: string) => `services:\n  web:\n    image: ${image}\n    deploy:\n      replicas: 1\n      update_config: { failure_action: rollback }\n`;

describe('a push, synced: commit statuses on every forge, chat messages, a signed webhook', () => {
  let receiver: Receiver;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  const s1 = uniqueName('ntfa').replaceAll('-', '');
  const s2 = uniqueName('ntfb').replaceAll('-', '');
  let repoName: string;
  let commit: (files: Record<string, string>, message: string) => Promise<string>;
  const TOKENS = { gh: 'ghp_tokenForGitHub0001', gl: 'glpat-tokenForGitLab02', gt: 'gitea-token-0003', bb: 'bitbucket-token-0004' };
  const SECRET = 'webhook-secret-5f1e';

  beforeAll(async () => {
    receiver = await startReceiver(201);
    const repo = await ctx.server.createRepo(uniqueName('ntfrepo'));
    repoName = repo.name;
    commit = (files, message) => repo.commit(files, { message, author: { name: 'Ada Lovelace', email: 'ada@example.com' } });
    const forge = (name: keyof typeof TOKENS, type: string, apiUrl: string) => ({
      name,
      type,
      apiUrl,
      repository: 'acme/platform',
      tokenFile: `${name}.token`,
      repos: [repo.name],
    });
    cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      publicUrl: PUBLIC,
      notifications: [
        forge('gh', 'github', `${receiver.url}/gh`),
        forge('gl', 'gitlab', `${receiver.url}/api/v4`),
        forge('gt', 'gitea', `${receiver.url}/gitea/api/v1`),
        forge('bb', 'bitbucket', `${receiver.url}/bb/2.0`),
        { name: 'hook', type: 'webhook', url: `${receiver.url}/hook`, secretFile: 'hook.secret' },
        { name: 'slack', type: 'slack', urlFile: 'slack.url' },
        { name: 'discord', type: 'discord', url: `${receiver.url}/discord/api/webhooks/1/abc` },
        { name: 'teams', type: 'teams', url: `${receiver.url}/teams/workflows/xyz` },
      ],
    });
    for (const [name, token] of Object.entries(TOKENS)) writeFileSync(join(cfg.dir, `${name}.token`), `${token}\n`);
    writeFileSync(join(cfg.dir, 'hook.secret'), SECRET);
    writeFileSync(join(cfg.dir, 'slack.url'), `${receiver.url}/slack/services/T000/B000/abcdef\n`);
    engine = engineFor(cfg.file);
    engine.startNotifications();
  });

  afterAll(async () => {
    engine?.close();
    await Promise.all([s1, s2].map((s) => removeContainers(ctx.docker, { 'berth.stack': s })));
    await receiver?.close();
    cfg?.cleanup();
  });

  const statusesAt = (prefix: string, sha: string) => receiver.requests.filter((r) => r.path.startsWith(prefix) && r.path.includes(sha));

  it('pending, then success, per stack, on GitHub, GitLab, Gitea and Bitbucket: their paths, auth headers and bodies', async () => {
    const sha = await commit({ [`${s1}/compose.yaml`]: web(IMAGES.webV1), [`${s2}/compose.yaml`]: web(IMAGES.webV1) }, 'First version\n\nbody');
    const pass = await engine.syncRepo(repoName, { trigger: 'poll' });
    expect(pass.stacks.map((s) => s.status)).toEqual(['synced', 'synced']);
    const syncId = Object.fromEntries(pass.stacks.map((s) => [s.stack, s.syncId]));
    for (const t of ['gh', 'gl', 'gt', 'bb']) await settled(engine, t, 4);

    const byStack = (reqs: ReceivedRequest[], key: string) => (stack: string) => reqs.filter((r) => json(r)[key] === `berth/${stack}`);
    const gh = statusesAt('/gh/', sha);
    expect(new Set(gh.map((r) => r.path))).toEqual(new Set([`/gh/repos/acme/platform/statuses/${sha}`]));
    for (const stack of [s1, s2]) {
      const mine = byStack(gh, 'context')(stack);
      expect(mine.map((r) => json(r))).toEqual([
        {
          state: 'pending',
          context: `berth/${stack}`,
          description: `berth is applying this commit to ${stack}`,
          target_url: `${PUBLIC}/#/syncs/${syncId[stack]}`,
        },
        { state: 'success', context: `berth/${stack}`, description: `Applied to ${stack}`, target_url: `${PUBLIC}/#/syncs/${syncId[stack]}` },
      ]);
      for (const r of mine) expect(r.headers).toMatchObject({ authorization: `Bearer ${TOKENS.gh}`, 'content-type': 'application/json' });
    }

    const gl = statusesAt('/api/v4/', sha);
    expect(new Set(gl.map((r) => r.path))).toEqual(new Set([`/api/v4/projects/acme%2Fplatform/statuses/${sha}`]));
    for (const stack of [s1, s2]) {
      const mine = byStack(gl, 'name')(stack);
      expect(mine.map((r) => json(r).state)).toEqual(['running', 'success']);
      for (const r of mine) {
        expect(r.headers['private-token']).toBe(TOKENS.gl);
        expect(r.headers.authorization).toBeUndefined();
      }
    }

    const gt = statusesAt('/gitea/', sha);
    expect(new Set(gt.map((r) => r.path))).toEqual(new Set([`/gitea/api/v1/repos/acme/platform/statuses/${sha}`]));
    for (const stack of [s1, s2])
      expect(byStack(gt, 'context')(stack).map((r) => [json(r).state, r.headers.authorization])).toEqual([
        ['pending', `token ${TOKENS.gt}`],
        ['success', `token ${TOKENS.gt}`],
      ]);

    const bb = statusesAt('/bb/', sha);
    expect(new Set(bb.map((r) => r.path))).toEqual(new Set([`/bb/2.0/repositories/acme/platform/commit/${sha}/statuses/build`]));
    for (const stack of [s1, s2]) {
      const mine = bb.filter((r) => json(r).key === `berth/${stack}`);
      expect(mine.map((r) => json(r))).toEqual([
        {
          key: `berth/${stack}`,
          state: 'INPROGRESS',
          name: `berth/${stack}`,
          description: `berth is applying this commit to ${stack}`,
          url: `${PUBLIC}/#/syncs/${syncId[stack]}`,
        },
        { key: `berth/${stack}`, state: 'SUCCESSFUL', name: `berth/${stack}`, description: `Applied to ${stack}`, url: `${PUBLIC}/#/syncs/${syncId[stack]}` },
      ]);
      for (const r of mine) expect(r.headers.authorization).toBe(`Bearer ${TOKENS.bb}`);
    }
    for (const t of ['gh', 'gl', 'gt', 'bb'])
      expect(recordsOf(engine, t).map((r) => [r.outcome, r.attempts, r.status])).toEqual(Array(4).fill(['delivered', 1, 201]));
  });

  it("the webhook's body is version 1 and its signature verifies with the secret, as berth's own generic webhook checks it", async () => {
    const [delivered] = await settled(engine, 'hook', 2);
    const hooks = await receiver.waitForRequests(2, (r) => r.path === '/hook');
    for (const r of hooks) {
      expect(r.headers['x-berth-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(FORGES.get('generic')!.verify(SECRET, r.headers, Buffer.from(r.body))).toBe('ok');
      expect(FORGES.get('generic')!.verify('not-the-secret', r.headers, Buffer.from(r.body))).toBe('bad signature');
    }
    const body = json(hooks.find((r) => json(r).stack === s1)!);
    const sync = engine.syncs.list({ stack: s1 }).rows[0]!;
    expect(body).toEqual({
      version: 1,
      id: expect.any(Number),
      event: 'sync.succeeded',
      outcome: 'success',
      repo: repoName,
      stack: s1,
      commit: { sha: sync.commitSha, author: 'Ada Lovelace', message: 'First version\n\nbody' },
      syncId: sync.id,
      time: expect.any(String),
      url: `${PUBLIC}/#/syncs/${sync.id}`,
    });
    expect(delivered!.event).toBe('sync.succeeded');
  });

  it('a rollout that is rolled back: a failure status, and Slack, Discord and Teams messages with the reason', async () => {
    const sha = await commit({ [`${s1}/compose.yaml`]: web(IMAGES.webUnhealthy) }, 'Ship the broken one');
    const pass = await engine.syncRepo(repoName, { trigger: 'poll' });
    const outcome = pass.stacks.find((s) => s.stack === s1)!;
    expect(outcome.status).toBe('rolledback');
    const reason = outcome.errors![0]!;
    expect(reason).toMatch(/rolled back: .*unhealthy/);
    // the replica that failed and its telling line: what the one-line texts say after the headline
    const summary = outcome.evidence!.summary;
    expect(summary).toBe('web.1@test unhealthy: health check exit code 1');
    await settled(engine, 'gh', 6);

    const gh = statusesAt('/gh/', sha).map((r) => json(r));
    expect(gh).toEqual([
      expect.objectContaining({ state: 'pending', context: `berth/${s1}` }),
      {
        state: 'failure',
        context: `berth/${s1}`,
        description: clip(`Rolled back: ${summary}`, 140),
        target_url: `${PUBLIC}/#/syncs/${outcome.syncId}`,
      },
    ]);
    expect(statusesAt('/bb/', sha).map((r) => json(r).state)).toEqual(['INPROGRESS', 'FAILED']);
    expect(statusesAt('/api/v4/', sha).map((r) => json(r).state)).toEqual(['running', 'failed']);

    for (const t of ['slack', 'discord', 'teams', 'hook']) await settled(engine, t, 3);
    const last = (prefix: string) => json(receiver.requests.filter((r) => r.path.startsWith(prefix)).at(-1)!);
    const headline = `${s1}: the rollout of ${sha.slice(0, 7)} failed and was rolled back`;
    const slack = last('/slack/services/T000/B000/abcdef') as {
      text: string;
      blocks: Array<{ text?: { text: string }; elements?: Array<{ text?: string; url?: string }> }>;
    };
    expect(slack.text).toBe(`${headline}: ${summary}`);
    expect(slack.blocks[0]!.text!.text).toBe(`*${headline}*\n${reason}`);
    expect(slack.blocks[1]!.elements![0]!.text).toBe(`repo ${repoName} · ${sha.slice(0, 7)} "Ship the broken one" by Ada Lovelace`);
    expect(slack.blocks[2]!.elements![0]!.url).toBe(`${PUBLIC}/#/syncs/${outcome.syncId}`);

    const discord = last('/discord/') as { embeds: Array<Record<string, unknown>> };
    expect(discord.embeds[0]).toMatchObject({ title: headline, description: reason, url: `${PUBLIC}/#/syncs/${outcome.syncId}`, color: 0xd93f3f });

    const teams = last('/teams/') as { type: string; attachments: Array<{ contentType: string; content: { body: Array<{ text?: string }> } }> };
    expect(teams.type).toBe('message');
    expect(teams.attachments[0]!.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(teams.attachments[0]!.content.body.map((b) => b.text)).toEqual([headline, reason, undefined]);

    expect(last('/hook')).toMatchObject({
      event: 'rollout.rolledback',
      outcome: 'failure',
      stack: s1,
      reason,
      evidence: outcome.evidence,
      commit: { sha, message: 'Ship the broken one' },
    });
  });
});

describe('delivery', () => {
  /** An engine whose targets are all `webhook`s on the receiver, at /NAME (no repo needed: rows are appended to its audit log). */
  function hooksEngine(receiver: Receiver, targets: Array<Record<string, unknown> & { name: string }>, notify: NotifyOptions = QUICK, log?: Logger) {
    const cfg = writeConfig(
      [
        { name: 'alpha', url: '/nonexistent/alpha' },
        { name: 'beta', url: '/nonexistent/beta' },
      ],
      {
        notifications: targets.map((t) => ({ type: 'webhook', url: `${receiver.url}/${t.name}`, ...t })),
      },
    );
    return { cfg, engine: engineFor(cfg.file, notify, log) };
  }
  const hostLost = (engine: Engine, host = 'h1') => engine.audit.append({ kind: 'host.lost', host, outcome: 'error', message: 'has not answered for 60 s' });

  it('is tried again on 5xx: failed twice, delivered by the third attempt, with the same delivery id', async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }]);
    try {
      engine.startNotifications();
      receiver.fail(2, 503);
      hostLost(engine);
      const [rec] = await settled(engine, 'ops', 1);
      expect(rec).toMatchObject({ outcome: 'delivered', attempts: 3, status: 200, event: 'host.lost', host: 'h1' });
      expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      expect(new Set(receiver.requests.map((r) => r.headers['x-berth-delivery']))).toEqual(new Set([String(rec!.id)]));
    } finally {
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it('is not tried again on another 4xx: failed at once, with one audit row naming the target and the status', async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }]);
    try {
      engine.startNotifications();
      receiver.fail(1, 410);
      hostLost(engine);
      const [rec] = await settled(engine, 'ops', 1);
      expect(rec).toMatchObject({ outcome: 'failed', attempts: 1, status: 410, error: expect.stringMatching(/^HTTP 410/) });
      expect(receiver.requests).toHaveLength(1);
      const rows = engine.audit.query({ kind: 'notification.failed' }).rows;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ outcome: 'error', host: 'h1' });
      expect(rows[0]!.message).toBe(`host.lost to ops (webhook, ${receiver.url}) failed after 1 attempt(s): ${rec!.error}`);
    } finally {
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it("honours Retry-After: after a 429 asking for 2 s, the next attempt is due 2 s later, not at the schedule's 50 ms", async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }]);
    try {
      engine.startNotifications();
      receiver.fail(1, 429, { 'retry-after': '2' });
      hostLost(engine);
      const waiting = await waitFor(() => recordsOf(engine, 'ops').find((r) => r.attempts === 1 && r.outcome === 'pending'), { what: 'the first attempt' });
      expect(waiting.status).toBe(429);
      expect(Date.parse(waiting.nextAttemptAt!) - Date.parse(waiting.lastAttemptAt!)).toBe(2000);
      const [rec] = await settled(engine, 'ops', 1);
      expect(rec).toMatchObject({ outcome: 'delivered', attempts: 2 });
    } finally {
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it('survives a restart: pending while the receiver is down, delivered by the next engine once it is back', async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }], { ...QUICK, retryDelaysMs: [300, 300, 300, 300, 300] });
    let second: Engine | undefined;
    try {
      await receiver.down();
      engine.startNotifications();
      hostLost(engine, 'h7');
      const failedOnce = await waitFor(() => recordsOf(engine, 'ops').find((r) => r.attempts >= 1), { what: 'an attempt on the dead receiver' });
      expect(failedOnce).toMatchObject({ outcome: 'pending', error: 'cannot connect (ECONNREFUSED)' });
      engine.close();
      expect(receiver.requests).toHaveLength(0);

      await receiver.up();
      second = engineFor(cfg.file);
      second.startNotifications();
      const [rec] = await settled(second, 'ops', 1);
      expect(rec).toMatchObject({ outcome: 'delivered', host: 'h7' });
      expect(rec!.attempts).toBeGreaterThanOrEqual(2);
      expect(receiver.requests.map((r) => json(r))).toEqual([expect.objectContaining({ event: 'host.lost', host: 'h7', id: rec!.id })]);
    } finally {
      engine.close();
      second?.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it('a request in flight when berth stops is sent again by the next start', async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }]);
    let second: Engine | undefined;
    try {
      receiver.hold(true);
      engine.startNotifications();
      hostLost(engine);
      await waitFor(() => receiver.holding() === 1, { what: 'the request to be held' });
      engine.close();
      second = engineFor(cfg.file);
      expect(recordsOf(second, 'ops').map((r) => [r.outcome, r.attempts])).toEqual([['pending', 0]]);
      receiver.hold(false);
      second.startNotifications();
      const [rec] = await settled(second, 'ops', 1);
      expect(rec).toMatchObject({ outcome: 'delivered', attempts: 1 });
      expect(receiver.requests).toHaveLength(2);
    } finally {
      engine.close();
      second?.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it('filters by events, repos and stacks', async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [
      { name: 'failures', events: ['sync.failed'] },
      { name: 'beta', repos: ['beta'] },
      { name: 'web', stacks: ['web'] },
    ]);
    try {
      engine.startNotifications();
      const commit = { sha: 'a'.repeat(40), author: 'Ada', email: 'ada@example.com', message: 'm' };
      engine.audit.append({ kind: 'sync.failed', repo: 'alpha', stack: 'web', commit, outcome: 'error', message: 'broke' });
      engine.audit.append({ kind: 'sync.succeeded', repo: 'alpha', stack: 'api', commit, trigger: 'poll' });
      engine.audit.append({ kind: 'sync.succeeded', repo: 'beta', stack: 'db', commit, trigger: 'poll' });
      engine.audit.append({ kind: 'container.created', repo: 'beta', stack: 'db', commit });
      hostLost(engine);
      const got = async (target: string, n: number) => (await settled(engine, target, n)).map((r) => `${r.event} ${r.repo ?? '-'}/${r.stack ?? '-'}`);
      expect(await got('failures', 1)).toEqual(['sync.failed alpha/web']);
      expect(await got('beta', 2)).toEqual(['sync.succeeded beta/db', 'host.lost -/-']);
      expect(await got('web', 2)).toEqual(['sync.failed alpha/web', 'host.lost -/-']);
      expect(receiver.requests.map((r) => `${r.path} ${json(r).event}`).sort()).toEqual(
        ['/beta host.lost', '/beta sync.succeeded', '/failures sync.failed', '/web host.lost', '/web sync.failed'].sort(),
      );
    } finally {
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it("bounds a target's queue: drift coalesced into a pending one past the first limit, the oldest dropped past the second", async () => {
    const receiver = await startReceiver();
    const { cfg, engine } = hooksEngine(receiver, [{ name: 'ops' }], { ...QUICK, limits: { coalesceAbove: 2, maxPending: 4 } });
    const ended: string[] = [];
    engine.events.on('notification', (n) => n.outcome !== 'pending' && ended.push(`${n.id} ${n.outcome}`));
    try {
      receiver.hold(true);
      engine.startNotifications();
      hostLost(engine, 'h1');
      await waitFor(() => receiver.holding() === 1, { what: 'the first delivery to be in flight' });
      for (let i = 0; i < 6; i++)
        engine.audit.append({ kind: 'drift.detected', repo: 'alpha', stack: 'web', host: 'h1', outcome: 'error', message: `web#1 changed (${i})` });
      hostLost(engine, 'h2');
      hostLost(engine, 'h3');
      const [h1, d1, d2, h2, h3] = recordsOf(engine, 'ops');
      expect(recordsOf(engine, 'ops')).toHaveLength(5);
      expect([h1, d1, d2, h2, h3].map((r) => [r!.event, r!.count, r!.outcome])).toEqual([
        ['host.lost', 1, 'pending'],
        ['drift.detected', 5, 'dropped'],
        ['drift.detected', 1, 'pending'],
        ['host.lost', 1, 'pending'],
        ['host.lost', 1, 'pending'],
      ]);
      expect(d1!.error).toBe('dropped: more than 4 deliveries were pending for this target');
      receiver.hold(false);
      await settled(engine, 'ops', 5);
      expect(receiver.requests.map((r) => `${json(r).event} ${json(r).host}`)).toEqual(['host.lost h1', 'drift.detected h1', 'host.lost h2', 'host.lost h3']);
      expect(ended.sort()).toEqual([`${d1!.id} dropped`, ...[h1, d2, h2, h3].map((r) => `${r!.id} delivered`)].sort());
    } finally {
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });

  it('a receiver that never answers does not hold up a rollout: the pass ends while the receiver still holds the request', async () => {
    const receiver = await startReceiver();
    const repo = await ctx.server.createRepo(uniqueName('ntfdead'));
    const stack = uniqueName('ntfdead').replaceAll('-', '');
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      notifications: [{ name: 'slow', type: 'webhook', url: `${receiver.url}/slow`, events: ['sync.started', 'sync.succeeded'] }],
    });
    const engine = engineFor(cfg.file, { ...QUICK, requestTimeoutMs: 600_000 });
    try {
      receiver.hold(true);
      engine.startNotifications();
      await repo.commit({ [`${stack}/compose.yaml`]: web(IMAGES.webV1) });
      const running = engine.syncRepo(repo.name, { trigger: 'poll' });
      await waitFor(() => receiver.holding() === 1, { what: 'the sync.started notification to be held' });
      const pass = await running;
      expect(pass.stacks[0]!.status).toBe('synced');
      // the pass is over, and the first request is still unanswered; the second waits behind it
      expect(receiver.holding()).toBe(1);
      expect(json(receiver.requests[0]!).event).toBe('sync.started');
      expect(recordsOf(engine, 'slow').map((r) => [r.event, r.outcome, r.attempts])).toEqual([
        ['sync.started', 'pending', 0],
        ['sync.succeeded', 'pending', 0],
      ]);
    } finally {
      engine.close();
      await removeContainers(ctx.docker, { 'berth.stack': stack });
      await receiver.close();
      cfg.cleanup();
    }
  });
});

describe('secrets', () => {
  it('the token, the webhook secret and the Slack URL path appear in no log line, audit row, API answer or database row', async () => {
    const receiver = await startReceiver();
    const TOKEN = 'ghp_NeverShowThisToken42';
    const SECRET = 'whsec_NeverShowThisSecret42';
    const SLACK_PATH = '/services/T0NEVERSHOW/B0NEVERSHOW/NeverShowThisPath42';
    const cfg = writeConfig([{ name: 'alpha', url: 'https://git.example.com/acme/platform.git' }], {
      notifications: [
        { name: 'gh', type: 'github', apiUrl: `${receiver.url}/gh`, repository: 'acme/platform', tokenFile: 'gh.token' },
        { name: 'hook', type: 'webhook', url: `${receiver.url}/hook`, secretFile: 'hook.secret' },
        { name: 'chat', type: 'slack', urlFile: 'slack.url' },
      ],
      auth: { tokens: [{ name: 'eve', role: 'viewer', tokenFile: 'eve.token' }] },
    });
    writeFileSync(join(cfg.dir, 'gh.token'), TOKEN);
    writeFileSync(join(cfg.dir, 'hook.secret'), SECRET);
    writeFileSync(join(cfg.dir, 'slack.url'), `${receiver.url}${SLACK_PATH}`);
    writeFileSync(join(cfg.dir, 'eve.token'), 'viewer-token-for-the-api');
    const captured = capturedLogger();
    const engine = engineFor(cfg.file, QUICK, captured.log);
    const { app, base } = await serveEngine(engine, captured.log);
    try {
      engine.startNotifications();
      // every request fails, and the receiver repeats what it was sent (path, auth header, signature) in its answer
      receiver.fail(6, 500, {}, { echo: true });
      receiver.fail(3, 403, {}, { echo: true });
      const commit = { sha: 'b'.repeat(40), author: 'Ada', email: 'ada@example.com', message: 'm' };
      engine.audit.append({ kind: 'sync.started', repo: 'alpha', stack: 'web', commit, trigger: 'poll' });
      engine.audit.append({ kind: 'sync.failed', repo: 'alpha', stack: 'web', commit, outcome: 'error', message: 'broke' });
      for (const t of ['gh', 'hook', 'chat']) await settled(engine, t, t === 'gh' ? 2 : 1);
      const records = ['gh', 'hook', 'chat'].flatMap((t) => recordsOf(engine, t));
      expect(records.some((r) => r.outcome === 'failed')).toBe(true);
      expect(records.some((r) => r.error?.includes('[redacted]'))).toBe(true); // the echo was there, blanked
      expect(engine.audit.query({ kind: 'notification.failed' }).rows.length).toBeGreaterThan(0);

      const get = async (path: string) => (await fetch(`${base}${path}`, { headers: { authorization: 'Bearer viewer-token-for-the-api' } })).text();
      const answers = await Promise.all(['/api/v1/notifications', '/api/v1/audit?limit=1000', '/metrics'].map(get));
      expect(answers[0]).toContain('"notifications"');
      const audit = JSON.stringify(engine.audit.query({ limit: 1000 }).rows);
      const dataDir = join(cfg.dir, 'data');
      const db = readdirSync(dataDir)
        .filter((f) => f.startsWith('berth.db'))
        .map((f) => readFileSync(join(dataDir, f)).toString('latin1'))
        .join('\n');
      expect(captured.text()).toContain('notification failed');
      const places = { logs: captured.text(), audit, api: answers.join('\n'), db };
      for (const [where, text] of Object.entries(places)) {
        for (const secret of [TOKEN, SECRET, SLACK_PATH, 'T0NEVERSHOW', 'NeverShowThisPath42'])
          expect(text.includes(secret), `${secret} in ${where}`).toBe(false);
      }
    } finally {
      await app.close();
      engine.close();
      await receiver.close();
      cfg.cleanup();
    }
  });
});

describe('GET /api/v1/notifications and /metrics', () => {
  it('lists deliveries newest first, by target and outcome, a page at a time; counts each end by target and outcome', async () => {
    const receiver = await startReceiver();
    const chat = await startReceiver(204);
    const cfg = writeConfig([{ name: 'alpha', url: '/nonexistent/alpha' }], {
      notifications: [
        { name: 'ops', type: 'webhook', url: `${receiver.url}/ops` },
        { name: 'chat', type: 'discord', url: `${chat.url}/chat` },
      ],
    });
    const engine = engineFor(cfg.file);
    const { app, base } = await serveEngine(engine);
    try {
      engine.startNotifications();
      receiver.fail(1, 400); // the first request, ops's, is refused
      for (const h of ['h1', 'h2', 'h3']) engine.audit.append({ kind: 'host.lost', host: h, outcome: 'error', message: 'gone' });
      await settled(engine, 'ops', 3);
      await settled(engine, 'chat', 3);
      const get = async (q: string) => {
        const res = await fetch(`${base}/api/v1/notifications${q}`);
        return { status: res.status, body: (await res.json()) as { notifications: NotificationRecord[]; nextCursor?: number; code?: string } };
      };
      const all = (await get('?target=ops')).body.notifications;
      expect(all.map((n) => [n.target, n.host, n.outcome])).toEqual([
        ['ops', 'h3', 'delivered'],
        ['ops', 'h2', 'delivered'],
        ['ops', 'h1', 'failed'],
      ]);
      expect(all[2]).toMatchObject({
        type: 'webhook',
        event: 'host.lost',
        attempts: 1,
        status: 400,
        count: 1,
        createdAt: expect.any(String),
        finishedAt: expect.any(String),
      });
      expect(Object.keys(all[2]!)).not.toContain('payload');
      expect((await get('?outcome=failed')).body.notifications.map((n) => n.id)).toEqual([all[2]!.id]);
      const page = (await get('?target=ops&limit=2')).body;
      expect(page.notifications.map((n) => n.id)).toEqual([all[0]!.id, all[1]!.id]);
      expect((await get(`?target=ops&limit=2&cursor=${page.nextCursor}`)).body).toEqual({ notifications: [all[2]] });
      expect(await get('?outcome=lost')).toMatchObject({ status: 400, body: { code: 'invalid-request' } });

      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('berth_notifications_total{target="ops",outcome="delivered"} 2');
      expect(metrics).toContain('berth_notifications_total{target="ops",outcome="failed"} 1');
      expect(metrics).toContain('berth_notifications_total{target="chat",outcome="delivered"} 3');
      expect(metrics).toContain('berth_notifications_total{target="chat",outcome="dropped"} 0');
    } finally {
      await app.close();
      engine.close();
      await receiver.close();
      await chat.close();
      cfg.cleanup();
    }
  });
});
