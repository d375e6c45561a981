/**
 * Apply: walks a stack's plan and carries it out on the hosts, step by step, reporting each step.
 * Replace is stop-first: the old replica is stopped and removed before its successor starts.
 * The first failing step stops the walk; what ran is reported, what did not is left for the next pass.
 */
import type { RenderedStack } from '../model.ts';
import { describeAction, type Action, type StackPlan } from '../diff/plan.ts';
import { extraNetworks } from '../schedule/container.ts';
import type { DockerHost } from './docker-host.ts';

export type StepEvent =
  | { kind: 'network.created' | 'volume.created' | 'network.removed'; host: string; name: string }
  | {
      kind: 'container.created' | 'container.replaced' | 'container.removed';
      host: string;
      service: string;
      slot: number;
      containerBefore?: string;
      containerAfter?: string;
      reason: string;
    };

export interface ApplyResult {
  ok: boolean;
  /** what failed, with the daemon's message */
  error?: string;
  /** the action that failed, when one did */
  failed?: Action;
}

/**
 * Carries out `plan` for `stack` (null for a stack removed from Git). `onStep` is called after each
 * completed step, before the next starts, so that an audit row exists for everything that happened.
 */
export async function applyPlan(
  plan: StackPlan,
  stack: RenderedStack | null,
  hosts: Map<string, DockerHost>,
  onStep: (e: StepEvent) => void,
): Promise<ApplyResult> {
  const host = (name: string) => {
    const h = hosts.get(name);
    if (!h) throw new Error(`host ${name} is not registered`);
    return h;
  };
  try {
    for (const n of plan.networks) {
      await host(n.host).createNetwork(n.spec, plan.repo, plan.stack);
      onStep({ kind: 'network.created', host: n.host, name: n.spec.name });
    }
    for (const v of plan.volumes) {
      await host(v.host).createVolume(v.spec, plan.repo, plan.stack);
      onStep({ kind: 'volume.created', host: v.host, name: v.spec.name });
    }
    // Services one after another in start order; the replicas of one service in parallel when
    // they are new, one at a time when they replace a running one (update_config's default).
    const batches = groupBatches(plan.actions);
    for (const batch of batches) {
      const results = await Promise.allSettled(
        batch.map(async (a) => runAction(a, stack, host(a.host), onStep)),
      );
      const failure = results.findIndex((r) => r.status === 'rejected');
      if (failure >= 0) {
        const reason = (results[failure] as PromiseRejectedResult).reason as Error;
        return { ok: false, error: `${describeAction(batch[failure])} failed: ${reason.message}`, failed: batch[failure] };
      }
    }
    for (const n of plan.removeNetworks) {
      await host(n.host).removeNetwork(n.name);
      onStep({ kind: 'network.removed', host: n.host, name: n.name });
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Consecutive creates (and removes) of one service run together; every replace is its own batch. */
function groupBatches(actions: Action[]): Action[][] {
  const batches: Action[][] = [];
  for (const a of actions) {
    if (a.kind === 'keep') continue;
    const last = batches.at(-1);
    const joinable = (x: Action) => x.kind !== 'replace' && x.kind === a.kind && x.service === a.service;
    if (last && a.kind !== 'replace' && joinable(last[0])) last.push(a);
    else batches.push([a]);
  }
  return batches;
}

async function runAction(a: Action, stack: RenderedStack | null, h: DockerHost, onStep: (e: StepEvent) => void): Promise<void> {
  const where = { host: a.host, service: a.service, slot: a.slot };
  const networksFor = (service: string) => {
    const svc = stack?.services.find((s) => s.name === service);
    return stack && svc ? extraNetworks(stack, svc) : [];
  };
  switch (a.kind) {
    case 'create': {
      const id = await h.createAndStart(a.desired, networksFor(a.service));
      onStep({ kind: 'container.created', ...where, containerAfter: id, reason: a.reason });
      return;
    }
    case 'replace': {
      await h.ensureImage(a.desired.create.Image ?? '');
      await h.stopAndRemove(a.live.id);
      const id = await h.createAndStart(a.desired, networksFor(a.service));
      onStep({ kind: 'container.replaced', ...where, containerBefore: a.live.id, containerAfter: id, reason: a.reason });
      return;
    }
    case 'remove':
      await h.stopAndRemove(a.live.id);
      onStep({ kind: 'container.removed', ...where, containerBefore: a.live.id, reason: a.reason });
      return;
    case 'keep':
      return;
  }
}
