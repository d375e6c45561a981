/**
 * Diff: desired containers against live ones -> a plan of create / replace / remove / keep.
 * Pure: plain data in, plain data out. The same plan value is printed, applied and audited.
 */
import { createTwoFilesPatch } from 'diff';
import { LABEL, networkConfig, type JobSpec, type NetworkSpec, type RenderedStack, type VolumeSpec } from '../model.ts';
import type { LiveContainer, LiveHost, LiveObject } from '../observe/live.ts';
import type { DesiredContainer } from '../schedule/container.ts';
import { shortDigest } from '../schedule/pin.ts';

interface Slot {
  host: string;
  service: string;
  slot: number;
}

export type Action =
  | (Slot & { kind: 'create'; desired: DesiredContainer; reason: string })
  | (Slot & { kind: 'replace'; desired: DesiredContainer; live: LiveContainer; reason: string })
  | (Slot & { kind: 'remove'; live: LiveContainer; reason: string; cause: RemovalCause })
  | (Slot & { kind: 'keep'; live: LiveContainer });

/**
 * Why a container goes: a second container of one replica (it goes first: it may hold the
 * replica's name), a replica no longer wanted (scaled down, moved), its service or stack gone
 * from Git, or a network of its stack on its host made anew (`network`: it goes before the
 * network, and its replica is created again after).
 */
export type RemovalCause = 'duplicate' | 'unwanted' | 'pruned' | 'network';

export interface StackPlan {
  repo: string;
  stack: string;
  /** the commit the plan applies; absent when the stack is pruned (gone from Git) */
  commit?: string;
  networks: Array<{ host: string; spec: NetworkSpec }>;
  volumes: Array<{ host: string; spec: VolumeSpec }>;
  /** managed networks to remove once the stack's containers are gone (pruned stacks only) */
  removeNetworks: Array<{ host: string; name: string }>;
  /**
   * The stack's networks whose ipam or enable_ipv6 changed in Git (`was`: what berth made it with,
   * networkConfig(); absent: Docker's defaults): on that host, the stack's containers are removed
   * first, then the network, which is created anew, then the replicas created on it. Absent: none.
   */
  recreateNetworks?: Array<{ host: string; spec: NetworkSpec; was?: string }>;
  /** removals of what is no longer wanted first, then the services in start order */
  actions: Action[];
  /** what live containers exist but are not removed because the stack does not prune */
  unpruned: LiveContainer[];
  /**
   * The stack's hooks, run around the actions when there are changes (never a change themselves):
   * each run replaces the hook's `live` containers (the previous runs) by a new one from `desired`.
   */
  hooks: Hook[];
  /**
   * What the stack would reach of another's on its hosts: a network or volume of its name that
   * belongs to another repo (or, for a name berth derives, another stack). A plan with conflicts is
   * not applied.
   */
  conflicts?: string[];
}

export interface Hook {
  phase: 'pre-sync' | 'post-sync';
  service: string;
  desired: DesiredContainer;
  live: LiveContainer[];
}

export interface PlanInput {
  repo: string;
  /** null: the stack is gone from Git and everything of it goes (when prune) */
  stack: RenderedStack | null;
  stackName: string;
  commit?: string;
  desired: DesiredContainer[];
  /** the live state of every target host (only this stack's objects are looked at) */
  live: LiveHost[];
  prune: boolean;
}

const key = (s: Slot) => `${s.host}/${s.service}/${s.slot}`;

/** The name a stop-first replacement gives the old container until the new one is ready: `NAME-old-<its short id>`. */
export const asideName = (name: string, id: string): string => `${name}-old-${id.slice(0, 12)}`;

/** Whether a container is an old one kept aside by a replacement (one interrupted by a crash leaves it so). */
export const isAside = (c: Pick<LiveContainer, 'name' | 'id'>): boolean => c.name.endsWith(`-old-${c.id.slice(0, 12)}`);

/** A container's name as its replica's: an aside one's without the suffix. */
export const replicaName = (c: Pick<LiveContainer, 'name' | 'id'>): string => (isAside(c) ? c.name.slice(0, -asideName('', c.id).length) : c.name);

/** Whether the job is a pre-sync or post-sync hook. */
export const isHook = (job: Pick<JobSpec, 'kind'> | undefined): boolean => job?.kind === 'pre-sync' || job?.kind === 'post-sync';

/**
 * Whether a live container with the desired spec is as it should be: a service's runs (or Docker
 * is restarting it under its restart policy, which is Docker's job first); a job's ran to success
 * or still runs, never to be run again; a scheduled job's waits for its schedule, whatever its last run did.
 */
export function settled(c: Pick<LiveContainer, 'state' | 'exitCode'>, job: Pick<JobSpec, 'kind'> | undefined): boolean {
  if (!job) return c.state === 'running' || c.state === 'restarting';
  if (job.kind === 'schedule') return c.state === 'created' || c.state === 'exited' || c.state === 'running';
  return c.state === 'running' || (c.state === 'exited' && c.exitCode === 0);
}

/** Whether the action runs a job again because its last run failed (the same spec): not a change anyone made. */
export function isRerun(a: Action): a is Extract<Action, { kind: 'replace' }> {
  return (
    a.kind === 'replace' && a.desired.job !== undefined && a.live.specHash === a.desired.specHash && a.live.state === 'exited' && !a.live.handChanges?.length
  );
}

/** Works out what must happen for one stack to match Git. */
export function planStack(input: PlanInput): StackPlan {
  const { repo, stackName } = input;
  const mine = (o: { repo: string; stack: string }) => o.repo === repo && o.stack === stackName;
  // A hook's containers are its past runs: neither replicas to converge nor extras to prune.
  const hookServices = new Set(input.stack?.services.filter((s) => isHook(s.job)).map((s) => s.name));
  const all = input.live.flatMap((h) => h.containers.filter(mine));
  const live = all.filter((c) => !hookServices.has(c.service));
  const byKey = new Map<string, LiveContainer[]>();
  for (const c of live) byKey.set(key(c), [...(byKey.get(key(c)) ?? []), c]);
  const hooks: Hook[] = input.desired
    .filter((d) => hookServices.has(d.service))
    .map((d) => ({ phase: d.job!.kind as Hook['phase'], service: d.service, desired: d, live: all.filter((c) => c.service === d.service) }));

  const removals: Action[] = [];
  const updates: Action[] = [];
  const desiredServices = new Set(input.desired.map((d) => d.service));
  const recreateNetworks = changedNetworks(input, new Set(input.desired.map((d) => d.host)));
  // on a host where a network is made anew, every container of the stack goes first and each replica is created again
  const anew = new Map<string, string>();
  for (const n of recreateNetworks)
    anew.set(n.host, [anew.get(n.host), `network ${n.spec.name} is created anew (its ipam changed)`].filter(Boolean).join('; '));
  for (const d of input.desired.filter((x) => !hookServices.has(x.service))) {
    const slot = { host: d.host, service: d.service, slot: d.slot };
    const found = byKey.get(key(d)) ?? [];
    byKey.delete(key(d));
    const why = anew.get(d.host);
    if (why) {
      for (const c of found.filter((x) => x.state !== 'removing')) removals.push({ ...slot, kind: 'remove', live: c, reason: why, cause: 'network' });
      updates.push({ ...slot, kind: 'create', desired: d, reason: why });
      continue;
    }
    // A container Docker is removing (by hand, or a pass ago) still holds its name: the slot waits for it to go.
    const candidates = found.filter((c) => c.state !== 'removing');
    if (candidates.length === 0 && found.length > 0) continue;
    const named = (c: LiveContainer) => c.name === d.name || c.name === `${d.name}-next`;
    // A pinned replica runs the digest its spec was pinned to; one created before pinning (no digest) is not replaced for it.
    const digest = d.create.Labels?.[LABEL.digest];
    // (a followed image, x-berth.watch-image, is the pinned one or replaced: its replicas run what the tag resolved to)
    const sameImage = (c: LiveContainer) => !digest || (!c.digest && !d.watchImage) || c.digest === digest;
    const matches = (c: LiveContainer) => c.specHash === d.specHash && sameImage(c) && settled(c, d.job) && !c.handChanges?.length && named(c);
    // A replacement interrupted (berth killed between the old container's stop and the new one's
    // start) left the old one aside: unless the new one runs, the old one is the replica, replaced
    // again (and put back should that fail), and the new one a leftover.
    const best = candidates.find(matches) ?? candidates.find(isAside) ?? candidates[0];
    for (const extra of candidates.filter((c) => c !== best)) {
      const why = isAside(extra) ? ' (the old container kept aside by a replacement)' : isAside(best) ? ' (left by an interrupted replacement)' : '';
      removals.push({ ...slot, kind: 'remove', live: extra, reason: `duplicate of the same replica${why}`, cause: 'duplicate' });
    }
    if (!best) updates.push({ ...slot, kind: 'create', desired: d, reason: 'missing' });
    else if (matches(best)) updates.push({ ...slot, kind: 'keep', live: best });
    else {
      const reason = isAside(best)
        ? 'its replacement was interrupted: the old container waits aside, stopped'
        : best.specHash !== d.specHash
          ? 'spec changed'
          : !sameImage(best)
            ? `image moved: ${shortDigest(best.digest)} -> ${shortDigest(digest)}`
            : best.handChanges?.length
              ? `changed by hand: ${best.handChanges.join('; ')}`
              : !named(best)
                ? `renamed by hand to ${best.name}`
                : d.job && best.state === 'exited'
                  ? `its last run failed (exit code ${best.exitCode ?? 'unknown'}): run again`
                  : `not running (${best.state})`;
      updates.push({ ...slot, kind: 'replace', desired: d, live: best, reason });
    }
  }
  renewPeers(updates, input.desired);
  const unpruned: LiveContainer[] = [];
  for (const c of [...byKey.values()].flat()) {
    const slot = { host: c.host, service: c.service, slot: c.slot };
    if (desiredServices.has(c.service)) {
      removals.push({ ...slot, kind: 'remove', live: c, reason: 'replica no longer wanted here', cause: 'unwanted' });
    } else if (input.prune) {
      const reason = input.stack ? 'service removed from Git' : 'stack removed from Git';
      removals.push({ ...slot, kind: 'remove', live: c, reason, cause: 'pruned' });
    } else unpruned.push(c);
  }

  const networks: StackPlan['networks'] = [];
  const volumes: StackPlan['volumes'] = [];
  const removeNetworks: StackPlan['removeNetworks'] = [];
  const hostsUsed = new Set(input.desired.map((d) => d.host));
  const conflicts: string[] = [];
  for (const h of input.live) {
    if (input.stack && hostsUsed.has(h.host)) {
      for (const [kind, specs, list, out] of [
        ['network', input.stack.networks, h.networks, networks],
        ['volume', input.stack.volumes, h.volumes, volumes],
      ] as const) {
        for (const spec of specs) {
          const owner = objects(list).byName.get(spec.name);
          if (owner && !mayReach(spec, owner, repo, stackName)) {
            conflicts.push(`the ${kind} ${spec.name} on ${h.host} belongs to repo ${owner.repo}, stack ${owner.stack}: this stack does not reach it`);
          } else if (!spec.external && !owner) out.push({ host: h.host, spec });
        }
      }
    } else if (input.prune && !h.containers.some((c) => mine(c) && !removals.some((r) => r.kind === 'remove' && r.live.id === c.id))) {
      for (const n of objects(h.networks).byStack.get(stackKey(repo, stackName)) ?? []) removeNetworks.push({ host: h.host, name: n.name });
    }
  }
  const order = new Map(input.stack?.services.map((s, i) => [s.name, i]) ?? []);
  updates.sort((a, b) => (order.get(a.service) ?? 0) - (order.get(b.service) ?? 0) || a.slot - b.slot);
  const plan: StackPlan = {
    repo,
    stack: stackName,
    commit: input.commit,
    networks,
    volumes,
    removeNetworks,
    actions: [...removals, ...updates],
    unpruned,
    hooks,
    ...(recreateNetworks.length ? { recreateNetworks } : {}),
  };
  return conflicts.length ? { ...plan, conflicts } : plan;
}

/**
 * The stack's own networks on the hosts it runs on whose ipam or enable_ipv6 in Git is not what
 * they were made with (the `berth.network-config` label; none on a network Docker picked the
 * subnet of, as on those made before berth kept it). External networks, and those of another
 * stack reached by name, are not this stack's to make anew.
 */
function changedNetworks(input: PlanInput, hostsUsed: Set<string>): NonNullable<StackPlan['recreateNetworks']> {
  const out: NonNullable<StackPlan['recreateNetworks']> = [];
  if (!input.stack) return out;
  for (const h of input.live) {
    if (!hostsUsed.has(h.host)) continue;
    for (const spec of input.stack.networks) {
      const live = objects(h.networks).byName.get(spec.name);
      if (spec.external || !live || live.repo !== input.repo || live.stack !== input.stackName) continue;
      const want = networkConfig(spec);
      if ((live.config ?? '') !== (want ?? '')) out.push({ host: h.host, spec, ...(live.config ? { was: live.config } : {}) });
    }
  }
  return out;
}

/**
 * Whether a stack may use a managed network or volume of a name it declares, by its owner labels:
 * a name berth derives (`<stack>_<key>`) is this stack's own; a name of its own within the repo's
 * stacks (reach `repo`) is any of the repo's; one the repo's policy lists, anyone's.
 */
function mayReach(spec: NetworkSpec | VolumeSpec, owner: LiveObject, repo: string, stack: string): boolean {
  if (spec.reach === 'policy') return true;
  return owner.repo === repo && (spec.reach === 'repo' || owner.stack === stack);
}

/**
 * A container on another's network (`network_mode: service:NAME`) lives in that container's
 * network namespace: when the container it joined is created anew (a drift put right, a new
 * spec), a kept one would be left without a network, so it is replaced too (and so on along a
 * chain of them). Its spec hash already changes when its peer's spec does; not when the peer is
 * only recreated.
 */
function renewPeers(updates: Action[], desired: DesiredContainer[]): void {
  const wanted = new Map(desired.map((d) => [`${d.host}/${d.service}/${d.slot}`, d]));
  const renewed = new Set(updates.filter((a) => a.kind === 'create' || a.kind === 'replace').map((a) => `${a.host}/${a.desired.name}`));
  for (let changed = true; changed;) {
    changed = false;
    updates.forEach((a, i) => {
      if (a.kind !== 'keep') return;
      const d = wanted.get(`${a.host}/${a.service}/${a.slot}`);
      const mode = d?.create.HostConfig?.NetworkMode ?? '';
      const peer = mode.startsWith('container:') ? mode.slice('container:'.length) : undefined;
      if (!d || peer === undefined || !renewed.has(`${a.host}/${peer}`)) return;
      updates[i] = {
        host: a.host,
        service: a.service,
        slot: a.slot,
        kind: 'replace',
        desired: d,
        live: a.live,
        reason: `the container whose network it shares (${peer}) is created anew`,
      };
      renewed.add(`${a.host}/${d.name}`);
      changed = true;
    });
  }
}

const stackKey = (repo: string, stack: string) => `${repo}\0${stack}`;
const objectIndexes = new WeakMap<LiveObject[], { byName: Map<string, LiveObject>; byStack: Map<string, LiveObject[]> }>();

/**
 * A host's list of networks or volumes by name and by stack, worked out once per list: the plans
 * of one pass share their hosts' lists, and a pass over many stacks would walk them for each.
 */
function objects(list: LiveObject[]): { byName: Map<string, LiveObject>; byStack: Map<string, LiveObject[]> } {
  let index = objectIndexes.get(list);
  if (!index) {
    index = { byName: new Map(list.map((o) => [o.name, o])), byStack: new Map() };
    for (const o of list) index.byStack.set(stackKey(o.repo, o.stack), [...(index.byStack.get(stackKey(o.repo, o.stack)) ?? []), o]);
    objectIndexes.set(list, index);
  }
  return index;
}

/** True when applying the plan would change anything on a host. */
export function hasChanges(plan: StackPlan): boolean {
  return (
    plan.networks.length > 0 ||
    plan.volumes.length > 0 ||
    plan.removeNetworks.length > 0 ||
    (plan.recreateNetworks?.length ?? 0) > 0 ||
    plan.actions.some((a) => a.kind !== 'keep')
  );
}

/** One line per change: `replace web#1 on local: spec changed`. */
export function describeAction(a: Action): string {
  return `${a.kind} ${a.service}#${a.slot} on ${a.host}${a.kind === 'keep' ? '' : `: ${a.reason}`}`;
}

/** The summary line of a change in a plan's diff: a replica created from an image no registry pinned says so. */
function summaryLine(a: Action): string {
  const unpinned = a.kind !== 'keep' && a.kind !== 'remove' && a.desired.unpinned;
  return unpinned ? `${describeAction(a)}; image ${a.desired.create.Image} unpinned: no registry answers for it` : describeAction(a);
}

/**
 * The plan as a unified diff, one section per changed service (live view against desired view),
 * preceded by a summary of the actions. Secret-looking values are already masked in the views.
 */
export function planDiff(plan: StackPlan): string {
  const changed = plan.actions.filter((a) => a.kind !== 'keep');
  if (changed.length === 0 && !hasChanges(plan)) return '';
  const hook = (phase: Hook['phase']) => plan.hooks.filter((h) => h.phase === phase).map((h) => `run ${phase} hook ${h.service} on ${h.desired.host}`);
  const lines = [
    ...(plan.recreateNetworks ?? []).map(
      (n) => `create network ${n.spec.name} on ${n.host} anew: ${n.was ?? "Docker's defaults"} -> ${networkConfig(n.spec) ?? "Docker's defaults"}`,
    ),
    ...plan.networks.map((n) => `create network ${n.spec.name} on ${n.host}`),
    ...plan.volumes.map((v) => `create volume ${v.spec.name} on ${v.host}`),
    ...hook('pre-sync'),
    ...changed.map(summaryLine),
    ...hook('post-sync'),
    ...plan.removeNetworks.map((n) => `remove network ${n.name} on ${n.host}`),
  ];
  const sections: string[] = [];
  const seen = new Set<string>();
  for (const a of changed) {
    if (seen.has(a.service)) continue;
    seen.add(a.service);
    const job = a.kind === 'remove' ? (a.live.job ? { kind: a.live.job as JobSpec['kind'] } : undefined) : a.desired.job;
    const down = a.kind !== 'create' && !settled(a.live, job);
    const exit = a.kind !== 'create' && job && a.live.exitCode !== undefined ? ` (exit code ${a.live.exitCode})` : '';
    const liveView =
      a.kind === 'create'
        ? ''
        : (a.live.liveView ?? a.live.view ?? `(spec ${a.live.specHash}, no readable view)\n`) + (down ? `state: ${a.live.state}${exit}\n` : '');
    const desiredView = a.kind === 'remove' ? '' : a.desired.view + (down ? `state: ${job ? 'run to completion' : 'running'}\n` : '');
    if (liveView === desiredView) continue;
    const name = `${plan.stack}/${a.service}`;
    const before = a.kind === 'create' ? 'absent' : `live, commit ${a.live.commit.slice(0, 7) || 'unknown'}`;
    const after = a.kind === 'remove' ? 'absent' : `commit ${(plan.commit ?? '').slice(0, 7)}`;
    const patch = createTwoFilesPatch(`a/${name}`, `b/${name}`, liveView, desiredView, before, after, { context: 3 });
    sections.push(patch.split('\n').slice(1).join('\n'));
  }
  return `${lines.map((l) => `# ${l}`).join('\n')}\n${sections.join('')}`;
}
