/**
 * What a pass does with a stack once its plan is made: the engine's decisions, as pure functions
 * of plain data (the plan, the stack's sync policy, its hold, its history, the trigger), so that
 * they are tested without Docker or Git (docs/how-it-works.md, "Drift" and "Rollouts").
 */
import type { Hold } from '../audit/holds.ts';
import type { Backoff } from '../audit/memory.ts';
import type { Trigger } from '../audit/log.ts';
import { describeAction, hasChanges, isRerun, type StackPlan } from '../diff/plan.ts';
import type { RenderedStack } from '../model.ts';

export interface DecisionInput {
  plan: StackPlan;
  /** null: the stack is gone from Git (its containers are pruned) */
  stack: RenderedStack | null;
  trigger: Trigger;
  dryRun: boolean;
  /** the commit the pass is at */
  commit: string;
  /** what an apply would try: the commit and, with followed images, the digests they resolved to (default: the commit); back-offs are kept per attempt */
  attempt?: string;
  /** the commit of the stack's last sync that succeeded */
  lastSucceeded?: string;
  backoff?: Backoff;
  now: number;
}

export type Decision =
  /** a dry run: report what would happen */
  | { kind: 'report'; status: 'planned' | 'unchanged' }
  /** nothing to do, and nobody asked */
  | { kind: 'nothing' }
  /** the hosts drifted and selfHeal (or auto-sync) is off: record it, change nothing */
  | { kind: 'drift-reported'; summary: string }
  /** changes found, but auto-sync is off for the stack: a person syncs it */
  | { kind: 'auto-off' }
  /** its last apply of this commit failed and waits out its back-off (or a new commit, when `until` is Infinity) */
  | { kind: 'backing-off'; error: string }
  /** apply the plan, recorded under `trigger`; `drift`: it puts back what changed on the hosts */
  | { kind: 'apply'; trigger: Trigger; drift: boolean };

/**
 * Drift: the hosts moved away from a commit already applied (not a new commit to roll out). A
 * replica whose spec hash differs from Git's at an applied commit was not changed by hand: what
 * Git renders to changed (a secret rotated in the repo's secrets folder), and that is no drift.
 * Re-running a failed job is no drift either: nobody changed anything.
 */
export function isDrift({
  plan,
  stack,
  trigger,
  commit,
  lastSucceeded,
}: Pick<DecisionInput, 'plan' | 'stack' | 'trigger' | 'commit' | 'lastSucceeded'>): boolean {
  const rendersAnew = plan.actions.some((a) => a.kind === 'replace' && a.live.specHash !== a.desired.specHash);
  const drifted = hasChanges({ ...plan, actions: plan.actions.filter((a) => !isRerun(a)) });
  return drifted && stack !== null && !rendersAnew && (trigger === 'drift' || lastSucceeded === commit);
}

export function decide(input: DecisionInput): Decision {
  const { plan, stack, trigger, dryRun, commit, backoff, now } = input;
  const attempt = input.attempt ?? commit;
  const changes = hasChanges(plan);
  if (dryRun) return { kind: 'report', status: changes ? 'planned' : 'unchanged' };
  const manual = trigger === 'manual';
  if (!changes && !manual) return { kind: 'nothing' };
  const drift = isDrift(input);
  if (drift && !manual && stack && (!stack.sync.selfHeal || !stack.sync.auto)) {
    return {
      kind: 'drift-reported',
      summary: plan.actions
        .filter((a) => a.kind !== 'keep' && !isRerun(a))
        .map(describeAction)
        .join('; '),
    };
  }
  if (!manual && stack && !stack.sync.auto) return { kind: 'auto-off' };
  if (!manual && backoff?.commit === attempt && backoff.until > now) {
    const error =
      backoff.until === Infinity
        ? 'the rollout of this commit failed and stopped; it waits for a new commit or a sync by hand'
        : `the last ${backoff.failures} attempt(s) failed; the next in ${Math.ceil((backoff.until - now) / 1000)} s (or sync by hand)`;
    return { kind: 'backing-off', error };
  }
  return { kind: 'apply', trigger: drift && !manual ? 'drift' : trigger, drift };
}

/**
 * The back-off after an apply: failed applies are retried by automatic triggers after 10 s, 20 s,
 * 40 s ... up to 10 min; a rollout that paused or rolled back is not retried by them at all. A new
 * commit or a success ends it (undefined).
 */
export function nextBackoff(prev: Backoff | undefined, commit: string, status: string, now: number): Backoff | undefined {
  if (status !== 'failed' && status !== 'paused' && status !== 'rolledback') return undefined;
  const failures = prev?.commit === commit ? prev.failures + 1 : 1;
  const until = status === 'failed' ? now + Math.min(600_000, 10_000 * 2 ** (failures - 1)) : Infinity;
  return { commit, failures, until };
}

/** What a stack's hold means for a pass at `head`: none, released by a new commit, or holding the stack where it is. */
export function holdEffect(hold: Hold | undefined, head: string, dryRun: boolean): 'none' | 'released' | 'holding' {
  if (!hold || dryRun) return 'none';
  return hold.headSha !== head ? 'released' : 'holding';
}

/**
 * Which other repo a stack name belongs to, if any: the repo whose containers run under it
 * (`running`, the repos that have some), else the first in the engine config of the repos that
 * declare it (`declaredBy`, in config order). undefined: it is `repo`'s.
 */
export function nameOwner(repo: string, running: readonly string[], declaredBy: readonly string[]): { repo: string; why: string } | undefined {
  if (running.includes(repo)) return undefined;
  if (running.length > 0) return { repo: running[0]!, why: 'its containers run under that name' };
  const first = declaredBy[0];
  return first !== undefined && first !== repo ? { repo: first, why: "it comes first in berth's config" } : undefined;
}
