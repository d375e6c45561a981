import { describe, expect, it } from 'vitest';
import type { LiveContainer, LiveHost } from '../src/observe/live.ts';
import { currentReplicas, LiveIndex } from '../src/schedule/current.ts';
import type { HostInfo } from '../src/schedule/place.ts';

/** A live container of `repo/stack` on `host`: `svc.slot`, reserving `cpus` and `mem`. */
function c(host: string, repo: string, stack: string, svcSlot: string, cpus = 0, mem = 0, created = 1): LiveContainer {
  const [service, slot] = svcSlot.split('.');
  return {
    id: `${host}-${repo}-${stack}-${svcSlot}`,
    host,
    name: `${stack}-${service}-${slot}`,
    repo,
    stack,
    service,
    slot: Number(slot),
    specHash: 'h',
    commit: 'c',
    state: 'running',
    image: 'busybox',
    created,
    reserved: { cpus, memoryBytes: mem },
  };
}

const net = (name: string, repo: string, stack: string) => ({ name, repo, stack });

const live: LiveHost[] = [
  {
    host: 'a',
    containers: [
      c('a', 'r', 'shop', 'web.1', 0.1, 100, 5),
      c('a', 'r', 'blog', 'app.1', 0.2, 200),
      c('a', 'q', 'shop', 'web.1', 0.3, 300),
      c('a', 'r', 'shop', 'db.1', 0.25, 0, 9),
    ],
    networks: [net('shop_default', 'r', 'shop'), net('blog_default', 'r', 'blog')],
    volumes: [],
  },
  {
    host: 'b',
    containers: [c('b', 'r', 'shop', 'web.2', 0.1, 100, 7), c('b', 'r', 'blog', 'app.2', 1.5, 1 << 30)],
    networks: [net('shop_default', 'r', 'shop')],
    volumes: [],
  },
  { host: 'c', containers: [], networks: [], volumes: [] },
];
const hosts: HostInfo[] = ['a', 'b', 'c', 'gone'].map((name) => ({ name, labels: {}, state: 'up' as const }));

/** What the hosts' other containers reserve and number, by walking every live container (as the scheduler once did). */
function walked(repo: string, stack: string) {
  return hosts.map((h) => {
    const others = live.find((l) => l.host === h.name)?.containers.filter((x) => !(x.repo === repo && x.stack === stack)) ?? [];
    return {
      name: h.name,
      nanoCpus: others.reduce((n, x) => n + Math.round(x.reserved.cpus * 1e9), 0),
      memoryBytes: others.reduce((n, x) => n + x.reserved.memoryBytes, 0),
      containers: others.length,
    };
  });
}

const summary = (infos: HostInfo[]) =>
  infos.map((h) => ({ name: h.name, nanoCpus: Math.round((h.reserved?.cpus ?? 0) * 1e9), memoryBytes: h.reserved?.memoryBytes, containers: h.containers }));

describe('LiveIndex', () => {
  it.each([
    ['r', 'shop'],
    ['r', 'blog'],
    ['q', 'shop'],
    ['r', 'new'],
  ])("%s/%s: every host with only the stack's containers; the others' reservations and count per host, as a walk finds them", (repo, stack) => {
    const index = new LiveIndex(live);
    const own = index.stack(repo, stack);
    expect(own.map((h) => h.host)).toEqual(['a', 'b', 'c']);
    own.forEach((h, i) => {
      expect(h.containers).toEqual(live[i].containers.filter((x) => x.repo === repo && x.stack === stack));
      expect(h.networks).toBe(live[i].networks); // networks and volumes stay whole: plans look them up by name
    });
    expect(currentReplicas(own, repo, stack)).toEqual(currentReplicas(live, repo, stack));
    expect(summary(index.hostsFor(hosts, repo, stack))).toEqual(walked(repo, stack));
  });

  it("keeps the stack's containers as the same objects (a drift inspection marks them for the plan)", () => {
    expect(new LiveIndex(live).stack('r', 'shop')[1].containers[0]).toBe(live[1].containers[0]);
  });

  it('counts a stack placed earlier in the pass where it was placed, with what it reserves there, not where it runs', () => {
    const index = new LiveIndex(live);
    const at = (host: string, cpus = 0, memoryBytes = 0) => ({ host, reserved: { cpus, memoryBytes } });
    index.placed('r', 'blog', [at('c', 0.5), at('c', 0.5, 10), at('c')]);
    const counts = (stack: string) => index.hostsFor(hosts, 'r', stack).map((h) => h.containers);
    const reserved = (stack: string) => index.hostsFor(hosts, 'r', stack).map((h) => h.reserved);
    expect(counts('shop')).toEqual([1, 0, 3, 0]); // q/shop on a; blog's three on c
    expect(reserved('shop')).toEqual([
      { cpus: 0.3, memoryBytes: 300 },
      { cpus: 0, memoryBytes: 0 },
      { cpus: 1, memoryBytes: 10 },
      { cpus: 0, memoryBytes: 0 },
    ]);
    expect(counts('blog')).toEqual([3, 1, 0, 0]);
    index.placed('r', 'new', [at('b', 1.25, 1 << 20)]);
    expect(counts('shop')).toEqual([1, 1, 3, 0]);
    expect(reserved('shop')[1]).toEqual({ cpus: 1.25, memoryBytes: 1 << 20 });
    // placed again (a later pass of the same index never happens, but the tally stays exact): the old placement is gone
    index.placed('r', 'blog', [at('a', 2)]);
    expect(reserved('shop')[0]).toEqual({ cpus: 2.3, memoryBytes: 300 });
    expect(reserved('shop')[2]).toEqual({ cpus: 0, memoryBytes: 0 });
  });
});
