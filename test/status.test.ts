// A stack's status from a dry-run plan, its sync history and its hold (pure).
import { describe, expect, it } from 'vitest';
import { stackState, type StatusInput } from '../src/engine/status.ts';
import type { StackOutcome } from '../src/engine/engine.ts';
import type { LiveContainer } from '../src/observe/live.ts';
import { liveContainer } from './harness/live.ts';
import type { SyncRecord } from '../src/audit/syncs.ts';

const live = (over: Partial<LiveContainer> = {}): LiveContainer => liveContainer({ specHash: 'x', commit: 'abc', image: 'img', ...over });
const keep = (c = live()) => ({ kind: 'keep' as const, host: c.host, service: c.service, slot: c.slot, live: c });
const plan = (actions: unknown[]) =>
  ({ repo: 'r', stack: 'shop', networks: [], volumes: [], removeNetworks: [], actions, unpruned: [] }) as unknown as StackOutcome['plan'];
const sync = (over: Partial<SyncRecord>): SyncRecord => ({
  id: 1,
  repo: 'r',
  stack: 'shop',
  commitSha: 'abc',
  trigger: 'poll',
  actor: 'berth',
  startedAt: 't',
  outcome: 'succeeded',
  ...over,
});
const state = (outcome: Partial<StackOutcome>, extra: Partial<StatusInput> = {}) =>
  stackState({ repo: 'r', outcome: { stack: 'shop', status: 'unchanged', ...outcome }, unreachable: new Set(), ...extra });

describe('stackState', () => {
  it.each([
    ['in sync and running', { plan: plan([keep()]) }, {}, { sync: 'Synced', health: 'Healthy' }],
    ['a change waiting', { status: 'planned' as const, plan: plan([keep()]) }, {}, { sync: 'OutOfSync', health: 'Healthy' }],
    ['a replica down', { status: 'planned' as const, plan: plan([keep(live({ state: 'exited' }))]) }, {}, { sync: 'OutOfSync', health: 'Degraded' }],
    ['an unhealthy replica', { plan: plan([keep(live({ health: 'unhealthy' }))]) }, {}, { health: 'Degraded' }],
    ['a health check still starting', { plan: plan([keep(live({ health: 'starting' }))]) }, {}, { health: 'Progressing' }],
    [
      'nothing running yet',
      { status: 'planned' as const, plan: plan([{ kind: 'create', host: 'h1', service: 'web', slot: 1 }]) },
      {},
      { sync: 'OutOfSync', health: 'Missing' },
    ],
    ['a sync under way', { plan: plan([keep()]) }, { latest: sync({ outcome: 'running' }) }, { health: 'Progressing' }],
    [
      'rolled back',
      { status: 'planned' as const, plan: plan([keep()]) },
      { latest: sync({ outcome: 'failed', result: 'rolledback', error: 'web: rolled back: unhealthy' }) },
      { sync: 'OutOfSync', health: 'Healthy', condition: 'RolledBack', reason: 'web: rolled back: unhealthy' },
    ],
    [
      'invalid manifests',
      { status: 'invalid' as const, errors: ['a.yaml:1:1: bad'] },
      {},
      { sync: 'Unknown', health: 'Unknown', condition: 'Invalid', reason: 'a.yaml:1:1: bad' },
    ],
    ['placement impossible', { status: 'failed' as const, errors: ['cannot place'] }, {}, { sync: 'Unknown', health: 'Unknown', condition: 'Failed' }],
    [
      'a host not answering',
      { plan: plan([keep()]), unseen: [{ service: 'web', slot: 2, host: 'h2' }] },
      { unreachable: new Set(['h2']) },
      { sync: 'Unknown', health: 'Unknown', reason: 'host(s) not answering: h2' },
    ],
  ])('%s', (_name, outcome, extra, expected) => {
    expect(state(outcome, extra)).toMatchObject(expected);
  });

  it('names the last applied commit and a hold', () => {
    const hold = { stack: 'shop', repo: 'r', headSha: 'def', commitSha: 'abc1234', reason: 'rollback' as const, actor: 'alice', since: 't' };
    expect(state({ status: 'paused', plan: plan([keep()]) }, { lastSucceeded: sync({ commitSha: 'abc' }), hold })).toMatchObject({
      commit: 'abc',
      sync: 'OutOfSync',
      reason: 'held at abc1234 by alice (rollback)',
    });
  });
});
