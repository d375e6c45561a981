// Plans on pull requests against the real thing (docs/notifications.md, "Plans on pull requests"):
// a pull request's head pushed to the harness git server as the forges keep it (refs/pull/N/head,
// refs/merge-requests/N/head, a branch for Bitbucket), the signed webhook sent to a running berth,
// the recording receiver standing in for each forge's API, the test daemon as the one host. The
// plan is posted as a status and one comment that later plans edit; it changes nothing on the host
// (the daemon's event log says so), nor the branch berth tracks; the API and `berth plan` answer
// the same plan; no forge token shows anywhere.
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import type { RepoPlan } from '../src/engine/plans.ts';
import { capturedLogger, runCli, serveEngine, writeConfig } from './harness/berth.ts';
import { containerEvents, removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { git, startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from './harness/receiver.ts';

const SAMPLES = resolve(import.meta.dirname, '../webhooks');
const SECRET = 'whsec-prplan-7c1d9e4b2a';
const PUBLIC = 'https://berth.example.com';
const TOKENS = { gh: 'ghp_PlanTokenNeverShown01', gl: 'glpat-PlanTokenNeverShown2', gt: 'gitea-PlanTokenNeverShown3', bb: 'bb-PlanTokenNeverShown4' };
const VIEWER = 'viewer-token-prplan-0001';
type Provider = 'github' | 'gitlab' | 'gitea' | 'bitbucket';
const SAMPLE: Record<Provider, { file: string; repo: string }> = {
  github: { file: 'pull_request.json', repo: 'github.com/octo-org/shop' },
  gitlab: { file: 'merge_request.json', repo: 'gitlab.com/octo-org/shop' },
  gitea: { file: 'pull_request.json', repo: 'gitea.example.com/octo-org/shop' },
  bitbucket: { file: 'pullrequest.json', repo: 'bitbucket.org/octo-org/shop' },
};

const hmac = (body: string) => createHmac('sha256', SECRET).update(body).digest('hex');
const json = (r: ReceivedRequest) => JSON.parse(r.body) as Record<string, unknown>;

describe('plans on pull requests', () => {
  const docker = testDocker();
  let server: GitServer;
  let repo: RemoteRepo;
  let receiver: Receiver;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let app: FastifyInstance;
  let base: string;
  let captured: ReturnType<typeof capturedLogger>;
  let mainSha: string;
  let work: string;
  let nextComment = 9000;
  const stack = uniqueName('pr').replaceAll('-', '');
  const file = `${stack}/compose.yaml`;
  const web = (image: string, extra = '') => `services:\n  web:\n    image: ${image}\n    deploy:\n      replicas: 1\n${extra}`;
  const answers: string[] = [];

  /** Commits `files` on top of main in a clone of its own and pushes the commit to `ref` only (as a forge keeps a pull request's head); its SHA. */
  async function pushHead(ref: string, files: Record<string, string>, message: string): Promise<string> {
    await git(['fetch', '--quiet', 'origin', 'main'], work);
    await git(['checkout', '--quiet', '--force', '--detach', 'FETCH_HEAD'], work);
    for (const [path, text] of Object.entries(files)) {
      await git(['rm', '-r', '--quiet', '--ignore-unmatch', path.split('/')[0]!], work);
      mkdirSync(join(work, path.split('/')[0]!), { recursive: true });
      writeFileSync(join(work, path), text);
    }
    await git(['add', '-A'], work);
    await git(['-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', 'commit', '--quiet', '-m', message], work);
    await git(['push', '--quiet', '--force', 'origin', `HEAD:${ref}`], work);
    return git(['rev-parse', 'HEAD'], work);
  }

  /** A forge's pull request sample for the test repo, set to this request, signed as that forge signs. */
  function hook(provider: Provider, o: { number: number; sha: string; base?: string; action?: string; delivery?: string }) {
    const u = new URL(repo.url);
    const text = readFileSync(join(SAMPLES, provider, SAMPLE[provider].file), 'utf8').replaceAll(
      SAMPLE[provider].repo,
      `${u.host}${u.pathname.replace(/\.git$/, '')}`,
    );
    const p = JSON.parse(text);
    const baseRef = o.base ?? 'main';
    if (provider === 'github' || provider === 'gitea') {
      Object.assign(p, { number: o.number, action: o.action ?? 'opened' });
      Object.assign(p.pull_request, { number: o.number });
      p.pull_request.head.sha = o.sha;
      p.pull_request.base.ref = baseRef;
    } else if (provider === 'gitlab') {
      Object.assign(p.object_attributes, { iid: o.number, action: o.action ?? 'open', target_branch: baseRef });
      p.object_attributes.last_commit.id = o.sha;
    } else {
      p.pullrequest.id = o.number;
      p.pullrequest.source.commit.hash = o.sha.slice(0, 12);
      p.pullrequest.destination.branch.name = baseRef;
    }
    const body = JSON.stringify(p);
    const id = o.delivery ?? uniqueName('delivery');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (provider === 'github')
      Object.assign(headers, { 'x-github-event': 'pull_request', 'x-github-delivery': id, 'x-hub-signature-256': `sha256=${hmac(body)}` });
    if (provider === 'gitlab') Object.assign(headers, { 'x-gitlab-event': 'Merge Request Hook', 'idempotency-key': id, 'x-gitlab-token': SECRET });
    if (provider === 'gitea') Object.assign(headers, { 'x-gitea-event': 'pull_request', 'x-gitea-delivery': id, 'x-gitea-signature': hmac(body) });
    if (provider === 'bitbucket')
      Object.assign(headers, { 'x-event-key': o.action ?? 'pullrequest:created', 'x-request-uuid': id, 'x-hub-signature': `sha256=${hmac(body)}` });
    return { headers, body, id };
  }

  async function send(provider: Provider, h: { headers: Record<string, string>; body: string }) {
    const res = await fetch(`${base}/webhooks/${provider}`, { method: 'POST', headers: h.headers, body: h.body });
    const text = await res.text();
    answers.push(text);
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  }

  /** The plan delivery to `target` of `sha`, once it is settled. */
  const posted = (target: string, sha: string) =>
    waitFor(() => engine.notifier.query({ target, limit: 1000 }).rows.find((r) => r.event === 'plan' && r.commitSha === sha && r.outcome !== 'pending'), {
      what: `the plan of ${sha.slice(0, 7)} to ${target}`,
      timeoutMs: 60_000,
    });
  const at = (method: string, path: string) => receiver.requests.filter((r) => r.method === method && r.path === path);
  const cacheHead = () => git(['rev-parse', 'refs/heads/main'], join(cfg.dataDir, 'git', repo.name));
  const syncRows = () => engine.audit.query({ limit: 1000 }).rows.filter((r) => /^(sync|container|network|volume|rollout)\./.test(r.kind)).length;

  beforeAll(async () => {
    server = await startGitServer();
    repo = await server.createRepo(uniqueName('prrepo'));
    mainSha = await repo.commit({ [file]: web(IMAGES.webV1) }, { message: 'web v1' });
    work = mkdtempSync(join(tmpdir(), 'berth-prplan-work-'));
    await git(['clone', '--quiet', repo.url, work]);
    receiver = await startReceiver(201, (r) => (r.method === 'POST' && /\/(comments|notes)$/.test(r.path) ? { id: nextComment++, body: '...' } : {}));
    const forge = (name: keyof typeof TOKENS, type: string, apiUrl: string) => ({
      name,
      type,
      apiUrl,
      repository: 'acme/platform',
      tokenFile: `${name}.token`,
      repos: [repo.name],
    });
    cfg = writeConfig([], {
      publicUrl: PUBLIC,
      repos: [
        { name: repo.name, url: repo.url, branch: 'main', poll: '1h', webhookSecretFile: 'hook.secret' },
        // the same URL, another branch, and no forge target takes it
        { name: `${repo.name}-rel`, url: repo.url, branch: 'release', poll: '1h', webhookSecretFile: 'hook.secret' },
      ],
      notifications: [
        forge('gh', 'github', `${receiver.url}/gh`),
        forge('gl', 'gitlab', `${receiver.url}/api/v4`),
        forge('gt', 'gitea', `${receiver.url}/gitea/api/v1`),
        forge('bb', 'bitbucket', `${receiver.url}/bb/2.0`),
      ],
      auth: { tokens: [{ name: 'eve', role: 'viewer', tokenFile: 'eve.token' }] },
    });
    for (const [name, token] of Object.entries(TOKENS)) writeFileSync(join(cfg.dir, `${name}.token`), `${token}\n`);
    writeFileSync(join(cfg.dir, 'hook.secret'), SECRET);
    writeFileSync(join(cfg.dir, 'eve.token'), VIEWER);
    captured = capturedLogger();
    engine = new Engine(loadConfig(cfg.file), captured.log, { notify: { retryDelaysMs: [50, 50, 50], requestTimeoutMs: 10_000, pollMs: 200 } });
    engine.startNotifications();
    const [pass] = await engine.syncAll({ trigger: 'startup' }); // the release branch does not exist yet: that repo's pass fails
    expect(pass!.stacks.map((s) => s.status)).toEqual(['synced']);
    ({ app, base } = await serveEngine(engine, captured.log));
  });

  afterAll(async () => {
    await app?.close();
    await engine?.drain();
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    await receiver?.close();
    cfg?.cleanup();
    await server?.close();
  });

  let pr7: string;
  let commentId: number;

  it('GitHub: refs/pull/7/head is planned and posted, a berth/plan status and one comment; nothing changes on the host or in what berth tracks', async () => {
    pr7 = await pushHead('refs/pull/7/head', { [file]: web(IMAGES.webV2, '      update_config: { order: start-first }\n') }, 'web to v2');
    const syncsBefore = syncRows();
    const t0 = Date.now();
    const h = hook('github', { number: 7, sha: pr7 });
    const res = await send('github', h);
    expect(res).toMatchObject({ status: 202, body: { accepted: true, repos: [repo.name] } });
    expect(await posted('gh', pr7)).toMatchObject({ outcome: 'delivered', attempts: 1, status: 201, repo: repo.name });
    const t1 = Date.now();

    const [status] = at('POST', `/gh/repos/acme/platform/statuses/${pr7}`);
    expect(json(status!)).toEqual({ state: 'success', context: 'berth/plan', description: 'Would apply: 1 stack(s) change', target_url: PUBLIC });
    expect(status!.headers.authorization).toBe(`Bearer ${TOKENS.gh}`);
    const comments = at('POST', '/gh/repos/acme/platform/issues/7/comments');
    expect(comments).toHaveLength(1);
    commentId = nextComment - 1;
    const body = String(json(comments[0]!).body);
    expect(body.split('\n')[0]).toBe('<!-- berth:plan -->');
    expect(body).toContain('### berth plan: would apply');
    expect(body).toContain(`#### \`${stack}\`: changes`);
    expect(body).toContain('- test: replace `web#1@test` (spec changed)');
    expect(body).toContain('1. web (start-first, parallelism 1, on failure pause): batch 1/1: replace web#1@test');
    expect(body).toMatch(/^-image: berth-test\/web:v1$/m);
    expect(body).toMatch(/^\+image: berth-test\/web:v2$/m);
    // the status came first: a target's requests go out in order
    expect(receiver.requests.indexOf(status!)).toBeLessThan(receiver.requests.indexOf(comments[0]!));

    // nothing happened on the host: no container, network or volume of the stack created, started, stopped or removed
    expect(await containerEvents(docker, stack, t0, t1 + 500, ['container', 'network', 'volume'])).toEqual([]);
    const [running] = await docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } });
    expect(running!.Labels['berth.commit']).toBe(mainSha);
    expect(running!.Image).toBe(IMAGES.webV1);
    // nor in what berth tracks: the branch head it fetched, the head it read, its sync history
    expect(await cacheHead()).toBe(mainSha);
    expect(engine.world.head(repo.name)!.commit.sha).toBe(mainSha);
    expect(syncRows()).toBe(syncsBefore);
    expect(engine.syncs.list({}).rows.map((r) => r.commitSha)).toEqual([mainSha]);

    const row = new DeliveryStore(engine.db).query({ deliveryId: h.id, repo: repo.name }).rows[0]!;
    expect(row).toMatchObject({ provider: 'github', event: 'pull_request', repo: repo.name, branch: 'main', commitSha: pr7, outcome: 'accepted', status: 202 });
    expect(row.detail).toMatch(/^pull request #7 \(opened\) at [0-9a-f]{12}: its plan is made and posted through gh$/);
    const audited = engine.audit.query({ kind: 'plan.posted', limit: 10 }).rows;
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ repo: repo.name, commitSha: pr7, outcome: 'info' });
    expect(audited[0]!.message).toBe(`the plan of pull request #7 at ${pr7.slice(0, 7)} (success) posted to gh (github, ${new URL(receiver.url).origin})`);
  });

  it('a later push to the same pull request edits the same comment: PATCH to its id, no second POST', async () => {
    const next = await pushHead(
      'refs/pull/7/head',
      { [file]: web(IMAGES.webV2, '      update_config: { order: start-first }\n').replace('replicas: 1', 'replicas: 2') },
      'and two',
    );
    expect((await send('github', hook('github', { number: 7, sha: next, action: 'synchronize' }))).status).toBe(202);
    expect(await posted('gh', next)).toMatchObject({ outcome: 'delivered' });
    expect(json(at('POST', `/gh/repos/acme/platform/statuses/${next}`)[0]!)).toMatchObject({ state: 'success', context: 'berth/plan' });
    expect(at('POST', '/gh/repos/acme/platform/issues/7/comments')).toHaveLength(1);
    const edits = at('PATCH', `/gh/repos/acme/platform/issues/comments/${commentId}`);
    expect(edits).toHaveLength(1);
    const body = String(json(edits[0]!).body);
    expect(body).toContain('create `web#2@test` (missing)');
    expect(body).toContain(next.slice(0, 7));
    pr7 = next;
  });

  it('a redelivery, a closed pull request and one into another branch are ignored, with their reasons; nothing is queued for them', async () => {
    const first = hook('github', { number: 7, sha: pr7, action: 'synchronize' });
    const again = await send('github', first);
    expect(again).toMatchObject({ status: 202 });
    expect(await send('github', first)).toMatchObject({ status: 200, body: { accepted: false, reason: 'duplicate' } });
    const closed = await send('github', hook('github', { number: 7, sha: pr7, action: 'closed' }));
    expect(closed).toMatchObject({ status: 200, body: { accepted: false, reason: 'action not planned' } });
    const devSha = await pushHead('refs/pull/11/head', { [file]: web(IMAGES.webV2) }, 'into dev');
    const dev = await send('github', hook('github', { number: 11, sha: devSha, base: 'dev' }));
    expect(dev).toMatchObject({ status: 200, body: { accepted: false, reason: 'base branch not watched' } });
    expect(dev.body.message).toBe(
      `pull request #11 (opened) would merge into dev; repo ${repo.name} watches main; pull request #11 (opened) would merge into dev; repo ${repo.name}-rel watches release`,
    );
    const queued = () => engine.notifier.query({ limit: 1000 }).rows;
    expect(queued().filter((r) => r.commitSha === devSha)).toEqual([]);
    const rows = new DeliveryStore(engine.db).query({ repo: repo.name, limit: 1000 }).rows;
    expect(rows.filter((r) => r.reason === 'base branch not watched').map((r) => [r.outcome, r.branch, r.commitSha, r.status])).toEqual([
      ['ignored', 'dev', devSha, 200],
    ]);
    // into release: the repo watching it has no forge target to post through
    const rel = hook('github', { number: 12, sha: devSha, base: 'release' });
    expect(await send('github', rel)).toMatchObject({ status: 200, body: { accepted: false } });
    expect(
      new DeliveryStore(engine.db)
        .query({ deliveryId: rel.id })
        .rows.map((r) => [r.repo, r.reason])
        .sort(),
    ).toEqual([
      [repo.name, 'base branch not watched'],
      [`${repo.name}-rel`, 'no plan target'],
    ]);
    expect(queued().filter((r) => r.commitSha === devSha)).toEqual([]);
    await posted('gh', pr7); // the accepted one is planned again, as asked
  });

  it('GitLab: a merge request that does not render fails with file:line:col, on its status and in its note', async () => {
    const sha = await pushHead('refs/merge-requests/5/head', { [file]: 'services:\n  web:\n    image: [unclosed\n' }, 'broken yaml');
    expect((await send('gitlab', hook('gitlab', { number: 5, sha }))).status).toBe(202);
    expect(await posted('gl', sha)).toMatchObject({ outcome: 'delivered' });
    const [status] = at('POST', `/api/v4/projects/acme%2Fplatform/statuses/${sha}`);
    expect(json(status!)).toMatchObject({ state: 'failed', name: 'berth/plan', target_url: PUBLIC });
    expect(String(json(status!).description)).toMatch(new RegExp(`^Does not apply: ${stack}/compose\\.yaml:\\d+:\\d+: `));
    expect(status!.headers['private-token']).toBe(TOKENS.gl);
    const [note] = at('POST', '/api/v4/projects/acme%2Fplatform/merge_requests/5/notes');
    expect(String(json(note!).body)).toMatch(new RegExp(`does not apply: ${stack}/compose\\.yaml:\\d+:\\d+: `));
    // a GitLab merge request goes to the GitLab target only
    expect(engine.notifier.query({ target: 'gh', limit: 1000 }).rows.filter((r) => r.commitSha === sha)).toEqual([]);
  });

  it('Gitea: a pull request the policy refuses fails with file:line:col: message', async () => {
    const sha = await pushHead('refs/pull/9/head', { [file]: `${web(IMAGES.webV1)}    privileged: true\n` }, 'privileged');
    expect((await send('gitea', hook('gitea', { number: 9, sha }))).status).toBe(202);
    expect(await posted('gt', sha)).toMatchObject({ outcome: 'delivered' });
    const [status] = at('POST', `/gitea/api/v1/repos/acme/platform/statuses/${sha}`);
    expect(json(status!)).toMatchObject({ state: 'failure', context: 'berth/plan' });
    expect(String(json(status!).description)).toMatch(new RegExp(`^Does not apply: ${stack}/compose\\.yaml:6:17: .*privileged`));
    expect(status!.headers.authorization).toBe(`token ${TOKENS.gt}`);
    expect(at('POST', '/gitea/api/v1/repos/acme/platform/issues/9/comments')).toHaveLength(1);
    expect(engine.audit.query({ kind: 'plan.posted', limit: 100 }).rows.find((r) => r.commitSha === sha)!.message).toMatch(/\(failure: .*privileged/);
  });

  it('Bitbucket: the head named by its short hash is fetched by the branch that has it; an update edits the comment (PUT)', async () => {
    const sha = await repo.commit({ [file]: web(IMAGES.webV2) }, { branch: 'bb-3', message: 'bitbucket branch' });
    expect((await send('bitbucket', hook('bitbucket', { number: 3, sha }))).status).toBe(202);
    expect(await posted('bb', sha)).toMatchObject({ outcome: 'delivered' });
    const [status] = at('POST', `/bb/2.0/repositories/acme/platform/commit/${sha}/statuses/build`);
    expect(json(status!)).toEqual({ key: 'berth/plan', state: 'SUCCESSFUL', name: 'berth/plan', description: 'Would apply: 1 stack(s) change', url: PUBLIC });
    const created = at('POST', '/bb/2.0/repositories/acme/platform/pullrequests/3/comments');
    expect(created).toHaveLength(1);
    const id = nextComment - 1;
    expect(String((json(created[0]!).content as { raw: string }).raw)).toContain('replace `web#1@test` (spec changed)');

    const next = await repo.commit({ [file]: web(IMAGES.webV2).replace('replicas: 1', 'replicas: 3') }, { branch: 'bb-3', message: 'three' });
    expect((await send('bitbucket', hook('bitbucket', { number: 3, sha: next, action: 'pullrequest:updated' }))).status).toBe(202);
    expect(await posted('bb', next)).toMatchObject({ outcome: 'delivered' });
    expect(at('POST', '/bb/2.0/repositories/acme/platform/pullrequests/3/comments')).toHaveLength(1);
    const [put] = at('PUT', `/bb/2.0/repositories/acme/platform/pullrequests/3/comments/${id}`);
    expect(String((json(put!).content as { raw: string }).raw)).toContain('`web#3@test` (missing)');

    // a person deleted berth's comment: the edit is answered 404, and a new comment takes its place, edited from then on
    receiver.fail(1, 404, {}, { match: (r) => r.method === 'PUT' });
    const third = await repo.commit({ [file]: web(IMAGES.webV2).replace('replicas: 1', 'replicas: 2') }, { branch: 'bb-3', message: 'two' });
    expect((await send('bitbucket', hook('bitbucket', { number: 3, sha: third, action: 'pullrequest:updated' }))).status).toBe(202);
    expect(await posted('bb', third)).toMatchObject({ outcome: 'delivered', attempts: 1 });
    expect(at('PUT', `/bb/2.0/repositories/acme/platform/pullrequests/3/comments/${id}`).map((r) => r.status)).toEqual([201, 404]);
    expect(at('POST', '/bb/2.0/repositories/acme/platform/pullrequests/3/comments')).toHaveLength(2);
    const renewed = nextComment - 1;
    const fourth = await repo.commit({ [file]: web(IMAGES.webV1) }, { branch: 'bb-3', message: 'back to v1' });
    expect((await send('bitbucket', hook('bitbucket', { number: 3, sha: fourth, action: 'pullrequest:updated' }))).status).toBe(202);
    expect(await posted('bb', fourth)).toMatchObject({ outcome: 'delivered' });
    expect(at('PUT', `/bb/2.0/repositories/acme/platform/pullrequests/3/comments/${renewed}`)).toHaveLength(1);
    expect(at('POST', '/bb/2.0/repositories/acme/platform/pullrequests/3/comments')).toHaveLength(2);
    expect(await cacheHead()).toBe(mainSha);
  });

  it('POST /api/v1/repos/:repo/plan (viewer) and berth plan --ref, through BERTH_URL and on its own, answer the same plan', async () => {
    const ask = async (repoName: string, ref: string, token = VIEWER) => {
      const res = await fetch(`${base}/api/v1/repos/${encodeURIComponent(repoName)}/plan`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ref }),
      });
      const text = await res.text();
      answers.push(text);
      return { status: res.status, body: JSON.parse(text) as RepoPlan & { code?: string; error?: string } };
    };
    const api = await ask(repo.name, 'refs/pull/7/head');
    expect(api.status).toBe(200);
    expect(api.body).toMatchObject({ repo: repo.name, ref: 'refs/pull/7/head', commit: { sha: pr7, author: 'Ada' }, verdict: 'success', unreachable: [] });
    expect(api.body.stacks).toEqual([
      expect.objectContaining({
        stack,
        status: 'planned',
        hosts: [
          {
            host: 'test',
            create: [{ replica: 'web#2@test', reason: 'missing' }],
            replace: [{ replica: 'web#1@test', reason: 'spec changed' }],
            remove: [],
            objects: [],
          },
        ],
      }),
    ]);
    expect(api.body.stacks[0]!.rollout!.services).toEqual([
      expect.objectContaining({ service: 'web', order: 'start-first', parallelism: 1, create: ['web#2@test'], batches: [['web#1@test']] }),
    ]);
    // the comment showed the same diff
    const edited = at('PATCH', `/gh/repos/acme/platform/issues/comments/${commentId}`).at(-1)!;
    expect(String(json(edited).body)).toContain(api.body.diff.trim());
    // a SHA, and a prefix of one, name the same commit
    expect((await ask(repo.name, pr7)).body.diff).toBe(api.body.diff);
    expect((await ask(repo.name, pr7.slice(0, 10))).body.commit.sha).toBe(pr7);

    const env = { BERTH_URL: base, BERTH_TOKEN: VIEWER };
    const remote = await runCli(['plan', '--ref', 'refs/pull/7/head', '--json'], { env });
    expect(remote.stderr).toBe('');
    expect(remote.code).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(api.body);
    const local = await runCli(['--config', cfg.file, 'plan', '--repo', repo.name, '--ref', 'refs/pull/7/head', '--json'], { env: { BERTH_URL: '' } });
    expect(local.code).toBe(0);
    expect(JSON.parse(local.stdout)).toEqual(api.body);
    const text = await runCli(['plan', '--ref', 'refs/pull/7/head'], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`repo ${repo.name} @ ${pr7.slice(0, 7)} and two (refs/pull/7/head)\nwould apply: 1 stack(s) change\n# ${stack}: changes`);
    // a plan that would not apply exits 1
    const failing = await runCli(['plan', '--ref', 'refs/pull/9/head'], { env });
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(new RegExp(`does not apply: ${stack}/compose\\.yaml:6:17: `));
    expect(await cacheHead()).toBe(mainSha);
  });

  it('an unknown repo and an unknown ref have their codes, in the API and the CLI', async () => {
    const ask = async (repoName: string, ref: string) => {
      const res = await fetch(`${base}/api/v1/repos/${encodeURIComponent(repoName)}/plan`, {
        method: 'POST',
        headers: { authorization: `Bearer ${VIEWER}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ref }),
      });
      return { status: res.status, body: (await res.json()) as { code: string; error: string } };
    };
    expect(await ask('nope', 'main')).toMatchObject({ status: 404, body: { code: 'unknown-repo' } });
    expect(await ask(repo.name, 'refs/pull/999/head')).toMatchObject({ status: 404, body: { code: 'unknown-ref' } });
    expect(await ask(repo.name, 'no-such-branch')).toMatchObject({ status: 404, body: { code: 'unknown-ref' } });
    const missing = await ask(repo.name, '0123456789abcdef0123456789abcdef01234567');
    expect(missing).toMatchObject({ status: 404, body: { code: 'unknown-ref' } });
    expect(missing.body.error).toContain('no commit 0123456789abcdef0123456789abcdef01234567 on the remote');
    expect(await ask(repo.name, '')).toMatchObject({ status: 400, body: { code: 'invalid-request' } });
    const cli = await runCli(['plan', '--repo', 'nope', '--ref', 'main'], { env: { BERTH_URL: base, BERTH_TOKEN: VIEWER } });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/there is no repo named nope in the engine config/);
    const local = await runCli(['--config', cfg.file, 'plan', '--repo', repo.name, '--ref', 'refs/pull/999/head'], { env: { BERTH_URL: '' } });
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/no ref or commit refs\/pull\/999\/head on the remote/);
  });

  it('merging changes the host: the event log that stayed empty for the plans shows the sync (the check above can fail)', async () => {
    const t0 = Date.now();
    const merged = await repo.commit({ [file]: web(IMAGES.webV2) }, { message: 'merge' });
    const [pass] = await engine.syncAll({ trigger: 'poll' });
    expect(pass!.stacks.map((s) => s.status)).toEqual(['synced']);
    const events = await containerEvents(docker, stack, t0, Date.now() + 500, ['container', 'network', 'volume']);
    expect(events).toEqual(expect.arrayContaining(['create', 'start', 'destroy']));
    expect(await cacheHead()).toBe(merged);
  });

  it('no forge token reaches a log line, an audit row, an API answer or the database', async () => {
    // they were sent: to the forges, in their headers
    expect(receiver.requests.some((r) => r.headers.authorization === `Bearer ${TOKENS.gh}`)).toBe(true);
    expect(receiver.requests.some((r) => r.headers['private-token'] === TOKENS.gl)).toBe(true);
    const get = async (path: string) => (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } })).text();
    const api = await Promise.all(['/api/v1/notifications?limit=1000', '/api/v1/deliveries?limit=1000', '/api/v1/audit?limit=1000'].map(get));
    expect(api[0]).toContain('"event":"plan"');
    const db = readdirSync(cfg.dataDir)
      .filter((f) => f.startsWith('berth.db'))
      .map((f) => readFileSync(join(cfg.dataDir, f)).toString('latin1'))
      .join('\n');
    expect(db).toContain('plan_comments');
    const places = { logs: captured.text(), audit: JSON.stringify(engine.audit.query({ limit: 1000 }).rows), api: [...api, ...answers].join('\n'), db };
    expect(places.logs).toContain('pull request planned');
    for (const [where, text] of Object.entries(places))
      for (const token of Object.values(TOKENS)) expect(text.includes(token), `${token} in ${where}`).toBe(false);
  });
});
