// A stack network whose ipam (or enable_ipv6) changed in Git, in the plan (pure): seen by the
// config berth keeps on the network, and made anew on each host where it differs, the stack's
// containers there removed first and created again after.
import { describe, expect, it } from 'vitest';
import { hasChanges, planDiff, planStack } from '../src/diff/plan.ts';
import { networkConfig } from '../src/model.ts';
import type { LiveObject } from '../src/observe/live.ts';
import { placeStack } from '../src/schedule/place.ts';
import { liveOf } from './harness/live.ts';
import { stackOf } from './render/helpers.ts';

const compose = (subnet: string | undefined, address?: string) =>
  [
    'services:',
    '  web:',
    '    image: x',
    '    deploy: { mode: global }',
    '    networks: [back]',
    '  db:',
    '    image: y',
    address ? `    networks:\n      back:\n        ipv4_address: ${address}` : '    networks: [back]',
    'networks:',
    subnet ? `  back:\n    ipam: { config: [{ subnet: ${subnet} }] }` : '  back: {}',
    '',
  ].join('\n');

const HOSTS = [
  { name: 'h1', labels: {}, state: 'up' as const },
  { name: 'h2', labels: {}, state: 'up' as const },
];

/** The plan for `compose` against hosts where the stack runs as `was` made it, its network labelled by `labels` per host. */
function plan(was: string, now: string, labels: Record<string, string | undefined>) {
  const before = placeStack('r', stackOf({ 'app/compose.yaml': was }, 'app'), HOSTS, 'c0', []);
  const stack = stackOf({ 'app/compose.yaml': now }, 'app');
  const desired = placeStack('r', stack, HOSTS, 'c1', []);
  const live = HOSTS.map((h) => ({
    host: h.name,
    containers: before.filter((d) => d.host === h.name).map((d) => liveOf(d, { id: `${d.name}@${h.name}`, stack: 'app' })),
    networks: ['app_back'].map((name): LiveObject => ({ name, repo: 'r', stack: 'app', ...(labels[h.name] ? { config: labels[h.name] } : {}) })),
    volumes: [],
  }));
  return planStack({ repo: 'r', stack, stackName: 'app', commit: 'c1', desired, live, prune: true });
}

const config = (subnet: string) => networkConfig({ ipam: { config: [{ subnet }] } });

describe('a network whose ipam changed in Git', () => {
  it('is left alone while its config is what berth made it with (and with none, as Docker made it)', () => {
    const same = plan(compose('10.5.0.0/16'), compose('10.5.0.0/16'), { h1: config('10.5.0.0/16'), h2: config('10.5.0.0/16') });
    expect(same.recreateNetworks).toBeUndefined();
    expect(hasChanges(same)).toBe(false);
    const plain = plan(compose(undefined), compose(undefined), {});
    expect(plain.recreateNetworks).toBeUndefined();
    expect(hasChanges(plain)).toBe(false);
  });

  it('is made anew on each host where it differs: the containers there go first and are created again', () => {
    const p = plan(compose('10.5.0.0/16', '10.5.0.10'), compose('10.6.0.0/16', '10.6.0.10'), { h1: config('10.5.0.0/16'), h2: config('10.6.0.0/16') });
    expect(p.recreateNetworks).toEqual([{ host: 'h1', spec: expect.objectContaining({ name: 'app_back' }), was: config('10.5.0.0/16') }]);
    expect(hasChanges(p)).toBe(true);
    const on = (host: string) => p.actions.filter((a) => a.host === host).map((a) => [a.kind, a.service, a.kind === 'remove' ? a.cause : undefined]);
    expect(on('h1').sort()).toEqual(
      [
        ['create', 'db', undefined],
        ['create', 'web', undefined],
        ['remove', 'db', 'network'],
        ['remove', 'web', 'network'],
      ].sort(),
    );
    // h2's network already has the new config: web is kept there, as is (db runs on h1)
    expect(on('h2')).toEqual([['keep', 'web', undefined]]);
    expect(p.actions.find((a) => a.kind === 'create')).toMatchObject({ reason: 'network app_back is created anew (its ipam changed)' });
    expect(planDiff(p)).toContain(
      '# create network app_back on h1 anew: {"ipam":{"config":[{"subnet":"10.5.0.0/16"}]}} -> {"ipam":{"config":[{"subnet":"10.6.0.0/16"}]}}\n',
    );
  });

  it('is made anew when ipam is added to a network Docker made, or taken away', () => {
    const added = plan(compose(undefined), compose('10.5.0.0/16'), {});
    expect(added.recreateNetworks?.map((n) => [n.host, n.was])).toEqual([
      ['h1', undefined],
      ['h2', undefined],
    ]);
    expect(planDiff(added)).toContain(`# create network app_back on h1 anew: Docker's defaults -> ${config('10.5.0.0/16')}\n`);
    const removed = plan(compose('10.5.0.0/16'), compose(undefined), { h1: config('10.5.0.0/16'), h2: config('10.5.0.0/16') });
    expect(removed.recreateNetworks?.map((n) => n.host)).toEqual(['h1', 'h2']);
  });

  it("is not this stack's to make anew when another stack of the repo owns it", () => {
    const shared = 'services:\n  web:\n    image: x\n    networks: [back]\nnetworks:\n  back: { external: true, name: app_back }\n';
    const stack = stackOf({ 'app/compose.yaml': shared, 'other/compose.yaml': 'services:\n  o:\n    image: x\n' }, 'app');
    const desired = placeStack('r', stack, HOSTS.slice(0, 1), 'c1', []);
    const live = [{ host: 'h1', containers: [], networks: [{ name: 'app_back', repo: 'r', stack: 'other', config: config('10.9.0.0/16') }], volumes: [] }];
    expect(planStack({ repo: 'r', stack, stackName: 'app', commit: 'c1', desired, live, prune: true }).recreateNetworks).toBeUndefined();
  });
});
