/**
 * What the scheduler needs to know of the live state: where a stack's replicas run now, and what
 * the other stacks reserve on each host. Pure.
 */
import type { LiveHost } from '../observe/live.ts';
import type { CurrentReplica, HostInfo } from './place.ts';

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

/** The hosts with what every other stack's berth containers reserve on them. */
export function withReservations(hosts: HostInfo[], live: LiveHost[], repo: string, stack: string): HostInfo[] {
  return hosts.map((h) => {
    const others = live.find((l) => l.host === h.name)?.containers.filter((c) => !(c.repo === repo && c.stack === stack)) ?? [];
    const reserved = others.reduce((sum, c) => ({ cpus: sum.cpus + c.reserved.cpus, memoryBytes: sum.memoryBytes + c.reserved.memoryBytes }), { cpus: 0, memoryBytes: 0 });
    return { ...h, reserved };
  });
}

