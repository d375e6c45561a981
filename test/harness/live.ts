// Live containers as plain data, for the tests of pure decisions (plans, statuses, rollouts).
import type { LiveContainer } from '../../src/observe/live.ts';
import type { DesiredContainer } from '../../src/schedule/container.ts';

/** A running container `shop-web-1` of repo `r` on host `h1`, with `over` applied. */
export function liveContainer(over: Partial<LiveContainer> = {}): LiveContainer {
  return {
    id: 'c1',
    host: 'h1',
    name: 'shop-web-1',
    repo: 'r',
    stack: 'shop',
    service: 'web',
    slot: 1,
    specHash: 'a',
    commit: 'c1',
    state: 'running',
    image: 'web:v1',
    created: 0,
    reserved: { cpus: 0, memoryBytes: 0 },
    ...over,
  };
}

/** The running container a desired replica became (repo `r`, commit `c1`), with `over` applied. */
export function liveOf(d: DesiredContainer, over: Partial<LiveContainer> = {}): LiveContainer {
  const { host, name, stack, service, slot, specHash, view } = d;
  return liveContainer({ host, name, stack, service, slot, specHash, view, image: d.create.Image ?? '', ...over });
}
