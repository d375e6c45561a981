/**
 * What a forge is told of a pull request's plan (docs/notifications.md, "Plans on pull requests"):
 * a commit status `berth/plan` on the head commit, and one comment on the request with the plan,
 * which later plans of the same request edit. Pure builders of plain data; src/notify/deliver.ts
 * sends them through the queue, and remembers each comment's id.
 */
import type { RepoPlan } from '../engine/plans.ts';
import { planMarkdown } from '../diff/report.ts';
import type { ForgeType } from './config.ts';
import type { CommitStatus } from './forges.ts';
import { clip } from './targets.ts';

/** The event name a plan's delivery carries in the notification queue (GET /api/v1/notifications). */
export const PLAN_EVENT = 'plan';

/** The context of the status a plan sets: one per commit, whatever the stacks. */
export const PLAN_CONTEXT = 'berth/plan';

/** A plan queued for a forge: the delivery's payload. */
export interface PlanDelivery {
  repo: string;
  /** the pull request's number (GitLab: the merge request's iid) */
  pull: number;
  /** the commit planned: the status is set on it */
  headSha: string;
  plan: RepoPlan;
}

/** The longest status description each forge takes: GitHub refuses more than 140 characters; berth keeps the others at 255. */
export const DESCRIPTION_MAX: Record<ForgeType, number> = { github: 140, gitlab: 255, gitea: 255, bitbucket: 255 };

/** The longest comment berth writes: GitHub takes 65,536 characters, Bitbucket less; room is left for what a forge adds. */
export const COMMENT_MAX: Record<ForgeType, number> = { github: 60_000, gitlab: 60_000, gitea: 60_000, bitbucket: 30_000 };

/** The status a plan sets on its commit: success when it would apply, failure with the first `file:line:col: message` when not. */
export function planStatus(d: PlanDelivery, forge: ForgeType, publicUrl?: string): CommitStatus {
  const { plan } = d;
  const changing = plan.stacks.filter((s) => s.status === 'planned').length;
  const description =
    plan.verdict === 'failure'
      ? `Does not apply: ${(plan.error ?? 'see the plan').split('\n')[0]}`
      : changing
        ? `Would apply: ${changing} stack(s) change`
        : 'Would apply: nothing changes';
  return {
    sha: d.headSha,
    state: plan.verdict === 'success' ? 'success' : 'failure',
    context: PLAN_CONTEXT,
    description: clip(description, DESCRIPTION_MAX[forge]),
    ...(publicUrl ? { targetUrl: publicUrl } : {}),
  };
}

/** The comment's text for a forge: Markdown, the diff folded in `<details>` where the forge renders it (Bitbucket does not). */
export function planComment(d: PlanDelivery, forge: ForgeType): string {
  return planMarkdown(d.plan, {
    fold: forge !== 'bitbucket',
    maxChars: COMMENT_MAX[forge],
    fullPlan: `berth plan --repo ${d.repo} --ref ${d.headSha}`,
  });
}

/** The id of a comment a forge created, from its answer (every one of the four answers `{ "id": ... }`). */
export function commentIdOf(answer: unknown): string | undefined {
  const id = typeof answer === 'object' && answer !== null ? (answer as { id?: unknown }).id : undefined;
  return typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : typeof id === 'string' && /^[\w-]{1,100}$/.test(id) ? id : undefined;
}
