// Notifications as plain data (src/notify/): the events audit rows make, the engine config's
// `notifications:` with its located errors, each target's payload, each forge's status request,
// and what an attempt's answer means for the delivery. docs/notifications.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AuditRow } from '../src/audit/log.ts';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { wants } from '../src/notify/deliver.ts';
import { eventOf, type NotificationEvent } from '../src/notify/events.ts';
import { bitbucketKey, FORGE_CLIENTS } from '../src/notify/forges.ts';
import { judge, retryAfterMs, scrub } from '../src/notify/http.ts';
import { commitStatus, dashboardUrl, discordMessage, requestFor, slackMessage, teamsMessage, webhookBody } from '../src/notify/targets.ts';
import { FORGES } from '../src/server/forges.ts';

const SHA = '1a2b3c4d5e6f708192a3b4c5d6e7f80912345678';

/** An audit row as the log stores it: the fields given, the rest as berth fills them. */
const row = (fields: Partial<AuditRow> & Pick<AuditRow, 'kind'>): AuditRow => ({
  id: 7,
  time: '2026-05-01T10:00:00.000Z',
  actor: 'berth',
  outcome: 'ok',
  prevHash: '0'.repeat(64),
  hash: 'f'.repeat(64),
  ...fields,
});

const commitRow = { repo: 'platform', stack: 'web', commitSha: SHA, commitAuthor: 'Ada', commitMessage: 'Ship v2\n\nwith details', trigger: 'poll' as const };

describe('eventOf: the event an audit row makes', () => {
  it('a sync: started (pending), succeeded (success), failed (failure with the reason)', () => {
    expect(eventOf(row({ kind: 'sync.started', ...commitRow, syncId: 4 }))).toEqual({
      event: 'sync.started',
      outcome: 'pending',
      repo: 'platform',
      stack: 'web',
      commit: { sha: SHA, author: 'Ada', message: 'Ship v2\n\nwith details' },
      syncId: 4,
      trigger: 'poll',
      time: '2026-05-01T10:00:00.000Z',
      auditId: 7,
    });
    expect(eventOf(row({ kind: 'sync.succeeded', ...commitRow, syncId: 4 }))).toMatchObject({ event: 'sync.succeeded', outcome: 'success' });
    const failed = eventOf(row({ kind: 'sync.failed', ...commitRow, syncId: 4, outcome: 'error', message: 'web: create failed' }), {
      commitSha: SHA,
      result: 'failed',
    });
    expect(failed).toMatchObject({ event: 'sync.failed', outcome: 'failure', reason: 'web: create failed', syncId: 4 });
  });

  it('a paused or rolled-back sync is its own event, from how its sync record ended', () => {
    const r = row({ kind: 'sync.failed', ...commitRow, syncId: 9, outcome: 'error', message: 'web: rolled back: unhealthy' });
    expect(eventOf(r, { commitSha: SHA, result: 'rolledback' })).toMatchObject({
      event: 'rollout.rolledback',
      outcome: 'failure',
      reason: 'web: rolled back: unhealthy',
    });
    expect(eventOf(r, { commitSha: SHA, result: 'paused' })).toMatchObject({ event: 'rollout.paused', outcome: 'failure' });
    // the rollout's own rows make none: the sync's end says it once
    expect(eventOf(row({ kind: 'rollout.paused', ...commitRow, syncId: 9 }))).toBeUndefined();
    expect(eventOf(row({ kind: 'rollback.succeeded', ...commitRow, syncId: 9 }))).toBeUndefined();
  });

  it('a sync a stopped berth left running, settled by the next one: an error, on the commit its record names', () => {
    const r = row({ kind: 'sync.failed', repo: 'platform', stack: 'web', syncId: 3, outcome: 'error', message: 'sync 3 of commit 1a2b3c4: interrupted' });
    expect(eventOf(r, { commitSha: SHA })).toMatchObject({ event: 'sync.failed', outcome: 'error', commit: { sha: SHA } });
  });

  it('a stack whose files do not render, or that cannot be placed, is a failed sync of its commit', () => {
    expect(eventOf(row({ kind: 'manifest.invalid', ...commitRow, outcome: 'error', message: 'web/compose.yaml:3:5: bad' }))).toMatchObject({
      event: 'sync.failed',
      outcome: 'failure',
      reason: 'web/compose.yaml:3:5: bad',
      commit: { sha: SHA },
    });
    expect(eventOf(row({ kind: 'sync.failed', ...commitRow, outcome: 'error', message: 'no host fits' }))).toMatchObject({ event: 'sync.failed' });
  });

  it('a sync that puts back a change made by hand tells of the drift, not of a sync, unless it fails', () => {
    const drift = { ...commitRow, trigger: 'drift' as const, syncId: 5 };
    expect(eventOf(row({ kind: 'sync.started', ...drift }))).toBeUndefined();
    expect(eventOf(row({ kind: 'sync.succeeded', ...drift }))).toBeUndefined();
    expect(eventOf(row({ kind: 'drift.detected', ...drift, host: 'h1', service: 'api', message: 'api#1 stopped' }))).toMatchObject({
      event: 'drift.detected',
      outcome: 'failure',
      host: 'h1',
      service: 'api',
      reason: 'api#1 stopped',
    });
    expect(eventOf(row({ kind: 'drift.corrected', ...drift, host: 'h1' }))).toMatchObject({ event: 'drift.corrected', outcome: 'success' });
    expect(eventOf(row({ kind: 'sync.failed', ...drift, message: 'x' }), { commitSha: SHA, result: 'failed' })).toMatchObject({ event: 'sync.failed' });
  });

  it("hosts lost and back; a hook's failure told from a job's by the sync's plan", () => {
    expect(eventOf(row({ kind: 'host.lost', host: 'h2', outcome: 'error', message: 'has not answered for 60 s' }))).toMatchObject({
      event: 'host.lost',
      outcome: 'failure',
      host: 'h2',
      reason: 'has not answered for 60 s',
    });
    expect(eventOf(row({ kind: 'host.up', host: 'h2' }))).toMatchObject({ event: 'host.up', outcome: 'success' });
    const failedJob = row({ kind: 'job.failed', ...commitRow, syncId: 8, service: 'migrate', host: 'h1', message: 'migrate#1: exit 3' });
    const plan = { hooks: [{ phase: 'pre-sync', host: 'h1', service: 'migrate' }] };
    expect(eventOf(failedJob, { commitSha: SHA, plan })).toMatchObject({ event: 'hook.failed', service: 'migrate', reason: 'migrate#1: exit 3' });
    expect(eventOf(failedJob, { commitSha: SHA, plan: { hooks: [] } })).toMatchObject({ event: 'job.failed' });
    expect(eventOf(row({ kind: 'job.failed', repo: 'platform', stack: 'ops', service: 'backup', trigger: 'schedule' }))).toMatchObject({ event: 'job.failed' });
  });

  it('the other rows make none', () => {
    for (const kind of ['container.created', 'webhook.received', 'api.action', 'audit.checkpoint', 'notification.failed', 'host.down'] as const) {
      expect(eventOf(row({ kind, ...commitRow })), kind).toBeUndefined();
    }
  });
});

describe("the targets' filters", () => {
  it("events, repos and stacks; the hosts' events pass repos and stacks", () => {
    const t = { events: ['sync.failed', 'host.lost'] as NotificationEvent['event'][], repos: ['platform'], stacks: ['web'] };
    expect(wants(t, { event: 'sync.failed', repo: 'platform', stack: 'web' })).toBe(true);
    expect(wants(t, { event: 'sync.succeeded', repo: 'platform', stack: 'web' })).toBe(false);
    expect(wants(t, { event: 'sync.failed', repo: 'other', stack: 'web' })).toBe(false);
    expect(wants(t, { event: 'sync.failed', repo: 'platform', stack: 'api' })).toBe(false);
    expect(wants(t, { event: 'sync.failed', repo: 'platform' })).toBe(false);
    expect(wants(t, { event: 'host.lost' })).toBe(true);
  });
});

describe('notifications in the engine config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-notify-cfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const repos = [
    { name: 'platform', url: 'https://git.example.com/acme/platform.git' },
    { name: 'tools', url: 'https://git.example.com/acme/tools.git' },
  ];
  const load = (notifications: unknown[], extra: Record<string, unknown> = {}) => {
    const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, stringify({ repos, notifications, ...extra }));
    return { file, config: () => loadConfig(file) };
  };
  const errorOf = (notifications: unknown[], extra?: Record<string, unknown>) => {
    const { file, config } = load(notifications, extra);
    try {
      config();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message.replaceAll(file, 'FILE');
    }
    throw new Error('the config was taken');
  };

  it('takes every kind, with defaults: all events but sync.started; statuses the sync events; every repo; relative files made absolute', () => {
    const { config } = load(
      [
        { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/berth', secretFile: 'ops.secret', repos: ['platform'], stacks: ['web'] },
        { name: 'chat', type: 'slack', urlFile: 'slack.url', events: ['sync.failed', 'rollout.rolledback'] },
        { name: 'gh', type: 'github', repository: 'acme/platform', tokenFile: '/run/secrets/gh' },
        { name: 'lab', type: 'gitlab', apiUrl: 'https://gitlab.example.com/api/v4/', repository: 'acme/sub/tools', tokenFile: 'gl', repos: ['tools'] },
      ],
      { publicUrl: 'https://berth.example.com' },
    );
    const { notifications } = config();
    expect(notifications).toEqual([
      {
        name: 'ops',
        type: 'webhook',
        url: 'https://hooks.example.com/berth',
        secretFile: join(dir, 'ops.secret'),
        events: [
          'sync.succeeded',
          'sync.failed',
          'rollout.paused',
          'rollout.rolledback',
          'drift.detected',
          'drift.corrected',
          'host.lost',
          'host.up',
          'hook.failed',
          'job.failed',
        ],
        repos: ['platform'],
        stacks: ['web'],
      },
      { name: 'chat', type: 'slack', urlFile: join(dir, 'slack.url'), events: ['sync.failed', 'rollout.rolledback'] },
      // a forge's repos default to those whose URL names its repository
      {
        name: 'gh',
        type: 'github',
        apiUrl: 'https://api.github.com',
        repository: 'acme/platform',
        tokenFile: '/run/secrets/gh',
        events: ['sync.started', 'sync.succeeded', 'sync.failed', 'rollout.paused', 'rollout.rolledback'],
        repos: ['platform'],
      },
      expect.objectContaining({
        name: 'lab',
        apiUrl: 'https://gitlab.example.com/api/v4',
        repository: 'acme/sub/tools',
        tokenFile: join(dir, 'gl'),
        repos: ['tools'],
      }),
    ]);
  });

  it('refuses, each at its line and column: an unknown type or event (with a suggestion), a name used twice, a repo not configured', () => {
    const message = errorOf([
      { name: 'a', type: 'slak', url: 'https://hooks.slack.com/services/T/B/x' },
      { name: 'b', type: 'webhook', url: 'https://h.example.com/', events: ['sync.failed', 'sync.failled'] },
      { name: 'b', type: 'discord', url: 'https://discord.com/api/webhooks/1/x', repos: ['platfrom'] },
    ]);
    expect(message.split('\n')).toEqual([
      "FILE:8:11: notifications.0.type: unknown type 'slak' (did you mean slack?): one of webhook, slack, discord, teams, github, gitlab, gitea, bitbucket",
      "FILE:15:9: notifications.1.events.1: unknown event 'sync.failled' (did you mean sync.failed?)",
      "FILE:16:11: notifications.2.name: the name 'b' is used twice",
      "FILE:20:9: notifications.2.repos.0: no repo 'platfrom' in this config (did you mean platform?)",
    ]);
  });

  it('reads the files at start: one that cannot be read, or a urlFile without a URL, stops berth naming the file, never its content', () => {
    writeFileSync(join(dir, 'bad.url'), 'hooks.slack.com/services/T/B/SECRETPART\n');
    const bad = load([{ name: 'chat', type: 'slack', urlFile: 'bad.url' }], { dataDir: join(dir, 'data1') });
    expect(() => new Engine(bad.config(), pino({ level: 'silent' }))).toThrow(
      new ConfigError(`the file ${join(dir, 'bad.url')} (urlFile of notification chat) does not hold an http:// or https:// URL`),
    );
    const missing = load([{ name: 'gh', type: 'github', repository: 'acme/platform', tokenFile: 'missing.token' }], { dataDir: join(dir, 'data2') });
    expect(() => new Engine(missing.config(), pino({ level: 'silent' }))).toThrow(
      new ConfigError(`cannot read the token of notification gh from ${join(dir, 'missing.token')}: ENOENT`),
    );
  });

  it('refuses what a kind needs and lacks, or takes no part in; the URL itself is never repeated (a chat webhook URL is a secret)', () => {
    const secretPath = '/services/T000/B000/XXXXSECRETXXXX';
    const message = errorOf([
      { name: 'a', type: 'slack' },
      { name: 'b', type: 'github', repository: 'acme/platform' },
      { name: 'c', type: 'gitea', repository: 'acme/platform', tokenFile: 't' },
      { name: 'd', type: 'slack', url: `hooks.slack.com${secretPath}` },
      { name: 'e', type: 'teams', url: 'https://x.example.com/', secretFile: 's', tokenFile: 't' },
      { name: 'f', type: 'github', repository: 'acme/platform', tokenFile: 't', events: ['host.lost'] },
      { name: 'g', type: 'bitbucket', repository: 'acme/platform', tokenFile: 't' },
      { name: 'h', type: 'github', repository: 'acme/elsewhere', tokenFile: 't' },
      { name: 'i', type: 'webhook', url: 'https://x.example.com/', urlFile: 'u' },
    ]);
    expect(message).not.toContain('SECRET');
    expect(message.split('\n').map((l) => l.replace(/^FILE:\d+:\d+: /, ''))).toEqual([
      'notifications.0: a slack target needs url, or urlFile (a file holding it: the URL is a secret)',
      'notifications.1: a github target needs tokenFile (a file holding the API token statuses are posted with)',
      "notifications.2: a gitea target needs apiUrl (the server's API: https://gitea.example.com/api/v1)",
      'notifications.3.url: not an http:// or https:// URL',
      'notifications.4.tokenFile: a teams target posts to its url: it takes no tokenFile',
      'notifications.4.secretFile: only a webhook target signs its body (X-Berth-Signature); teams takes no secretFile',
      'notifications.5.events.0: a commit status tells of syncs only (sync.started, sync.succeeded, sync.failed, rollout.paused, rollout.rolledback), not host.lost',
      "notifications.6: Bitbucket needs a link with every status: set publicUrl (the address berth's dashboard is reached at)",
      'notifications.7: no repo of this config has a URL naming acme/elsewhere: say whose commits its statuses are about with repos: [NAME]',
      'notifications.8: give url or urlFile, not both',
    ]);
  });
});

const event = (fields: Partial<NotificationEvent> = {}): NotificationEvent => ({
  event: 'rollout.rolledback',
  outcome: 'failure',
  repo: 'platform',
  stack: 'web',
  commit: { sha: SHA, author: 'Ada', message: 'Ship v2 <b>now</b> & then\n\nbody' },
  reason: 'web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy',
  syncId: 42,
  trigger: 'poll',
  time: '2026-05-01T10:00:00.000Z',
  auditId: 7,
  ...fields,
});
const PUBLIC = 'https://berth.example.com';

describe('payloads', () => {
  it("links to the dashboard's page of the sync, else the stack's, else the host's; none without publicUrl", () => {
    expect(dashboardUrl({ syncId: 42, stack: 'web' }, PUBLIC)).toBe('https://berth.example.com/#/syncs/42');
    expect(dashboardUrl({ stack: 'web app' }, PUBLIC)).toBe('https://berth.example.com/#/stacks/web%20app');
    expect(dashboardUrl({ host: 'h1' }, PUBLIC)).toBe('https://berth.example.com/#/hosts/h1');
    expect(dashboardUrl({ syncId: 42 }, undefined)).toBeUndefined();
  });

  it('the webhook body, version 1, signed with the secret as the generic webhook checks it', () => {
    const body = webhookBody(event(), { id: 3, count: 1, publicUrl: PUBLIC });
    expect(body).toEqual({
      version: 1,
      id: 3,
      event: 'rollout.rolledback',
      outcome: 'failure',
      repo: 'platform',
      stack: 'web',
      commit: { sha: SHA, author: 'Ada', message: 'Ship v2 <b>now</b> & then\n\nbody' },
      reason: 'web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy',
      syncId: 42,
      time: '2026-05-01T10:00:00.000Z',
      url: 'https://berth.example.com/#/syncs/42',
    });
    const target = {
      config: { name: 'ops', type: 'webhook' as const, events: [], url: 'https://hooks.example.com/berth' },
      url: 'https://hooks.example.com/berth',
      secret: 's3cret-value',
    };
    const req = requestFor(target, event({ event: 'drift.detected' }), { id: 3, count: 4 })!;
    expect(req).toMatchObject({ method: 'POST', url: 'https://hooks.example.com/berth' });
    expect(req.headers).toMatchObject({ 'content-type': 'application/json', 'x-berth-event': 'drift.detected', 'x-berth-delivery': '3' });
    expect(JSON.parse(req.body)).toMatchObject({ count: 4 });
    expect(FORGES.get('generic')!.verify('s3cret-value', req.headers, Buffer.from(req.body))).toBe('ok');
    expect(FORGES.get('generic')!.verify('another', req.headers, Buffer.from(req.body))).toBe('bad signature');
    const unsigned = requestFor({ ...target, secret: undefined }, event(), { id: 3, count: 1 })!;
    expect(unsigned.headers['x-berth-signature']).toBeUndefined();
  });

  it('Slack: one short message naming the stack, the commit, what happened, the reason, the link; markup escaped', () => {
    const m = slackMessage(event(), { id: 1, count: 1, publicUrl: PUBLIC });
    expect(m.text).toBe('web: the rollout of 1a2b3c4 failed and was rolled back: web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy');
    expect(m.blocks).toEqual([
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: '*web: the rollout of 1a2b3c4 failed and was rolled back*\nweb: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy',
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'repo platform · 1a2b3c4 "Ship v2 &lt;b&gt;now&lt;/b&gt; &amp; then" by Ada' }] },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in berth' }, url: 'https://berth.example.com/#/syncs/42' }] },
    ]);
    expect(slackMessage(event({ event: 'sync.succeeded', outcome: 'success', reason: undefined }), { id: 1, count: 1 }).blocks).toHaveLength(2);
  });

  it('Discord: one embed, coloured by outcome, mentions never acted on', () => {
    expect(discordMessage(event(), { id: 1, count: 1, publicUrl: PUBLIC })).toEqual({
      embeds: [
        {
          title: 'web: the rollout of 1a2b3c4 failed and was rolled back',
          description: 'web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy',
          url: 'https://berth.example.com/#/syncs/42',
          color: 0xd93f3f,
          fields: [
            { name: 'Commit', value: '1a2b3c4 "Ship v2 <b>now</b> & then" by Ada' },
            { name: 'Repo', value: 'platform', inline: true },
          ],
          timestamp: '2026-05-01T10:00:00.000Z',
        },
      ],
      allowed_mentions: { parse: [] },
    });
  });

  it('Teams: an Adaptive Card message', () => {
    const m = teamsMessage(event({ event: 'drift.detected', host: 'h1', syncId: undefined }), { id: 1, count: 3, publicUrl: PUBLIC });
    expect(m.type).toBe('message');
    expect(m.attachments[0]!.contentType).toBe('application/vnd.microsoft.card.adaptive');
    const card = m.attachments[0]!.content;
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.4', actions: [{ type: 'Action.OpenUrl', url: 'https://berth.example.com/#/stacks/web' }] });
    expect(card.body[0]).toMatchObject({ type: 'TextBlock', text: 'web: a change made by hand was found on h1 (3 times)', color: 'Attention' });
    expect(card.body[1]).toMatchObject({ type: 'TextBlock', text: 'web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy' });
    expect(card.body[2]).toMatchObject({
      type: 'FactSet',
      facts: [{ title: 'Repo', value: 'platform' }, { title: 'Stack', value: 'web' }, { title: 'Host', value: 'h1' }, expect.anything()],
    });
  });

  it('commit statuses: pending, then success or failure; context berth/<stack>; one line of at most 140 characters', () => {
    expect(commitStatus(event({ event: 'sync.started', outcome: 'pending', reason: undefined }), PUBLIC)).toEqual({
      sha: SHA,
      state: 'pending',
      context: 'berth/web',
      description: 'berth is applying this commit to web',
      targetUrl: 'https://berth.example.com/#/syncs/42',
    });
    expect(commitStatus(event({ event: 'sync.succeeded', outcome: 'success', reason: undefined }), undefined)).toEqual({
      sha: SHA,
      state: 'success',
      context: 'berth/web',
      description: 'Applied to web',
    });
    const long = commitStatus(event({ event: 'sync.failed', reason: `${'x'.repeat(300)}\nsecond line` }), PUBLIC)!;
    expect(long.state).toBe('failure');
    expect(long.description).toHaveLength(140);
    expect(long.description).not.toContain('\n');
    expect(commitStatus(event(), PUBLIC)!.description).toBe('Rolled back: web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): unhealthy');
    expect(commitStatus(event({ event: 'sync.failed', outcome: 'error', reason: 'interrupted' }), PUBLIC)).toMatchObject({ state: 'error' });
    expect(commitStatus(event({ event: 'host.lost' }), PUBLIC)).toBeUndefined();
    expect(commitStatus(event({ commit: undefined }), PUBLIC)).toBeUndefined();
  });

  it("each forge's status request: path, auth header, body", () => {
    const status = { sha: SHA, state: 'pending' as const, context: 'berth/web', description: 'applying', targetUrl: 'https://b/#/syncs/1' };
    const access = (apiUrl: string, repository = 'acme/platform') => ({ apiUrl, repository, token: 'tok-123' });
    const gh = FORGE_CLIENTS.github(access('https://api.github.com')).statusRequest(status);
    expect(gh.url).toBe(`https://api.github.com/repos/acme/platform/statuses/${SHA}`);
    expect(gh.headers).toMatchObject({ authorization: 'Bearer tok-123', accept: 'application/vnd.github+json' });
    expect(JSON.parse(gh.body)).toEqual({ state: 'pending', context: 'berth/web', description: 'applying', target_url: 'https://b/#/syncs/1' });

    const gl = FORGE_CLIENTS.gitlab(access('https://gitlab.com/api/v4', 'acme/sub/platform')).statusRequest({ ...status, state: 'failure' });
    expect(gl.url).toBe(`https://gitlab.com/api/v4/projects/acme%2Fsub%2Fplatform/statuses/${SHA}`);
    expect(gl.headers).toMatchObject({ 'private-token': 'tok-123' });
    expect(gl.headers.authorization).toBeUndefined();
    expect(JSON.parse(gl.body)).toEqual({ state: 'failed', name: 'berth/web', description: 'applying', target_url: 'https://b/#/syncs/1' });
    expect(JSON.parse(FORGE_CLIENTS.gitlab(access('https://g/api/v4')).statusRequest(status).body).state).toBe('running');

    const gt = FORGE_CLIENTS.gitea(access('https://gitea.example.com/api/v1')).statusRequest({ ...status, state: 'success' });
    expect(gt.url).toBe(`https://gitea.example.com/api/v1/repos/acme/platform/statuses/${SHA}`);
    expect(gt.headers).toMatchObject({ authorization: 'token tok-123' });
    expect(JSON.parse(gt.body)).toMatchObject({ state: 'success', context: 'berth/web' });

    const bb = FORGE_CLIENTS.bitbucket(access('https://api.bitbucket.org/2.0')).statusRequest({ ...status, state: 'error' });
    expect(bb.url).toBe(`https://api.bitbucket.org/2.0/repositories/acme/platform/commit/${SHA}/statuses/build`);
    expect(bb.headers).toMatchObject({ authorization: 'Bearer tok-123' });
    expect(JSON.parse(bb.body)).toEqual({ key: 'berth/web', state: 'FAILED', name: 'berth/web', description: 'applying', url: 'https://b/#/syncs/1' });
    expect(bitbucketKey(`berth/${'s'.repeat(60)}`)).toHaveLength(40);
  });
});

describe('what an answer means', () => {
  const delays = [1000, 5000, 30_000, 120_000, 600_000];
  const now = Date.parse('2026-05-01T10:00:00Z');
  it('2xx: delivered; network errors, timeouts, 5xx and 429: again after the schedule, then failed; other 4xx and redirects: failed at once', () => {
    expect(judge({ status: 201 }, 1, delays, now)).toEqual({ next: 'delivered', status: 201 });
    expect(judge({ error: 'cannot connect (ECONNREFUSED)' }, 1, delays, now)).toEqual({ next: 'retry', delayMs: 1000, error: 'cannot connect (ECONNREFUSED)' });
    expect(judge({ error: 'no answer within 10 s' }, 2, delays, now)).toMatchObject({ next: 'retry', delayMs: 5000 });
    expect(judge({ status: 503, body: 'busy' }, 5, delays, now)).toEqual({ next: 'retry', delayMs: 600_000, status: 503, error: 'HTTP 503: busy' });
    expect(judge({ status: 503 }, 6, delays, now)).toEqual({ next: 'failed', status: 503, error: 'HTTP 503' });
    expect(judge({ status: 404, body: 'Not Found' }, 1, delays, now)).toEqual({ next: 'failed', status: 404, error: 'HTTP 404: Not Found' });
    expect(judge({ status: 302 }, 1, delays, now)).toMatchObject({ next: 'failed', error: expect.stringContaining('a redirect') });
  });

  it('Retry-After: seconds or an HTTP date, when longer than the schedule', () => {
    expect(judge({ status: 429, retryAfter: '120' }, 1, delays, now)).toMatchObject({ next: 'retry', delayMs: 120_000 });
    expect(judge({ status: 429, retryAfter: '0' }, 1, delays, now)).toMatchObject({ next: 'retry', delayMs: 1000 });
    expect(judge({ status: 503, retryAfter: 'Fri, 01 May 2026 10:01:30 GMT' }, 1, delays, now)).toMatchObject({ delayMs: 90_000 });
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(judge({ status: 429, retryAfter: '999999' }, 1, delays, now)).toMatchObject({ delayMs: 3_600_000 });
  });

  it('scrubs secrets a server echoes', () => {
    expect(scrub('bad token tok-123 at /services/T/B/x', ['tok-123', '/services/T/B/x', 'ab'])).toBe('bad token [redacted] at [redacted]');
  });
});
