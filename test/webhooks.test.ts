// Webhooks (docs/how-it-works.md and docs/config.md, "Webhooks"): the forges' parsers and
// signatures as tables over the samples in webhooks/, then a real berth server in this process, fed
// those samples signed as each forge signs them, against the test daemon and a real git server,
// with polling set to an hour; and a flood of forged deliveries, audited in bounded form.
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORGES, PayloadError, matchRepos, normalizeRepoUrl, registryHook, type Delivery } from '../src/server/forges.ts';
import { buildServer } from '../src/server/server.ts';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import type { Engine } from '../src/engine/engine.ts';
import { serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';

const SAMPLES = resolve(import.meta.dirname, '../webhooks');
const PROVIDERS = ['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] as const;
type Provider = (typeof PROVIDERS)[number];
/** The commit and the repo (host/path) the samples name. */
const SAMPLE_SHA = 'a3f1c9e27b5d4086e1f2c3b4a5d6e7f8091a2b3c';
const SAMPLE_REPO: Record<Provider, string> = {
  github: 'github.com/octo-org/shop',
  gitlab: 'gitlab.com/octo-org/shop',
  gitea: 'gitea.example.com/octo-org/shop',
  bitbucket: 'bitbucket.org/octo-org/shop',
  generic: 'git.example.com/octo-org/shop',
};
/** The header holding each forge's delivery id. */
const DELIVERY_HEADER: Record<Provider, string> = {
  github: 'x-github-delivery',
  gitlab: 'idempotency-key',
  gitea: 'x-gitea-delivery',
  bitbucket: 'x-request-uuid',
  generic: 'x-berth-delivery',
};

/** The headers in webhooks/<provider>/headers.txt, names in lower case, placeholders as they are. */
function sampleHeaders(provider: Provider | 'registry'): Record<string, string> {
  const lines = readFileSync(join(SAMPLES, provider, 'headers.txt'), 'utf8').split('\n');
  const pairs = lines
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
    });
  return Object.fromEntries(pairs);
}

interface Signed {
  headers: Record<string, string>;
  body: string;
}

interface SampleOptions {
  file?: string;
  /** the repo URL to put in place of the sample's */
  url?: string;
  /** the commit to put in place of the sample's */
  sha?: string;
  /** signs with this secret (GitLab: sends it as the token) */
  secret: string;
  /** the delivery id to send */
  delivery?: string;
  /** replaces the event header's value */
  event?: string;
  rewrite?: (body: string) => string;
}

const hmacHex = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');

/** A provider's sample from webhooks/, rewritten, and signed as that forge signs it. */
function sample(provider: Provider, o: SampleOptions): Signed {
  let body = readFileSync(join(SAMPLES, provider, o.file ?? 'push.json'), 'utf8');
  if (o.url) body = body.replaceAll(SAMPLE_REPO[provider], new URL(o.url).host + new URL(o.url).pathname.replace(/\.git$/, ''));
  if (o.sha) body = body.replaceAll(SAMPLE_SHA, o.sha);
  if (o.rewrite) body = o.rewrite(body);
  const headers = sampleHeaders(provider);
  for (const [name, value] of Object.entries(headers)) {
    headers[name] = value.replace('<signature>', hmacHex(o.secret, body)).replace('<secret>', o.secret);
  }
  if (o.delivery) headers[DELIVERY_HEADER[provider]] = o.delivery;
  if (o.event) {
    const name = Object.keys(headers).find((h) => ['x-github-event', 'x-gitlab-event', 'x-gitea-event', 'x-event-key'].includes(h));
    headers[name!] = o.event;
  }
  return { headers, body };
}

const parse = (provider: string, s: Signed): Delivery => FORGES.get(provider)!.parse(s.headers, Buffer.from(s.body));
const verify = (provider: string, secret: string, s: Signed) => FORGES.get(provider)!.verify(secret, s.headers, Buffer.from(s.body));
const without = (headers: Record<string, string>, name: string) => Object.fromEntries(Object.entries(headers).filter(([k]) => k !== name));

const SECRET = 'whsec-test-5b0c8e2a9f14d7c3';

describe('forge parsers (the samples in webhooks/)', () => {
  it.each([
    ['https://github.com/Octo-Org/Shop.git', 'github.com/octo-org/shop'],
    ['https://x-token:tok3n@GitHub.com/octo-org/shop/', 'github.com/octo-org/shop'],
    ['git@github.com:octo-org/shop.git', 'github.com/octo-org/shop'],
    ['ssh://git@github.com:22/octo-org/shop.git', 'github.com/octo-org/shop'],
    ['git://github.com/octo-org/shop.git', 'github.com/octo-org/shop'],
    ['https://github.com/octo-org/shop', 'github.com/octo-org/shop'],
    ['http://127.0.0.1:8080/shop.git', '127.0.0.1/shop'],
    ['https://gitlab.com/group/sub/shop.git', 'gitlab.com/group/sub/shop'],
    ['/srv/git/Shop.git/', 'file:/srv/git/Shop'],
    ['file:///srv/git/Shop', 'file:/srv/git/Shop'],
    ['not a url', undefined],
    ['', undefined],
  ])('normalizes %s', (url, expected) => {
    expect(normalizeRepoUrl(url)).toBe(expected);
  });

  it('matches every configured repo with one of the URLs, whatever its form', () => {
    const repos = [
      { name: 'a', url: 'https://github.com/octo-org/shop.git' },
      { name: 'b', url: 'git@github.com:octo-org/shop' },
      { name: 'c', url: 'https://github.com/octo-org/shop-old.git' },
      { name: 'd', url: 'https://gitlab.com/octo-org/shop.git' },
    ];
    expect(matchRepos(repos, ['https://GitHub.com/octo-org/shop']).map((r) => r.name)).toEqual(['a', 'b']);
    expect(matchRepos(repos, ['git@gitlab.com:octo-org/shop.git', 'nonsense']).map((r) => r.name)).toEqual(['d']);
    expect(matchRepos(repos, [])).toEqual([]);
  });

  const expected: Record<Provider, Partial<Delivery>> = {
    github: {
      event: 'push',
      deliveryId: '3f8b2c60-fe5a-11ef-8e1c-52a9b1c7d4e2',
      repoUrls: [
        'https://github.com/octo-org/shop.git',
        'git@github.com:octo-org/shop.git',
        'https://github.com/octo-org/shop',
        'git://github.com/octo-org/shop.git',
      ],
      pusher: 'ada',
    },
    gitlab: {
      event: 'Push Hook',
      deliveryId: '2b7c9e1f-4a6d-4f8b-8c3e-1a5d7f9b2c4e',
      repoUrls: ['https://gitlab.com/octo-org/shop.git', 'git@gitlab.com:octo-org/shop.git', 'https://gitlab.com/octo-org/shop'],
      pusher: 'ada',
    },
    gitea: {
      event: 'push',
      deliveryId: '8e4b1d2c-7f3a-4c9e-b5a1-2d6f8e0c4a7b',
      repoUrls: ['https://gitea.example.com/octo-org/shop.git', 'git@gitea.example.com:octo-org/shop.git', 'https://gitea.example.com/octo-org/shop'],
      pusher: 'ada',
    },
    bitbucket: { event: 'repo:push', deliveryId: '5c9e2f7a-1b4d-4a8e-9c3f-6d0b2e8a4f1c', repoUrls: ['https://bitbucket.org/octo-org/shop'], pusher: 'ada' },
    generic: { event: 'push', deliveryId: 'ci-run-4711', repoUrls: ['https://git.example.com/octo-org/shop.git'] },
  };

  it.each(PROVIDERS)('%s: reads the push sample', (provider) => {
    const d = parse(provider, sample(provider, { secret: SECRET }));
    expect(d).toEqual({ kind: 'push', pushes: [{ branch: 'main', after: SAMPLE_SHA }], ...expected[provider] });
    // every URL form names the same repo
    expect(new Set(d.repoUrls.map(normalizeRepoUrl))).toEqual(new Set([SAMPLE_REPO[provider]]));
  });

  it.each(PROVIDERS)('%s: the signature holds for the secret only, and for the body only', (provider) => {
    const s = sample(provider, { secret: SECRET });
    expect(verify(provider, SECRET, s)).toBe('ok');
    expect(verify(provider, `${SECRET}x`, s)).toBe('bad signature');
    expect(verify(provider, SECRET, { ...s, body: s.body.replace('"main"', '"evil"').replace('refs/heads/main', 'refs/heads/evil') })).toBe(
      provider === 'gitlab' ? 'ok' : 'bad signature',
    );
    expect(verify(provider, SECRET, sample(provider, { secret: 'another-secret' }))).toBe('bad signature');
    const name = Object.keys(s.headers).find((h) => s.headers[h]!.includes(provider === 'gitlab' ? SECRET : hmacHex(SECRET, s.body)))!;
    expect(verify(provider, SECRET, { ...s, headers: without(s.headers, name) })).toBe('no signature');
    expect(verify(provider, SECRET, { ...s, headers: { ...s.headers, [name]: s.headers[name]!.replace(/[0-9a-f]{8}$/, 'zzzz') } })).toBe('bad signature');
  });

  it('GitHub: a ping names the repo; another event is not a push', () => {
    const ping = parse('github', sample('github', { file: 'ping.json', secret: SECRET, event: 'ping' }));
    expect(ping).toMatchObject({ kind: 'ping', event: 'ping', pushes: [] });
    expect(ping.repoUrls.map(normalizeRepoUrl)).toContain('github.com/octo-org/shop');
    expect(parse('github', sample('github', { secret: SECRET, event: 'issues' }))).toMatchObject({ kind: 'other', event: 'issues' });
  });

  // (pull and merge requests are read as such: test/plans.test.ts)
  it.each([
    ['gitlab', 'Issue Hook'],
    ['gitlab', 'Tag Push Hook'],
    ['gitea', 'issues'],
    ['bitbucket', 'repo:fork'],
  ] as const)('%s: a %s event is not a push', (provider, event) => {
    expect(parse(provider, sample(provider, { secret: SECRET, event }))).toMatchObject({ kind: 'other', event, pushes: [] });
  });

  it('a tag push or a deleted branch moves no branch; Bitbucket may move several', () => {
    const tag = sample('github', { secret: SECRET, rewrite: (b) => b.replace('refs/heads/main', 'refs/tags/v1.0') });
    expect(parse('github', tag)).toMatchObject({ kind: 'push', pushes: [] });
    const deleted = sample('gitlab', {
      secret: SECRET,
      rewrite: (b) =>
        b
          .replaceAll(`"${SAMPLE_SHA}"`, '"0000000000000000000000000000000000000000"')
          .replace('"checkout_sha": "0000000000000000000000000000000000000000"', '"checkout_sha": null'),
    });
    expect(parse('gitlab', deleted)).toMatchObject({ kind: 'push', pushes: [] });
    const two = sample('bitbucket', {
      secret: SECRET,
      rewrite: (b) => {
        const p = JSON.parse(b);
        p.push.changes.push({ ...p.push.changes[0], new: { type: 'branch', name: 'dev', target: { type: 'commit', hash: 'b'.repeat(40) } } });
        p.push.changes.push({ ...p.push.changes[0], new: null });
        return JSON.stringify(p);
      },
    });
    expect(parse('bitbucket', two).pushes).toEqual([
      { branch: 'main', after: SAMPLE_SHA },
      { branch: 'dev', after: 'b'.repeat(40) },
    ]);
  });

  it('GitHub and Gitea form-encoded bodies are read from their payload field, and signed as sent', () => {
    const json = readFileSync(join(SAMPLES, 'github/push.json'), 'utf8');
    const body = new URLSearchParams({ payload: json }).toString();
    const headers = {
      ...sampleHeaders('github'),
      'content-type': 'application/x-www-form-urlencoded',
      'x-hub-signature-256': `sha256=${hmacHex(SECRET, body)}`,
    };
    expect(parse('github', { headers, body })).toMatchObject({ kind: 'push', pushes: [{ branch: 'main', after: SAMPLE_SHA }] });
    expect(verify('github', SECRET, { headers, body })).toBe('ok');
  });

  it("Forgejo's own headers and the X-Hub-Signature-256 fallback are read too", () => {
    const s = sample('gitea', { secret: SECRET });
    const forgejo = {
      'content-type': 'application/json',
      'x-forgejo-event': 'push',
      'x-forgejo-delivery': 'f-1',
      'x-forgejo-signature': hmacHex(SECRET, s.body),
    };
    expect(parse('gitea', { ...s, headers: forgejo })).toMatchObject({ kind: 'push', deliveryId: 'f-1' });
    expect(verify('gitea', SECRET, { ...s, headers: forgejo })).toBe('ok');
    const hub = { ...without(s.headers, 'x-gitea-signature'), 'x-hub-signature-256': `sha256=${hmacHex(SECRET, s.body)}` };
    expect(verify('gitea', SECRET, { ...s, headers: hub })).toBe('ok');
  });

  it("generic: without X-Berth-Delivery the body's hash is the delivery id", () => {
    const s = sample('generic', { secret: SECRET });
    const a = parse('generic', { ...s, headers: without(s.headers, 'x-berth-delivery') });
    const b = parse('generic', { ...s, headers: without(s.headers, 'x-berth-delivery') });
    const c = parse('generic', { body: s.body.replace('main', 'prod'), headers: without(s.headers, 'x-berth-delivery') });
    expect(a.deliveryId).toMatch(/^sha256:[0-9a-f]{32}$/);
    expect(b.deliveryId).toBe(a.deliveryId);
    expect(c.deliveryId).not.toBe(a.deliveryId);
    expect(c.pushes).toEqual([{ branch: 'prod', after: SAMPLE_SHA }]);
  });

  it.each([
    ['github', { 'x-github-event': 'push' }, 'not json', /not JSON/],
    ['github', { 'x-github-event': 'push' }, '[1, 2]', /not an object/],
    ['github', { 'x-github-event': 'push' }, '', /empty/],
    ['github', {}, '{}', /no X-GitHub-Event header/],
    ['github', { 'x-github-event': 'push' }, '{"after": "abc", "repository": {"clone_url": "https://x/y"}}', /no ref/],
    ['github', { 'x-github-event': 'push' }, '{"ref": "refs/heads/main", "after": "abc"}', /names no repository URL/],
    ['gitlab', { 'x-gitlab-event': 'Push Hook' }, '{"object_kind": "push"}', /no ref/],
    ['bitbucket', { 'x-event-key': 'repo:push' }, '{"push": {}}', /push.changes/],
    ['generic', {}, '{"branch": "main"}', /no repo/],
    ['generic', {}, '{"repo": "https://x/y", "branch": "main", "after": "not a sha"}', /commit SHA/],
  ] as const)('%s: a bad payload is a PayloadError (%s, %s)', (provider, headers, body, message) => {
    expect(() => FORGES.get(provider)!.parse({ 'content-type': 'application/json', ...headers }, Buffer.from(body))).toThrow(PayloadError);
    expect(() => FORGES.get(provider)!.parse({ 'content-type': 'application/json', ...headers }, Buffer.from(body))).toThrow(message);
  });
});

describe('the registry webhook (the sample in webhooks/registry)', () => {
  const body = readFileSync(join(SAMPLES, 'registry', 'push.json'));
  const headers = sampleHeaders('registry');

  it("reads the registry's notification: the tags pushed, not the blobs, with the host the pusher named", () => {
    expect(registryHook.parse(headers, body)).toEqual({
      event: 'push',
      deliveryId: expect.stringMatching(/^sha256:[0-9a-f]{32}$/),
      pushes: [{ image: 'registry.example.com:5000/acme/web:1.4', digest: 'sha256:7b8d5e4fa1c3b2d9e0f6a7c8b9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192' }],
      pusher: 'ci-bot',
    });
    const pulls = Buffer.from(body.toString().replaceAll('"action": "push"', '"action": "pull"'));
    expect(registryHook.parse(headers, pulls)).toMatchObject({ event: 'other', pushes: [] });
    const json = { 'content-type': 'application/json' };
    expect(registryHook.parse(json, Buffer.from('{"images":["a/b:1","c"]}')).pushes).toEqual([{ image: 'a/b:1' }, { image: 'c' }]);
    expect(registryHook.parse(json, Buffer.from('{"image":"ghcr.io/acme/web:2"}')).pushes).toEqual([{ image: 'ghcr.io/acme/web:2' }]);
  });

  it.each([['{}'], ['{"images":[]}'], ['{"image":"has space"}'], ['{"image":3}'], ['[1]'], ['not json']])('refuses %s, saying what it takes', (text) => {
    expect(() => registryHook.parse({ 'content-type': 'application/json' }, Buffer.from(text))).toThrow(PayloadError);
  });

  it('is authenticated by the secret as a bearer token, or by an X-Berth-Signature of the body', () => {
    const withSecret = (secret: string) => ({ ...headers, authorization: headers.authorization!.replace('<secret>', secret) });
    expect(registryHook.verify(SECRET, withSecret(SECRET), body)).toBe('ok');
    expect(registryHook.verify(SECRET, withSecret('other'), body)).toBe('bad signature');
    const signed = { 'x-berth-signature': `sha256=${hmacHex(SECRET, body.toString())}` };
    expect(registryHook.verify(SECRET, signed, body)).toBe('ok');
    expect(registryHook.verify('other', signed, body)).toBe('bad signature');
    expect(registryHook.verify(SECRET, {}, body)).toBe('no signature');
  });
});

describe('POST /webhooks/:provider on a running berth', () => {
  let git: GitServer;
  let repo: RemoteRepo;
  let other: RemoteRepo;
  let stack: string;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let app: FastifyInstance;
  let base: string;
  let deliveries: DeliveryStore;
  const docker = testDocker();
  let rev = 0;
  const compose = () => ({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    environment:\n      REV: "${++rev}"\n` });

  const web = async () => (await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } }))[0];
  const converged = (sha: string) =>
    waitFor(async () => (await web())?.Labels['berth.commit'] === sha, { what: `web to run commit ${sha.slice(0, 7)}`, timeoutMs: 60_000 });
  const audit = (kind: string) => engine.audit.query({ kind, limit: 1000 }).rows.filter((r) => r.repo === repo.name);
  const syncsStarted = () => engine.audit.query({ kind: 'sync.started', stack, limit: 1000 }).rows;
  const rowsOf = (deliveryId: string) => deliveries.query({ deliveryId }).rows.reverse();

  async function post(provider: string, s: Signed): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${base}/webhooks/${provider}`, { method: 'POST', headers: s.headers, body: s.body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const signed = (provider: Provider, o: Omit<SampleOptions, 'secret'> & { secret?: string }) =>
    sample(provider, { url: repo.url, secret: SECRET, delivery: uniqueName(`${provider}-delivery`), ...o });

  beforeAll(async () => {
    git = await startGitServer();
    stack = uniqueName('hook').replaceAll('-', '');
    repo = await git.createRepo(uniqueName('hookrepo'));
    other = await git.createRepo(uniqueName('nosecret'));
    await other.commit({ 'README.md': 'no stacks here\n' });
    await repo.commit(compose(), { message: 'rev 1' });
    cfg = writeConfig([], {
      repos: [
        { name: repo.name, url: repo.url, branch: 'main', poll: '1h', webhookSecretFile: 'hook.secret' },
        { name: other.name, url: other.url, branch: 'main', poll: '1h' },
      ],
    });
    writeFileSync(join(cfg.dir, 'hook.secret'), `${SECRET}\n`);
    engine = testEngine(cfg.file);
    deliveries = new DeliveryStore(engine.db);
    await engine.syncAll({ trigger: 'startup' });
    ({ app, base } = await serveEngine(engine));
  });

  afterAll(async () => {
    await app?.close();
    await engine?.drain();
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
    await git?.close();
  });

  let first: Signed;

  it('a push and a signed GitHub delivery converge at once (poll: 1h), answered 202 before the sync ends', async () => {
    const sha = await repo.commit(compose(), { message: 'rev 2' });
    first = signed('github', { sha });
    const res = await post('github', first);
    // answered before the sync: its rollout waits for the health check (1 s), the answer does not
    const succeededAtAnswer = audit('sync.succeeded').filter((r) => r.commitSha === sha);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: true, repos: [repo.name] });
    expect(succeededAtAnswer).toEqual([]);

    await converged(sha);
    const deliveryId = first.headers['x-github-delivery']!;
    expect(rowsOf(deliveryId)).toEqual([
      expect.objectContaining({
        id: res.body.delivery,
        provider: 'github',
        event: 'push',
        repo: repo.name,
        branch: 'main',
        commitSha: sha,
        outcome: 'accepted',
        status: 202,
      }),
    ]);
    expect(rowsOf(deliveryId)[0]!.reason).toBeUndefined();
    const received = audit('webhook.received').at(0)!;
    expect(received).toMatchObject({ trigger: 'webhook', actor: 'github:ada' });
    expect(received.message).toContain(deliveryId);
    expect(received.message).toContain(sha);
    await engine.drain();
    expect(
      syncsStarted()
        .filter((r) => r.commitSha === sha)
        .map((r) => [r.trigger, r.actor]),
    ).toEqual([['webhook', 'github:ada']]);
  });

  it('a bad or missing signature is refused with 401, audited without the secret, and changes nothing', async () => {
    const before = syncsStarted().length;
    const applied = (await web())!.Labels['berth.commit'];
    const sha = await repo.commit(compose(), { message: 'rev 3 (not synced yet)' });
    const forged = signed('github', { sha, secret: 'guessed-secret' });
    const bad = await post('github', forged);
    expect(bad.status).toBe(401);
    expect(bad.body.error).toMatch(/X-Hub-Signature-256 does not match the webhook secret of repo \S+ \(its webhookSecretFile\)/);
    const unsigned = signed('github', { sha });
    const missing = await post('github', { ...unsigned, headers: without(unsigned.headers, 'x-hub-signature-256') });
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatch(/no X-Hub-Signature-256 header/);

    await engine.drain(); // a pass either request had queued would end here
    expect(syncsStarted()).toHaveLength(before);
    expect((await web())!.Labels['berth.commit']).toBe(applied);
    expect(engine.passQueued(repo.name)).toBe(false);

    // the first rejection from this address is audited; the one right after it only counted, for
    // the summary row when the minute ends (src/server/rejections.ts; the flood below)
    const rejected = audit('webhook.rejected');
    expect(rejected.map((r) => [r.outcome, r.trigger])).toEqual([['error', 'webhook']]);
    expect(rejected[0]!.message).toContain(forged.headers['x-github-delivery']);
    expect(rejected[0]!.message).toMatch(/does not match/);
    // neither the secret, nor a signature, nor the secret's file (a path) in a row or an answer
    const everything = JSON.stringify([rejected, deliveries.query({ repo: repo.name }).rows, bad.body, missing.body]);
    for (const secretish of [SECRET, 'guessed-secret', hmacHex('guessed-secret', forged.body), hmacHex(SECRET, unsigned.body), cfg.dir, 'hook.secret']) {
      expect(everything).not.toContain(secretish);
    }
    expect(rowsOf(forged.headers['x-github-delivery']!)).toEqual([
      expect.objectContaining({ outcome: 'rejected', reason: 'bad signature', status: 401, repo: repo.name }),
    ]);
    expect(rowsOf(unsigned.headers['x-github-delivery']!)).toEqual([
      expect.objectContaining({ outcome: 'rejected', reason: 'no signature', status: 401, detail: expect.stringMatching(/no X-Hub-Signature-256 header/) }),
    ]);
  });

  it('a redelivery does nothing new', async () => {
    const before = syncsStarted().length;
    const applied = (await web())!.Labels['berth.commit'];
    const again = await post('github', first); // same delivery id, same body; rev 3 waits in the repo
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ accepted: false, reason: 'duplicate' });
    await engine.drain();
    expect(syncsStarted()).toHaveLength(before);
    expect((await web())!.Labels['berth.commit']).toBe(applied);
    expect(rowsOf(first.headers['x-github-delivery']!).map((r) => [r.outcome, r.reason ?? null, r.status])).toEqual([
      ['accepted', null, 202],
      ['ignored', 'duplicate', 200],
    ]);
  });

  it('a burst of ten pushes and their deliveries ends in one sync of the newest commit', async () => {
    const shas: string[] = [];
    for (let i = 0; i < 10; i++) shas.push(await repo.commit(compose(), { message: `merge branch ${i}` }));
    const newest = shas.at(-1)!;
    const mark = engine.audit.query({ limit: 1 }).rows[0]!.id;
    const sent = shas.map((sha) => signed('github', { sha }));
    const answers = await Promise.all(sent.map((s) => post('github', s)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));

    await converged(newest);
    await engine.drain();
    const started = syncsStarted().filter((r) => r.id > mark);
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThanOrEqual(2);
    expect(started.map((r) => r.commitSha)).toEqual(started.map(() => newest));
    // the deliveries say why: each accepted, all but the one or two that queued a pass coalesced into it
    const rows = sent.flatMap((s) => rowsOf(s.headers['x-github-delivery']!));
    expect(rows).toHaveLength(10);
    expect(rows.every((r) => r.outcome === 'accepted' && r.status === 202)).toBe(true);
    expect(rows.filter((r) => r.reason !== 'coalesced').length).toBeLessThanOrEqual(2);
    expect(rows.filter((r) => r.reason === 'coalesced').every((r) => /joins the pass/.test(r.detail ?? ''))).toBe(true);
    expect(audit('webhook.received').filter((r) => r.id > mark)).toHaveLength(10);
  });

  it('a push to a branch berth does not watch is ignored, with that reason', async () => {
    const before = syncsStarted().length;
    const sha = await repo.commit(compose(), { message: 'on dev', branch: 'dev' });
    const s = signed('github', { sha, rewrite: (b) => b.replace('"ref": "refs/heads/main"', '"ref": "refs/heads/dev"') });
    const res = await post('github', s);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: false, reason: 'branch not watched' });
    expect(res.body.message).toMatch(/the push moved dev; repo .* watches main/);
    await engine.drain();
    expect(syncsStarted()).toHaveLength(before);
    expect(rowsOf(s.headers['x-github-delivery']!)).toEqual([
      expect.objectContaining({ outcome: 'ignored', reason: 'branch not watched', branch: 'dev', commitSha: sha, repo: repo.name }),
    ]);
  });

  it.each(['gitlab', 'gitea', 'bitbucket', 'generic'] as const)('%s: the sample, signed its way, is accepted for the repo', async (provider) => {
    const head = await repo.head();
    const s = signed(provider, { sha: head });
    const res = await post(provider, s);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: true, repos: [repo.name] });
    expect(rowsOf(s.headers[DELIVERY_HEADER[provider]]!)).toEqual([
      expect.objectContaining({ provider, outcome: 'accepted', repo: repo.name, branch: 'main', commitSha: head, status: 202 }),
    ]);
    const wrong = signed(provider, { sha: head, secret: 'not-it' });
    expect((await post(provider, wrong)).status).toBe(401);
    await engine.drain();
  });

  it('answers pings; refuses a repo without a secret, unknown providers, bad payloads and big bodies; ignores the rest', async () => {
    const ping = await post('github', signed('github', { file: 'ping.json', event: 'ping' }));
    expect(ping).toMatchObject({ status: 200, body: { pong: true, reason: 'ping' } });
    expect((await post('github', signed('github', { file: 'ping.json', event: 'ping', secret: 'nope' }))).status).toBe(401);

    const noSecret = signed('github', { url: other.url });
    const refused = await post('github', noSecret);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatch(new RegExp(`repo ${other.name} has no webhookSecretFile, so it takes no webhooks`));
    expect(rowsOf(noSecret.headers['x-github-delivery']!)).toEqual([
      expect.objectContaining({ outcome: 'rejected', reason: 'no webhook secret', repo: other.name }),
    ]);

    const unknown = await fetch(`${base}/webhooks/svn`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/unknown webhook provider 'svn': use one of github, gitlab, gitea, bitbucket, generic/);

    const notJson = await post('github', { ...signed('github', {}), body: 'this is not json' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/the body is not JSON .*: set the webhook's content type to application\/json/);

    const big = signed('github', { rewrite: (b) => b.replace('"forced": false', `"forced": false, "padding": "${'x'.repeat(1024 * 1024)}"`) });
    const tooBig = await post('github', big);
    expect(tooBig.status).toBe(413);
    expect(rowsOf(big.headers['x-github-delivery']!)).toEqual([expect.objectContaining({ outcome: 'rejected', reason: 'body too large', status: 413 })]);

    const issues = await post('github', signed('github', { event: 'issues' }));
    expect(issues).toMatchObject({ status: 200, body: { accepted: false, reason: 'not a push' } });
    const elsewhere = await post('github', sample('github', { secret: SECRET }));
    expect(elsewhere).toMatchObject({ status: 200, body: { accepted: false, reason: 'no repo matches' } });
    expect(elsewhere.body.message).toMatch(/no configured repo has the URL https:\/\/github.com\/octo-org\/shop.git/);
  });

  it('a webhook secret file that cannot be read stops the server from starting, naming the file only', async () => {
    const broken = writeConfig([], { repos: [{ name: 'broken', url: repo.url, branch: 'main', webhookSecretFile: 'missing.secret' }] });
    const e = testEngine(broken.file);
    try {
      const server = buildServer({ ready: () => true, engine: e }, pino({ level: 'silent' }));
      await expect(server.ready()).rejects.toThrow(/cannot read the webhook secret of repo broken from .*missing\.secret: ENOENT/);
    } finally {
      e.close();
      broken.cleanup();
    }
  });
});

describe('a flood of forged deliveries', () => {
  it('each is kept, counted and answered 401; audited once a minute per address and provider, the rest summed up; no secret file named', async () => {
    const url = 'https://github.com/octo-org/flood.git';
    const cfg = writeConfig([], {
      repos: [{ name: 'flood', url, branch: 'main', poll: '1h', webhookSecretFile: 'hook.secret' }],
      registryWebhookSecretFile: 'registry.secret',
      limits: { webhooks: 1000 },
    });
    writeFileSync(join(cfg.dir, 'hook.secret'), `${SECRET}\n`);
    writeFileSync(join(cfg.dir, 'registry.secret'), `${SECRET}\n`);
    const engine = testEngine(cfg.file);
    const { app, base } = await serveEngine(engine);
    const rejected = () => engine.audit.query({ kind: 'webhook.rejected', limit: 1000 }).rows; // newest first
    let open = true;
    try {
      // the first one's delivery id is longer than a message quotes
      const long = `flood-${'x'.repeat(300)}`;
      const answers: unknown[] = [];
      for (let i = 0; i < 25; i++) {
        const s = sample('github', { url, secret: `guess-${i}`, delivery: i === 0 ? long : `flood-${i}` });
        const res = await fetch(`${base}/webhooks/github`, { method: 'POST', headers: s.headers, body: s.body });
        expect(res.status).toBe(401);
        answers.push(await res.json());
      }
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${base}/webhooks/registry`, {
          method: 'POST',
          headers: { authorization: `Bearer guess-${i}`, 'content-type': 'application/json' },
          body: '{"image":"ghcr.io/acme/web:2"}',
        });
        expect(res.status).toBe(401);
        answers.push(await res.json());
      }
      const store = new DeliveryStore(engine.db);
      const kept = [...store.query({ provider: 'github', limit: 1000 }).rows, ...store.query({ provider: 'registry', limit: 1000 }).rows];
      expect(kept.map((r) => [r.provider, r.outcome, r.status])).toEqual([
        ...Array(25).fill(['github', 'rejected', 401]),
        ...Array(3).fill(['registry', 'rejected', 401]),
      ]);
      const metrics = (await (await fetch(`${base}/metrics`)).text()).split('\n');
      const counted = (provider: string) =>
        metrics.find((l) => l.startsWith('berth_webhook_deliveries_total{') && l.includes(`provider="${provider}"`) && l.includes('outcome="rejected"'));
      expect(counted('github')).toMatch(/ 25$/);
      expect(counted('registry')).toMatch(/ 3$/);

      // one row per provider from this address, each the first of its kind
      const first = rejected();
      expect(first.map((r) => [r.actor, r.repo, r.outcome])).toEqual([
        ['registry', undefined, 'error'],
        ['github', 'flood', 'error'],
      ]);
      expect(first[1]!.message).toContain(`github delivery flood-${'x'.repeat(58)}… (push) rejected: the X-Hub-Signature-256 does not match`);
      expect(first[1]!.message).not.toContain('x'.repeat(59));
      expect(first[0]!.message).toMatch(/^registry delivery \S+ rejected: the signature \(or bearer token\) does not match the registry webhook secret/);

      // the server stops: what the minute had left untold is summed up, one row per provider
      await app.close();
      open = false;
      const summaries = rejected().slice(0, -2);
      expect(summaries).toHaveLength(2);
      expect(summaries.find((r) => r.actor === 'github')).toMatchObject({
        repo: 'flood',
        outcome: 'error',
        trigger: 'webhook',
        message: expect.stringMatching(
          /^24 more github deliveries from 127\.0\.0\.1 rejected since \S+Z, not audited one by one \(GET \/api\/v1\/deliveries\?outcome=rejected lists each\); the last: the X-Hub-Signature-256 does not match the webhook secret of repo flood/,
        ),
      });
      expect(summaries.find((r) => r.actor === 'registry')!.message).toMatch(/^2 more registry deliveries from 127\.0\.0\.1 rejected since/);

      // no secret, and no path: the answers, the deliveries and the rows name the setting
      const everything = JSON.stringify([answers, kept, rejected()]);
      expect(everything).toContain('(its webhookSecretFile)');
      expect(everything).toContain('(its registryWebhookSecretFile)');
      for (const secretish of [SECRET, cfg.dir, 'hook.secret', 'registry.secret']) expect(everything).not.toContain(secretish);
    } finally {
      if (open) await app.close();
      engine.close();
      cfg.cleanup();
    }
  });
});
