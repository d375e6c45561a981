/** What a pass says of each stack and of the repo: the engine's answers, read by the CLI, the API and the status. */
import type { Evidence } from '../apply/evidence.ts';
import type { CommitInfo } from '../model.ts';
import type { StackPlan } from '../diff/plan.ts';
import type { CurrentReplica } from '../schedule/place.ts';

/**
 * unchanged: nothing to do · synced: changes applied · failed: applying (or placing) failed ·
 * invalid: its manifests are broken · planned: a dry run found changes · outofsync: changes
 * found, but the stack's `sync.auto` is off, or its last failure is waiting out its back-off ·
 * paused: a rollout failed and stopped (failure_action pause) · rolledback: a rollout failed and
 * was rolled back (failure_action rollback). After paused or rolledback, automatic triggers leave
 * the commit alone until a new commit or a manual sync.
 */
export type StackStatus = 'unchanged' | 'synced' | 'failed' | 'invalid' | 'planned' | 'outofsync' | 'paused' | 'rolledback';

export interface StackOutcome {
  stack: string;
  status: StackStatus;
  plan?: StackPlan;
  diff?: string;
  /** what went wrong, in words a person can act on */
  errors?: string[];
  /** what the failing container showed, when a replica's failure ended the sync (src/apply/evidence.ts) */
  evidence?: Evidence;
  syncId?: number;
  /** replicas placed on hosts that do not answer: nothing was done about them */
  unseen?: CurrentReplica[];
  /** the berth command (its arguments) that a person runs next, when the outcome waits for one: ['resume', 'web'] */
  hint?: string[];
}

export interface RepoPass {
  repo: string;
  commit?: CommitInfo;
  /** a repo-wide failure: unreachable repo, broken berth.yaml */
  error?: string;
  stacks: StackOutcome[];
  /** hosts that did not answer during the pass: nothing was done there */
  unreachable?: string[];
}
