/**
 * The order a plan would be rolled out in, as data: what src/apply/execute.ts does with a plan,
 * told before it is done (a plan on a pull request, `berth plan`). Pure: a plan and the stack it
 * was made for in, steps out. docs/how-it-works.md, "Rollouts", says the same order in words.
 */
import type { RenderedStack, UpdateConfig } from '../model.ts';
import { hasChanges, isHook, type Action, type StackPlan } from './plan.ts';

/** A replica as rollouts name it: `web#2@h1` (service, slot, host). */
export const replicaLabel = (r: { service: string; slot: number; host: string }): string => `${r.service}#${r.slot}@${r.host}`;

/** Splits into batches of `size` (0: one batch of everything). */
export function chunk<T>(items: T[], size: number): T[][] {
  if (items.length === 0) return [];
  const n = size <= 0 ? items.length : size;
  return Array.from({ length: Math.ceil(items.length / n) }, (_, i) => items.slice(i * n, i * n + n));
}

/** One service's share of a rollout, in the order it would go. */
export interface ServiceRollout {
  service: string;
  /** a job runs to completion (its containers are replaced all at once); a service rolls */
  kind: 'service' | 'job';
  /** the services it waits for (depends_on): it starts once they are done */
  after: string[];
  /** update_config.order: start-first (the new replica runs before the old one stops) or stop-first */
  order: UpdateConfig['order'];
  /** update_config.parallelism: replicas replaced at once (0: all at once) */
  parallelism: number;
  /** update_config.failure_action: what a failing batch does */
  failureAction: UpdateConfig['failureAction'];
  /** new replicas, started together before the replacements */
  create: string[];
  /** the replacements, batch after batch (a job's: one batch) */
  batches: string[][];
  /** replicas no longer wanted here, removed once the service is done */
  remove: string[];
}

export interface Rollout {
  /** removed before any service starts: what Git no longer has, duplicates, the containers on a network made anew */
  first: string[];
  /** the pre-sync hooks, run one after the other (only when the plan changes something) */
  preSync: string[];
  /** the services with changes, in the order the stack starts them */
  services: ServiceRollout[];
  /** the post-sync hooks */
  postSync: string[];
}

/** The order applying `plan` (made for `stack`; null: the stack is gone from Git) would go in. */
export function rolloutOf(plan: StackPlan, stack: RenderedStack | null): Rollout {
  const changed = hasChanges(plan);
  const hooks = (phase: 'pre-sync' | 'post-sync') => (changed ? plan.hooks.filter((h) => h.phase === phase).map((h) => `${h.service}@${h.desired.host}`) : []);
  const services = new Map((stack?.services ?? []).filter((s) => !isHook(s.job)).map((s) => [s.name, s]));
  const removals = plan.actions.filter((a): a is Extract<Action, { kind: 'remove' }> => a.kind === 'remove');
  const renewing = new Set((plan.recreateNetworks ?? []).map((n) => n.host));
  // as execute.ts: on a host whose network is made anew, then what Git no longer has and duplicates, go first
  const early = removals.filter((a) => renewing.has(a.host) || !services.has(a.service) || a.cause === 'duplicate');
  const steps: ServiceRollout[] = [];
  for (const svc of services.values()) {
    const mine = plan.actions.filter((a) => a.service === svc.name);
    const create = mine.filter((a) => a.kind === 'create').map(replicaLabel);
    const replace = mine.filter((a) => a.kind === 'replace').map(replicaLabel);
    const remove = mine.filter((a) => a.kind === 'remove' && !early.includes(a)).map(replicaLabel);
    if (create.length + replace.length + remove.length === 0) continue;
    const job = svc.job !== undefined;
    steps.push({
      service: svc.name,
      kind: job ? 'job' : 'service',
      after: svc.dependsOn.map((d) => d.service).filter((d) => services.has(d)),
      order: svc.update.order,
      parallelism: svc.update.parallelism,
      failureAction: svc.update.failureAction,
      create,
      batches: job ? chunk(replace, 0) : chunk(replace, svc.update.parallelism),
      remove,
    });
  }
  return { first: early.map(replicaLabel), preSync: hooks('pre-sync'), services: steps, postSync: hooks('post-sync') };
}
