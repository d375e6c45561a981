/**
 * What people ask of a stack by hand: roll it back to an earlier commit, pause its automatic syncs,
 * resume them. Each is audited with who asked; a rollback and a pause hold the stack
 * (docs/how-it-works.md, "Rollback and holds").
 */
import type { AuditInput, AuditLog } from '../audit/log.ts';
import type { Hold, HoldStore } from '../audit/holds.ts';
import type { SyncStore } from '../audit/syncs.ts';
import type { CommitInfo, RenderResult } from '../model.ts';
import type { GitSource } from '../source/git.ts';
import { EngineError } from './errors.ts';
import type { RepoPass, StackOutcome } from './outcome.ts';
import type { PassOptions } from './pass.ts';
import type { Head } from './world.ts';

/** What the actions need of the engine. */
export interface ActionContext {
  audit: AuditLog;
  holds: HoldStore;
  syncs: SyncStore;
  sources: ReadonlyMap<string, GitSource>;
  /** the repo's branch head, fetched and rendered (one ref look-up when unmoved) */
  readHead(repo: string): Promise<Head>;
  /** the head berth last read, without asking the forge */
  lastHead(repo: string): Head | undefined;
  render(repo: string, source: GitSource, sha: string): Promise<RenderResult>;
  /** runs `task` after the repo's passes that are running or queued */
  serialize<T>(repo: string, task: () => Promise<T>): Promise<T>;
  /** a pass over the repo at this commit and render, not the branch head */
  passAt(repo: string, opts: PassOptions, at: Head): Promise<RepoPass>;
  /** the stacks' status may have changed */
  changed(): void;
  /** the repos whose containers run under this stack name, as the hosts were last seen */
  runningRepos(stackName: string): string[];
}

export class Actions {
  readonly #ctx: ActionContext;

  constructor(ctx: ActionContext) {
    this.#ctx = ctx;
  }

  /**
   * The repo whose branch head defines the stack, or undefined (repos that cannot be read are
   * skipped). The heads berth last read answer first; only a name none of them defines makes it
   * ask the forge.
   */
  async stackRepo(stackName: string): Promise<string | undefined> {
    const known = this.#candidates(stackName).find((repo) => defines(this.#ctx.lastHead(repo), stackName));
    if (known) return known;
    for (const repo of this.#candidates(stackName)) {
      if (defines(await this.#ctx.readHead(repo).catch(() => undefined), stackName)) return repo;
    }
    return undefined;
  }

  /**
   * The repos that may own a stack name, in the order passes give it (docs/manifests.md, "Stack
   * names"): those whose containers run under it first, then every repo in the engine config's order.
   */
  #candidates(stackName: string): string[] {
    const repos = [...this.#ctx.sources.keys()];
    const running = this.#ctx.runningRepos(stackName).filter((r) => repos.includes(r));
    return [...running, ...repos.filter((r) => !running.includes(r))];
  }

  /** The stack's hold: its owning repo's, or, for a name no repo defines any more, the one hold of that name. */
  async holdOf(stackName: string): Promise<Hold | undefined> {
    const repo = await this.stackRepo(stackName);
    if (repo) return this.#ctx.holds.get(repo, stackName);
    const held = this.#ctx.holds.list().filter((h) => h.stack === stackName);
    return held.length === 1 ? held[0] : undefined;
  }

  /**
   * Applies `stack` as it was at commit `to` (default: the commit before the one last applied) and
   * holds it there: automatic syncs leave it alone until `resume` or a new commit. `waitHealthy`: it
   * ends once every replica it changed runs and is healthy (as `berth sync --wait`).
   */
  async rollback(stackName: string, opts: { to?: string; actor: string; waitHealthy?: boolean }): Promise<StackOutcome & { commit: CommitInfo }> {
    const { repo, source, head } = await this.#find(stackName);
    return this.#ctx.serialize(repo, async () => {
      const target = await this.#rollbackTarget(repo, source, stackName, opts.to);
      const rendered = await this.#ctx.render(repo, source, target.sha);
      const then = rendered.stacks.find((s) => s.def.name === stackName);
      if (!then?.ok) {
        throw new EngineError(
          `stack ${stackName} ${then ? 'was invalid' : 'did not exist'} at commit ${target.sha.slice(0, 7)}: nothing changed`,
          'rollback-target-invalid',
        );
      }
      const base: AuditInput = { kind: 'rollback.started', repo, commit: target, stack: stackName, trigger: 'manual', actor: opts.actor };
      this.#ctx.audit.append({
        ...base,
        message: `manual rollback of ${stackName} to ${target.sha.slice(0, 7)} (${target.message.split('\n')[0]}), asked by ${opts.actor}`,
      });
      this.#ctx.holds.set({ stack: stackName, repo, commitSha: target.sha, headSha: head.sha, reason: 'rollback', actor: opts.actor });
      const pass = await this.#ctx.passAt(
        repo,
        { trigger: 'manual', actor: opts.actor, stack: stackName, ignoreHolds: true, waitHealthy: opts.waitHealthy },
        { commit: target, rendered },
      );
      const outcome = pass.stacks.find((s) => s.stack === stackName) ?? { stack: stackName, status: 'failed' as const, errors: [pass.error ?? 'failed'] };
      const ok = outcome.status === 'synced' || outcome.status === 'unchanged';
      this.#ctx.audit.append({
        ...base,
        kind: ok ? 'rollback.succeeded' : 'rollback.failed',
        outcome: ok ? 'ok' : 'error',
        message: ok ? `held at ${target.sha.slice(0, 7)} until resumed or a new commit` : outcome.errors?.join('\n'),
      });
      return { ...outcome, commit: target };
    });
  }

  /** Pauses automatic syncs of the stack until `resume` or a new commit. */
  async pause(stackName: string, actor: string): Promise<void> {
    const { repo, head } = await this.#find(stackName);
    this.#ctx.holds.set({ stack: stackName, repo, headSha: head.sha, reason: 'pause', actor });
    this.#ctx.audit.append({ kind: 'stack.paused', repo, commit: head, stack: stackName, trigger: 'manual', actor, message: `auto-sync paused by ${actor}` });
    this.#ctx.changed();
  }

  /** Ends a pause or a manual rollback's hold; the next pass applies the branch's head. False when the stack was not held. */
  async resume(stackName: string, actor: string): Promise<boolean> {
    const held = await this.holdOf(stackName);
    const hold = held && this.#ctx.holds.release(held.repo, held.stack);
    if (!hold) return false;
    this.#ctx.audit.append({
      kind: 'stack.resumed',
      repo: hold.repo,
      stack: stackName,
      trigger: 'manual',
      actor,
      message: `auto-sync resumed by ${actor} (held since ${hold.since} by ${hold.actor}: ${hold.reason})`,
    });
    this.#ctx.changed();
    return true;
  }

  /** The repo whose branch head (fetched now) defines the stack. */
  async #find(stackName: string): Promise<{ repo: string; source: GitSource; head: CommitInfo }> {
    for (const repo of this.#candidates(stackName)) {
      const head = await this.#ctx.readHead(repo);
      if (defines(head, stackName)) return { repo, source: this.#ctx.sources.get(repo)!, head: head.commit };
    }
    throw new EngineError(`no repo defines a stack named ${stackName}`, 'unknown-stack');
  }

  async #rollbackTarget(repo: string, source: GitSource, stackName: string, to?: string): Promise<CommitInfo> {
    if (to) return source.commit(to);
    const applied = this.#ctx.syncs.lastSucceeded(repo, stackName)?.commitSha;
    if (!applied) throw new EngineError(`stack ${stackName} has no applied commit to roll back from: name one with --to`, 'nothing-to-roll-back');
    const history = await source.history();
    const i = history.findIndex((c) => c.sha === applied);
    if (i < 0)
      throw new EngineError(
        `the applied commit ${applied.slice(0, 7)} of ${stackName} is not on the branch any more: name a commit with --to`,
        'nothing-to-roll-back',
      );
    if (i + 1 >= history.length)
      throw new EngineError(
        `the applied commit ${applied.slice(0, 7)} of ${stackName} is the branch's first: there is nothing before it`,
        'nothing-to-roll-back',
      );
    return history[i + 1];
  }
}

const defines = (head: Head | undefined, stack: string) => head?.rendered.stacks.some((s) => s.def.name === stack) ?? false;
