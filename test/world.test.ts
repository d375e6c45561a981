import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StackPlan } from '../src/diff/plan.ts';
import type { StackOutcome } from '../src/engine/outcome.ts';
import { changedOn } from '../src/engine/pass.ts';
import { World } from '../src/engine/world.ts';
import type { LiveContainer, LiveHost } from '../src/observe/live.ts';

/** A live container of `stack` on `host`, with `state`. */
function c(host: string, stack: string, id: string, state = 'running'): LiveContainer {
  return {
    id,
    host,
    name: `${stack}-web-1`,
    repo: 'r',
    stack,
    service: 'web',
    slot: 1,
    specHash: 'h',
    commit: 'c',
    state,
    image: 'busybox',
    created: 1,
    reserved: { cpus: 0, memoryBytes: 0 },
  };
}

const obj = (name: string, stack: string) => ({ name, repo: 'r', stack });

function hostWith(host: string, stacks: string[]): LiveHost {
  return {
    host,
    containers: stacks.map((s) => c(host, s, `${host}-${s}-old`)),
    networks: stacks.map((s) => obj(`${s}_default`, s)),
    volumes: stacks.map((s) => obj(`${s}_data`, s)),
  };
}

describe('World.setStack: a stack of a host listed again after a pass changed it there', () => {
  it("replaces that stack's containers, networks and volumes and keeps the host's other stacks as they were", () => {
    const world = new World();
    world.setHost(hostWith('a', ['shop', 'blog']));
    world.setHost(hostWith('b', ['shop']));
    const changes: unknown[] = [];
    world.onChange((scope) => changes.push(scope));
    // shop was replaced on a: a new container, its volume gone
    world.setStack({ host: 'a', containers: [c('a', 'shop', 'a-shop-new')], networks: [obj('shop_default', 'shop')], volumes: [] }, 'shop');
    const [a, b] = world.hosts();
    expect(a!.containers.map((x) => x.id).sort()).toEqual(['a-blog-old', 'a-shop-new']);
    expect(a!.networks.map((n) => n.name).sort()).toEqual(['blog_default', 'shop_default']);
    expect(a!.volumes.map((v) => v.name)).toEqual(['blog_data']);
    expect(b).toEqual(hostWith('b', ['shop'])); // another host's share of the stack is not touched
    expect(changes).toHaveLength(1);
  });

  it('keeps its networks and volumes when only its containers were listed', () => {
    const world = new World();
    world.setHost(hostWith('a', ['shop']));
    world.setStack({ host: 'a', containers: [] }, 'shop');
    expect(world.hosts()).toEqual([{ ...hostWith('a', ['shop']), containers: [] }]);
  });

  it('leaves a host it never listed whole for the next pass', () => {
    const world = new World();
    world.setStack({ host: 'new', containers: [c('new', 'shop', 'x')] }, 'shop');
    expect(world.hosts()).toEqual([]);
  });
});

/** A synced stack's plan on these hosts: a replaced container on the first, kept ones on the rest, a network created on the last. */
function synced(stack: string, hosts: string[], syncId = 1): StackOutcome {
  const [first, ...rest] = hosts;
  const plan = {
    repo: 'r',
    stack,
    networks: [{ host: hosts.at(-1)!, spec: { name: `${stack}_default` } }],
    volumes: [],
    removeNetworks: [],
    hooks: [],
    unpruned: [],
    actions: [
      { kind: 'replace', host: first!, service: 'web', slot: 1, live: c(first!, stack, 'x'), desired: {}, reason: 'spec changed' },
      ...rest.map((h) => ({ kind: 'keep', host: h, service: 'web', slot: 1, live: c(h, stack, `k-${h}`) })),
    ],
  } as unknown as StackPlan;
  return { stack, status: 'synced', plan, syncId } as StackOutcome;
}

describe('changedOn: what a pass lists again at its end', () => {
  it('is, per host, the stacks whose sync named that host, and whether their networks or volumes changed there', () => {
    const unchanged = { stack: 'blog', status: 'unchanged', plan: synced('blog', ['a']).plan } as StackOutcome;
    const on = changedOn([synced('shop', ['a', 'b']), synced('wiki', ['b', 'c']), unchanged]);
    expect(on).toEqual(
      new Map([
        ['a', new Map([['shop', false]])],
        [
          'b',
          new Map([
            ['shop', true],
            ['wiki', false],
          ]),
        ],
        ['c', new Map([['wiki', true]])],
      ]),
    );
  });

  it('is every host (undefined) when a sync has no plan to say where it acted', () => {
    expect(changedOn([synced('shop', ['a']), { stack: 'x', status: 'failed', syncId: 2 } as StackOutcome])).toBeUndefined();
  });
});

describe("World.currentContainers: a host's containers without listing them again", () => {
  afterEach(() => vi.useRealTimers());

  it('are those its events kept current since a full list asked for after its event stream came up', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const world = new World();
    world.setHost(hostWith('a', ['shop']), Date.now()); // listed before its events were followed
    vi.advanceTimersByTime(10);
    world.following('a', true);
    expect(world.currentContainers('a')).toBeUndefined(); // events between that list and the stream may be lost
    vi.advanceTimersByTime(10);
    world.setHost(hostWith('a', ['shop']), Date.now());
    world.apply({ host: 'a', id: 'a-shop-old', action: 'die', exitCode: 137, time: Date.now() / 1000, repo: 'r', stack: 'shop' } as never);
    const known = world.currentContainers('a');
    expect(known?.map((x) => [x.id, x.state, x.exitCode])).toEqual([['a-shop-old', 'exited', 137]]);
    // a copy for the pass: what the pass notes on it is not the World's
    Object.assign(known![0]!, { handChanges: ['env'] });
    expect(world.host('a')!.containers[0]!.handChanges).toBeUndefined();
    vi.advanceTimersByTime(10);
    world.following('a', false); // the stream broke: what ran meanwhile is unknown until the next full list
    world.following('a', true);
    expect(world.currentContainers('a')).toBeUndefined();
    vi.advanceTimersByTime(10);
    world.setHost(hostWith('a', ['shop']), Date.now());
    expect(world.currentContainers('a')).toHaveLength(1);
  });

  it('keep the containers when only the networks and volumes are listed again', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const world = new World();
    world.following('a', true);
    vi.advanceTimersByTime(10);
    world.setHost(hostWith('a', ['shop']), Date.now());
    world.setObjects({ host: 'a', networks: [], volumes: [obj('shop_data', 'shop')] });
    expect(world.host('a')).toEqual({ host: 'a', containers: hostWith('a', ['shop']).containers, networks: [], volumes: [obj('shop_data', 'shop')] });
    expect(world.currentContainers('a')).toHaveLength(1);
  });
});

describe('a list asked for before an event came', () => {
  afterEach(() => vi.useRealTimers());
  const ev = (action: string, id: string, stack = 'shop') => ({ host: 'a', id, action, time: Date.now() / 1000, repo: 'r', stack, labels: {} }) as never;

  it('gets the events that came since it was asked for applied again: a container removed meanwhile is not brought back', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const world = new World();
    world.setHost(hostWith('a', ['shop', 'blog']));
    vi.advanceTimersByTime(10);
    const asked = Date.now(); // a list is asked for; it answers with the host as it was then
    vi.advanceTimersByTime(10);
    world.apply(ev('destroy', 'a-shop-old')); // removed by hand while the list was under way
    world.apply(ev('die', 'a-blog-old', 'blog'));
    vi.advanceTimersByTime(10);
    world.setHost(hostWith('a', ['shop', 'blog']), asked);
    expect(world.host('a')!.containers.map((x) => [x.id, x.state])).toEqual([['a-blog-old', 'exited']]);
    // so too a stack listed again: only its own events are applied again
    vi.advanceTimersByTime(10);
    const again = Date.now();
    world.apply(ev('start', 'a-blog-old', 'blog'));
    world.setStack({ host: 'a', containers: [c('a', 'blog', 'a-blog-old', 'exited')] }, 'blog', again);
    expect(world.host('a')!.containers.map((x) => [x.id, x.state])).toEqual([['a-blog-old', 'running']]);
  });

  it('of networks and volumes is not taken as current when one was made or removed after it was asked for', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const world = new World();
    world.following('a', true, { objects: true });
    vi.advanceTimersByTime(10);
    world.setHost(hostWith('a', ['shop']));
    expect(world.currentObjects('a')).toEqual({ networks: [obj('shop_default', 'shop')], volumes: [obj('shop_data', 'shop')] });
    vi.advanceTimersByTime(10);
    world.objectsChanged('a'); // a network removed by hand
    expect(world.currentObjects('a')).toBeUndefined();
    const asked = Date.now();
    vi.advanceTimersByTime(10);
    world.objectsChanged('a'); // another, while the list was under way
    world.setObjects({ host: 'a', networks: [], volumes: [] }, asked);
    expect(world.currentObjects('a')).toBeUndefined();
    vi.advanceTimersByTime(10);
    world.setObjects({ host: 'a', networks: [], volumes: [] }, Date.now());
    expect(world.currentObjects('a')).toEqual({ networks: [], volumes: [] });
    world.following('a', false, { objects: true });
    expect(world.currentObjects('a')).toBeUndefined();
  });
});
