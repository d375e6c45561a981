/**
 * What the scheduler needs to know of the live state: where a stack's replicas run now, and what
 * the other stacks hold on each host. Pure.
 */
import type { LiveContainer, LiveHost } from '../observe/live.ts';
import { nano, type CurrentReplica, type HostInfo } from './place.ts';

/**
 * Where the stack's replicas run now: placement keeps them there when it can. Newest first, so that
 * when a slot runs twice (a lost host came back) the replacement keeps its place and the stale one goes.
 */
export function currentReplicas(live: LiveHost[], repo: string, stack: string): CurrentReplica[] {
  return live
    .flatMap((h) => h.containers.filter((c) => c.repo === repo && c.stack === stack))
    .sort((a, b) => b.created - a.created)
    .map((c) => ({ service: c.service, slot: c.slot, host: c.host }));
}

/** What a set of berth containers holds on one host: reservations (CPUs as integer nano-CPUs, so that sums are exact) and their number. */
interface Tally {
  nanoCpus: number;
  memoryBytes: number;
  containers: number;
}

/**
 * The live state of one pass, walked once: each stack's own containers, and what all berth
 * containers hold per host. A pass over many stacks asks it per stack instead of walking every
 * live container of every host for each stack.
 */
export class LiveIndex {
  readonly live: LiveHost[];
  /** per stack: its containers per host */
  readonly #own = new Map<string, Map<string, LiveContainer[]>>();
  /** per stack: what its containers hold per host (its count as placed in this pass, once placed) */
  readonly #held = new Map<string, Map<string, Tally>>();
  /** per host: what every berth container holds there */
  readonly #total = new Map<string, Tally>();

  constructor(live: LiveHost[]) {
    this.live = live;
    for (const h of live) {
      for (const c of h.containers) {
        const key = stackKey(c.repo, c.stack);
        let own = this.#own.get(key);
        if (!own) this.#own.set(key, (own = new Map()));
        let list = own.get(h.host);
        if (!list) own.set(h.host, (list = []));
        list.push(c);
        const held = { nanoCpus: nano(c.reserved.cpus), memoryBytes: c.reserved.memoryBytes, containers: 1 };
        add(tallyOf(this.#heldBy(key), h.host), held, 1);
        add(tallyOf(this.#total, h.host), held, 1);
      }
    }
  }

  /** Every observed host as the stack sees it: only the stack's own containers, the host's networks and volumes as they are. */
  stack(repo: string, stack: string): LiveHost[] {
    const own = this.#own.get(stackKey(repo, stack));
    return this.live.map((h) => ({ ...h, containers: own?.get(h.host) ?? [] }));
  }

  /** The hosts with what the other stacks' berth containers reserve on them, and how many there are. */
  hostsFor(hosts: HostInfo[], repo: string, stack: string): HostInfo[] {
    const held = this.#held.get(stackKey(repo, stack));
    return hosts.map((h) => {
      const others = { nanoCpus: 0, memoryBytes: 0, containers: 0 };
      add(others, this.#total.get(h.name), 1);
      add(others, held?.get(h.name), -1);
      return { ...h, reserved: { cpus: others.nanoCpus / 1e9, memoryBytes: others.memoryBytes }, containers: others.containers };
    });
  }

  /**
   * Notes where the pass placed a stack: the stacks placed after it in the same pass count its
   * containers and what they reserve there instead of its live ones (so that a first deploy of
   * many stacks spreads them, and cannot promise one host's CPUs or memory to two of them).
   */
  placed(repo: string, stack: string, placed: Array<{ host: string; reserved: { cpus: number; memoryBytes: number } }>): void {
    const held = this.#heldBy(stackKey(repo, stack));
    for (const [host, t] of held) {
      add(tallyOf(this.#total, host), t, -1);
      held.delete(host);
    }
    for (const d of placed) {
      const t = { nanoCpus: nano(d.reserved.cpus), memoryBytes: d.reserved.memoryBytes, containers: 1 };
      add(tallyOf(held, d.host), t, 1);
      add(tallyOf(this.#total, d.host), t, 1);
    }
  }

  #heldBy(key: string): Map<string, Tally> {
    let held = this.#held.get(key);
    if (!held) this.#held.set(key, (held = new Map()));
    return held;
  }
}

const stackKey = (repo: string, stack: string) => `${repo}\0${stack}`;

/** The tally of `host` in `map`, made when missing. */
function tallyOf(map: Map<string, Tally>, host: string): Tally {
  let t = map.get(host);
  if (!t) map.set(host, (t = { nanoCpus: 0, memoryBytes: 0, containers: 0 }));
  return t;
}

function add(to: Tally, t: Tally | undefined, sign: 1 | -1): void {
  if (!t) return;
  to.nanoCpus += sign * t.nanoCpus;
  to.memoryBytes += sign * t.memoryBytes;
  to.containers += sign * t.containers;
}
