/**
 * A plan (src/engine/plans.ts) in words: Markdown for a pull request's comment, plain text for
 * `berth plan`. Pure: plan data in, text out, bounded in size (a forge refuses a comment past its
 * limit: the diff is cut first, saying how much was left out and where to see all of it).
 */
import type { RepoPlan, StackPlanView } from '../engine/plans.ts';
import type { Rollout, ServiceRollout } from './rollout.ts';

export interface MarkdownOptions {
  /** fold a long diff into `<details>` (a forge whose Markdown has no such element: false) */
  fold: boolean;
  /** the most characters the text may have */
  maxChars: number;
  /** a diff longer than this many lines is folded (default 30) */
  foldAbove?: number;
  /** the command that shows the whole plan, named where the diff is cut */
  fullPlan?: string;
}

/** The first line of every comment berth writes on a pull request: it tells berth's comment from a person's. */
export const PLAN_MARKER = '<!-- berth:plan -->';

const short = (sha: string) => sha.slice(0, 7);
/** A value in inline code: backticks in it would end the span early, so they go. */
const code = (text: string) => `\`${text.replaceAll('`', "'")}\``;
/** A code fence longer than any run of backticks in `text`, so that the text cannot close it. */
const fenceFor = (text: string) => '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));

/** `the order in which the services would roll` as one line per service. */
export function rolloutLines(r: Rollout): string[] {
  const lines: string[] = [];
  if (r.first.length) lines.push(`first remove ${r.first.join(', ')}`);
  if (r.preSync.length) lines.push(`run the pre-sync hook(s) ${r.preSync.join(', ')}`);
  for (const s of r.services) lines.push(serviceLine(s));
  if (r.postSync.length) lines.push(`run the post-sync hook(s) ${r.postSync.join(', ')}`);
  return lines;
}

function serviceLine(s: ServiceRollout): string {
  const after = s.after.length ? ` after ${s.after.join(', ')}` : '';
  const how =
    s.kind === 'job'
      ? 'a job: its containers replaced at once'
      : `${s.order}, parallelism ${s.parallelism === 0 ? 'all at once' : s.parallelism}, on failure ${s.failureAction}`;
  const parts = [
    ...(s.create.length ? [`create ${s.create.join(', ')}`] : []),
    ...s.batches.map((b, i) => `batch ${i + 1}/${s.batches.length}: replace ${b.join(', ')}`),
    ...(s.remove.length ? [`then remove ${s.remove.join(', ')}`] : []),
  ];
  return `${s.service}${after} (${how}): ${parts.join('; ')}`;
}

/** What the plan comes to, in one line: `would apply: 2 stack(s) change, 1 unchanged` or why not. */
export function verdictLine(plan: RepoPlan): string {
  if (plan.verdict === 'failure') return `does not apply: ${plan.error ?? 'see below'}`;
  const changing = plan.stacks.filter((s) => s.status === 'planned').length;
  const same = plan.stacks.length - changing;
  if (changing === 0) return `would apply: nothing changes (${plan.stacks.length} stack(s) in sync)`;
  return `would apply: ${changing} stack(s) change${same ? `, ${same} unchanged` : ''}`;
}

/** A stack's changes per host, one line per host. */
function hostLines(s: StackPlanView, name: (text: string) => string): string[] {
  return s.hosts.map((h) => {
    const list = (verb: string, items: Array<{ replica: string; reason: string }>) =>
      items.length ? [`${verb} ${items.map((i) => `${name(i.replica)} (${i.reason})`).join(', ')}`] : [];
    const parts = [...h.objects, ...list('create', h.create), ...list('replace', h.replace), ...list('remove', h.remove)];
    return `${h.host}: ${parts.join('; ')}`;
  });
}

/**
 * The plan as the comment on a pull request: the verdict, per stack what changes on which host and
 * the rollout order, then the diff (in `<details>` when long), at most `maxChars` characters.
 */
export function planMarkdown(plan: RepoPlan, o: MarkdownOptions): string {
  const head = [
    PLAN_MARKER,
    `### berth plan: ${plan.verdict === 'success' ? 'would apply' : 'does not apply'}`,
    '',
    `Repo ${code(plan.repo)} at ${code(short(plan.commit.sha))}${plan.commit.message ? ` (${plan.commit.message.split('\n')[0]!.slice(0, 100)})` : ''}: ${verdictLine(plan)}`,
    ...(plan.unreachable.length ? ['', `Hosts that do not answer, left out of the plan: ${plan.unreachable.map(code).join(', ')}`] : []),
  ];
  const body: string[] = [];
  for (const s of plan.stacks) {
    body.push('', `#### ${code(s.stack)}: ${s.status === 'planned' ? 'changes' : s.status}`);
    for (const e of s.errors ?? []) body.push(`- ${code(e)}`);
    for (const line of hostLines(s, code)) body.push(`- ${line}`);
    if (s.rollout) {
      const lines = rolloutLines(s.rollout);
      if (lines.length) body.push('', 'Rollout:', ...lines.map((l, i) => `${i + 1}. ${l}`));
    }
  }
  const text = [...head, ...body].join('\n');
  if (!plan.diff) return clipText(text, o.maxChars);
  // the diff takes what is left, cut at a line, with what was left out said
  const lines = plan.diff.replace(/\n$/, '').split('\n');
  const fold = o.fold && lines.length > (o.foldAbove ?? 30);
  const fence = fenceFor(plan.diff);
  const open = fold ? ['', `<details><summary>Diff (${lines.length} lines)</summary>`, '', `${fence}diff`] : ['', `${fence}diff`];
  const close = fold ? [fence, '', '</details>'] : [fence];
  const room = o.maxChars - text.length - open.join('\n').length - close.join('\n').length - 200;
  const kept = keepLines(lines, room);
  const cut = lines.length - kept.length;
  const note = cut ? [`… ${cut} more line(s) of the diff${o.fullPlan ? `: ${code(o.fullPlan)} shows them all` : ''}`] : [];
  return clipText([text, ...open, ...kept, ...close, ...note].join('\n'), o.maxChars);
}

/** The plan as `berth plan` prints it. */
export function planText(plan: RepoPlan): string {
  const out = [
    `repo ${plan.repo} @ ${short(plan.commit.sha)}${plan.commit.message ? ` ${plan.commit.message.split('\n')[0]}` : ''} (${plan.ref})`,
    verdictLine(plan),
  ];
  for (const host of plan.unreachable) out.push(`# host ${host} does not answer: what runs there is unknown`);
  for (const s of plan.stacks) {
    out.push(`# ${s.stack}: ${s.status === 'planned' ? 'changes' : s.status}`);
    for (const e of s.errors ?? []) out.push(`  ${e}`);
    for (const line of hostLines(s, (t) => t)) out.push(`  ${line}`);
    if (s.rollout) for (const [i, line] of rolloutLines(s.rollout).entries()) out.push(`  rollout ${i + 1}. ${line}`);
  }
  if (plan.diff) out.push('', plan.diff.replace(/\n$/, ''));
  return out.join('\n');
}

/** The first lines of `lines` that fit in `room` characters (newlines counted). */
function keepLines(lines: string[], room: number): string[] {
  const kept: string[] = [];
  let used = 0;
  for (const line of lines) {
    if (used + line.length + 1 > room) break;
    kept.push(line);
    used += line.length + 1;
  }
  return kept;
}

/** At most `n` characters, cut with an ellipsis. */
const clipText = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
