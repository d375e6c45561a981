/**
 * Apply: walks a stack's plan on the hosts and reports every step (docs/how-it-works.md, "Rollouts").
 *
 * Order: networks and volumes; the pre-sync hooks (when the plan changes anything); on a host
 * where a network is made anew (its ipam changed), the stack's containers there and then that
 * network, created again; removals of what Git no longer has (and duplicates); then the services, each once those it depends on are done
 * (services that do not depend on each other go together; after a failure no other starts): its new replicas,
 * then its changed ones in batches of `update_config.parallelism`, each replica counted as updated
 * once it runs and is healthy for `monitor`; a failing batch applies `failure_action` (pause,
 * continue, or rollback by `rollback_config`); then the replicas no longer wanted. A job's new
 * containers start together and are waited for (at once when a service waits for its completion,
 * else at the end); a scheduled job's are only created. Then the post-sync hooks; last the
 * networks of removed stacks.
 *
 * A replica that fails (exits, is killed for memory, turns unhealthy, cannot start) is read for its
 * evidence (evidence.ts) at once, before anything is removed or replaced: it goes with the failing
 * step, and its summary into the rollout's reason. A rollout that goes well reads nothing more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import type { ContainerSpec, DependsOn, FileDelivery, RenderedStack, ServiceSpec, UpdateConfig } from '../model.ts';
import { asideName, describeAction, hasChanges, isHook, replicaName, type Action, type Hook, type StackPlan } from '../diff/plan.ts';
import { chunk, replicaLabel } from '../diff/rollout.ts';
import { maskEnv } from '../schedule/container.ts';
import { specFromInspect } from './docker-host.ts';
import type { HostOps } from './host-ops.ts';
import { readEvidence, type Evidence, type FailedReplica } from './evidence.ts';
import { waitReady, type NotReadyCode, type Readiness } from './health.ts';
import { waitJob } from './job.ts';

interface Where {
  host: string;
  service: string;
  slot: number;
}

export type StepEvent =
  | { kind: 'network.created' | 'volume.created' | 'network.removed'; host: string; name: string }
  /** a service's image built on a host: the build's args masked as environment values are (by name, or as one of the stack's secrets) */
  | {
      kind: 'image.built';
      host: string;
      service: string;
      ref: string;
      args: Record<string, string>;
      extraHosts: string[];
      network?: string;
      target?: string;
    }
  | (Where & {
      kind: 'container.created' | 'container.replaced' | 'container.removed';
      containerBefore?: string;
      containerAfter?: string;
      reason: string;
    })
  | (Where & { kind: 'container.healthy'; containerAfter: string; reason: string })
  /** `evidence`: what the failing container showed (absent when it could not be read) */
  | (Where & { kind: 'container.unhealthy'; containerAfter: string; reason: string; evidence?: Evidence })
  /**
   * a replacement undone: the new container (`containerBefore`) removed, the old one (`containerAfter`)
   * back under its name and started; `failed`, the new one could not start (`evidence` of it)
   */
  | (Where & { kind: 'container.restored'; containerBefore?: string; containerAfter: string; reason: string; failed: boolean; evidence?: Evidence })
  | { kind: 'rollout.batch'; service: string; batch: number; of: number; replicas: string[]; rollback: boolean }
  | { kind: 'rollout.failed' | 'rollout.paused' | 'rollback.started' | 'rollback.succeeded' | 'rollback.failed'; service: string; reason: string }
  | (Where & { kind: 'job.started'; containerBefore?: string; containerAfter: string; reason: string })
  | (Where & { kind: 'job.succeeded' | 'job.failed'; containerAfter: string; exitCode?: number; reason: string });

export type ApplyOutcome = 'synced' | 'failed' | 'paused' | 'rolledback';

export interface ApplyResult {
  outcome: ApplyOutcome;
  /** what went wrong, with the daemon's or the health check's words */
  error?: string;
  /** the service whose rollout failed, when one did */
  service?: string;
  /** what the replica whose failure ended it showed (evidence.ts), when one did */
  evidence?: Evidence;
}

/**
 * What a rollout does to a replica as it does it, besides its audited steps: the old container
 * stopped, the new one started, the new one ready (running, and healthy when it was waited for:
 * counted as updated). `rollback`: a rollback does it, putting the old one back.
 */
export type ProgressEvent =
  | (Where & { kind: 'stopped'; container: string; rollback: boolean })
  | (Where & { kind: 'started'; container: string; rollback: boolean })
  | (Where & { kind: 'ready'; container: string; health: 'healthy' | 'running'; rollback: boolean });

type Host = (name: string) => HostOps;
type Emit = (e: StepEvent) => void;
type Tell = (e: ProgressEvent) => void;
/** Gets a container's image onto its host (HostOps.prepare), reporting a build. */
type Ready = (host: string, spec: ContainerSpec) => Promise<void>;

export interface ApplyOptions {
  /** every new replica, not only those another service waits for, is waited for until it runs and is healthy (`berth sync --wait`) */
  waitHealthy?: boolean;
  /** told of each replica's stops, starts and readiness as they happen (the progress of `berth sync --wait`, the dashboard, the metrics) */
  onProgress?: Tell;
}

/**
 * Carries out `plan` for `stack` (null for a stack removed from Git). `onStep` is called after each
 * completed step, before the next starts, so that an audit row exists for everything that happened.
 */
export async function applyPlan(
  plan: StackPlan,
  stack: RenderedStack | null,
  // the executor needs only these of a host (HostOps): a recording fake stands in for DockerHost in tests
  hosts: ReadonlyMap<string, HostOps>,
  onStep: Emit,
  { waitHealthy = false, onProgress = () => {} }: ApplyOptions = {},
): Promise<ApplyResult> {
  const host: Host = (name) => {
    const h = hosts.get(name);
    if (!h) throw new Error(`host ${name} is not registered`);
    return h;
  };
  // the contents of the stack's secrets, by hash: a build arg holding one is masked in what is reported
  const secrets = new Set(stack?.services.flatMap((s) => s.files.flatMap((f) => (f.kind === 'secret' ? [f.hash] : []))));
  const ready: Ready = async (name, spec) => {
    if (!(await host(name).prepare(spec)) || !spec.build) return;
    const b = spec.build.spec;
    onStep({
      kind: 'image.built',
      host: name,
      service: spec.build.service,
      ref: spec.build.ref,
      args: maskEnv(b.args, secrets),
      extraHosts: b.extraHosts,
      ...(b.network === undefined ? {} : { network: b.network }),
      ...(b.target === undefined ? {} : { target: b.target }),
    });
  };
  // hooks run only around a sync that changes something
  const hooks = (phase: Hook['phase']) => (hasChanges(plan) ? plan.hooks.filter((h) => h.phase === phase) : []);
  /** jobs not waited for at once: their runs end before the sync does, whatever happens meanwhile */
  const pending: Array<Promise<ApplyResult | undefined>> = [];
  try {
    const fixed = startFirstNetworks(stack);
    await Promise.all(
      plan.networks.map(async (n) => {
        await host(n.host).createNetwork(n.spec, plan.repo, plan.stack, { fixedSubnet: fixed.has(n.spec.key) });
        onStep({ kind: 'network.created', host: n.host, name: n.spec.name });
      }),
    );
    await Promise.all(
      plan.volumes.map(async (v) => {
        await host(v.host).createVolume(v.spec, plan.repo, plan.stack);
        onStep({ kind: 'volume.created', host: v.host, name: v.spec.name });
      }),
    );
    const pre = await runHooks(hooks('pre-sync'), host, ready, onStep);
    if (pre) return pre;
    const services = new Set(stack?.services.map((s) => s.name));
    const removals = plan.actions.filter((a): a is Removal => a.kind === 'remove');
    // A network made anew: the stack's containers on its host go first (Docker removes no network a container is on), then it
    const renewing = new Set((plan.recreateNetworks ?? []).map((n) => n.host));
    const first = removals.filter((a) => renewing.has(a.host));
    await Promise.all(first.map((a) => remove(host(a.host), a, onStep)));
    for (const n of plan.recreateNetworks ?? []) {
      await host(n.host).removeNetwork(n.spec.name);
      onStep({ kind: 'network.removed', host: n.host, name: n.spec.name });
      await host(n.host).createNetwork(n.spec, plan.repo, plan.stack, { fixedSubnet: fixed.has(n.spec.key) });
      onStep({ kind: 'network.created', host: n.host, name: n.spec.name });
    }
    const early = removals.filter((a) => !first.includes(a) && (!services.has(a.service) || a.cause === 'duplicate'));
    await Promise.all(early.map((a) => remove(host(a.host), a, onStep)));

    // Each service starts once the services it depends on are done; the others go together.
    let stopped: ApplyResult | undefined;
    const applyService = async (svc: ServiceSpec): Promise<void> => {
      const actions = plan.actions.filter((a) => a.service === svc.name);
      const waitedFor = (condition: DependsOn['condition']) =>
        stack!.services.some((s) => s.dependsOn.some((d) => d.service === svc.name && d.condition === condition));
      if (svc.job) {
        const { done } = await launchJobs(svc, actions, host, ready, onStep, waitedFor('service_completed_successfully'));
        pending.push(done);
        if (waitedFor('service_completed_successfully')) {
          const failed = await done;
          if (failed) throw new Halt(failed);
        }
      } else {
        const result = await rollService(svc, actions, host, ready, onStep, onProgress, waitHealthy || waitedFor('service_healthy'));
        if (result.outcome !== 'synced') throw new Halt(result);
      }
      const late = removals.filter((a) => a.service === svc.name && !early.includes(a) && !first.includes(a));
      await Promise.all(late.map((a) => remove(host(a.host), a, onStep)));
    };
    const runs = new Map<string, Promise<void>>();
    for (const svc of stack?.services ?? []) {
      if (isHook(svc.job)) continue;
      const deps = svc.dependsOn.flatMap((d) => runs.get(d.service) ?? []);
      const run = Promise.all(deps)
        .then(() => (stopped ? undefined : applyService(svc)))
        .catch((err: unknown) => {
          stopped ??= err instanceof Halt ? err.result : { outcome: 'failed', error: (err as Error).message, service: svc.name, ...evidenceOf(err) };
          throw err;
        });
      run.catch(() => {}); // awaited below; a dependent sees the failure through `stopped`
      runs.set(svc.name, run);
    }
    await Promise.allSettled(runs.values());
    if (stopped) return stopped;
    const failedJob = (await Promise.all(pending)).find((r) => r !== undefined);
    if (failedJob) return failedJob;
    const post = await runHooks(hooks('post-sync'), host, ready, onStep);
    if (post) return post;
    for (const n of plan.removeNetworks) {
      await host(n.host).removeNetwork(n.name);
      onStep({ kind: 'network.removed', host: n.host, name: n.name });
    }
    return { outcome: 'synced' };
  } catch (err) {
    return { outcome: 'failed', error: (err as Error).message, service: (err as { service?: string }).service, ...evidenceOf(err) };
  } finally {
    await Promise.all(pending);
  }
}

/** The evidence an error carries (StepFailure), as ApplyResult's field. */
const evidenceOf = (err: unknown): { evidence?: Evidence } => (err instanceof StepFailure ? { evidence: err.evidence } : {});

/** A step that failed with a container's evidence: a new replica that could not start. */
class StepFailure extends Error {
  readonly evidence: Evidence;
  readonly service: string;
  constructor(message: string, service: string, evidence: Evidence) {
    super(message);
    this.service = service;
    this.evidence = evidence;
  }
}

/** A service's apply ended without syncing it: the stack's result. */
class Halt extends Error {
  readonly result: ApplyResult;
  constructor(result: ApplyResult) {
    super(result.error ?? result.outcome);
    this.result = result;
  }
}

/** Runs the hooks one after the other, each replacing its previous runs' containers; the first that fails stops them. */
async function runHooks(hooks: Hook[], host: Host, ready: Ready, onStep: Emit): Promise<ApplyResult | undefined> {
  for (const hook of hooks) {
    const d = hook.desired;
    const w: Where = { host: d.host, service: d.service, slot: d.slot };
    for (const old of hook.live) await host(old.host).stopAndRemove(old.id);
    const h = host(d.host);
    const id = await ready(d.host, d)
      .then(() => h.createAndStart(d, { prepared: true }))
      .catch((err: unknown) => {
        throw new Error(`${hook.phase} hook ${d.service} on ${d.host} could not start: ${(err as Error).message}`, { cause: err });
      });
    onStep({ ...w, kind: 'job.started', containerBefore: hook.live[0]?.id, containerAfter: id, reason: `${hook.phase} hook` });
    const run = await waitJob(h, id, d.job!.timeoutMs);
    onStep({ ...w, kind: run.ok ? 'job.succeeded' : 'job.failed', containerAfter: id, exitCode: run.exitCode, reason: `${hook.phase} hook: ${run.reason}` });
    if (!run.ok) {
      const then = hook.phase === 'pre-sync' ? '; nothing was updated, the stack runs as before' : '';
      return { outcome: 'failed', service: d.service, error: `${hook.phase} hook ${d.service} failed on ${d.host}: ${run.reason}${then}` };
    }
  }
  return undefined;
}

/**
 * A job's changed replicas: the old container goes, the new one is created and (unless the job is
 * scheduled) started, all at once. `done` resolves, once they have all exited, to the failure if
 * any failed; with `waitForKept`, running containers kept from before are waited for too.
 */
async function launchJobs(
  svc: ServiceSpec,
  actions: Action[],
  host: Host,
  ready: Ready,
  onStep: Emit,
  waitForKept: boolean,
): Promise<{ done: Promise<ApplyResult | undefined> }> {
  const job = svc.job!;
  const scheduled = job.kind === 'schedule';
  const launched = await Promise.all(
    actions
      .flatMap((a) => (a.kind === 'create' || a.kind === 'replace' ? [a] : []))
      .map(async (a) => {
        const h = host(a.host);
        try {
          await ready(a.host, a.desired);
          if (a.kind === 'replace') await h.stopAndRemove(a.live.id);
          const id = scheduled ? await h.create(a.desired, { prepared: true }) : await h.createAndStart(a.desired, { prepared: true });
          const before = a.kind === 'replace' ? a.live.id : undefined;
          onStep({
            ...where(a),
            kind: a.kind === 'create' ? 'container.created' : 'container.replaced',
            containerBefore: before,
            containerAfter: id,
            reason: a.reason,
          });
          return { w: where(a), id };
        } catch (err) {
          throw new Error(`${describeAction(a)} failed: ${(err as Error).message}`, { cause: err });
        }
      }),
  );
  if (scheduled) return { done: Promise.resolve(undefined) };
  const kept = waitForKept ? actions.flatMap((a) => (a.kind === 'keep' && a.live.state === 'running' ? [{ w: where(a), id: a.live.id }] : [])) : [];
  const runs = [...launched, ...kept].map(async ({ w, id }) => {
    const run = await waitJob(host(w.host), id, job.timeoutMs).catch((err: unknown) => ({ ok: false, exitCode: undefined, reason: (err as Error).message }));
    onStep({ ...w, kind: run.ok ? 'job.succeeded' : 'job.failed', containerAfter: id, exitCode: run.exitCode, reason: run.reason });
    return { w, run };
  });
  const done = Promise.all(runs).then((results): ApplyResult | undefined => {
    const failed = results.filter((r) => !r.run.ok);
    if (failed.length === 0) return undefined;
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more of ${results.length})` : '';
    return { outcome: 'failed', service: svc.name, error: `${svc.name}: job ${label(failed[0].w)} failed${more}: ${failed[0].run.reason}` };
  });
  return { done };
}

type Removal = Extract<Action, { kind: 'remove' }>;
type Replace = Extract<Action, { kind: 'replace' }>;

async function remove(h: HostOps, a: Removal, onStep: Emit): Promise<void> {
  await h.stopAndRemove(a.live.id).catch((err: unknown) => {
    throw Object.assign(new Error(`${describeAction(a)} failed: ${(err as Error).message}`, { cause: err }), { service: a.service });
  });
  onStep({ kind: 'container.removed', host: a.host, service: a.service, slot: a.slot, containerBefore: a.live.id, reason: a.reason });
}

/** A replica changed by this rollout: what it was (to put back) and what runs in its slot now. */
interface Changed {
  where: Where;
  before?: Dockerode.ContainerInspectInfo;
  /** the files berth had written into it */
  files: FileDelivery[];
  /** the container in the slot now: the new one, or the old one when the replacement gave up */
  current: string;
  replaced: boolean;
  /** stop-first: the old container, stopped and kept aside until the rollout ends; put back by a rollback, else removed */
  aside?: string;
}

async function rollService(
  svc: ServiceSpec,
  actions: Action[],
  host: Host,
  ready: Ready,
  onStep: Emit,
  tell: Tell,
  needsHealthy: boolean,
): Promise<ApplyResult> {
  // Images first, on every host that needs them (pulled or built): a failing build or pull leaves the old replicas alone.
  // Meanwhile what the first batch's replicas were (for a rollback) is read, so that no replacement waits
  // for it; the later batches' once the images are ready, while the first batch goes.
  const starts = actions.filter((a) => a.kind === 'create' || a.kind === 'replace');
  const replaces = actions.filter((a) => a.kind === 'replace');
  const was = new Map<string, Promise<Was>>();
  const readAhead = (batch: Replace[]) => {
    for (const a of batch) {
      const w = readWas(host(a.host), a.live.id);
      w.catch(() => {}); // awaited by its replacement; not an unhandled rejection meanwhile
      was.set(a.live.id, w);
    }
  };
  const [first = [], ...later] = chunk(replaces, svc.update.parallelism);
  readAhead(first);
  const images = new Map(starts.map((a) => [`${a.host} ${a.desired.create.Image}`, a]));
  await Promise.all(
    [...images.values()].map((a) =>
      ready(a.host, a.desired).catch((err: unknown) => {
        throw new Error(`${svc.name}: ${(err as Error).message}`);
      }),
    ),
  );

  readAhead(later.flat());

  // New replicas start together; they wait for health when another service depends on it.
  const creates = actions.filter((a) => a.kind === 'create');
  const created = await Promise.all(
    creates.map(async (a) => {
      const h = host(a.host);
      const id = await h.createAndStart(a.desired, { prepared: true }).catch(async (err: unknown) => {
        const message = `${describeAction(a)} failed: ${(err as Error).message}`;
        const failed = {
          ...where(a),
          name: a.desired.name,
          code: 'start-error' as const,
          reason: (err as Error).message,
          error: err,
          env: a.desired.create.Env,
        };
        throw new StepFailure(message, svc.name, await readEvidence(h, failed));
      });
      onStep({ ...where(a), kind: 'container.created', containerAfter: id, reason: a.reason });
      tell({ ...where(a), kind: 'started', container: id, rollback: false });
      const r = await waitReady(h, id, { health: needsHealthy, monitorMs: svc.update.monitorMs });
      const evidence = r.ok ? undefined : await witness(h, where(a), id, a.desired.name, r);
      if (needsHealthy || !r.ok) report(onStep, where(a), id, r, evidence);
      if (r.ok) tell({ ...where(a), kind: 'ready', container: id, health: r.health, rollback: false });
      return { r, w: where(a), evidence };
    }),
  );
  const notUp = created.find((c) => !c.r.ok);
  if (notUp && !notUp.r.ok) {
    return {
      outcome: 'failed',
      service: svc.name,
      error: `${svc.name}: a new replica is not up: ${notUp.evidence?.summary ?? `${label(notUp.w)}: ${notUp.r.reason}`}`,
      ...(notUp.evidence ? { evidence: notUp.evidence } : {}),
    };
  }

  // Changed replicas roll in batches.
  /** start-first: the old replicas of earlier batches, draining and then going while the next batch starts */
  const finishing: Array<Promise<void>> = [];
  try {
    return await rollBatches(svc, replaces, host, onStep, tell, finishing, was);
  } finally {
    await Promise.allSettled(finishing);
  }
}

/** rollService's changed replicas, batch after batch; `finishing` gets each replacement's `finished`; `was`: what each old replica was, by id. */
async function rollBatches(
  svc: ServiceSpec,
  replaces: Replace[],
  host: Host,
  onStep: Emit,
  tell: Tell,
  finishing: Array<Promise<void>>,
  was: Map<string, Promise<Was>>,
): Promise<ApplyResult> {
  const config = svc.update;
  const batches = chunk(replaces, config.parallelism);
  const changed: Changed[] = [];
  const settle = () => Promise.all(finishing);
  let failures = 0;
  /** the rollout's first failure: what its reason tells */
  let firstFailure: { w: Where; reason: string; evidence?: Evidence } | undefined;
  for (const [i, batch] of batches.entries()) {
    if (i > 0 && config.delayMs > 0) await sleep(config.delayMs);
    onStep({ kind: 'rollout.batch', service: svc.name, batch: i + 1, of: batches.length, replicas: batch.map(label), rollback: false });
    const results = await Promise.all(
      batch.map(async (a) => {
        const h = host(a.host);
        const wait = (id: string) => waitReady(h, id, { health: true, monitorMs: config.monitorMs });
        const r = await replaceReplica(h, a.live.id, a.desired, config.order, wait, {
          where: where(a),
          tell,
          rollback: false,
          prepared: true,
          was: was.get(a.live.id),
        });
        changed.push({ where: where(a), before: r.before, files: r.files, current: r.current, replaced: r.replaced, aside: r.aside });
        if (r.replaced) onStep({ ...where(a), kind: 'container.replaced', containerBefore: a.live.id, containerAfter: r.current, reason: a.reason });
        if (r.restored)
          onStep({
            ...where(a),
            kind: 'container.restored',
            containerBefore: r.newId || undefined,
            containerAfter: r.current,
            reason: r.restored,
            failed: true,
            ...(r.evidence ? { evidence: r.evidence } : {}),
          });
        else report(onStep, where(a), r.newId, r.readiness, r.evidence);
        if (r.readiness.ok) tell({ ...where(a), kind: 'ready', container: r.newId, health: r.readiness.health, rollback: false });
        finishing.push(r.finished);
        return { w: where(a), readiness: r.readiness, evidence: r.evidence };
      }),
    );
    const failed = results.flatMap((r) => (r.readiness.ok ? [] : [{ w: r.w, reason: r.readiness.reason, evidence: r.evidence }]));
    failures += failed.length;
    firstFailure ??= failed[0];
    // a batch that went well says nothing more of the failures before it (failure_action continue)
    if (failed.length === 0 || failures / replaces.length <= config.maxFailureRatio) continue;
    const first = firstFailure ?? failed[0]!;
    const said = first.evidence?.summary ?? `${label(first.w)}: ${first.reason}`;
    const reason = `${failures} of ${replaces.length} replica(s) failed (batch ${i + 1} of ${batches.length}): ${said}`;
    const evidence = first.evidence ? { evidence: first.evidence } : {};
    onStep({ kind: 'rollout.failed', service: svc.name, reason });
    if (config.failureAction === 'continue') continue;
    await settle();
    if (config.failureAction === 'pause') {
      await removeAside(changed, host);
      onStep({ kind: 'rollout.paused', service: svc.name, reason });
      return { outcome: 'paused', service: svc.name, error: `${svc.name}: rollout paused: ${reason}`, ...evidence };
    }
    return { ...(await rollBack(svc, changed, host, onStep, tell, reason)), ...evidence };
  }
  await settle();
  await removeAside(changed, host);
  return { outcome: 'synced' };
}

/**
 * The old containers a stop-first rollout kept aside, removed once it ends without a rollback
 * (removing each while the next batch starts would slow that batch on the daemon).
 */
async function removeAside(changed: Changed[], host: Host): Promise<void> {
  await Promise.all(changed.map((c) => c.aside && host(c.where.host).remove(c.aside)));
}

/** Puts every replica this rollout changed back to the container it replaced, by `rollback_config`. */
async function rollBack(svc: ServiceSpec, changed: Changed[], host: Host, onStep: Emit, tell: Tell, why: string): Promise<ApplyResult> {
  const config = svc.rollback;
  const undo = changed.filter((c) => c.replaced && c.before);
  onStep({ kind: 'rollback.started', service: svc.name, reason: `${why}; rolling back ${undo.length} replica(s)` });
  const batches = chunk(undo, config.parallelism);
  let failed: string | undefined;
  for (const [i, batch] of batches.entries()) {
    if (i > 0 && config.delayMs > 0) await sleep(config.delayMs);
    onStep({ kind: 'rollout.batch', service: svc.name, batch: i + 1, of: batches.length, replicas: batch.map((c) => label(c.where)), rollback: true });
    await Promise.all(
      batch.map(async (c) => {
        const h = host(c.where.host);
        const ready = (id: string) => waitReady(h, id, { monitorMs: config.monitorMs });
        let readiness: Readiness;
        let evidence: Evidence | undefined;
        if (c.aside) {
          // the old container is still there, kept aside: it comes back as it was
          await restore(h, c.aside, slotName(c.before!), c.current);
          onStep({
            ...c.where,
            kind: 'container.restored',
            containerBefore: c.current,
            containerAfter: c.aside,
            reason: 'rollback: the old container, kept aside, runs again',
            failed: false,
          });
          readiness = await ready(c.aside);
          evidence = readiness.ok ? undefined : await witness(h, c.where, c.aside, slotName(c.before!), readiness);
          report(onStep, c.where, c.aside, readiness, evidence);
          if (readiness.ok) tell({ ...c.where, kind: 'ready', container: c.aside, health: readiness.health, rollback: true });
        } else {
          const r = await replaceReplica(h, c.current, specFromInspect(c.before!, c.files), config.order, ready, { where: c.where, tell, rollback: true });
          await r.finished;
          if (r.aside) await h.remove(r.aside);
          readiness = r.readiness;
          evidence = r.evidence;
          if (r.replaced) onStep({ ...c.where, kind: 'container.replaced', containerBefore: c.current, containerAfter: r.current, reason: 'rollback' });
          if (r.restored)
            onStep({
              ...c.where,
              kind: 'container.restored',
              containerBefore: r.newId || undefined,
              containerAfter: r.current,
              reason: r.restored,
              failed: true,
              ...(r.evidence ? { evidence: r.evidence } : {}),
            });
          else report(onStep, c.where, r.newId, readiness, r.evidence);
          if (readiness.ok) tell({ ...c.where, kind: 'ready', container: r.newId, health: readiness.health, rollback: true });
        }
        if (!readiness.ok) failed ??= evidence?.summary ?? `${label(c.where)}: ${readiness.reason}`;
      }),
    );
    if (failed && config.failureAction === 'pause') break;
  }
  if (failed) {
    onStep({ kind: 'rollback.failed', service: svc.name, reason: failed });
    return { outcome: 'failed', service: svc.name, error: `${svc.name}: ${why}; the rollback failed too: ${failed}` };
  }
  onStep({ kind: 'rollback.succeeded', service: svc.name, reason: why });
  return { outcome: 'rolledback', service: svc.name, error: `${svc.name}: rolled back: ${why}` };
}

/** A container as it was before its replacement: what a rollback puts back. */
interface Was {
  /** the container that was there, as it was */
  before?: Dockerode.ContainerInspectInfo;
  /** the files berth had written into it, read back before it went */
  files: FileDelivery[];
}

async function readWas(h: HostOps, id: string): Promise<Was> {
  const before = await h.inspect(id);
  return { before, files: before ? await h.readFiles(before) : [] };
}

interface Replaced extends Was {
  /** the container started for the new spec (kept or not) */
  newId: string;
  readiness: Readiness;
  /** the container in the slot afterwards */
  current: string;
  /** whether the new container took the slot */
  replaced: boolean;
  /** set when the new container could not be created or started and the old one was put back: the daemon's reason */
  restored?: string;
  /** what the new container showed when it failed (not ready, or not started) */
  evidence?: Evidence;
  /** stop-first, the new container started: the old one, stopped and renamed aside, for the caller to put back or remove */
  aside?: string;
  /**
   * Settles once the old container is gone and the new one has its name: after the drain of a
   * start-first update, which the rollout does not wait for before its next batch.
   */
  finished: Promise<void>;
}

/**
 * Replaces one container by a new one. A replacement is final only once the new container runs
 * and is ready (`wait`); until then the old container is kept (docs/how-it-works.md, "Rollouts").
 *
 * stop-first: the old container is stopped and, meanwhile, renamed aside (`NAME-old-ID`) and the
 * new one created under the slot's name; the new one starts once the old has stopped. Should the
 * new one fail to be created or started (a port taken, a bind source missing, an entrypoint that
 * does not exist, ...), it is removed and the old one gets its name back and runs again
 * (`restored`). Else the old one is returned as `aside`, stopped, for the caller to remove or to
 * put back (a rollback).
 * An old container that does not run (exited, or kept aside by an interrupted replacement) is
 * replaced stop-first whatever `order` says: there is nothing to keep serving.
 *
 * start-first: the new one starts beside the old, off the service's name; once it is ready it takes
 * the service's name and the old one gives it up (no new request reaches it, those under way finish).
 * The old one then stops after `DRAIN_MS` and the new one takes its container name, in `finished`.
 * If the new one cannot start or never gets ready, it is removed and the old one serves on.
 * A new container that fails is read for its evidence before it is removed (`evidence`).
 * `prepared`: the rollout readied the new spec's image already (DockerHost.prepare), so creating it does not again;
 * `was`: the old container as it was, read already (else read here); `tell`: told of the stops and starts.
 */
async function replaceReplica(
  h: HostOps,
  oldId: string,
  next: ContainerSpec,
  order: UpdateConfig['order'],
  wait: (id: string) => Promise<Readiness>,
  { where: w, tell, rollback, prepared = false, was }: ReplaceContext,
): Promise<Replaced> {
  const { before, files } = await (was ?? readWas(h, oldId));
  const done = Promise.resolve();
  const started = (id: string) => tell({ ...w, kind: 'started', container: id, rollback });
  /** the new container's readiness, and its evidence when it is not ready */
  const waited = async (id: string, name: string): Promise<{ readiness: Readiness; evidence?: Evidence }> => {
    const readiness = await wait(id);
    return readiness.ok ? { readiness } : { readiness, evidence: await witness(h, w, id, name, readiness) };
  };
  if (!before) {
    const newId = await h.createAndStart(next, { prepared });
    started(newId);
    return { before, files, newId, ...(await waited(newId, next.name)), current: newId, replaced: true, finished: done };
  }
  if (order === 'stop-first' || !before.State.Running) {
    const result = await stopFirst(h, before, next, { prepared, where: w, tell, rollback });
    if ('restored' in result) {
      const restored = `the new container did not start, the old one runs again: ${result.restored}`;
      const readiness: Readiness = { ok: false, reason: restored, code: 'start-error' };
      return { before, files, newId: result.newId, readiness, evidence: result.evidence, current: oldId, replaced: false, restored, finished: done };
    }
    const { newId } = result;
    started(newId);
    return { before, files, newId, ...(await waited(newId, next.name)), current: newId, replaced: true, aside: oldId, finished: done };
  }
  // A replica left under the temporary name (berth stopped between the old one's removal and the
  // rename in `finished`) takes its own name back first: the new one needs the temporary one.
  if (before.Name === `/${next.name}-next`) await h.rename(oldId, next.name);
  let newId = '';
  const nextName = `${next.name}-next`;
  try {
    newId = await h.create(next, { name: nextName, aliases: false, prepared });
    await h.start(newId, nextName);
  } catch (err) {
    const reason = `the new container did not start, the old one serves on: ${(err as Error).message}`;
    const readiness: Readiness = { ok: false, reason, code: 'start-error' };
    const evidence = await witness(h, w, newId, nextName, readiness, { error: err, env: next.create.Env });
    if (newId) await h.remove(newId).catch(() => {});
    return { before, files, newId, readiness, evidence, current: oldId, replaced: false, finished: done };
  }
  started(newId);
  const { readiness, evidence } = await waited(newId, nextName);
  if (!readiness.ok) {
    await h.stopAndRemove(newId);
    return { before, files, newId, readiness, evidence, current: oldId, replaced: false, finished: done };
  }
  await h.joinService(newId, next);
  await h.drain(oldId);
  const finished = (async () => {
    await sleep(DRAIN_MS); // requests already sent to the old replica finish; no new one reaches it
    await h.stopAndRemove(oldId);
    tell({ ...w, kind: 'stopped', container: oldId, rollback });
    await h.rename(newId, next.name);
  })();
  finished.catch(() => {}); // awaited by the rollout; not an unhandled rejection meanwhile
  return { before, files, newId, readiness, current: newId, replaced: true, finished };
}

/**
 * stop-first (see replaceReplica): the new container, started; or, when it could not be created
 * or started, `restored` with the daemon's reason (the old container runs again under its name).
 * A failure to stop the old container, or to put it back, is thrown.
 */
async function stopFirst(
  h: HostOps,
  before: Dockerode.ContainerInspectInfo,
  next: ContainerSpec,
  { prepared, where: w, tell, rollback }: { prepared: boolean; where: Where; tell: Tell; rollback: boolean },
): Promise<{ newId: string } | { newId: string; restored: string; evidence: Evidence }> {
  const oldId = before.Id;
  const name = slotName(before);
  const asideAs = asideName(name, oldId);
  // The stop goes at once; the create as soon as the old container has left the name (a rename, much shorter than a stop).
  const aside = before.Name === `/${asideAs}` ? Promise.resolve() : h.rename(oldId, asideAs);
  const [stopped, created] = await Promise.allSettled([h.stop(oldId), aside.then(() => h.create(next, { prepared }))]);
  if (stopped.status === 'rejected') {
    await restore(h, oldId, name, created.status === 'fulfilled' ? created.value : undefined).catch(() => {});
    throw stopped.reason as Error;
  }
  tell({ ...w, kind: 'stopped', container: oldId, rollback });
  const newId = created.status === 'fulfilled' ? created.value : '';
  try {
    if (created.status === 'rejected') throw created.reason;
    await h.start(newId, next.name);
    return { newId };
  } catch (err) {
    const reason = (err as Error).message;
    // read before the new container goes: how it ended (an exit code), what it said
    const evidence = await witness(h, w, newId, next.name, { reason, code: 'start-error' }, { error: err, env: next.create.Env });
    await restore(h, oldId, name, newId || undefined).catch((restoreErr: unknown) => {
      throw new Error(`${reason}; and the old container ${oldId.slice(0, 12)} could not be put back: ${(restoreErr as Error).message}`, { cause: restoreErr });
    });
    return { newId, restored: reason, evidence };
  }
}

/** Undoes a stop-first replacement: the new container (if any) goes, the old one gets `name` back and starts. */
async function restore(h: HostOps, oldId: string, name: string, newId?: string): Promise<void> {
  if (newId) await h.remove(newId);
  const info = await h.inspect(oldId);
  if (info && info.Name !== `/${name}`) await h.rename(oldId, name);
  await h.start(oldId, name);
}

/** How long a start-first update leaves the old replica running, off the service's name, before stopping it. */
const DRAIN_MS = 1000;

/** The replica's name of a container as inspected (without the suffix when it was kept aside). */
const slotName = (i: Dockerode.ContainerInspectInfo): string => replicaName({ name: i.Name.replace(/^\//, ''), id: i.Id });

const where = (a: Where): Where => ({ host: a.host, service: a.service, slot: a.slot });

/** A waited-for container's step: healthy, or unhealthy with why (the last lines of output of one that exited or restarted) and its evidence. */
function report(onStep: Emit, w: Where, id: string, r: Readiness, evidence?: Evidence): void {
  if (r.ok) return onStep({ ...w, kind: 'container.healthy', containerAfter: id, reason: r.health });
  const output = evidence && (r.code === 'exited' || r.code === 'restarted') && evidence.logs.length ? evidence.logs.slice(-5) : [];
  const reason = output.length ? `${r.reason}; last output: ${output.join(' | ')}` : r.reason;
  onStep({ ...w, kind: 'container.unhealthy', containerAfter: id, reason, ...(evidence ? { evidence } : {}) });
}

/** How replaceReplica's new container is placed and told of. */
interface ReplaceContext {
  where: Where;
  tell: Tell;
  /** a rollback's replacement: the old spec comes back */
  rollback: boolean;
  prepared?: boolean;
  was?: Promise<Was>;
}

/**
 * The evidence of a replica that failed (evidence.ts), read now, before it is removed or replaced:
 * `id` the container ('' or undefined when none was created), `name` its name; `error`, the
 * daemon's answer when it could not start, `env` the environment it was to have (masks that answer).
 */
function witness(
  h: HostOps,
  w: Where,
  id: string | undefined,
  name: string,
  r: { reason: string; code: NotReadyCode },
  more: Pick<FailedReplica, 'error' | 'env'> = {},
): Promise<Evidence> {
  return readEvidence(h, { ...w, id: id || undefined, name, code: r.code, reason: r.reason, ...more });
}

const label = (w: Where) => replicaLabel(w);

/** The keys of the stack's networks that a start-first service joins (by its update or its rollback): those need a configured subnet (DockerHost.createNetwork). */
export function startFirstNetworks(stack: RenderedStack | null): Set<string> {
  const out = new Set<string>();
  for (const s of stack?.services ?? []) {
    if (s.update.order !== 'start-first' && s.rollback.order !== 'start-first') continue;
    for (const n of s.networks) out.add(n.key);
  }
  return out;
}
