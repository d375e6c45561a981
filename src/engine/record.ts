/**
 * Applying a stack's plan as a recorded sync: the sync row, an audit row per step (with its
 * replica's diff), the drift found and corrected, the outcome; and the rows a pass writes once per
 * commit however often it is polled (an invalid manifest, a stack that cannot be placed).
 */
import type { Logger } from 'pino';
import type { DockerHost } from '../apply/docker-host.ts';
import { applyPlan, type ProgressEvent, type StepEvent } from '../apply/execute.ts';
import type { AuditInput, AuditLog } from '../audit/log.ts';
import { stepRow, summarizePlan } from '../audit/steps.ts';
import type { SyncStore } from '../audit/syncs.ts';
import { describeAction, isRerun, planDiff, type StackPlan } from '../diff/plan.ts';
import type { RenderedStack, SourceError } from '../model.ts';
import { formatError } from '../render/index.ts';
import type { SyncEvent } from './events.ts';
import type { StackOutcome } from './outcome.ts';
import { RolloutProgress, type ReplicaStep, type ServiceProgress } from './progress.ts';

/** What every audit row of a pass shares: the repo, the commit, the trigger, who asked. */
export type PassRow = Omit<AuditInput, 'kind'>;

export class Recorder {
  readonly #audit: AuditLog;
  readonly #syncs: SyncStore;
  readonly #hosts: Map<string, DockerHost>;
  readonly #emit: (e: SyncEvent) => void;
  /** the rollouts of the syncs running in this process, by sync id */
  readonly #running = new Map<number, RolloutProgress>();

  /** `emit` is told of each sync's start, progress and end. */
  constructor(audit: AuditLog, syncs: SyncStore, hosts: Map<string, DockerHost>, emit: (e: SyncEvent) => void) {
    this.#audit = audit;
    this.#syncs = syncs;
    this.#hosts = hosts;
    this.#emit = emit;
  }

  /** Appends the row unless the same kind, commit, stack and message is already recorded: polling the same bad commit adds no rows. */
  once(row: AuditInput): void {
    const seen = this.#audit
      .query({ kind: row.kind, commit: row.commit?.sha, stack: row.stack, limit: 1000 })
      .rows.some((r) => r.repo === row.repo && r.stack === row.stack && r.message === row.message);
    if (!seen) this.#audit.append(row);
  }

  /** Per service, the replicas a sync running in this process changes and how they fare so far; undefined for another. */
  progressOf(syncId: number): ServiceProgress[] | undefined {
    return this.#running.get(syncId)?.services();
  }

  invalid(base: PassRow, stack: string | undefined, errors: SourceError[]): void {
    this.once({ ...base, kind: 'manifest.invalid', stack, outcome: 'error', message: errors.map(formatError).join('\n') });
  }

  /** Applies one stack's plan, recording the sync and each step in the audit log. */
  async apply(
    plan: StackPlan,
    stack: RenderedStack | null,
    diff: string,
    base: PassRow,
    log: Logger,
    { drift = false, waitHealthy = false } = {},
  ): Promise<StackOutcome> {
    const changes = plan.actions.filter((a) => a.kind !== 'keep').length;
    for (const orphan of this.#syncs.settleOrphans(plan.repo, plan.stack)) {
      const last = this.#audit.query({ syncId: orphan.id, limit: 1 }).rows[0];
      const step = last ? `; its last step: ${last.kind}${last.service ? ` ${last.service}` : ''}${last.host ? ` on ${last.host}` : ''}` : '';
      this.#audit.append({
        ...base,
        commit: undefined,
        kind: 'sync.failed',
        syncId: orphan.id,
        outcome: 'error',
        message: `sync ${orphan.id} of commit ${orphan.commitSha.slice(0, 7)}: ${orphan.error}${step}`,
      });
      log.warn({ syncId: orphan.id }, orphan.error ?? 'interrupted sync');
    }
    const sync = this.#syncs.start({
      repo: plan.repo,
      stack: plan.stack,
      commitSha: base.commit?.sha ?? '',
      trigger: base.trigger ?? 'manual',
      actor: base.actor ?? 'berth',
      plan: summarizePlan(plan),
      diff,
    });
    const row = { ...base, syncId: sync.id };
    const ids = { id: sync.id, repo: plan.repo, stack: plan.stack };
    const rollout = new RolloutProgress(plan);
    const counted = rollout.services().length > 0;
    this.#running.set(sync.id, rollout);
    this.#emit({ ...ids, phase: 'started' });
    if (drift) this.#drifted(plan, row, log);
    this.#audit.append({ ...row, kind: 'sync.started', diff, message: `${changes} container change(s)${stack ? '' : ', stack removed from Git'}` });
    log.info({ changes }, 'sync started');
    if (counted) this.#emit({ ...ids, phase: 'progress', services: rollout.services() });
    const told = (replica: ReplicaStep | undefined) => {
      if (!replica) return;
      this.#emit({ ...ids, phase: 'progress', replica, services: rollout.services() });
      log.debug({ host: replica.host, service: replica.service, slot: replica.slot, step: replica.step, spec: replica.spec }, 'rollout progress');
    };
    const onStep = (e: StepEvent) => {
      this.#step(plan, e, row, drift, log);
      told(rollout.step(e, Date.now()));
    };
    const onProgress = (e: ProgressEvent) => told(rollout.progress(e, Date.now()));
    let result: Awaited<ReturnType<typeof applyPlan>>;
    try {
      result = await applyPlan(plan, stack, this.#hosts, onStep, { waitHealthy, onProgress });
    } finally {
      this.#running.delete(sync.id);
    }
    const progress = counted ? { progress: rollout.services() } : {};
    const services = counted ? { services: rollout.services() } : {};
    if (result.outcome === 'synced') {
      this.#syncs.finish(sync.id, { outcome: 'succeeded', ...progress });
      this.#audit.append({ ...row, kind: 'sync.succeeded', message: `${changes} container change(s) applied` });
      this.#emit({ ...ids, phase: 'finished', outcome: 'succeeded', ...services });
      log.info('sync succeeded');
      return { stack: plan.stack, status: changes || diff ? 'synced' : 'unchanged', plan, diff, syncId: sync.id };
    }
    const evidence = result.evidence ? { evidence: result.evidence } : {};
    this.#syncs.finish(sync.id, { outcome: 'failed', result: result.outcome, error: result.error, ...evidence, ...progress });
    this.#audit.append({ ...row, kind: 'sync.failed', outcome: 'error', service: result.service, message: result.error });
    this.#emit({ ...ids, phase: 'finished', outcome: 'failed', result: result.outcome, ...services });
    log.error({ err: result.error, outcome: result.outcome, ...(result.evidence ? { evidence: result.evidence.summary } : {}) }, 'sync failed');
    const status = result.outcome === 'rolledback' ? 'rolledback' : result.outcome === 'paused' ? 'paused' : 'failed';
    // polls leave a paused or rolled-back commit alone: a new commit, or a sync by hand, tries again
    const hint = status === 'failed' ? undefined : ['sync', '--stack', plan.stack];
    return { stack: plan.stack, status, plan, diff, errors: [result.error ?? 'failed'], syncId: sync.id, ...evidence, ...(hint ? { hint } : {}) };
  }

  /** Each drifted container: what differs, live against desired, before anything is done about it. */
  #drifted(plan: StackPlan, row: PassRow, log: Logger): void {
    for (const a of plan.actions.filter((x) => x.kind !== 'keep' && !isRerun(x))) {
      this.#audit.append({
        ...row,
        kind: 'drift.detected',
        service: a.service,
        host: a.host,
        containerBefore: a.kind === 'create' ? undefined : a.live.id,
        outcome: 'error',
        diff: planDiff(only(plan, [a])),
        message: describeAction(a),
      });
      log.warn({ host: a.host, service: a.service, slot: a.slot }, `drift: ${describeAction(a)}`);
    }
  }

  /** One step of the rollout: its audit row (with its replica's diff when a container changed), and the drift it corrected. */
  #step(plan: StackPlan, e: StepEvent, row: PassRow, drift: boolean, log: Logger): void {
    const entry = stepRow(e);
    const withDiff = e.kind === 'container.created' || e.kind === 'container.replaced' || e.kind === 'container.removed';
    this.#audit.append({
      ...row,
      ...entry,
      // its own replica's line and patch: the service's whole diff is the sync.started row's, once
      // (on every step it would grow the log with the square of the service's replicas)
      diff:
        withDiff && 'slot' in e
          ? planDiff(
              only(
                plan,
                plan.actions.filter((a) => a.service === e.service && a.host === e.host && a.slot === e.slot),
              ),
            )
          : undefined,
    });
    const rerun = entry.containerBefore !== undefined && plan.actions.some((a) => isRerun(a) && a.live.id === entry.containerBefore);
    if (drift && withDiff && !rerun) {
      const done = { 'container.created': 'recreated', 'container.replaced': 'replaced', 'container.removed': 'removed' }[e.kind];
      this.#audit.append({ ...row, ...entry, kind: 'drift.corrected', message: `${entry.message}: ${done}` });
    }
    const level = entry.outcome === 'error' ? 'warn' : 'info';
    log[level](
      { host: entry.host, service: entry.service, before: entry.containerBefore?.slice(0, 12), after: entry.containerAfter?.slice(0, 12) },
      `${e.kind}: ${entry.message}`,
    );
  }
}

/** The plan with only these container actions: the diff of one container or one service. */
function only(plan: StackPlan, actions: StackPlan['actions']): StackPlan {
  return { ...plan, networks: [], volumes: [], removeNetworks: [], hooks: [], actions };
}
