/**
 * Placement: which replica of which service runs on which host, with Swarm's meaning of
 * `deploy.mode`, `replicas`, `placement` (constraints, max_replicas_per_node, spread preferences)
 * and `resources.reservations` (step 3 of docs/how-it-works.md). Pure and deterministic.
 *
 * Two passes over the stack: first every replica that runs now keeps its host when it still may
 * (stickiness: a change never moves a replica that need not move), then the missing replicas are
 * placed one by one, in service order and slot order.
 *
 * A service with `network_mode: service:NAME` goes only where NAME has a replica (NAME comes
 * first in the stack's order), and shares the network of NAME's replica there.
 */
import type { HostSelector, PlacementConstraint, RenderedStack, ServiceSpec } from '../model.ts';
import { desiredContainer, type DesiredContainer } from './container.ts';

export interface HostInfo {
  name: string;
  labels: Record<string, string>;
  /**
   * up: answering now. unreachable: not answering, within its grace period: the replicas it had
   * stay assigned to it (untouched), nothing new is placed there. lost: past the grace period: not
   * eligible; its replicas are placed elsewhere.
   */
  state: 'up' | 'unreachable' | 'lost';
  /** capacity read from the daemon, when known */
  cpus?: number;
  memoryBytes?: number;
  /** what other stacks' berth containers already reserve on it */
  reserved?: { cpus: number; memoryBytes: number };
  /** how many berth containers other stacks have on it (live, or as placed earlier in the same pass): spreads stacks over the hosts */
  containers?: number;
}

/** A replica that exists now (from the live containers): where it runs. */
export interface CurrentReplica {
  service: string;
  slot: number;
  host: string;
}

export interface Assignment {
  service: string;
  slot: number;
  host: string;
}

export class PlacementError extends Error {}

/** The hosts a stack's `hosts:` selector picks, in config order. */
export function eligibleHosts(selector: HostSelector, hosts: HostInfo[]): HostInfo[] {
  switch (selector.kind) {
    case 'all':
      return hosts;
    case 'names':
      return hosts.filter((h) => selector.names.includes(h.name));
    case 'labels':
      return hosts.filter((h) => Object.entries(selector.labels).every(([k, v]) => h.labels[k] === v));
  }
}

/**
 * Where every replica of the stack should run, ordered by service (stack order), slot, then host
 * (config order). Throws PlacementError naming the service and why, host by host.
 */
export function schedule(stack: RenderedStack, hosts: HostInfo[], current: CurrentReplica[]): Assignment[] {
  const stackHosts = eligibleHosts(stack.hosts, hosts);
  if (stackHosts.length === 0) throw new PlacementError(`stack ${stack.name}: ${noHosts(stack.hosts, hosts)}`);
  const ledger = new Ledger();
  // every step below is linear in the hosts, per replica: a stack of many replicas on many hosts stays cheap to place
  const byService = new Map<string, CurrentReplica[]>();
  for (const c of current) {
    const list = byService.get(c.service);
    if (list) list.push(c);
    else byService.set(c.service, [c]);
  }
  const hostIndex = new Map(stackHosts.map((h, i) => [h, i]));

  // Pass 1: what runs now stays where it is, when it still may.
  for (const svc of stack.services) {
    const mine = byService.get(svc.name) ?? [];
    if (svc.mode === 'global') {
      for (const h of stackHosts) {
        if (h.state !== 'lost' && !mismatch(svc, h) && !apart(svc, h, ledger) && mine.some((c) => c.host === h.name)) ledger.add(svc, 1, h);
      }
      continue;
    }
    const seen = new Set<number>();
    const firstOfSlot = mine.filter((c) => !seen.has(c.slot) && seen.add(c.slot));
    for (const c of firstOfSlot.filter((c) => c.slot >= 1 && c.slot <= svc.replicas).sort((a, b) => a.slot - b.slot)) {
      const h = stackHosts.find((x) => x.name === c.host);
      if (h && h.state !== 'lost' && !mismatch(svc, h) && !apart(svc, h, ledger) && !capped(svc, h, ledger)) ledger.add(svc, c.slot, h);
    }
  }

  // Pass 2: the missing replicas, one by one.
  for (const svc of stack.services) {
    if (svc.mode === 'replicated' && svc.replicas === 0) continue;
    if (!stackHosts.some((h) => !mismatch(svc, h))) {
      throw new PlacementError(
        `service ${svc.name}: its placement constraints match none of the stack's hosts: ${reasons(stackHosts, (h) => mismatch(svc, h))}`,
      );
    }
    if (svc.mode === 'global') {
      const refused: HostInfo[] = [];
      for (const h of stackHosts.filter((x) => x.state === 'up' && !mismatch(svc, x) && !apart(svc, x, ledger) && !ledger.has(svc.name, x.name))) {
        if (noRoom(svc, h, ledger)) refused.push(h);
        else ledger.add(svc, 1, h);
      }
      if (refused.length) {
        throw new PlacementError(`service ${svc.name}: cannot place its global replica on ${reasons(refused, (h) => noRoom(svc, h, ledger))}`);
      }
      continue;
    }
    const groups = spreadGroups(svc, stackHosts);
    for (let slot = 1; slot <= svc.replicas; slot++) {
      if (ledger.hasSlot(svc.name, slot)) continue;
      const candidates = stackHosts.filter((h) => !refusal(svc, h, ledger));
      if (candidates.length === 0) {
        throw new PlacementError(
          `service ${svc.name}: cannot place replica ${slot} of ${svc.replicas}: ${reasons(stackHosts, (h) => refusal(svc, h, ledger))}`,
        );
      }
      ledger.add(svc, slot, best(svc, candidates, stackHosts, ledger, groups, hostIndex));
    }
  }

  const order = new Map(stack.services.map((s, i) => [s.name, i]));
  const hostOrder = new Map(stackHosts.map((h, i) => [h.name, i]));
  return ledger.assignments.sort((a, b) => order.get(a.service)! - order.get(b.service)! || a.slot - b.slot || hostOrder.get(a.host)! - hostOrder.get(b.host)!);
}

/** schedule() + desiredContainer() for each assignment: every container the stack should have, each on its host. */
export function placeStack(repo: string, stack: RenderedStack, hosts: HostInfo[], commitSha: string, current: CurrentReplica[]): DesiredContainer[] {
  const byName = new Map(stack.services.map((s) => [s.name, s]));
  const firstOn = new Map<string, DesiredContainer>(); // service@host -> its lowest slot there
  return schedule(stack, hosts, current).map((a) => {
    const svc = byName.get(a.service)!;
    const peerName = peerOf(svc);
    const peer = peerName === undefined ? undefined : firstOn.get(`${peerName}@${a.host}`);
    const d = desiredContainer(repo, stack, svc, a.slot, a.host, commitSha, peer && { name: peer.name, specHash: peer.specHash });
    if (!firstOn.has(`${a.service}@${a.host}`)) firstOn.set(`${a.service}@${a.host}`, d);
    return d;
  });
}

/** NAME of `network_mode: service:NAME`. */
function peerOf(svc: ServiceSpec): string | undefined {
  return svc.networkMode?.startsWith('service:') ? svc.networkMode.slice('service:'.length) : undefined;
}

/** Why `h` cannot take `svc` with `network_mode: service:NAME`: NAME has no replica there. */
function apart(svc: ServiceSpec, h: HostInfo, ledger: Ledger): string | undefined {
  const peer = peerOf(svc);
  return peer !== undefined && !ledger.has(peer, h.name) ? `runs no replica of ${peer} (network_mode: service:${peer})` : undefined;
}

/** What this stack has assigned so far: replicas per host and service, and the resources they reserve. */
class Ledger {
  readonly assignments: Assignment[] = [];
  private readonly slots = new Set<string>();
  private readonly perHost = new Map<string, { total: number; nanoCpus: number; memoryBytes: number; services: Map<string, number> }>();

  add(svc: ServiceSpec, slot: number, host: HostInfo): void {
    this.assignments.push({ service: svc.name, slot, host: host.name });
    this.slots.add(`${svc.name}\0${slot}`);
    const t = this.tally(host.name);
    t.total++;
    t.nanoCpus += nano(svc.reservations.cpus ?? 0);
    t.memoryBytes += svc.reservations.memoryBytes ?? 0;
    t.services.set(svc.name, (t.services.get(svc.name) ?? 0) + 1);
  }

  /** replicas of `service` on `host` */
  count(service: string, host: string): number {
    return this.perHost.get(host)?.services.get(service) ?? 0;
  }

  has(service: string, host: string): boolean {
    return this.count(service, host) > 0;
  }

  hasSlot(service: string, slot: number): boolean {
    return this.slots.has(`${service}\0${slot}`);
  }

  tally(host: string) {
    let t = this.perHost.get(host);
    if (!t) this.perHost.set(host, (t = { total: 0, nanoCpus: 0, memoryBytes: 0, services: new Map() }));
    return t;
  }
}

/** Why `h` cannot take a new replica of `svc` now; undefined when it can. */
function refusal(svc: ServiceSpec, h: HostInfo, ledger: Ledger): string | undefined {
  const m = mismatch(svc, h) ?? apart(svc, h, ledger);
  if (m) return m;
  if (h.state === 'unreachable') return 'unreachable';
  if (h.state === 'lost') return 'lost (unreachable past its grace period)';
  if (capped(svc, h, ledger)) return `max_replicas_per_node (${svc.placement.maxReplicasPerNode}) reached`;
  return noRoom(svc, h, ledger);
}

/** The first placement constraint `h` fails, as `does not match <constraint>`; undefined when it matches them all. */
export function mismatch(svc: ServiceSpec, h: HostInfo): string | undefined {
  const failed = svc.placement.constraints.find((c) => !matches(c, h));
  return failed && `does not match ${failed.field} ${failed.op} ${failed.value}`;
}

function matches(c: PlacementConstraint, h: HostInfo): boolean {
  const label = labelKey(c.field);
  if (c.field !== 'node.hostname' && c.field !== 'node.id' && label === undefined) return false; // a field berth does not know
  const actual = label === undefined ? h.name : h.labels[label];
  return c.op === '==' ? actual === c.value : actual !== c.value;
}

/** `node.labels.zone` -> `zone` */
function labelKey(field: string): string | undefined {
  return field.startsWith('node.labels.') ? field.slice('node.labels.'.length) : undefined;
}

/** Whether `h` already holds `max_replicas_per_node` replicas of `svc` (no cap when absent or 0, as in Swarm). */
function capped(svc: ServiceSpec, h: HostInfo, ledger: Ledger): boolean {
  const max = svc.placement.maxReplicasPerNode;
  return svc.mode === 'replicated' && !!max && ledger.count(svc.name, h.name) >= max;
}

/** Why `h` lacks room for one more replica of `svc`; undefined when it has room or its capacity is unknown. */
function noRoom(svc: ServiceSpec, h: HostInfo, ledger: Ledger): string | undefined {
  const used = ledger.tally(h.name);
  const short: string[] = [];
  const needCpus = nano(svc.reservations.cpus ?? 0);
  if (needCpus > 0 && h.cpus !== undefined) {
    const free = nano(h.cpus) - nano(h.reserved?.cpus ?? 0) - used.nanoCpus;
    if (needCpus > free) short.push(`${fmtCpus(needCpus)} CPUs, ${fmtCpus(free)} free`);
  }
  const needMem = svc.reservations.memoryBytes ?? 0;
  if (needMem > 0 && h.memoryBytes !== undefined) {
    const free = h.memoryBytes - (h.reserved?.memoryBytes ?? 0) - used.memoryBytes;
    if (needMem > free) short.push(`${fmtBytes(needMem)} memory, ${fmtBytes(free)} free`);
  }
  return short.length ? `needs ${short.join(' and ')}` : undefined;
}

/**
 * The host a new replica of `svc` goes to: by each spread preference in turn the group (label
 * value, nested in the groups before it) holding the fewest replicas of the service, then the
 * host with the fewest of the service, then the fewest of the stack, then the fewest berth
 * containers of other stacks, then config order.
 */
function best(
  svc: ServiceSpec,
  candidates: HostInfo[],
  stackHosts: HostInfo[],
  ledger: Ledger,
  groups: Map<HostInfo, string[]>,
  index: Map<HostInfo, number>,
): HostInfo {
  const depths = svc.placement.spread.length;
  // replicas of the service in each group, per depth: one sweep over the hosts
  const inGroup = Array.from({ length: depths }, () => new Map<string, number>());
  for (const h of stackHosts) {
    const n = ledger.count(svc.name, h.name);
    if (n === 0) continue;
    groups.get(h)!.forEach((g, depth) => inGroup[depth].set(g, (inGroup[depth].get(g) ?? 0) + n));
  }
  const key = (h: HostInfo) => [
    ...groups.get(h)!.map((g, depth) => inGroup[depth].get(g) ?? 0),
    ledger.count(svc.name, h.name),
    ledger.tally(h.name).total,
    h.containers ?? 0,
    index.get(h)!,
  ];
  let winner = candidates[0];
  let winnerKey = key(winner);
  for (const h of candidates.slice(1)) {
    const k = key(h);
    if (k.reduce((d, v, i) => d || v - winnerKey[i], 0) < 0) [winner, winnerKey] = [h, k];
  }
  return winner;
}

/**
 * Each host's group at each depth of `svc`'s spread preferences: the label values down to that
 * depth (hosts without the label form one group of their own: null never equals a label value).
 */
function spreadGroups(svc: ServiceSpec, stackHosts: HostInfo[]): Map<HostInfo, string[]> {
  const spread = svc.placement.spread;
  return new Map(
    stackHosts.map((h) => [h, spread.map((_, depth) => JSON.stringify(spread.slice(0, depth + 1).map((p) => h.labels[labelKey(p) ?? ''] ?? null)))]),
  );
}

/** `host a: why; host b: why` for every host with a reason. */
function reasons(hosts: HostInfo[], why: (h: HostInfo) => string | undefined): string {
  return hosts
    .map((h) => [h.name, why(h)] as const)
    .filter(([, r]) => r)
    .map(([name, r]) => `host ${name}: ${r}`)
    .join('; ');
}

function noHosts(selector: HostSelector, hosts: HostInfo[]): string {
  if (hosts.length === 0) return 'no hosts are configured';
  switch (selector.kind) {
    case 'all':
      return 'no hosts are configured';
    case 'names':
      return `none of its hosts (${selector.names.join(', ')}) is in the config; configured hosts: ${hosts.map((h) => h.name).join(', ')}`;
    case 'labels':
      return `no configured host has the labels ${Object.entries(selector.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
  }
}

/** CPUs as integer nano-CPUs (Docker's NanoCpus), so that sums are exact. */
export function nano(cpus: number): number {
  return Math.round(cpus * 1e9);
}

function fmtCpus(n: number): string {
  return String(Math.max(0, Math.round(n / 1e6) / 1e3));
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Math.round(v * 100) / 100}${units[i]}`;
}
