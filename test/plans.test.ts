// Plans on pull requests as plain data (docs/notifications.md, "Plans on pull requests"): each
// forge's pull request sample in webhooks/ parsed (and the actions berth leaves alone), the rollout
// order of a plan, a pass turned into a plan's verdict, its Markdown and text, the status and the
// comment requests of each forge, and a created comment's id read back.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planDiff, planStack, type StackPlan } from '../src/diff/plan.ts';
import { planMarkdown, planText, PLAN_MARKER } from '../src/diff/report.ts';
import { chunk, rolloutOf } from '../src/diff/rollout.ts';
import type { RepoPass } from '../src/engine/outcome.ts';
import { planOf, type RepoPlan } from '../src/engine/plans.ts';
import type { RenderResult } from '../src/model.ts';
import { FORGE_CLIENTS } from '../src/notify/forges.ts';
import { commentIdOf, planComment, planStatus, PLAN_CONTEXT, type PlanDelivery } from '../src/notify/plan.ts';
import { FORGES, normalizeRepoUrl, PayloadError, type Delivery } from '../src/server/forges.ts';
import { placeStack } from '../src/schedule/place.ts';
import { GitSource, UnknownRefError } from '../src/source/git.ts';
import { git } from './harness/git-server.ts';
import { liveOf } from './harness/live.ts';
import { render, stackOf } from './render/helpers.ts';

const SAMPLES = resolve(import.meta.dirname, '../webhooks');
const SHA = 'a3f1c9e27b5d4086e1f2c3b4a5d6e7f8091a2b3c';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a payload's JSON, rewritten by the tests

/** A forge's pull request sample, with the event header that forge sends, and `rewrite` applied to its JSON. */
function pullSample(provider: string, rewrite: (p: Json) => void = () => {}): Delivery {
  const file = { github: 'pull_request.json', gitlab: 'merge_request.json', gitea: 'pull_request.json', bitbucket: 'pullrequest.json' }[provider]!;
  const payload = JSON.parse(readFileSync(join(SAMPLES, provider, file), 'utf8')) as Json;
  rewrite(payload);
  const headers: Record<string, Record<string, string>> = {
    github: { 'x-github-event': 'pull_request', 'x-github-delivery': 'd-1' },
    gitlab: { 'x-gitlab-event': 'Merge Request Hook', 'idempotency-key': 'd-1' },
    gitea: { 'x-gitea-event': 'pull_request', 'x-gitea-delivery': 'd-1' },
    bitbucket: { 'x-event-key': 'pullrequest:created', 'x-request-uuid': 'd-1' },
  };
  return FORGES.get(provider)!.parse({ 'content-type': 'application/json', ...headers[provider] }, Buffer.from(JSON.stringify(payload)));
}

describe('pull request webhooks (the samples in webhooks/)', () => {
  it.each([
    ['github', 'opened', 'refs/pull/7/head', SHA, 'github.com/octo-org/shop'],
    ['gitlab', 'open', 'refs/merge-requests/7/head', SHA, 'gitlab.com/octo-org/shop'],
    ['gitea', 'opened', 'refs/pull/7/head', SHA, 'gitea.example.com/octo-org/shop'],
    // Bitbucket names the head by a 12-character hash and has no ref of it: the hash is what is fetched
    ['bitbucket', 'pullrequest:created', SHA.slice(0, 12), SHA.slice(0, 12), 'bitbucket.org/octo-org/shop'],
  ])('%s: number, action, base branch, head commit and the ref berth fetches', (provider, action, headRef, headSha, repo) => {
    const d = pullSample(provider);
    expect(d).toMatchObject({ kind: 'pull', deliveryId: 'd-1', pusher: 'ada', pushes: [] });
    expect(d.pull).toEqual({ number: 7, action, planned: true, baseBranch: 'main', headSha, headRef });
    expect(new Set(d.repoUrls.map(normalizeRepoUrl))).toEqual(new Set([repo]));
  });

  it.each([
    ['github', 'synchronize', true],
    ['github', 'reopened', true],
    ['github', 'closed', false],
    ['github', 'edited', false],
    ['github', 'labeled', false],
    ['gitea', 'synchronized', true],
    ['gitea', 'closed', false],
    ['gitlab', 'update', true],
    ['gitlab', 'reopen', true],
    ['gitlab', 'merge', false],
    ['gitlab', 'close', false],
  ])('%s: the action %s is planned: %s', (provider, action, planned) => {
    const d = pullSample(provider, (p) => {
      if (provider === 'gitlab') p.object_attributes.action = action;
      else p.action = action;
    });
    expect(d.pull).toMatchObject({ action, planned });
  });

  it('Bitbucket: created and updated are planned, the rest (merged, declined, a comment) is not', () => {
    const parse = (event: string) =>
      FORGES.get('bitbucket')!.parse({ 'content-type': 'application/json', 'x-event-key': event }, readFileSync(join(SAMPLES, 'bitbucket', 'pullrequest.json')))
        .pull;
    expect(parse('pullrequest:updated')).toMatchObject({ planned: true });
    for (const event of ['pullrequest:fulfilled', 'pullrequest:rejected', 'pullrequest:comment_created'])
      expect(parse(event)).toMatchObject({ planned: false });
  });

  it('the base branch is read as the forge names it, refs/heads/ dropped', () => {
    expect(pullSample('github', (p) => (p.pull_request.base.ref = 'release/2')).pull!.baseBranch).toBe('release/2');
    expect(pullSample('gitlab', (p) => (p.object_attributes.target_branch = 'prod')).pull!.baseBranch).toBe('prod');
  });

  it.each([
    ['github', (p: Json): void => void delete p.pull_request.number, /pull_request.number \(a whole number\)/],
    ['github', (p: Json): void => void (p.pull_request.head.sha = 'not-a-sha'), /head commit is not a commit SHA/],
    ['gitlab', (p: Json): void => void delete p.object_attributes.last_commit, /object_attributes.last_commit.id/],
    ['gitlab', (p: Json): void => void (p.object_kind = 'push'), /object_kind is not merge_request/],
    ['gitea', (p: Json): void => void delete p.pull_request.base, /pull_request.base.ref/],
    ['bitbucket', (p: Json): void => void delete p.pullrequest.destination, /pullrequest.destination.branch.name/],
  ] as const)('%s: a pull request payload without what berth needs is a PayloadError (%s)', (provider, rewrite, message) => {
    expect(() => pullSample(provider, rewrite)).toThrow(PayloadError);
    expect(() => pullSample(provider, rewrite)).toThrow(message);
  });
});

/** The plan taking stack "app" from `before` (running on h1, h2) to `after`, as the engine makes it. */
function planned(after: string, before?: string, hosts = ['h1', 'h2']) {
  const infos = hosts.map((name) => ({ name, labels: {}, state: 'up' as const }));
  const live = before ? placeStack('r', stackOf({ 'app/compose.yaml': before }, 'app'), infos, 'c1', []).map((d, i) => liveOf(d, { id: `id${i}` })) : [];
  const stack = stackOf({ 'app/compose.yaml': after }, 'app');
  const desired = placeStack('r', stack, infos, 'c2', live);
  const plan = planStack({
    repo: 'r',
    stack,
    stackName: 'app',
    commit: 'c2'.padEnd(40, '0'),
    desired,
    prune: true,
    live: hosts.map((host) => ({
      host,
      containers: live.filter((c) => c.host === host),
      networks: before ? stack.networks.map((n) => ({ name: n.name, repo: 'r', stack: 'app' })) : [],
      volumes: [],
    })),
  });
  return { plan, stack };
}

const svc = (name: string, image: string, deploy: string, extra = '') =>
  `  ${name}:\n    image: ${image}\n${extra}    deploy:\n${deploy
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}\n`;

describe('the rollout order of a plan (update_config)', () => {
  const before = `services:\n${svc('db', 'db:1', 'replicas: 1')}${svc('web', 'web:1', 'replicas: 4')}${svc('old', 'old:1', 'replicas: 1')}`;
  const after = `services:\n${svc('db', 'db:2', 'replicas: 1')}${svc(
    'web',
    'web:2',
    'replicas: 5\nupdate_config: { order: start-first, parallelism: 2, failure_action: rollback }',
    '    depends_on: [db]\n',
  )}`;

  it('services in start order, each after those it depends on: its new replicas, its replacements in batches of parallelism, the order and the failure action', () => {
    const { plan, stack } = planned(after, before);
    const r = rolloutOf(plan, stack);
    expect(r.first).toEqual([expect.stringMatching(/^old#1@h[12]$/)]); // gone from Git: removed before any service starts
    expect(r.preSync).toEqual([]);
    expect(r.services.map((s) => [s.service, s.kind, s.after, s.order, s.parallelism, s.failureAction])).toEqual([
      ['db', 'service', [], 'stop-first', 1, 'pause'],
      ['web', 'service', ['db'], 'start-first', 2, 'rollback'],
    ]);
    const web = r.services[1]!;
    expect(web.create).toHaveLength(1);
    expect(web.batches.map((b) => b.length)).toEqual([2, 2]);
    expect(web.batches.flat().every((x) => /^web#[1-4]@h[12]$/.test(x))).toBe(true);
    expect(r.services[0]!.batches).toEqual([[expect.stringMatching(/^db#1@h[12]$/)]]);
  });

  it('a service without changes is not in it; parallelism 0 is one batch', () => {
    const same = `services:\n${svc('db', 'db:1', 'replicas: 1')}${svc('web', 'web:2', 'replicas: 3\nupdate_config: { parallelism: 0 }')}`;
    const { plan, stack } = planned(same, `services:\n${svc('db', 'db:1', 'replicas: 1')}${svc('web', 'web:1', 'replicas: 3')}`);
    expect(rolloutOf(plan, stack).services.map((s) => [s.service, s.batches.map((b) => b.length)])).toEqual([['web', [3]]]);
  });

  it('chunk: batches of n, 0 for all at once', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([1, 2, 3], 0)).toEqual([[1, 2, 3]]);
    expect(chunk([], 2)).toEqual([]);
  });
});

const COMMIT = { sha: SHA, author: 'Ada', email: 'ada@example.com', message: 'shop: web to v3\n\nbody', time: 0 };

/** A dry-run pass over stack "app" with `plan` as its outcome. */
function passOf(plan: StackPlan, status: 'planned' | 'unchanged' = 'planned'): RepoPass {
  return { repo: 'r', commit: COMMIT, stacks: [{ stack: 'app', status, plan, diff: planDiff(plan) }], unreachable: [] };
}

describe('a plan from a dry-run pass', () => {
  const after = `services:\n${svc('web', 'web:2', 'replicas: 2\nupdate_config: { order: start-first }')}`;
  const before = `services:\n${svc('web', 'web:1', 'replicas: 2')}`;

  it('would apply: per stack what changes on which host, the rollout, the diff', () => {
    const { plan } = planned(after, before);
    const rendered = render({ 'app/compose.yaml': after });
    const p = planOf({ repo: 'r', ref: 'refs/pull/7/head', pass: passOf(plan), rendered });
    expect(p).toMatchObject({ repo: 'r', ref: 'refs/pull/7/head', commit: { sha: SHA, author: 'Ada' }, verdict: 'success', unreachable: [] });
    expect(p.error).toBeUndefined();
    expect(p.stacks).toHaveLength(1);
    expect(p.stacks[0]!.hosts.map((h) => [h.host, h.create, h.replace.map((x) => x.reason), h.remove])).toEqual([
      ['h1', [], ['spec changed'], []],
      ['h2', [], ['spec changed'], []],
    ]);
    expect(p.stacks[0]!.rollout!.services).toEqual([
      expect.objectContaining({ service: 'web', order: 'start-first', batches: [[expect.any(String)], [expect.any(String)]] }),
    ]);
    expect(p.diff).toContain('-image: web:1');
    expect(p.diff).toContain('+image: web:2');
    expect(p.diff).toBe(p.stacks[0]!.diff);
  });

  it('does not render, or the policy refuses it: failure with the first file:line:col: message', () => {
    const files = { 'app/compose.yaml': 'services:\n  web:\n    image: web:1\n    privileged: true\n', 'api/compose.yaml': 'services: [' };
    const rendered: RenderResult = render(files);
    const invalid = rendered.stacks.filter((s) => !s.ok);
    expect(invalid.length).toBe(2);
    const pass: RepoPass = {
      repo: 'r',
      commit: COMMIT,
      stacks: rendered.stacks.map((s) => ({
        stack: s.def.name,
        status: 'invalid',
        errors: s.ok ? [] : s.errors.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}`),
      })),
    };
    const p = planOf({ repo: 'r', ref: 'main', pass, rendered });
    expect(p.verdict).toBe('failure');
    expect(p.error).toMatch(/^(api|app)\/compose\.yaml:\d+:\d+: /);
    expect(p.error).toBe(p.stacks[0]!.errors![0]);
    expect(p.stacks.every((s) => s.status === 'invalid' && s.hosts.length === 0 && !s.rollout)).toBe(true);
    // a repo-wide error (berth.yaml) comes first
    const broken = render({ 'berth.yaml': 'stacks: [' });
    expect(planOf({ repo: 'r', ref: 'main', pass: { repo: 'r', commit: COMMIT, error: 'x', stacks: [] }, rendered: broken }).error).toMatch(
      /^berth\.yaml:\d+:\d+: /,
    );
  });

  it('a stack that cannot be placed is a failure too; one in sync is unchanged', () => {
    const { plan } = planned(before, before);
    const rendered = render({ 'app/compose.yaml': before });
    const pass: RepoPass = { repo: 'r', commit: COMMIT, stacks: [{ stack: 'app', status: 'failed', errors: ['no host fits web#2: ...'] }] };
    expect(planOf({ repo: 'r', ref: 'main', pass, rendered })).toMatchObject({ verdict: 'failure', error: 'no host fits web#2: ...' });
    const same = planOf({ repo: 'r', ref: 'main', pass: passOf(plan, 'unchanged'), rendered });
    expect(same).toMatchObject({ verdict: 'success', diff: '', stacks: [{ stack: 'app', status: 'unchanged', hosts: [] }] });
  });
});

/** A plan with a diff of `lines` changed lines. */
function bigPlan(lines: number): RepoPlan {
  const diff = Array.from({ length: lines }, (_, i) => `+line ${i} ${'x'.repeat(40)}`).join('\n');
  return {
    repo: 'shop',
    ref: 'refs/pull/7/head',
    commit: { sha: SHA, author: 'Ada', message: 'shop: web to v3' },
    verdict: 'success',
    stacks: [
      {
        stack: 'web',
        status: 'planned',
        hosts: [{ host: 'h1', create: [{ replica: 'web#2@h1', reason: 'missing' }], replace: [], remove: [], objects: ['create network web_default'] }],
        rollout: {
          first: [],
          preSync: [],
          postSync: [],
          services: [
            {
              service: 'web',
              kind: 'service',
              after: [],
              order: 'start-first',
              parallelism: 1,
              failureAction: 'pause',
              create: ['web#2@h1'],
              batches: [],
              remove: [],
            },
          ],
        },
        diff,
      },
    ],
    unreachable: [],
    diff,
  };
}

describe('the plan in words', () => {
  it('Markdown: the marker, the verdict, per host, the rollout; a short diff inline, a long one folded in <details>', () => {
    const short = planMarkdown(bigPlan(5), { fold: true, maxChars: 60_000 });
    expect(short.split('\n')[0]).toBe(PLAN_MARKER);
    expect(short).toContain('### berth plan: would apply');
    expect(short).toContain('would apply: 1 stack(s) change');
    expect(short).toContain('- h1: create network web_default; create `web#2@h1` (missing)');
    expect(short).toContain('1. web (start-first, parallelism 1, on failure pause): create web#2@h1');
    expect(short).toContain('```diff\n+line 0');
    expect(short).not.toContain('<details>');
    const long = planMarkdown(bigPlan(100), { fold: true, maxChars: 60_000 });
    expect(long).toContain('<details><summary>Diff (100 lines)</summary>');
    expect(long).toContain('+line 99');
    // a forge without <details>: the diff as it is
    expect(planMarkdown(bigPlan(100), { fold: false, maxChars: 60_000 })).not.toContain('<details>');
  });

  it('bounded: a diff too long is cut at a line, saying how much was left out and how to see it', () => {
    const text = planMarkdown(bigPlan(5000), { fold: true, maxChars: 10_000, fullPlan: 'berth plan --ref X' });
    expect(text.length).toBeLessThanOrEqual(10_000);
    const kept = text.match(/^\+line \d+ x+$/gm)!.length;
    expect(kept).toBeGreaterThan(50);
    expect(text).toContain(`… ${5000 - kept} more line(s) of the diff: \`berth plan --ref X\` shows them all`);
    expect(text).toMatch(/```\n\n<\/details>/); // the fence and the fold are closed
  });

  it('a diff holding backticks cannot close the fence', () => {
    const p = bigPlan(1);
    p.diff = '+command: echo ```nope```';
    expect(planMarkdown(p, { fold: true, maxChars: 60_000 })).toContain('````diff\n+command: echo ```nope```\n````');
  });

  it('a failure names the first error; text for the CLI says the same', () => {
    const p: RepoPlan = {
      ...bigPlan(0),
      verdict: 'failure',
      error: 'web/compose.yaml:4:5: privileged is refused by the policy',
      diff: '',
      stacks: [{ stack: 'web', status: 'invalid', errors: ['web/compose.yaml:4:5: privileged is refused by the policy'], hosts: [] }],
    };
    const md = planMarkdown(p, { fold: true, maxChars: 60_000 });
    expect(md).toContain('### berth plan: does not apply');
    expect(md).toContain('does not apply: web/compose.yaml:4:5: privileged is refused by the policy');
    expect(md).not.toContain('```diff');
    expect(planText(p).split('\n')).toEqual([
      'repo shop @ a3f1c9e shop: web to v3 (refs/pull/7/head)',
      'does not apply: web/compose.yaml:4:5: privileged is refused by the policy',
      '# web: invalid',
      '  web/compose.yaml:4:5: privileged is refused by the policy',
    ]);
  });
});

describe("each forge's status and comment requests", () => {
  const access = (apiUrl: string) => ({ apiUrl, repository: 'acme/platform', token: 'tok-123' });
  const delivery = (plan: RepoPlan): PlanDelivery => ({ repo: 'shop', pull: 7, headSha: SHA, plan });

  it('the status: berth/plan on the head commit, success or failure with the error, clipped to the forge', () => {
    expect(planStatus(delivery(bigPlan(3)), 'github', 'https://berth.example.com')).toEqual({
      sha: SHA,
      state: 'success',
      context: PLAN_CONTEXT,
      description: 'Would apply: 1 stack(s) change',
      targetUrl: 'https://berth.example.com',
    });
    const failing = { ...bigPlan(0), verdict: 'failure' as const, error: `web/compose.yaml:4:5: ${'x'.repeat(300)}` };
    const gh = planStatus(delivery(failing), 'github');
    expect(gh).toMatchObject({ state: 'failure', context: 'berth/plan' });
    expect(gh.description).toHaveLength(140);
    expect(gh.description.startsWith('Does not apply: web/compose.yaml:4:5: xxx')).toBe(true);
    expect(planStatus(delivery(failing), 'gitlab').description).toHaveLength(255);
  });

  it.each([
    [
      'github',
      'https://api.github.com',
      ['POST', '/repos/acme/platform/issues/7/comments'],
      ['PATCH', '/repos/acme/platform/issues/comments/991'],
      { authorization: 'Bearer tok-123' },
      (b: string) => ({ body: b }),
    ],
    [
      'gitlab',
      'https://gitlab.example.com/api/v4',
      ['POST', '/api/v4/projects/acme%2Fplatform/merge_requests/7/notes'],
      ['PUT', '/api/v4/projects/acme%2Fplatform/merge_requests/7/notes/991'],
      { 'private-token': 'tok-123' },
      (b: string) => ({ body: b }),
    ],
    [
      'gitea',
      'https://gitea.example.com/api/v1',
      ['POST', '/api/v1/repos/acme/platform/issues/7/comments'],
      ['PATCH', '/api/v1/repos/acme/platform/issues/comments/991'],
      { authorization: 'token tok-123' },
      (b: string) => ({ body: b }),
    ],
    [
      'bitbucket',
      'https://api.bitbucket.org/2.0',
      ['POST', '/2.0/repositories/acme/platform/pullrequests/7/comments'],
      ['PUT', '/2.0/repositories/acme/platform/pullrequests/7/comments/991'],
      { authorization: 'Bearer tok-123' },
      (b: string) => ({ content: { raw: b } }),
    ],
  ] as const)('%s: the comment is created, then edited by its id', (forge, apiUrl, create, update, auth, shape) => {
    const client = FORGE_CLIENTS[forge](access(apiUrl));
    const body = planComment(delivery(bigPlan(100)), forge);
    const path = (url: string) => new URL(url).pathname;
    const created = client.commentRequest(7, body);
    expect([created.method, path(created.url)]).toEqual(create);
    expect(created.headers).toMatchObject({ 'content-type': 'application/json', ...auth });
    expect(JSON.parse(created.body)).toEqual(shape(body));
    const edited = client.commentRequest(7, body, '991');
    expect([edited.method, path(edited.url)]).toEqual(update);
    expect(JSON.parse(edited.body)).toEqual(shape(body));
    // Bitbucket renders no <details>: its diff is not folded
    expect(body.includes('<details>')).toBe(forge !== 'bitbucket');
    expect(body.startsWith(PLAN_MARKER)).toBe(true);
  });

  it("a created comment's id, as each forge answers it", () => {
    expect(commentIdOf({ id: 1234567, body: 'x' })).toBe('1234567');
    expect(commentIdOf({ id: '{abc-1}' })).toBeUndefined();
    expect(commentIdOf({ id: 'abc-1' })).toBe('abc-1');
    expect(commentIdOf({ body: 'no id' })).toBeUndefined();
    expect(commentIdOf(undefined)).toBeUndefined();
  });
});

describe('fetchRef on a local repo (a path): the ref as the repo has it, the tracked branch left alone', () => {
  it('a pull request ref, a branch, a SHA prefix; an unknown one is an UnknownRefError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-fetchref-'));
    try {
      const commit = async (text: string) => {
        writeFileSync(join(dir, 'compose.yaml'), text);
        await git(['add', '-A'], dir);
        await git(['-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', 'commit', '--quiet', '-m', text], dir);
        return git(['rev-parse', 'HEAD'], dir);
      };
      await git(['init', '--quiet', dir]);
      const main = await commit('services: {}\n');
      await git(['checkout', '--quiet', '--detach'], dir);
      const head = await commit('services: { web: { image: web:2 } }\n');
      await git(['update-ref', 'refs/pull/3/head', head], dir);
      await git(['checkout', '--quiet', 'main'], dir);
      const source = new GitSource({ name: 'local', url: dir, branch: 'main' }, join(dir, '.cache'));
      expect((await source.fetchRef('refs/pull/3/head')).sha).toBe(head);
      expect((await source.fetchRef(head.slice(0, 8))).sha).toBe(head);
      expect((await source.fetchRef('main')).sha).toBe(main);
      await expect(source.fetchRef('refs/pull/4/head')).rejects.toThrow(UnknownRefError);
      await expect(source.fetchRef('../etc')).rejects.toThrow(/neither a ref name nor a commit SHA/);
      expect(await source.remoteHead()).toBe(main);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
