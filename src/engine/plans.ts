/**
 * A plan of a ref that is not the branch berth applies: what a pull request's head, `berth plan
 * --ref` or `POST /api/v1/repos/:repo/plan` would do to the hosts (docs/notifications.md, "Plans on
 * pull requests"). It is the pass berth runs anyway, as a dry run at another commit: the commit is
 * fetched without moving the branch berth tracks, rendered with the repo's policy, placed on the
 * live hosts and diffed against what runs there (pass.ts), and nothing is applied, recorded or
 * held. `planOf` turns that pass into the plan's data, purely; `makePlan` wires the three steps.
 */
import type { CommitInfo, RenderResult } from '../model.ts';
import type { Action, StackPlan } from '../diff/plan.ts';
import { replicaLabel, rolloutOf, type Rollout } from '../diff/rollout.ts';
import { networkConfig } from '../model.ts';
import { formatError } from '../render/index.ts';
import type { RepoPass } from './outcome.ts';
import type { Head } from './world.ts';

/** success: it renders, the policy takes it, it can be placed; failure: it cannot be applied as it is. */
export type PlanVerdict = 'success' | 'failure';

/** One change to a replica: `web#2@h1` and why. */
export interface ReplicaChange {
  replica: string;
  reason: string;
}

/** What would change on one host for one stack. */
export interface HostChanges {
  host: string;
  create: ReplicaChange[];
  replace: ReplicaChange[];
  remove: ReplicaChange[];
  /** networks and volumes made or removed: `create network web_default`, `create volume web_data`, `remove network old_default` */
  objects: string[];
}

/** One stack's share of a plan. */
export interface StackPlanView {
  stack: string;
  /** planned: it would change something; unchanged: nothing to do; invalid: it does not render or the policy refuses it; failed: it cannot be placed, or reaches what is not its own */
  status: 'planned' | 'unchanged' | 'invalid' | 'failed';
  /** for invalid and failed: `file:line:col: message` where there is a place to name */
  errors?: string[];
  /** the hosts with changes, by name */
  hosts: HostChanges[];
  /** the order the changes would be rolled out in (update_config), when there are any */
  rollout?: Rollout;
  /** the unified diff, live against desired, as `berth diff` prints it */
  diff?: string;
}

export interface RepoPlan {
  repo: string;
  /** what was asked for: a branch, a ref (refs/pull/7/head) or a SHA */
  ref: string;
  commit: { sha: string; author?: string; message?: string };
  verdict: PlanVerdict;
  /** why it would not apply: the first `file:line:col: message`, or what else stops it */
  error?: string;
  stacks: StackPlanView[];
  /** hosts that did not answer: what runs there is unknown, and nothing is planned for them */
  unreachable: string[];
  /** every stack's diff, one after the other */
  diff: string;
}

/** The plan's data from a dry-run pass at the commit, and the render of it (the stacks' update_config). */
export function planOf({ repo, ref, pass, rendered }: { repo: string; ref: string; pass: RepoPass; rendered: RenderResult }): RepoPlan {
  const c = pass.commit;
  const commit = c ? { sha: c.sha, author: c.author, message: c.message } : { sha: '' };
  const stacks = pass.stacks.map((o): StackPlanView => {
    const render = rendered.stacks.find((s) => s.def.name === o.stack);
    const stack = render?.ok ? render.stack : null;
    const status = o.status === 'planned' || o.status === 'unchanged' || o.status === 'invalid' ? o.status : 'failed';
    const hosts = o.plan && status !== 'failed' ? hostChanges(o.plan) : [];
    return {
      stack: o.stack,
      status,
      ...(o.errors?.length && (status === 'invalid' || status === 'failed') ? { errors: o.errors } : {}),
      hosts,
      ...(o.plan && status === 'planned' ? { rollout: rolloutOf(o.plan, stack) } : {}),
      ...(o.diff && status === 'planned' ? { diff: o.diff } : {}),
    };
  });
  // the repo-wide errors (berth.yaml, the root Compose file) first, then the stacks' in the order they render
  const error = rendered.errors[0]
    ? formatError(rendered.errors[0])
    : (pass.error?.split('\n')[0] ??
      stacks.find((s) => s.status === 'invalid')?.errors?.[0] ??
      stacks.find((s) => s.status === 'failed')?.errors?.[0] ??
      (stacks.some((s) => s.status === 'failed') ? 'a stack cannot be placed' : undefined));
  return {
    repo,
    ref,
    commit,
    verdict: error === undefined ? 'success' : 'failure',
    ...(error !== undefined ? { error } : {}),
    stacks,
    unreachable: pass.unreachable ?? [],
    diff: stacks.flatMap((s) => (s.diff ? [s.diff] : [])).join('\n'),
  };
}

/** A plan's changes by host: replicas created, replaced and removed, networks and volumes made or removed. */
export function hostChanges(plan: StackPlan): HostChanges[] {
  const byHost = new Map<string, HostChanges>();
  const at = (host: string) => {
    let h = byHost.get(host);
    if (!h) byHost.set(host, (h = { host, create: [], replace: [], remove: [], objects: [] }));
    return h;
  };
  for (const n of plan.recreateNetworks ?? []) at(n.host).objects.push(`create network ${n.spec.name} anew (${networkConfig(n.spec) ?? "Docker's defaults"})`);
  for (const n of plan.networks) at(n.host).objects.push(`create network ${n.spec.name}`);
  for (const v of plan.volumes) at(v.host).objects.push(`create volume ${v.spec.name}`);
  for (const a of plan.actions) {
    if (a.kind === 'keep') continue;
    at(a.host)[a.kind].push({ replica: replicaLabel(a), reason: (a as Exclude<Action, { kind: 'keep' }>).reason });
  }
  for (const n of plan.removeNetworks) at(n.host).objects.push(`remove network ${n.name}`);
  return [...byHost.values()].sort((a, b) => a.host.localeCompare(b.host));
}

/** What makePlan needs of the engine: the ref fetched (without moving the tracked branch), its render, and a dry-run pass at it. */
export interface PlanSteps {
  fetch(ref: string): Promise<CommitInfo>;
  render(commit: CommitInfo): Promise<RenderResult>;
  dryRun(head: Head): Promise<RepoPass>;
}

/** The plan of `ref` in `repo`: fetched, rendered, and planned against the live hosts; nothing is changed anywhere. */
export async function makePlan(repo: string, ref: string, steps: PlanSteps): Promise<RepoPlan> {
  const commit = await steps.fetch(ref);
  const rendered = await steps.render(commit);
  const pass = await steps.dryRun({ commit, rendered });
  return planOf({ repo, ref, pass, rendered });
}
