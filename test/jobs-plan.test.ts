// The planner's and the status's rules for jobs, scheduled jobs and hooks, and for what an
// interrupted replacement left behind (pure).
import { describe, expect, it } from 'vitest';
import type { JobSpec, RenderedStack, ServiceSpec, UpdateConfig } from '../src/model.ts';
import { desiredContainer } from '../src/schedule/container.ts';
import { asideName, hasChanges, isAside, isRerun, planDiff, planStack, replicaName, type Action } from '../src/diff/plan.ts';
import type { LiveContainer } from '../src/observe/live.ts';
import { stackState } from '../src/engine/status.ts';
import { duration, justAfter, redact } from '../src/apply/job.ts';

const update: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' };
const svc = (name: string, job?: JobSpec['kind'], image = 'busybox'): ServiceSpec => ({
  name,
  image,
  environment: {},
  ports: [],
  volumes: [],
  networks: [{ key: 'default', aliases: [] }],
  labels: {},
  restart: 'no',
  mode: 'replicated',
  replicas: 1,
  placement: { constraints: [], spread: [] },
  reservations: {},
  limits: {},
  update,
  rollback: update,
  dependsOn: [],
  pullPolicy: 'missing',
  files: [],
  ...(job ? { job: { kind: job, timeoutMs: 60_000, ...(job === 'schedule' ? { schedule: '* * * * *' } : {}) } } : {}),
});
const stackOf = (services: ServiceSpec[]): RenderedStack => ({
  name: 'shop',
  composeFiles: ['shop/compose.yaml'],
  hosts: { kind: 'all' },
  sync: { auto: true, prune: true, selfHeal: true },
  services,
  networks: [{ key: 'default', name: 'shop_default', external: false, labels: {} }],
  volumes: [],
  contents: new Map(),
  contexts: new Map(),
});
const desired = (stack: RenderedStack) => stack.services.map((s) => desiredContainer('r', stack, s, 1, 'h1', 'c2'));

let ids = 0;
/** The live container of `s` as the desired spec would make it, in `state` (and `over`). */
function live(stack: RenderedStack, s: ServiceSpec, state: string, over: Partial<LiveContainer> = {}): LiveContainer {
  const d = desiredContainer('r', stack, s, 1, 'h1', 'c1');
  return {
    id: `id${++ids}`,
    host: 'h1',
    name: d.name,
    repo: 'r',
    stack: 'shop',
    service: s.name,
    slot: 1,
    specHash: d.specHash,
    commit: 'c1',
    state,
    image: s.image,
    view: d.view,
    created: ids,
    reserved: { cpus: 0, memoryBytes: 0 },
    ...(s.job ? { job: s.job.kind } : {}),
    ...over,
  };
}
function plan(stack: RenderedStack, containers: LiveContainer[], prune = true) {
  return planStack({
    repo: 'r',
    stack,
    stackName: 'shop',
    commit: 'c2',
    desired: desired(stack),
    prune,
    live: [{ host: 'h1', containers, networks: [{ name: 'shop_default', repo: 'r', stack: 'shop' }], volumes: [] }],
  });
}
const summary = (a: Action) => (a.kind === 'keep' ? 'keep' : `${a.kind}: ${a.reason}`);

describe('the planner and jobs', () => {
  const one = (s: ServiceSpec, state: string, over: Partial<LiveContainer> = {}) => {
    const stack = stackOf([s]);
    return plan(stack, [live(stack, s, state, over)]).actions;
  };
  it.each<[string, ServiceSpec, string, Partial<LiveContainer>, string]>([
    ['a job that ran to success is kept, never run again', svc('seed', 'once'), 'exited', { exitCode: 0 }, 'keep'],
    ['a job still running is kept', svc('seed', 'once'), 'running', {}, 'keep'],
    ['a job that failed runs again', svc('seed', 'once'), 'exited', { exitCode: 3 }, 'replace: its last run failed (exit code 3): run again'],
    [
      'a job whose spec changed runs anew, though its last run succeeded',
      svc('seed', 'once'),
      'exited',
      { exitCode: 0, specHash: 'old' },
      'replace: spec changed',
    ],
    ['a job created but never started is run', svc('seed', 'once'), 'created', {}, 'replace: not running (created)'],
    ['a scheduled job waiting for its first tick is kept', svc('backup', 'schedule'), 'created', {}, 'keep'],
    ['a scheduled job whose last run failed is kept: it runs at its next tick', svc('backup', 'schedule'), 'exited', { exitCode: 1 }, 'keep'],
    ['a scheduled job running now is kept', svc('backup', 'schedule'), 'running', {}, 'keep'],
    ['a scheduled job whose spec changed is replaced', svc('backup', 'schedule'), 'exited', { exitCode: 0, specHash: 'old' }, 'replace: spec changed'],
    ['a service that exited 0 is not a job: it is put back', svc('web'), 'exited', { exitCode: 0 }, 'replace: not running (exited)'],
  ])('%s', (_, s, state, over, expected) => {
    const actions = one(s, state, over);
    expect(actions.map(summary)).toEqual([expected]);
  });

  it('a re-run is told from a change: same spec and exited, on a job only', () => {
    const [rerun] = one(svc('seed', 'once'), 'exited', { exitCode: 3 });
    const [changed] = one(svc('seed', 'once'), 'exited', { exitCode: 0, specHash: 'old' });
    const [service] = one(svc('web'), 'exited', { exitCode: 3 });
    expect([isRerun(rerun), isRerun(changed), isRerun(service)]).toEqual([true, false, false]);
  });

  it('the spec hash of a job differs from that of the same service that is no job', () => {
    const stack = stackOf([svc('a')]);
    const [plain, job] = [svc('a'), svc('a', 'once')].map((s) => desiredContainer('r', stack, s, 1, 'h1', 'c'));
    expect(plain.specHash).not.toBe(job.specHash);
    expect(job.create.Labels).toMatchObject({ 'berth.job': 'once' });
    expect(plain.create.Labels).not.toHaveProperty('berth.job');
    expect(job.view).toContain('job: once');
  });

  it('the diff of a re-run shows how the last run ended', () => {
    const stack = stackOf([svc('seed', 'once')]);
    const p = plan(stack, [live(stack, stack.services[0], 'exited', { exitCode: 3 })]);
    expect(planDiff(p)).toContain('-state: exited (exit code 3)\n+state: run to completion');
  });
});

describe('the planner and hooks', () => {
  const migrate = svc('migrate', 'pre-sync');
  const notify = svc('notify', 'post-sync');

  it('a hook is never a change: its past runs are neither kept replicas nor extras to prune', () => {
    const stack = stackOf([migrate, svc('web'), notify]);
    const webLive = live(stack, stack.services[1], 'running');
    const past = [
      live(stack, migrate, 'exited', { exitCode: 0 }),
      live(stack, migrate, 'exited', { exitCode: 1, specHash: 'old', slot: 1 }),
      live(stack, notify, 'exited', { exitCode: 0, host: 'h1' }),
    ];
    const p = plan(stack, [webLive, ...past]);
    expect(p.actions.map((a) => `${a.service} ${summary(a)}`)).toEqual(['web keep']);
    expect(hasChanges(p)).toBe(false);
    expect(planDiff(p)).toBe('');
    expect(p.hooks.map((h) => [h.phase, h.service, h.desired.host, h.live.map((c) => c.id)])).toEqual([
      ['pre-sync', 'migrate', 'h1', [past[0].id, past[1].id]],
      ['post-sync', 'notify', 'h1', [past[2].id]],
    ]);
  });

  it('with a change, the diff says the hooks run around it', () => {
    const stack = stackOf([migrate, svc('web', undefined, 'busybox:2'), notify]);
    const p = plan(stack, [live(stack, svc('web'), 'running', { specHash: 'old' })]);
    expect(hasChanges(p)).toBe(true);
    expect(
      planDiff(p)
        .split('\n')
        .filter((l) => l.startsWith('#')),
    ).toEqual(['# run pre-sync hook migrate on h1', '# replace web#1 on h1: spec changed', '# run post-sync hook notify on h1']);
  });

  it('the containers of a hook removed from Git are pruned like any other', () => {
    const before = stackOf([migrate, svc('web')]);
    const after = stackOf([svc('web')]);
    const p = plan(after, [live(before, before.services[1], 'running'), live(before, migrate, 'exited', { exitCode: 0 })]);
    expect(p.actions.map((a) => `${a.service} ${summary(a)}`)).toEqual(['migrate remove: service removed from Git', 'web keep']);
  });
});

describe('the status of jobs', () => {
  const state = (containers: Array<[ServiceSpec, string, Partial<LiveContainer>?]>) => {
    const stack = stackOf(containers.map(([s]) => s));
    const p = plan(
      stack,
      containers.map(([s, st, over]) => live(stack, s, st, over)),
    );
    return stackState({ repo: 'r', outcome: { stack: 'shop', status: hasChanges(p) ? 'planned' : 'unchanged', plan: p }, unreachable: new Set() });
  };
  it.each<[string, Array<[ServiceSpec, string, Partial<LiveContainer>?]>, object]>([
    [
      'a job that ran to success is healthy',
      [
        [svc('seed', 'once'), 'exited', { exitCode: 0 }],
        [svc('web'), 'running'],
      ],
      { sync: 'Synced', health: 'Healthy' },
    ],
    ['a scheduled job waiting for its tick is healthy', [[svc('backup', 'schedule'), 'created']], { sync: 'Synced', health: 'Healthy' }],
    [
      'a failed job degrades the stack, and waits to run again',
      [[svc('seed', 'once'), 'exited', { exitCode: 3 }]],
      {
        sync: 'OutOfSync',
        health: 'Degraded',
        reason: 'seed#1 on h1: exited (exit code 3)',
      },
    ],
    [
      'a scheduled job whose last run failed degrades it, in sync',
      [[svc('backup', 'schedule'), 'exited', { exitCode: 2 }]],
      {
        sync: 'Synced',
        health: 'Degraded',
        reason: 'backup#1 on h1: exited (exit code 2)',
      },
    ],
    [
      "a hook's failed run is no replica of the stack",
      [
        [svc('migrate', 'pre-sync'), 'exited', { exitCode: 1 }],
        [svc('web'), 'running'],
      ],
      { sync: 'Synced', health: 'Healthy' },
    ],
  ])('%s', (_, containers, expected) => {
    expect(state(containers)).toMatchObject(expected);
  });
});

describe("a job run's helpers", () => {
  it.each([
    ['2026-11-21T13:08:04.351858643Z', '1795266484.351858644'],
    ['2026-11-21T13:08:04Z', '1795266484.000000001'],
    ['2026-11-21T13:08:04.999999999Z', '1795266485.000000000'],
    ['2026-11-21T15:08:04.5+02:00', '1795266484.500000001'],
    ['not a time', undefined],
    [undefined, undefined],
  ])('justAfter(%s) is %s', (time, since) => {
    expect(justAfter(time)).toBe(since);
  });

  it("masks the values of secret-looking variables in a job's output, whatever they are called there", () => {
    expect(redact('connecting with hunter22 to db (user app)', ['DB_PASSWORD=hunter22', 'DB_USER=app', 'API_TOKEN=abc'])).toBe(
      'connecting with <masked> to db (user app)',
    );
    expect(redact('dial postgres://app:pw42@db/app failed', ['DB_URL=postgres://app:pw42@db/app'])).toBe('dial <masked> failed');
  });

  it.each([
    [600_000, '10m'],
    [90_000, '1m30s'],
    [1500, '1.5s'],
    [1000, '1s'],
  ])('duration(%d) is %s', (ms, text) => {
    expect(duration(ms)).toBe(text);
  });
});

describe('the planner and a container Docker is removing', () => {
  it('leaves the slot alone while it goes: it still holds the name a new one would take', () => {
    const stack = stackOf([svc('web')]);
    expect(plan(stack, [live(stack, stack.services[0], 'removing')]).actions).toEqual([]);
  });
  it('keeps another container of the slot that is fine, and leaves the one going alone', () => {
    const stack = stackOf([svc('web')]);
    const going = live(stack, stack.services[0], 'removing');
    const fine = live(stack, stack.services[0], 'running', { specHash: desired(stack)[0].specHash });
    expect(plan(stack, [going, fine]).actions.map((a) => (a.kind === 'keep' ? `keep ${a.live.id}` : a.kind))).toEqual([`keep ${fine.id}`]);
  });
});

describe('the planner and a replacement interrupted by a crash', () => {
  const s = svc('web');
  const stack = stackOf([s]);
  const name = desiredContainer('r', stack, s, 1, 'h1', 'c2').name;
  /** the old container, renamed aside and stopped; the spec of the commit before */
  const aside = () => {
    const c = live(stack, s, 'exited', { specHash: 'old', exitCode: 0 });
    return { ...c, name: asideName(c.name, c.id) };
  };
  const lines = (containers: LiveContainer[]) =>
    plan(stack, containers).actions.map((a) => `${summary(a)}${a.kind === 'remove' || a.kind === 'replace' ? ` (${a.live.id})` : ''}`);

  it("an aside name carries the container's own id, and gives the replica's name back", () => {
    const c = aside();
    expect(isAside(c)).toBe(true);
    expect(replicaName(c)).toBe(name);
    expect(isAside({ ...c, name: `${name}-old-0123456789ab` })).toBe(false); // not its own id: a name someone chose
  });

  it('the new container created but not started: it goes, and the old one is replaced again', () => {
    const old = aside();
    const created = live(stack, s, 'created');
    expect(lines([created, old])).toEqual([
      `remove: duplicate of the same replica (left by an interrupted replacement) (${created.id})`,
      `replace: its replacement was interrupted: the old container waits aside, stopped (${old.id})`,
    ]);
  });

  it('the old container still stopping aside, with no new one yet: it is replaced again', () => {
    const old = { ...aside(), state: 'running' };
    expect(lines([old])).toEqual([`replace: its replacement was interrupted: the old container waits aside, stopped (${old.id})`]);
  });

  it('the new container runs: the old one kept aside goes', () => {
    const old = aside();
    const running = live(stack, s, 'running', { specHash: desiredContainer('r', stack, s, 1, 'h1', 'c2').specHash });
    expect(lines([old, running])).toEqual([`remove: duplicate of the same replica (the old container kept aside by a replacement) (${old.id})`, 'keep']);
  });
});
