import { describe, expect, it } from 'vitest';
import type { HostSelector, Placement, RenderedStack, Resources, ServiceSpec, UpdateConfig } from '../src/model.ts';
import { placeStack, PlacementError, schedule, type Assignment, type CurrentReplica, type HostInfo } from '../src/schedule/place.ts';

const update: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' };
const MiB = 1024 * 1024;

interface SvcOpts {
  mode?: 'replicated' | 'global';
  replicas?: number;
  constraints?: string[];
  max?: number;
  spread?: string[];
  reservations?: Resources;
}

/** A service with the placement given in Compose's words (`node.labels.role == web`). */
function svc(name: string, o: SvcOpts = {}): ServiceSpec {
  const placement: Placement = {
    constraints: (o.constraints ?? []).map((c) => {
      const [field, op, value] = c.split(' ');
      return { field, op: op as '==' | '!=', value };
    }),
    maxReplicasPerNode: o.max,
    spread: o.spread ?? [],
  };
  return {
    name,
    image: 'busybox',
    environment: {},
    ports: [],
    volumes: [],
    networks: [{ key: 'default', aliases: [] }],
    labels: {},
    restart: 'no',
    mode: o.mode ?? 'replicated',
    replicas: o.mode === 'global' ? 0 : (o.replicas ?? 1),
    placement,
    reservations: o.reservations ?? {},
    limits: {},
    update,
    rollback: update,
    dependsOn: [],
    pullPolicy: 'missing',
    files: [],
  };
}

function stack(services: ServiceSpec[], hosts: HostSelector = { kind: 'all' }): RenderedStack {
  return {
    name: 'shop',
    composeFiles: ['shop/compose.yaml'],
    hosts,
    sync: { auto: true, prune: true, selfHeal: true },
    services,
    networks: [{ key: 'default', name: 'shop_default', external: false, labels: {} }],
    volumes: [],
    contents: new Map(),
    contexts: new Map(),
  };
}

function host(name: string, labels: Record<string, string> = {}, extra: Partial<HostInfo> = {}): HostInfo {
  return { name, labels, state: 'up', ...extra };
}

/** Assignments as `service.slot@host` strings, in schedule()'s order. */
function placed(s: RenderedStack, hosts: HostInfo[], current: CurrentReplica[] = []): string[] {
  return schedule(s, hosts, current).map((a) => `${a.service}.${a.slot}@${a.host}`);
}

/** `web.1@a` -> a CurrentReplica */
function cur(...specs: string[]): CurrentReplica[] {
  return specs.map((x) => {
    const m = /^(.+)\.(\d+)@(.+)$/.exec(x)!;
    return { service: m[1], slot: Number(m[2]), host: m[3] };
  });
}

function placementError(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(PlacementError);
    return (err as Error).message;
  }
  throw new Error('expected a PlacementError');
}

const labelled = [host('a', { role: 'web', zone: 'z1' }), host('b', { role: 'web', zone: 'z2' }), host('c', { role: 'db', zone: 'z1' })];

describe('replicated placement', () => {
  it.each([
    { what: 'one replica goes to the first host', opts: {}, want: ['web.1@a'] },
    { what: 'replicas spread by count, then config order', opts: { replicas: 4 }, want: ['web.1@a', 'web.2@b', 'web.3@c', 'web.4@a'] },
    {
      what: '4 replicas, label constraint, max 2 per host',
      opts: { replicas: 4, constraints: ['node.labels.role == web'], max: 2 },
      want: ['web.1@a', 'web.2@b', 'web.3@a', 'web.4@b'],
    },
    { what: '!= on a label', opts: { replicas: 2, constraints: ['node.labels.role != web'] }, want: ['web.1@c', 'web.2@c'] },
    { what: '!= is true when the label is absent', opts: { replicas: 1, constraints: ['node.labels.gpu != yes'] }, want: ['web.1@a'] },
    { what: 'node.hostname', opts: { replicas: 2, constraints: ['node.hostname == b'] }, want: ['web.1@b', 'web.2@b'] },
    { what: 'node.id is the host name too', opts: { replicas: 3, constraints: ['node.id != a'] }, want: ['web.1@b', 'web.2@c', 'web.3@b'] },
    {
      what: 'several constraints all apply',
      opts: { replicas: 2, constraints: ['node.labels.zone == z1', 'node.labels.role == db'] },
      want: ['web.1@c', 'web.2@c'],
    },
    {
      what: 'max_replicas_per_node 0 is no cap (Swarm)',
      opts: { replicas: 3, constraints: ['node.hostname == a'], max: 0 },
      want: ['web.1@a', 'web.2@a', 'web.3@a'],
    },
    { what: 'replicas 0: nothing', opts: { replicas: 0, constraints: ['node.labels.role == nope'] }, want: [] },
  ])('$what', ({ opts, want }) => {
    expect(placed(stack([svc('web', opts)]), labelled)).toEqual(want);
  });

  it('breaks ties on the whole stack: a host busy with other services gets fewer', () => {
    const s = stack([svc('db', { constraints: ['node.hostname == a'] }), svc('web', { replicas: 2 })]);
    expect(placed(s, labelled)).toEqual(['db.1@a', 'web.1@b', 'web.2@c']);
  });

  it.each([
    { what: 'one replica goes to the host with the fewest containers of other stacks', counts: [2, 1, 1], opts: {}, want: ['web.1@b'] },
    { what: 'equal counts: config order', counts: [3, 3, 3], opts: {}, want: ['web.1@a'] },
    { what: "the service's own count comes first", counts: [0, 5, 1], opts: { replicas: 4 }, want: ['web.1@a', 'web.2@c', 'web.3@b', 'web.4@a'] },
    { what: 'unknown counts are none', counts: [undefined, 1, 0], opts: { replicas: 2 }, want: ['web.1@a', 'web.2@c'] },
  ])("other stacks' containers: $what", ({ counts, opts, want }) => {
    const hosts = labelled.map((h, i) => ({ ...h, containers: counts[i] }));
    expect(placed(stack([svc('web', opts)]), hosts)).toEqual(want);
  });

  it("the stack's own count comes before other stacks' containers", () => {
    const s = stack([svc('db', { constraints: ['node.hostname == a'] }), svc('web', { replicas: 2 })]);
    expect(
      placed(
        s,
        labelled.map((h) => ({ ...h, containers: h.name === 'a' ? 0 : 9 })),
      ),
    ).toEqual(['db.1@a', 'web.1@b', 'web.2@c']);
  });

  it('only uses the hosts of the stack selector', () => {
    expect(placed(stack([svc('web', { replicas: 3 })], { kind: 'labels', labels: { role: 'web' } }), labelled)).toEqual(['web.1@a', 'web.2@b', 'web.3@a']);
    expect(placed(stack([svc('web', { replicas: 2 })], { kind: 'names', names: ['c', 'b'] }), labelled)).toEqual(['web.1@b', 'web.2@c']);
  });

  it('places nothing new on unreachable or lost hosts', () => {
    const hosts = [host('a', {}, { state: 'unreachable' }), host('b', {}, { state: 'lost' }), host('c')];
    expect(placed(stack([svc('web', { replicas: 2 })]), hosts)).toEqual(['web.1@c', 'web.2@c']);
  });
});

describe('global placement', () => {
  const hosts = [
    host('a', { role: 'web' }),
    host('b', { role: 'db' }),
    host('c', { role: 'web' }, { state: 'unreachable' }),
    host('d', { role: 'web' }, { state: 'lost' }),
    host('e', { role: 'web' }, { state: 'unreachable' }),
    host('f', { role: 'web' }),
  ];
  const agent = svc('agent', { mode: 'global', constraints: ['node.labels.role == web'] });

  it('puts slot 1 on every matching up host, and nowhere else', () => {
    expect(placed(stack([agent]), hosts)).toEqual(['agent.1@a', 'agent.1@f']);
  });

  it('keeps the replica of an unreachable host that had one; a lost host has none', () => {
    expect(placed(stack([agent]), hosts, cur('agent.1@c', 'agent.1@d', 'agent.1@b'))).toEqual(['agent.1@a', 'agent.1@c', 'agent.1@f']);
  });

  it('ignores max_replicas_per_node and sits beside replicated services', () => {
    const s = stack([svc('web', { replicas: 2 }), svc('agent', { mode: 'global', max: 1 })]);
    expect(placed(s, [host('a'), host('b')])).toEqual(['web.1@a', 'web.2@b', 'agent.1@a', 'agent.1@b']);
  });
});

describe('spread preferences', () => {
  const zoned = [
    host('a1', { zone: 'a' }),
    host('a2', { zone: 'a' }),
    host('a3', { zone: 'a' }),
    host('b1', { zone: 'b' }),
    host('n1'), // no zone: a group of its own
  ];

  it.each([
    { replicas: 3, want: ['web.1@a1', 'web.2@b1', 'web.3@n1'] },
    { replicas: 4, want: ['web.1@a1', 'web.2@b1', 'web.3@n1', 'web.4@a2'] },
    { replicas: 6, want: ['web.1@a1', 'web.2@b1', 'web.3@n1', 'web.4@a2', 'web.5@b1', 'web.6@n1'] },
  ])('spread over zones, $replicas replicas', ({ replicas, want }) => {
    expect(placed(stack([svc('web', { replicas, spread: ['node.labels.zone'] })]), zoned)).toEqual(want);
  });

  it('without spread, the same hosts fill by count alone', () => {
    expect(placed(stack([svc('web', { replicas: 3 })]), zoned)).toEqual(['web.1@a1', 'web.2@a2', 'web.3@a3']);
  });

  it('nests the second preference inside the first', () => {
    const racks = [
      host('a1', { zone: 'a', rack: 'r1' }),
      host('a2', { zone: 'a', rack: 'r1' }),
      host('a3', { zone: 'a', rack: 'r2' }),
      host('b1', { zone: 'b', rack: 'r1' }),
    ];
    const web = svc('web', { replicas: 4, spread: ['node.labels.zone', 'node.labels.rack'] });
    // zone a, zone b, then zone a again: rack r2 there has none yet; then zone b again.
    expect(placed(stack([web]), racks)).toEqual(['web.1@a1', 'web.2@b1', 'web.3@a3', 'web.4@b1']);
  });

  it('counts a full host in its zone: the zone still has its replica', () => {
    const hosts = [host('a1', { zone: 'a' }, { cpus: 1 }), host('a2', { zone: 'a' }), host('b1', { zone: 'b' })];
    const web = svc('web', { replicas: 3, spread: ['node.labels.zone'], reservations: { cpus: 1 } });
    expect(placed(stack([web]), hosts)).toEqual(['web.1@a1', 'web.2@b1', 'web.3@a2']);
  });
});

describe('reservations', () => {
  it('fills a host up to its capacity, less what other stacks reserve, then uses the others', () => {
    const hosts = [host('a', {}, { cpus: 1 }), host('b', {}, { cpus: 2, reserved: { cpus: 0.5, memoryBytes: 0 } })];
    const web = (replicas: number) => stack([svc('web', { replicas, reservations: { cpus: 0.5 } })]);
    expect(placed(web(5), hosts)).toEqual(['web.1@a', 'web.2@b', 'web.3@a', 'web.4@b', 'web.5@b']);
    expect(placementError(() => schedule(web(6), hosts, []))).toBe(
      'service web: cannot place replica 6 of 6: host a: needs 0.5 CPUs, 0 free; host b: needs 0.5 CPUs, 0 free',
    );
  });

  it("counts memory, and the reservations of the stack's other services", () => {
    const hosts = [host('a', {}, { memoryBytes: 512 * MiB }), host('b', {}, { memoryBytes: 1024 * MiB, reserved: { cpus: 0, memoryBytes: 256 * MiB } })];
    const s = (replicas: number) =>
      stack([
        svc('db', { constraints: ['node.hostname == b'], reservations: { memoryBytes: 512 * MiB } }),
        svc('web', { replicas, reservations: { memoryBytes: 384 * MiB } }),
      ]);
    expect(placed(s(1), hosts)).toEqual(['db.1@b', 'web.1@a']);
    // b: 1024 - 256 (other stacks) - 512 (db) = 256 free.
    expect(placementError(() => schedule(s(2), hosts, []))).toBe(
      'service web: cannot place replica 2 of 2: host a: needs 384MiB memory, 128MiB free; host b: needs 384MiB memory, 256MiB free',
    );
  });

  it('says what is short, both CPUs and memory', () => {
    const hosts = [host('a', {}, { cpus: 1, memoryBytes: 512 * MiB, reserved: { cpus: 0.75, memoryBytes: 384 * MiB } })];
    const s = stack([svc('web', { reservations: { cpus: 0.5, memoryBytes: 1.5 * 1024 * MiB } })]);
    expect(placementError(() => schedule(s, hosts, []))).toBe(
      'service web: cannot place replica 1 of 1: host a: needs 0.5 CPUs, 0.25 free and 1.5GiB memory, 128MiB free',
    );
  });

  it('skips the check for a resource whose capacity is unknown', () => {
    const s = stack([svc('web', { replicas: 3, reservations: { cpus: 64, memoryBytes: 1024 * 1024 * MiB } })]);
    expect(placed(s, [host('a'), host('b', {}, { cpus: 128 })])).toEqual(['web.1@a', 'web.2@b', 'web.3@a']);
  });

  it('refuses a global replica on a host without room', () => {
    const s = stack([svc('agent', { mode: 'global', reservations: { cpus: 1 } })]);
    expect(placementError(() => schedule(s, [host('a', {}, { cpus: 2 }), host('b', {}, { cpus: 0.5 })], []))).toBe(
      'service agent: cannot place its global replica on host b: needs 1 CPUs, 0.5 free',
    );
  });
});

describe('stickiness', () => {
  const three = [host('a', { role: 'web' }), host('b', { role: 'web' }), host('c', { role: 'db' })];

  it('scaling up keeps the existing replicas where they are', () => {
    // Fresh, 3 replicas would go a, b, c; the two that run on c stay there.
    const now = cur('web.1@c', 'web.2@c');
    expect(placed(stack([svc('web', { replicas: 4 })]), three, now)).toEqual(['web.1@c', 'web.2@c', 'web.3@a', 'web.4@b']);
  });

  it('scaling down drops the high slots and moves nothing', () => {
    const now = cur('web.1@b', 'web.2@c', 'web.3@a', 'web.4@b');
    expect(placed(stack([svc('web', { replicas: 2 })]), three, now)).toEqual(['web.1@b', 'web.2@c']);
  });

  it('a constraint change moves only the replicas that now violate it', () => {
    const now = cur('web.1@a', 'web.2@b', 'web.3@c');
    const s = stack([svc('web', { replicas: 3, constraints: ['node.labels.role == web'] })]);
    expect(placed(s, three, now)).toEqual(['web.1@a', 'web.2@b', 'web.3@a']);
  });

  it('a lower max_replicas_per_node moves the higher slots first', () => {
    const now = cur('web.3@a', 'web.1@a', 'web.2@a');
    const s = stack([svc('web', { replicas: 3, max: 2 })]);
    expect(placed(s, three, now)).toEqual(['web.1@a', 'web.2@a', 'web.3@b']);
  });

  it("an unreachable host keeps its replicas; a lost host's replicas move", () => {
    const now = cur('web.1@a', 'web.2@b', 'web.3@c');
    const s = stack([svc('web', { replicas: 3 })]);
    const hosts = [host('a', {}, { state: 'unreachable' }), host('b', {}, { state: 'lost' }), host('c'), host('d')];
    expect(placed(s, hosts, now)).toEqual(['web.1@a', 'web.2@d', 'web.3@c']);
  });

  it('removing a host from the selector moves its replicas', () => {
    const now = cur('web.1@a', 'web.2@b', 'web.3@c');
    const s = stack([svc('web', { replicas: 3 })], { kind: 'names', names: ['a', 'c'] });
    expect(placed(s, three, now)).toEqual(['web.1@a', 'web.2@a', 'web.3@c']);
  });

  it('a replica on a host that is no longer configured moves', () => {
    expect(placed(stack([svc('web', { replicas: 2 })]), three, cur('web.1@gone', 'web.2@c'))).toEqual(['web.1@a', 'web.2@c']);
  });

  it('the first of duplicate current replicas counts', () => {
    const s = stack([svc('web', { replicas: 2 })]);
    expect(placed(s, three, cur('web.1@c', 'web.1@a'))).toEqual(['web.1@c', 'web.2@a']);
    expect(placed(s, three, cur('web.1@a', 'web.1@c'))).toEqual(['web.1@a', 'web.2@b']);
  });

  it('a kept replica holds its place without a resource check, and counts against the host', () => {
    const hosts = [host('a', {}, { cpus: 1 }), host('b', {}, { cpus: 4 })];
    const s = stack([svc('web', { replicas: 3, reservations: { cpus: 1 } })]);
    expect(placed(s, hosts, cur('web.1@a', 'web.2@a'))).toEqual(['web.1@a', 'web.2@a', 'web.3@b']);
  });

  it('ignores replicas of services the stack no longer has', () => {
    expect(placed(stack([svc('web')]), three, cur('old.1@a'))).toEqual(['web.1@a']);
  });
});

describe('placement errors', () => {
  it('names every host of the stack with its reason', () => {
    const hosts = [
      host('a', { role: 'db' }),
      host('b', { role: 'web' }),
      host('c', { role: 'web' }, { cpus: 0.75, reserved: { cpus: 0.5, memoryBytes: 0 } }),
      host('d', { role: 'web' }, { state: 'unreachable' }),
      host('x', { role: 'web' }, { state: 'lost' }),
      host('elsewhere', { role: 'web' }),
    ];
    const s = stack([svc('web', { replicas: 4, constraints: ['node.labels.role == web'], max: 2, reservations: { cpus: 0.5 } })], {
      kind: 'names',
      names: ['a', 'b', 'c', 'd', 'x'],
    });
    expect(placementError(() => schedule(s, hosts, []))).toBe(
      'service web: cannot place replica 3 of 4: host a: does not match node.labels.role == web; host b: max_replicas_per_node (2) reached; ' +
        'host c: needs 0.5 CPUs, 0.25 free; host d: unreachable; host x: lost (unreachable past its grace period)',
    );
  });

  it('says plainly when the constraints match no host at all', () => {
    const s = stack([svc('web', { constraints: ['node.labels.role == cache', 'node.hostname != b'] })]);
    expect(placementError(() => schedule(s, labelled, []))).toBe(
      "service web: its placement constraints match none of the stack's hosts: host a: does not match node.labels.role == cache; " +
        'host b: does not match node.labels.role == cache; host c: does not match node.labels.role == cache',
    );
    const g = stack([svc('agent', { mode: 'global', constraints: ['node.hostname == z'] })]);
    expect(placementError(() => schedule(g, labelled, []))).toMatch(
      /^service agent: its placement constraints match none of the stack's hosts: host a: does not match node.hostname == z;/,
    );
  });

  it('says so when the selector picks no host', () => {
    const web = [svc('web')];
    expect(placementError(() => schedule(stack(web, { kind: 'labels', labels: { role: 'cache', zone: 'z1' } }), labelled, []))).toBe(
      'stack shop: no configured host has the labels role=cache, zone=z1',
    );
    expect(placementError(() => schedule(stack(web, { kind: 'names', names: ['q', 'r'] }), labelled, []))).toBe(
      'stack shop: none of its hosts (q, r) is in the config; configured hosts: a, b, c',
    );
    expect(placementError(() => schedule(stack(web), [], []))).toBe('stack shop: no hosts are configured');
  });

  it('fails when no host is up, naming each', () => {
    const hosts = [host('a', {}, { state: 'unreachable' }), host('b', {}, { state: 'lost' })];
    expect(placementError(() => schedule(stack([svc('web')]), hosts, []))).toBe(
      'service web: cannot place replica 1 of 1: host a: unreachable; host b: lost (unreachable past its grace period)',
    );
  });
});

describe('determinism', () => {
  const hosts = [
    host('a1', { zone: 'a' }, { cpus: 4 }),
    host('a2', { zone: 'a' }, { cpus: 4 }),
    host('b1', { zone: 'b' }, { cpus: 2 }),
    host('b2', { zone: 'b' }, { state: 'unreachable' }),
    host('c1', {}, { cpus: 8, reserved: { cpus: 3, memoryBytes: 0 } }),
  ];
  const s = stack([
    svc('web', { replicas: 7, spread: ['node.labels.zone'], max: 2, reservations: { cpus: 0.5 } }),
    svc('api', { replicas: 4, constraints: ['node.labels.zone != b'] }),
    svc('agent', { mode: 'global' }),
  ]);
  const now = cur('web.2@b2', 'web.5@c1', 'api.1@b1', 'agent.1@b2', 'web.9@a1');

  // web: b2 (unreachable) and c1 keep theirs, web.9 is above replicas; api.1 on b1 now violates
  // `zone != b` and moves; the zones take turns, c1 (no zone) is a group of its own, capped at 2.
  it('gives the same output for the same input, whatever the order of the current replicas', () => {
    const first = schedule(s, hosts, now);
    const again: Assignment[][] = [
      schedule(s, hosts, now),
      schedule(s, hosts, [...now].reverse()),
      schedule(s, hosts, [now[3], now[0], now[4], now[2], now[1]]),
    ];
    for (const other of again) expect(other).toEqual(first);
    expect(first.map((a) => `${a.service}.${a.slot}@${a.host}`)).toEqual([
      'web.1@a1',
      'web.2@b2',
      'web.3@a2',
      'web.4@b1',
      'web.5@c1',
      'web.6@c1',
      'web.7@a1',
      'api.1@a2',
      'api.2@a1',
      'api.3@c1',
      'api.4@a2',
      'agent.1@a1',
      'agent.1@a2',
      'agent.1@b1',
      'agent.1@b2',
      'agent.1@c1',
    ]);
  });
});

describe('placeStack', () => {
  it('builds the container of each assignment on its host', () => {
    const out = placeStack('repo', stack([svc('web', { replicas: 2 })]), labelled, 'sha1', cur('web.2@c'));
    expect(out.map((c) => [c.host, c.name, c.create.Labels?.['berth.slot']])).toEqual([
      ['a', 'shop-web-1', '1'],
      ['c', 'shop-web-2', '2'],
    ]);
  });
});
