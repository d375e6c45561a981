/**
 * One reconciliation pass over a repo, walking the data flow of docs/how-it-works.md:
 * source -> render -> schedule -> observe -> diff -> apply -> audit. It holds no copy of what runs:
 * every applying pass lists the hosts again, so a restart at any moment (even mid-rollout) rebuilds
 * everything it needs from the hosts and from Git. What it does with each stack's plan is decided
 * by decide.ts (pure); applying and recording it is record.ts's.
 */
import { setImmediate as turn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config.ts';
import type { HoldStore } from '../audit/holds.ts';
import type { Backoff, StackMemory } from '../audit/memory.ts';
import type { AuditLog, Trigger } from '../audit/log.ts';
import type { SyncStore } from '../audit/syncs.ts';
import { pinKey, type Pin, type PinStore } from '../audit/pins.ts';
import { describeAction, hasChanges, planDiff, planStack, type StackPlan } from '../diff/plan.ts';
import { formatError } from '../render/index.ts';
import { LABEL, reservedOf, type RenderedStack, type RenderResult } from '../model.ts';
import type { LiveHost } from '../observe/live.ts';
import type { DesiredContainer } from '../schedule/container.ts';
import { currentReplicas, LiveIndex } from '../schedule/current.ts';
import { pinnable, pinned, shortDigest, withoutDigest } from '../schedule/pin.ts';
import { placeStack, PlacementError, type CurrentReplica, type HostInfo } from '../schedule/place.ts';
import type { JobScheduler } from './cron.ts';
import { decide, holdEffect, nameOwner, nextBackoff } from './decide.ts';
import type { DriftWatcher, Suspects } from './drift.ts';
import type { Fleet, Observed } from './fleet.ts';
import { mapLimit } from './limit.ts';
import type { RepoPass, StackOutcome } from './outcome.ts';
import type { PassRow, Recorder } from './record.ts';
import type { Head } from './world.ts';

export interface PassOptions {
  trigger: Trigger;
  /** who asked: a token's name, `cli`, or `berth` for the engine's own triggers */
  actor?: string;
  /** only this stack */
  stack?: string;
  /** work out the plans but change nothing and record nothing */
  dryRun?: boolean;
  /** apply held (paused, rolled back) stacks too: the manual rollback itself */
  ignoreHolds?: boolean;
  /** end only once every replica the pass created or replaced runs and, with a health check, is healthy (`sync --wait`) */
  waitHealthy?: boolean;
}

/** What a pass needs of the engine. */
export interface PassContext {
  config: BerthConfig;
  log: Logger;
  audit: AuditLog;
  holds: HoldStore;
  syncs: SyncStore;
  /** the digests services' images were pinned to, per spec */
  pins: PinStore;
  /** each stack's back-off and last placement, kept across restarts */
  memory: StackMemory;
  fleet: Fleet;
  drift: DriftWatcher;
  recorder: Recorder;
  /** the repo's branch head, fetched and rendered; `moved`: fetch at once (a push said so) */
  readHead(repo: string, log: Logger, moved: boolean): Promise<Head>;
  /** the stack names of a repo's last head (none before its first pass) */
  declaredStacks(repo: string): Iterable<string>;
  /** the scheduled jobs' triggers, once started */
  schedules(): JobScheduler | undefined;
  /** whether something reads the World (events followed, or the stacks' status listened to): an applying pass then lists the hosts again at its end */
  watched(): boolean;
  /** the stacks' status may have changed */
  changed(): void;
}

/** One stack's share of a pass: its render (null: gone from Git, pruned). */
interface Work {
  name: string;
  stack: RenderedStack | null;
  prune: boolean;
}

/** The hosts as one pass sees them. */
interface Hosts {
  infos: HostInfo[];
  reachable: Set<string>;
  /** hosts that do not answer but are not lost yet: replicas placed there keep their place */
  waiting: Set<string>;
  index: LiveIndex;
}

export class Reconciler {
  readonly #ctx: PassContext;

  constructor(ctx: PassContext) {
    this.#ctx = ctx;
  }

  /** `at`: the commit and render to use instead of the branch head; `fromWorld`: the hosts as last seen, not listed now (and nothing inspected). */
  async run(repo: string, opts: PassOptions, at?: Head, { fromWorld = false } = {}): Promise<RepoPass> {
    const ctx = this.#ctx;
    if (!ctx.config.repos.some((r) => r.name === repo)) throw new Error(`unknown repo ${repo}`);
    const log = ctx.log.child({ repo });
    log.debug({ trigger: opts.trigger, dryRun: opts.dryRun ?? false }, 'pass started');
    // Containers whose events suggest a hand-made change, taken as the hosts are observed: inspected against Git in this pass.
    const suspects = ctx.drift.suspects(repo, !opts.dryRun);
    // The hosts are observed while the branch is looked up (a round trip to the forge): neither waits for the other.
    // A host whose events are followed is not listed again, but for the full resync (every container
    // suspect): that lists everything, whatever the events said.
    const observing = fromWorld ? ctx.fleet.seen() : ctx.fleet.observe(log, { fromEvents: suspects !== 'all' });
    observing.catch(() => undefined); // awaited below on every path; until then its failure is not unhandled
    let head: Head;
    try {
      head = at ?? (await ctx.readHead(repo, log, opts.trigger === 'webhook'));
    } catch (err) {
      await observing.catch(() => undefined);
      if (!opts.dryRun) ctx.drift.suspect(repo, suspects); // for the next pass
      log.error({ err: (err as Error).message }, 'cannot read the repo');
      return { repo, error: (err as Error).message, stacks: [] };
    }
    const { commit, rendered } = head;
    const clog = log.child({ commit: commit.sha.slice(0, 7) });
    const base: PassRow = { repo, commit, trigger: opts.trigger, actor: opts.actor ?? 'berth' };

    if (rendered.errors.length > 0) {
      const message = rendered.errors.map(formatError).join('\n');
      clog.error({ errors: message }, 'the repo does not render (its berth.yaml or root Compose file): nothing changes');
      await observing.catch(() => undefined);
      if (!opts.dryRun) ctx.recorder.invalid(base, undefined, rendered.errors);
      return { repo, commit, error: message, stacks: [] };
    }

    const observed = await observing;
    if (clog.isLevelEnabled('debug')) clog.debug({ hosts: observed.live.map((l) => `${l.host}: ${l.containers.length} container(s)`) }, 'hosts observed');
    const hosts = hostsOf(observed);
    const outcomes: StackOutcome[] = [];
    const work = this.#work(repo, head, opts, observed, base, clog, outcomes);
    // Stacks are independent: one whose host is slow does not hold up the others.
    // one registry request per image and pass; the repo's pins read once, when a stack needs them
    let pins: Map<string, Pin> | undefined;
    const pinning: Pinning = { digests: new Map(), pins: () => (pins ??= ctx.pins.forRepo(repo)) };
    // per stack: the attempt whose apply failed, how often in a row, and when automatic triggers may try again (decide.ts nextBackoff)
    const backoffs = ctx.memory.backoffs(repo);
    // Each stack first lets what the hosts answered in (a macrotask turn): planning the next stacks is
    // synchronous work, and would otherwise hold back the answer a changing stack awaits (its image's
    // digest, its images readied) until every other stack is planned.
    const one = async (w: Work) => {
      await turn();
      return this.#stack(repo, w, head, opts, hosts, suspects, base, clog.child({ stack: w.name }), fromWorld, pinning, backoffs);
    };
    outcomes.push(...(await mapLimit(work, ctx.config.hostConcurrency, one)));
    if (!opts.dryRun && !opts.ignoreHolds) ctx.schedules()?.install(repo, commit, rendered);
    const unreachable = observed.statuses.filter((st) => !hosts.reachable.has(st.name)).map((st) => st.name);
    // What the pass changed is listed again, so that reads (and the event stream) see the hosts as the
    // pass left them, not as events report them one by one; only where something reads the world,
    // and only the stacks it changed on the hosts it changed them on.
    if (outcomes.some((o) => o.syncId !== undefined) && ctx.watched()) {
      const changed = changedOn(outcomes);
      await (changed ? ctx.fleet.relist(changed, clog) : ctx.fleet.observe(clog)).catch(() => undefined);
    }
    if (!opts.dryRun) ctx.changed(); // its syncs, holds released, back-offs
    return { repo, commit, stacks: outcomes, unreachable };
  }

  /** The stacks the pass works on: Git's (less those held, and the invalid, whose outcome is pushed to `outcomes` now) and those only left on the hosts (pruned). */
  #work(repo: string, { commit, rendered }: Head, opts: PassOptions, observed: Observed, base: PassRow, log: Logger, outcomes: StackOutcome[]): Work[] {
    const ctx = this.#ctx;
    const wanted = (name: string) => !opts.stack || opts.stack === name;
    const work: Work[] = [];
    const holds = new Map(opts.ignoreHolds ? [] : ctx.holds.list(repo).map((h) => [h.stack, h])); // one query, not one per stack
    const owners = nameOwners(repo, rendered, observed, ctx);
    for (const r of rendered.stacks.filter((s) => wanted(s.def.name))) {
      const owner = owners.get(r.def.name);
      if (owner) {
        const error = `the stack name ${r.def.name} is repo ${owner.repo}'s (${owner.why}): this repo's stack of that name is not applied; rename it`;
        log.error({ stack: r.def.name, owner: owner.repo }, 'the stack name belongs to another repo: nothing applied');
        if (!opts.dryRun) ctx.recorder.once({ ...base, kind: 'sync.failed', stack: r.def.name, outcome: 'error', message: error });
        outcomes.push({ stack: r.def.name, status: 'failed', errors: [error] });
        continue;
      }
      const hold = holds.get(r.def.name);
      const effect = holdEffect(hold, commit.sha, Boolean(opts.dryRun));
      if (hold && effect === 'released') {
        ctx.holds.release(repo, r.def.name);
        ctx.audit.append({
          ...base,
          kind: 'stack.resumed',
          stack: r.def.name,
          actor: 'berth',
          message: `a new commit ends the ${hold.reason} hold set by ${hold.actor}`,
        });
        log.info({ stack: r.def.name }, 'a new commit ends the hold');
      } else if (hold && effect === 'holding') {
        const at = hold.commitSha ? ` at ${hold.commitSha.slice(0, 7)}` : '';
        outcomes.push({
          stack: r.def.name,
          status: 'paused',
          errors: [`held${at} by ${hold.actor} since ${hold.since} (${hold.reason}): a resume, or a new commit, ends it`],
          hint: ['resume', r.def.name],
        });
        continue;
      }
      if (!r.ok) {
        log.error({ stack: r.def.name, errors: r.errors.map(formatError).join('\n') }, 'stack is invalid: its containers stay as they are');
        if (!opts.dryRun) ctx.recorder.invalid({ ...base, stack: r.def.name }, r.def.name, r.errors);
        outcomes.push({ stack: r.def.name, status: 'invalid', errors: r.errors.map(formatError) });
      } else work.push({ name: r.def.name, stack: r.stack, prune: r.stack.sync.prune });
    }
    const inGit = new Set(rendered.stacks.map((s) => s.def.name));
    const liveStacks = new Set(observed.live.flatMap((h) => h.containers.filter((c) => c.repo === repo).map((c) => c.stack)));
    for (const name of [...liveStacks].filter((s) => !inGit.has(s) && wanted(s)).sort()) work.push({ name, stack: null, prune: true });
    return work;
  }

  /**
   * The replicas with their images pinned to a registry digest (docs/how-it-works.md, "Images"): a
   * spec's pin as recorded, or as its running replicas carry it; else, when the pass creates or
   * replaces a replica of that spec, the registry's digest now (recorded for the next passes). A
   * dry run asks no registry: a spec not applied yet shows unpinned. An image no registry answers
   * for (the host's own, or a registry that refuses: its pull then says why) runs unpinned.
   */
  async #pin(
    repo: string,
    stack: string,
    desired: DesiredContainer[],
    own: LiveHost[],
    base: PassRow,
    opts: PassOptions,
    { digests, pins: repoPins }: Pinning,
    log: Logger,
  ): Promise<DesiredContainer[]> {
    const commitSha = base.commit?.sha ?? '';
    const ctx = this.#ctx;
    const groups = new Map<string, DesiredContainer[]>();
    for (const d of desired) {
      if (!pinnable(d)) continue;
      const key = pinKey(stack, d.service, d.specHash);
      const group = groups.get(key);
      if (group) group.push(d);
      else groups.set(key, [d]);
    }
    if (groups.size === 0) return desired;
    const pins = repoPins();
    const live = own.flatMap((h) => h.containers);
    const chosen = new Map<string, string>();
    const unpinned = new Set<string>();
    const record = (key: string, d: DesiredContainer, digest: string) => {
      chosen.set(key, digest);
      if (opts.dryRun || pins.get(key)?.digest === digest) return;
      const pin = { repo, stack, service: d.service, specHash: d.specHash, image: d.create.Image!, digest, commitSha };
      ctx.pins.set(pin);
      pins.set(key, { ...pin, time: new Date().toISOString() });
    };
    // What is known is taken at once (a no-op pass over 500 stacks awaits nothing here); only specs
    // about to be applied for the first time, and followed images (x-berth.watch-image), ask a registry.
    const asking: Array<Promise<void>> = [];
    for (const [key, replicas] of groups) {
      const d = replicas[0]!;
      const running = live.filter((c) => c.service === d.service && c.specHash === d.specHash);
      const known = pins.get(key)?.digest ?? running.find((c) => c.digest)?.digest;
      if (known) record(key, d, known);
      const applied = replicas.every((r) => running.some((c) => c.host === r.host && c.slot === r.slot));
      const host = ctx.fleet.hosts.get(d.host);
      const follow = d.watchImage && !opts.dryRun;
      if (!follow && (known || applied || opts.dryRun)) continue;
      if (!host) continue;
      const image = d.create.Image!;
      let asked = digests.get(image);
      if (!asked) {
        // a spec pinned already is a registry's image: no look at the host's own images first
        asked = host.registryDigest(image, { registryImage: known !== undefined });
        digests.set(image, asked);
      }
      asking.push(
        asked.then(
          (digest) => {
            if (!digest && !known) unpinned.add(key);
            if (!digest || digest === known) return;
            // a followed tag that moved: to a digest whose rollout failed, only a person (or a new commit) takes it again
            if (known && ctx.pins.refused(repo, stack, d.service, digest)) return;
            record(key, d, digest);
            if (known) {
              const message = `${image}: ${shortDigest(known)} -> ${shortDigest(digest)}`;
              ctx.audit.append({ ...base, kind: 'image.updated', stack, service: d.service, message });
              log.info({ service: d.service, image, from: known, to: digest }, 'the image moved: its replicas roll to it');
            }
          },
          (err: unknown) => {
            if (!known) unpinned.add(key);
            log.warn({ service: d.service, image, err: (err as Error).message }, 'the registry did not pin the image: it runs as it is');
          },
        ),
      );
    }
    await Promise.all(asking);
    if (chosen.size === 0 && unpinned.size === 0) return desired;
    return desired.map((d) => {
      const key = pinnable(d) ? pinKey(stack, d.service, d.specHash) : undefined;
      const digest = key && chosen.get(key);
      if (digest) return pinned(d, digest);
      return key && unpinned.has(key) ? { ...d, unpinned: true } : d;
    });
  }

  /** One stack: placed, planned against what runs, decided on (decide.ts) and, when that says so, applied. */
  async #stack(
    repo: string,
    w: Work,
    { commit }: Head,
    opts: PassOptions,
    hosts: Hosts,
    suspects: Suspects,
    base: PassRow,
    log: Logger,
    fromWorld: boolean,
    pinning: Pinning,
    backoffs: Map<string, Backoff>,
  ): Promise<StackOutcome> {
    const ctx = this.#ctx;
    let plan: StackPlan;
    let unseen: CurrentReplica[];
    try {
      const own = hosts.index.stack(repo, w.name);
      // where the replicas were last placed: those of a host that stops answering stay assigned there until it is lost
      const waiting = hosts.waiting.size ? ctx.memory.placement(repo, w.name).filter((r) => hosts.waiting.has(r.host)) : [];
      const current = [...currentReplicas(own, repo, w.name), ...waiting];
      const placed = w.stack ? placeStack(repo, w.stack, hosts.index.hostsFor(hosts.infos, repo, w.name), commit.sha, current) : [];
      hosts.index.placed(
        repo,
        w.name,
        placed.map((d) => ({ host: d.host, reserved: reservedOf(d.create.Labels) })),
      );
      if (!opts.dryRun) ctx.memory.setPlacement(repo, w.name, placed);
      // replicas kept on a host that does not answer wait for it
      const desired = await this.#pin(
        repo,
        w.name,
        placed.filter((d) => hosts.reachable.has(d.host)),
        own,
        base,
        opts,
        pinning,
        log,
      );
      unseen = placed.filter((d) => !hosts.reachable.has(d.host)).map((d) => ({ service: d.service, slot: d.slot, host: d.host }));
      if (!fromWorld) await ctx.drift.inspect(own, repo, w.name, desired, suspects);
      plan = planStack({ repo, stack: w.stack, stackName: w.name, commit: commit.sha, desired, live: own, prune: w.prune });
    } catch (err) {
      if (!(err instanceof PlacementError)) throw err;
      log.error({ err: err.message }, 'cannot place the stack');
      if (!opts.dryRun) ctx.recorder.once({ ...base, kind: 'sync.failed', stack: w.name, outcome: 'error', message: err.message });
      return { stack: w.name, status: 'failed', errors: [err.message] };
    }
    if (plan.conflicts) {
      const message = plan.conflicts.join('; ');
      log.error({ conflicts: plan.conflicts }, 'the stack reaches what is not its own: nothing applied');
      if (!opts.dryRun) ctx.recorder.once({ ...base, kind: 'sync.failed', stack: w.name, outcome: 'error', message });
      return { stack: w.name, status: 'failed', errors: plan.conflicts, plan, unseen };
    }
    const diff = planDiff(plan);
    if (log.isLevelEnabled('debug')) log.debug({ actions: plan.actions.map(describeAction) }, 'planned'); // a pass over 1,000 containers builds no strings for nothing
    const decision = decide({
      plan,
      stack: w.stack,
      trigger: opts.trigger,
      dryRun: Boolean(opts.dryRun),
      commit: commit.sha,
      attempt: attemptOf(commit.sha, plan),
      now: Date.now(),
      backoff: backoffs.get(w.name),
      // read only when it can matter: a history query per stack would be paid by every no-op pass
      lastSucceeded: !opts.dryRun && hasChanges(plan) ? ctx.syncs.lastSucceeded(repo, w.name)?.commitSha : undefined,
    });
    switch (decision.kind) {
      case 'report':
        return { stack: w.name, status: decision.status, plan, diff, unseen };
      case 'nothing':
        return { stack: w.name, status: 'unchanged', plan, unseen };
      case 'drift-reported':
        ctx.recorder.once({
          ...base,
          kind: 'drift.detected',
          stack: w.name,
          outcome: 'error',
          diff,
          message: `${decision.summary}; selfHeal is off: nothing changed`,
        });
        log.warn({ drift: decision.summary }, 'drift detected; selfHeal is off: out of sync');
        return { stack: w.name, status: 'outofsync', plan, diff, unseen };
      case 'auto-off':
        log.info('out of sync; auto-sync is off for this stack: sync it by hand');
        return { stack: w.name, status: 'outofsync', plan, diff, unseen };
      case 'backing-off':
        return { stack: w.name, status: 'outofsync', plan, diff, errors: [decision.error], unseen, hint: ['sync', '--stack', w.name] };
      case 'apply': {
        const outcome = await ctx.recorder.apply(plan, w.stack, diff, { ...base, trigger: decision.trigger, stack: w.name }, log, {
          drift: decision.drift,
          waitHealthy: opts.waitHealthy,
        });
        const backoff = nextBackoff(backoffs.get(w.name), attemptOf(commit.sha, plan), outcome.status, Date.now());
        // a followed image's rollout that rolled back or paused: its digest is not taken again by
        // itself, and the spec's pin goes back to the digest that ran before
        if (outcome.status === 'rolledback' || outcome.status === 'paused') {
          for (const m of followedMoves(plan)) {
            ctx.pins.refuse(repo, w.name, m.service, m.digest);
            if (m.from) ctx.pins.set({ repo, stack: w.name, service: m.service, specHash: m.specHash, image: m.image, digest: m.from, commitSha: commit.sha });
          }
        }
        if (backoff || backoffs.has(w.name)) ctx.memory.setBackoff(repo, w.name, backoff);
        return { ...outcome, unseen };
      }
    }
  }
}

/**
 * The stack names of a repo's head that another repo holds: stack names are unique across the
 * engine (containers, networks and holds are named after them). A name belongs to the repo whose
 * containers run under it; when none runs, to the first repo of the engine config that declares it.
 */
function nameOwners(repo: string, rendered: RenderResult, observed: Observed, ctx: PassContext): Map<string, { repo: string; why: string }> {
  const owners = new Map<string, { repo: string; why: string }>();
  const mine = new Set(rendered.stacks.map((s) => s.def.name));
  // Only a name another repo runs or declares is looked at further: the common pass allocates nothing per stack.
  const runningElsewhere = new Map<string, Set<string>>();
  for (const h of observed.live) {
    for (const c of h.containers) {
      if (c.repo !== repo && mine.has(c.stack)) runningElsewhere.set(c.stack, (runningElsewhere.get(c.stack) ?? new Set()).add(c.repo));
    }
  }
  const declaredElsewhere = new Set<string>();
  for (const r of ctx.config.repos) {
    if (r.name !== repo) for (const name of ctx.declaredStacks(r.name)) if (mine.has(name)) declaredElsewhere.add(name);
  }
  for (const name of new Set([...runningElsewhere.keys(), ...declaredElsewhere])) {
    const running = [...(runningElsewhere.get(name) ?? [])];
    if (observed.live.some((h) => h.containers.some((c) => c.repo === repo && c.stack === name))) running.unshift(repo);
    const declaredBy = ctx.config.repos.filter((r) => r.name === repo || [...ctx.declaredStacks(r.name)].includes(name)).map((r) => r.name);
    const owner = nameOwner(repo, running, declaredBy);
    if (owner) owners.set(name, owner);
  }
  return owners;
}

/** A pass's pinning: per image, its registry digest as resolved in this pass (undefined: the host's own image, or no registry answered); the repo's pins. */
interface Pinning {
  digests: Map<string, Promise<string | undefined>>;
  pins: () => Map<string, Pin>;
}

/** The replacements of a plan that roll a followed image (x-berth.watch-image) to another digest, `from` the one that runs. */
function followedMoves(plan: StackPlan): Array<{ service: string; specHash: string; image: string; digest: string; from?: string }> {
  return plan.actions.flatMap((a) => {
    if (a.kind !== 'replace' || !a.desired.watchImage) return [];
    const digest = a.desired.create.Labels?.[LABEL.digest];
    if (!digest || a.live.specHash !== a.desired.specHash || a.live.digest === digest) return [];
    const image = withoutDigest(a.desired.create.Image ?? '');
    return [{ service: a.service, specHash: a.desired.specHash, image, digest, ...(a.live.digest ? { from: a.live.digest } : {}) }];
  });
}

/** What an apply tries, for its back-off: the commit, and the digests its followed images moved to (a tag that moves again is a new attempt). */
function attemptOf(commitSha: string, plan: StackPlan): string {
  const moves = followedMoves(plan);
  return moves.length
    ? `${commitSha} ${moves
        .map((m) => `${m.service}@${m.digest}`)
        .sort()
        .join(' ')}`
    : commitSha;
}

/** The hosts' states as placement sees them, and their containers grouped once per stack and per host. */
function hostsOf({ statuses, live }: Observed): Hosts {
  const reachable = new Set(live.map((l) => l.host));
  return {
    reachable,
    waiting: new Set(statuses.filter((st) => !reachable.has(st.name) && st.state !== 'lost').map((st) => st.name)),
    infos: statuses.map((st) => ({
      name: st.name,
      labels: st.labels,
      state: reachable.has(st.name) ? 'up' : st.state === 'lost' ? 'lost' : 'unreachable',
      cpus: st.cpus,
      memoryBytes: st.memoryBytes,
    })),
    index: new LiveIndex(live),
  };
}

/**
 * Per host, the stacks a pass's syncs changed there, each with whether its networks or volumes
 * changed there too: every host a synced stack's plan names (its containers, kept or not, its
 * networks, volumes and hooks). Undefined when a sync has no plan to say it: then every host is
 * listed again.
 */
export function changedOn(outcomes: readonly StackOutcome[]): Map<string, Map<string, boolean>> | undefined {
  const on = new Map<string, Map<string, boolean>>();
  const note = (host: string, stack: string, objects: boolean) => {
    const stacks = on.get(host) ?? on.set(host, new Map()).get(host)!;
    stacks.set(stack, objects || (stacks.get(stack) ?? false));
  };
  for (const o of outcomes) {
    if (o.syncId === undefined) continue;
    const plan = o.plan;
    if (!plan) return undefined;
    for (const a of plan.actions) note(a.host, plan.stack, false);
    for (const h of plan.hooks) for (const host of [h.desired.host, ...h.live.map((l) => l.host)]) note(host, plan.stack, false);
    for (const x of [...plan.networks, ...plan.volumes, ...plan.removeNetworks, ...(plan.recreateNetworks ?? [])]) note(x.host, plan.stack, true);
  }
  return on;
}
