/**
 * A sync's rollout as it goes: per service, how many of the replicas it changes are updated (their
 * new container runs, and is healthy when waited for) and how many failed, and each replica's step
 * as one line tells it (`web.1@h1 started 5d6e7f8`). Pure: fed the executor's progress events and
 * steps by the Recorder (record.ts), it says what `berth sync --wait`, the dashboard's sync page
 * and the metrics show (the `progress` phase of a SyncEvent).
 */
import type { ProgressEvent, StepEvent } from '../apply/execute.ts';
import { stepLabel } from '../apply/evidence.ts';
import type { ServiceProgress } from '../audit/syncs.ts';
import type { StackPlan } from '../diff/plan.ts';

export type { ServiceProgress };

/** One replica step, as a progress line says it. */
export interface ReplicaStep {
  service: string;
  slot: number;
  host: string;
  /** stopped, started, ready (healthy: its health check said so; running: it runs, nothing else was waited for), failed, restored (a rollback put the old container back), removed */
  step: 'stopped' | 'started' | 'healthy' | 'running' | 'failed' | 'restored' | 'removed';
  /** the spec the container is of: its spec hash, 7 characters (v1: the one it replaces, v2: the new one) */
  spec?: string;
  /** the container, 12 characters */
  container?: string;
  /** from its start to ready, seconds (one decimal) */
  seconds?: number;
  /** a failure, one line: the replica and what it did (Evidence.summary) */
  summary?: string;
  /** true for a rollback's step */
  rollback?: boolean;
}

type ReplicaState = 'pending' | 'started' | 'ready' | 'failed' | 'rolledback';

interface Replica {
  service: string;
  /** the spec it had and the one it gets (short) */
  from?: string;
  to?: string;
  state: ReplicaState;
  /** it failed in this rollout (it stays counted as failed once a rollback puts its old container back) */
  failed: boolean;
  startedAt?: number;
}

const SHORT = 7;
const key = (w: { service: string; slot: number; host: string }) => `${w.service}#${w.slot}@${w.host}`;
const short = (id: string | undefined) => id?.slice(0, 12);

/** The progress of one sync's rollout (the plan it applies). */
export class RolloutProgress {
  readonly #replicas = new Map<string, Replica>();
  /** the specs of the containers the plan removes (no count) */
  readonly #removed = new Map<string, string>();
  /** the services in the plan's order, with whether a rollback of each began */
  readonly #services = new Map<string, { rollingBack: boolean }>();

  constructor(plan: Pick<StackPlan, 'actions'>) {
    for (const a of plan.actions) {
      if (a.kind === 'remove') this.#removed.set(key(a), a.live.specHash.slice(0, SHORT));
      if ((a.kind !== 'create' && a.kind !== 'replace') || a.desired.job) continue;
      this.#services.set(a.service, { rollingBack: false });
      this.#replicas.set(key(a), {
        service: a.service,
        from: a.kind === 'replace' ? a.live.specHash.slice(0, SHORT) : undefined,
        to: a.desired.specHash.slice(0, SHORT),
        state: 'pending',
        failed: false,
      });
    }
  }

  /** Per service (in the plan's order), the replicas the rollout changes and how they fare. */
  services(): ServiceProgress[] {
    return [...this.#services].map(([service, s]) => {
      const mine = [...this.#replicas.values()].filter((r) => r.service === service);
      return {
        service,
        total: mine.length,
        updated: mine.filter((r) => r.state === 'ready').length,
        failed: mine.filter((r) => r.failed).length,
        ...(s.rollingBack ? { rollingBack: true } : {}),
      };
    });
  }

  /** What a progress event of the executor makes of its replica (`now`, ms: its clock). */
  progress(e: ProgressEvent, now: number): ReplicaStep {
    const r = this.#replicas.get(key(e));
    const where = { service: e.service, slot: e.slot, host: e.host, container: short(e.container), ...(e.rollback ? { rollback: true } : {}) };
    // a rollback's new container is of the spec the replica had; the one it stops, of the new one
    const spec = (started: boolean) => (started !== e.rollback ? r?.to : r?.from);
    switch (e.kind) {
      case 'replica.stopped':
        return { ...where, step: 'stopped', ...specOf(spec(false)) };
      case 'replica.started':
        if (r) {
          r.state = e.rollback ? 'rolledback' : 'started';
          r.startedAt = now;
        }
        return { ...where, step: 'started', ...specOf(spec(true)) };
      case 'replica.ready': {
        const seconds = r?.startedAt === undefined ? undefined : Math.round((now - r.startedAt) / 100) / 10;
        if (r) r.state = e.rollback ? 'rolledback' : 'ready';
        return { ...where, step: e.health, ...specOf(spec(true)), ...(seconds === undefined ? {} : { seconds }) };
      }
    }
  }

  /** What an audited step makes of its replica (a failure, a restore, a removal), if anything (`now`, ms: its clock). */
  step(e: StepEvent, now: number): ReplicaStep | undefined {
    if (e.kind === 'rollback.started') {
      const s = this.#services.get(e.service);
      if (s) s.rollingBack = true;
      return undefined;
    }
    if (e.kind === 'container.removed') {
      return { service: e.service, slot: e.slot, host: e.host, step: 'removed', container: short(e.containerBefore), ...specOf(this.#removed.get(key(e))) };
    }
    if (e.kind !== 'container.unhealthy' && e.kind !== 'container.restored') return undefined;
    const r = this.#replicas.get(key(e));
    const where = { service: e.service, slot: e.slot, host: e.host };
    const rollingBack = this.#services.get(e.service)?.rollingBack === true;
    if (e.kind === 'container.restored' && !e.failed) {
      // a rollback started the old container again: its readiness is timed from now
      if (r) {
        r.state = 'rolledback';
        r.startedAt = now;
      }
      return { ...where, step: 'restored', container: short(e.containerAfter), ...specOf(r?.from), rollback: true };
    }
    if (r && !rollingBack) {
      r.state = 'failed';
      r.failed = true;
    }
    const summary = e.evidence?.summary ?? `${stepLabel(e)}: ${e.reason}`;
    const container = e.kind === 'container.unhealthy' ? e.containerAfter : e.containerBefore;
    return {
      ...where,
      step: 'failed',
      container: short(container),
      summary,
      ...specOf(rollingBack ? r?.from : r?.to),
      ...(rollingBack ? { rollback: true } : {}),
    };
  }
}

const specOf = (spec: string | undefined) => (spec === undefined ? {} : { spec });

/** A replica step as one line: `web.1@h1 started 5d6e7f8`, `web.1@h1 healthy 5d6e7f8 (3.1 s)`, or a failure's summary. */
export function stepLine(s: ReplicaStep): string {
  if (s.step === 'failed') return s.summary ?? `${stepLabel(s)} failed`;
  const what = s.rollback && s.step === 'started' ? 'started (rollback)' : s.step;
  return `${stepLabel(s)} ${what}${s.spec ? ` ${s.spec}` : ''}${s.seconds === undefined ? '' : ` (${s.seconds} s)`}`;
}

/** A service's progress in a few words: `web 3/4 updated`, `web 1/4 updated, 1 failed, rolling back`. */
export function progressLine(p: ServiceProgress): string {
  const more = [p.failed ? `${p.failed} failed` : '', p.rollingBack ? 'rolling back' : ''].filter(Boolean);
  return `${p.service} ${p.updated}/${p.total} updated${more.length ? `, ${more.join(', ')}` : ''}`;
}
