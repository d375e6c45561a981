// The engine's decisions once a stack's plan is made (pure): report, leave alone, report drift,
// wait for a person, back off, or apply, and under which trigger; the back-off; holds.
import { describe, expect, it } from 'vitest';
import { decide, holdEffect, isDrift, nameOwner, nextBackoff, type DecisionInput } from '../src/engine/decide.ts';
import type { Action, StackPlan } from '../src/diff/plan.ts';
import { liveContainer } from './harness/live.ts';
import type { DesiredContainer } from '../src/schedule/container.ts';
import type { RenderedStack } from '../src/model.ts';
import type { Hold } from '../src/audit/holds.ts';

const slot = { host: 'h1', service: 'web', slot: 1 };
const live = liveContainer;
const desired = (over: Partial<DesiredContainer> = {}) => ({ ...slot, name: 'shop-web-1', specHash: 'a', ...over }) as DesiredContainer;
const plan = (...actions: Action[]): StackPlan => ({
  repo: 'r',
  stack: 'shop',
  commit: 'c2',
  networks: [],
  volumes: [],
  removeNetworks: [],
  actions,
  unpruned: [],
  hooks: [],
});
const stack = (sync: Partial<RenderedStack['sync']> = {}) => ({ name: 'shop', sync: { auto: true, prune: true, selfHeal: true, ...sync } }) as RenderedStack;

const keep: Action = { ...slot, kind: 'keep', live: live() };
/** a new commit: the spec differs */
const newSpec: Action = { ...slot, kind: 'replace', desired: desired({ specHash: 'b' }), live: live(), reason: 'spec changed' };
/** the same spec, the container stopped by hand */
const stopped: Action = { ...slot, kind: 'replace', desired: desired(), live: live({ state: 'exited' }), reason: 'not running (exited)' };
/** a job whose last run failed: run again, same spec */
const rerun: Action = {
  ...slot,
  kind: 'replace',
  desired: desired({ job: { kind: 'once', timeoutMs: 1 } }),
  live: live({ state: 'exited', exitCode: 1 }),
  reason: 'its last run failed',
};

const input = (over: Partial<DecisionInput>): DecisionInput => ({
  plan: plan(keep),
  stack: stack(),
  trigger: 'poll',
  dryRun: false,
  commit: 'c2',
  now: 1_000_000,
  ...over,
});

describe('decide', () => {
  it.each<[string, Partial<DecisionInput>, ReturnType<typeof decide>]>([
    ['a dry run with changes reports them', { plan: plan(newSpec), dryRun: true }, { kind: 'report', status: 'planned' }],
    ['a dry run without reports it unchanged', { dryRun: true }, { kind: 'report', status: 'unchanged' }],
    ['a poll with nothing to do does nothing', {}, { kind: 'nothing' }],
    ['a sync by hand with nothing to do still applies (and is recorded)', { trigger: 'manual' }, { kind: 'apply', trigger: 'manual', drift: false }],
    ['a new commit is applied by a poll', { plan: plan(newSpec), lastSucceeded: 'c1' }, { kind: 'apply', trigger: 'poll', drift: false }],
    [
      'a change by hand at the applied commit is drift, put back under the drift trigger',
      { plan: plan(stopped), lastSucceeded: 'c2' },
      { kind: 'apply', trigger: 'drift', drift: true },
    ],
    ['a drift pass sees drift whatever the history', { plan: plan(stopped), trigger: 'drift' }, { kind: 'apply', trigger: 'drift', drift: true }],
    [
      'drift with selfHeal off is reported, nothing changed',
      { plan: plan(stopped), trigger: 'drift', stack: stack({ selfHeal: false }) },
      { kind: 'drift-reported', summary: 'replace web#1 on h1: not running (exited)' },
    ],
    [
      'drift with auto-sync off is reported too',
      { plan: plan(stopped), trigger: 'drift', stack: stack({ auto: false }) },
      { kind: 'drift-reported', summary: 'replace web#1 on h1: not running (exited)' },
    ],
    [
      'a sync by hand puts drift back even with selfHeal off',
      { plan: plan(stopped), trigger: 'manual', stack: stack({ selfHeal: false }), lastSucceeded: 'c2' },
      { kind: 'apply', trigger: 'manual', drift: true },
    ],
    ['a new commit with auto-sync off waits for a person', { plan: plan(newSpec), stack: stack({ auto: false }) }, { kind: 'auto-off' }],
    [
      'a failed job run again is no drift',
      { plan: plan(rerun), trigger: 'drift', stack: stack({ selfHeal: false }) },
      { kind: 'apply', trigger: 'drift', drift: false },
    ],
    [
      'a stack gone from Git is pruned, never drift',
      { plan: plan({ ...slot, kind: 'remove', live: live(), reason: 'stack removed from Git', cause: 'pruned' }), stack: null, trigger: 'drift' },
      { kind: 'apply', trigger: 'drift', drift: false },
    ],
  ])('%s', (_, over, expected) => {
    expect(decide(input(over))).toEqual(expected);
  });

  it('a commit whose apply failed waits out its back-off, but not a sync by hand or another commit', () => {
    const backoff = { commit: 'c2', failures: 2, until: 1_000_000 + 15_500 };
    expect(decide(input({ plan: plan(newSpec), backoff }))).toEqual({
      kind: 'backing-off',
      error: 'the last 2 attempt(s) failed; the next in 16 s (or sync by hand)',
    });
    expect(decide(input({ plan: plan(newSpec), backoff, now: 1_000_000 + 15_500 }))).toMatchObject({ kind: 'apply' });
    expect(decide(input({ plan: plan(newSpec), backoff, trigger: 'manual' }))).toMatchObject({ kind: 'apply' });
    expect(decide(input({ plan: plan(newSpec), backoff: { ...backoff, commit: 'c1' } }))).toMatchObject({ kind: 'apply' });
    expect(decide(input({ plan: plan(newSpec), backoff: { ...backoff, until: Infinity } }))).toEqual({
      kind: 'backing-off',
      error: 'the rollout of this commit failed and stopped; it waits for a new commit or a sync by hand',
    });
  });

  it('drift needs a change nobody rendered: a spec that differs from the hosts is a rollout, not drift', () => {
    expect(isDrift({ plan: plan(newSpec), stack: stack(), trigger: 'drift', commit: 'c2', lastSucceeded: 'c2' })).toBe(false);
    expect(isDrift({ plan: plan(stopped), stack: stack(), trigger: 'poll', commit: 'c2', lastSucceeded: 'c1' })).toBe(false); // a new commit to roll out
    expect(isDrift({ plan: plan(stopped), stack: stack(), trigger: 'poll', commit: 'c2', lastSucceeded: 'c2' })).toBe(true);
  });
});

describe('nextBackoff', () => {
  it('10 s, 20 s, 40 s ... up to 10 min for failed applies of one commit; a new commit starts again; a success ends it', () => {
    let b: ReturnType<typeof nextBackoff>;
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      b = nextBackoff(b, 'c2', 'failed', 0);
      waits.push(b!.until / 1000);
    }
    expect(waits).toEqual([10, 20, 40, 80, 160, 320, 600, 600]);
    expect(nextBackoff(b, 'c3', 'failed', 0)).toEqual({ commit: 'c3', failures: 1, until: 10_000 });
    expect(nextBackoff(b, 'c2', 'synced', 0)).toBeUndefined();
    expect(nextBackoff(b, 'c2', 'unchanged', 0)).toBeUndefined();
  });

  it('a rollout that paused or rolled back is not retried by automatic triggers at all', () => {
    expect(nextBackoff(undefined, 'c2', 'paused', 0)).toEqual({ commit: 'c2', failures: 1, until: Infinity });
    expect(nextBackoff(undefined, 'c2', 'rolledback', 0)).toEqual({ commit: 'c2', failures: 1, until: Infinity });
  });
});

describe('holdEffect', () => {
  const hold: Hold = { stack: 'shop', repo: 'r', headSha: 'c2', reason: 'pause', actor: 'alice', since: 't' };
  it('holds at the head it was set at, is released by a new commit, and means nothing to a dry run', () => {
    expect(holdEffect(undefined, 'c2', false)).toBe('none');
    expect(holdEffect(hold, 'c2', false)).toBe('holding');
    expect(holdEffect(hold, 'c3', false)).toBe('released');
    expect(holdEffect(hold, 'c3', true)).toBe('none');
  });
});

describe('nameOwner: stack names are unique across the engine', () => {
  it.each<[string, string[], string[], string | undefined]>([
    ['b runs it: b keeps it, whoever comes first in the config', ['b'], ['a', 'b'], undefined],
    ['a runs it: b does not get it', ['a'], ['a', 'b'], 'a'],
    ['nobody runs it: the first repo of the config that declares it', [], ['a', 'b'], 'a'],
    ['nobody runs it and b comes first', [], ['b', 'a'], undefined],
    ['a repo no longer in the config still runs it', ['gone'], ['b'], 'gone'],
    ['only b declares it', [], ['b'], undefined],
  ])('%s', (_, running, declaredBy, owner) => {
    expect(nameOwner('b', running, declaredBy)?.repo).toBe(owner);
  });
});
