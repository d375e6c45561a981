/**
 * The engine: one reconciliation pass per repo, walking the data flow of docs/how-it-works.md:
 * source -> render -> schedule -> observe -> diff -> apply -> audit.
 * It holds no copy of what runs: every pass reads the hosts again, so a restart at any moment
 * (even mid-rollout) rebuilds everything it needs from the hosts and from Git.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import type { Logger } from 'pino';
import type { BerthConfig, RepoConfig } from '../config.ts';
import { readSecretFile } from '../config.ts';
import type { CommitInfo, RenderedStack, RenderOptions, RenderResult, SourceError as ManifestError } from '../model.ts';
import { GitSource } from '../source/git.ts';
import { renderSnapshot, formatError } from '../render/index.ts';
import { placeStack, PlacementError, type CurrentReplica, type HostInfo } from '../schedule/place.ts';
import { connect } from '../observe/docker.ts';
import { observeHost, type LiveHost } from '../observe/live.ts';
import { HostMonitor, type HostStatus } from '../observe/hosts.ts';
import { describeAction, hasChanges, isRerun, planDiff, planStack, type StackPlan } from '../diff/plan.ts';
import { handChanges } from '../diff/drift.ts';
import { watchEvents, type ContainerEvent } from '../observe/events.ts';
import { reservedOf, type DesiredContainer } from '../schedule/container.ts';
import { applyPlan, type StepEvent } from '../apply/execute.ts';
import { stepRow, summarizePlan } from '../audit/steps.ts';
import { currentReplicas, LiveIndex } from '../schedule/current.ts';
import { DockerHost } from '../apply/docker-host.ts';
import { openDatabase } from '../audit/db.ts';
import { AuditLog, type AuditInput, type AuditRow, type Trigger } from '../audit/log.ts';
import { SyncStore } from '../audit/syncs.ts';
import { HoldStore } from '../audit/holds.ts';
import { mapLimit } from './limit.ts';
import { repoSecrets, type RepoSecrets } from './secrets.ts';
import { stackState, type StackState } from './status.ts';
import { JobScheduler, runScheduledJob, type ScheduledJob } from './cron.ts';
import type { SyncEvent } from './events.ts';
import { EngineError } from './errors.ts';
import { claimDataDir } from './owner.ts';
import { World } from './world.ts';
import { decide, holdEffect, nextBackoff, type Backoff } from './decide.ts';
import { PassQueue } from './queue.ts';
import type { RepoPass, StackOutcome, StackStatus } from './outcome.ts';
import { StatusBoard } from './board.ts';

export interface PassOptions {
  trigger: Trigger;
  /** who asked: a token's name, `cli`, or `berth` for the engine's own triggers */
  actor?: string;
  /** only this stack */
  stack?: string;
  /** work out the plans but change nothing and record nothing */
  dryRun?: boolean;
  /** apply held (paused, rolled back) stacks too: the manual rollback itself */
  ignoreHolds?: boolean;
  /** end only once every replica the pass created or replaced runs and, with a health check, is healthy (`sync --wait`) */
  waitHealthy?: boolean;
}

export { EngineError };

export type { RepoPass, StackOutcome, StackStatus };

/**
 * What Engine.events emits: 'audit' with every row appended to engine.audit (by the engine, the
 * webhooks, the API); 'sync' with each sync run's phases (a 'step' per audit row it writes);
 * 'stack' with a stack's status after a pass that may have changed it (worked out only while
 * someone listens to 'stack').
 */
export interface EngineEvents {
  audit: [row: AuditRow];
  sync: [event: SyncEvent];
  stack: [state: StackState];
}

export class Engine {
  readonly config: BerthConfig;
  /** Listeners must not throw: they run inside the append. */
  readonly events = new EventEmitter<EngineEvents>();
  readonly log: Logger;
  readonly db: DatabaseSync;
  readonly audit: AuditLog;
  readonly syncs: SyncStore;
  readonly hosts = new Map<string, DockerHost>();
  private readonly sources = new Map<string, GitSource>();
  private readonly secrets = new Map<string, RepoSecrets>();
  readonly holds: HoldStore;
  readonly monitor: HostMonitor;
  private monitoring = false;
  private onHostsChanged?: () => void;
  /** per repo: one pass at a time, requests merged into the one waiting (queue.ts) */
  private readonly queue = new PassQueue<PassOptions, RepoPass>((repo, opts) => this.pass(repo, opts));
  /** per repo: containers to inspect for hand-made changes at the next pass ('all': every one) */
  private readonly suspects = new Map<string, Set<string> | 'all'>();
  private readonly driftTimers = new Map<string, { first: number; at: number; timer: NodeJS.Timeout }>();
  /** where each stack's replicas were last placed: those on a host that stops answering stay assigned there (in memory only) */
  private readonly lastPlaced = new Map<string, CurrentReplica[]>();
  /** per stack: the commit whose apply failed, how often in a row, and when automatic triggers may try again (decide.ts nextBackoff) */
  private readonly backoff = new Map<string, Backoff>();
  /** the last commit rendered per repo: a poll of an unmoved branch (and unchanged secrets folder) reads and renders nothing again */
  private readonly rendered = new Map<string, { sha: string; secrets: string; result: RenderResult }>();
  /** the scheduled jobs' triggers, once startSchedules() was called */
  private schedules?: JobScheduler;
  /** what berth last saw of the hosts and the repos: what reads are answered from */
  readonly world = new World();
  /** true while the hosts' events keep the world current (watchDrift): reads then ask nothing of the hosts or the forge */
  following = false;
  private readonly board: StatusBoard;

  constructor(config: BerthConfig, log: Logger) {
    this.config = config;
    this.log = log;
    claimDataDir(config);
    this.db = openDatabase(join(config.dataDir, 'berth.db'));
    this.audit = new AuditLog(this.db);
    this.audit.onAppend((row) => this.events.emit('audit', row));
    this.audit.onAppend((row) => {
      if (row.syncId !== undefined && row.stack) this.events.emit('sync', { id: row.syncId, repo: row.repo, stack: row.stack, phase: 'step', step: row });
    });
    this.syncs = new SyncStore(this.db);
    this.holds = new HoldStore(this.db);
    this.board = new StatusBoard(() => this.statesFromWorld(), (s) => this.events.emit('stack', s), () => this.events.listenerCount('stack') > 0);
    // While events keep the world current, every change of it, and every audit row (syncs and their
    // outcomes come with one), is shown at once. Otherwise the hosts are known again only when a pass
    // ends (pass(), below), and a status worked out in the middle of one would mix the new outcome
    // with the hosts as they were.
    this.world.onChange(() => this.following && this.board.changed());
    this.audit.onAppend(() => this.following && this.board.changed());
    this.monitor = new HostMonitor(this.hosts, { ...config.hostCheck, hosts: config.hosts }, (before, after) => this.hostChanged(before, after));
    for (const h of config.hosts) this.hosts.set(h.name, new DockerHost(h.name, connect(h), log));
    for (const r of config.repos) {
      this.sources.set(r.name, new GitSource(repoRef(r), join(config.dataDir, 'git', r.name)));
      this.secrets.set(r.name, repoSecrets(r));
    }
  }

  /** Resolves once every pass that is running or queued has ended. */
  async drain(): Promise<void> {
    await this.queue.drain();
  }

  close(): void {
    this.board.stop();
    this.schedules?.stop();
    this.monitor.stop();
    this.db.close();
  }

  /** Every repo, in parallel (each repo's own passes never overlap). */
  syncAll(opts: PassOptions): Promise<RepoPass[]> {
    return Promise.all(this.config.repos.map((r) => this.syncRepo(r.name, opts)));
  }

  /**
   * One pass over a repo. Never two at once for the same repo: a request that arrives while a pass
   * runs waits for it, and all requests that arrive meanwhile share the one pass that follows.
   */
  syncRepo(repo: string, opts: PassOptions): Promise<RepoPass> {
    return opts.dryRun ? this.pass(repo, opts) : this.queue.request(repo, opts);
  }

  /** Whether a pass of every stack of the repo is queued and not started yet: a webhook's or a poll's syncRepo() now joins it. */
  passQueued(repo: string): boolean {
    return this.queue.queued(repo, { trigger: 'webhook' });
  }

  /** The repo whose branch head defines the stack, or undefined (repos that cannot be read are skipped). */
  async stackRepo(stackName: string): Promise<string | undefined> {
    for (const [repo, source] of this.sources) {
      const head = await this.readHead(repo, source, this.log).catch(() => undefined);
      if (head?.rendered.stacks.some((s) => s.def.name === stackName)) return repo;
    }
    return undefined;
  }

  /**
   * Applies `stack` as it was at commit `to` (default: the commit before the one last applied) and
   * holds it there: automatic syncs leave it alone until `resume` or a new commit.
   */
  async rollback(stackName: string, opts: { to?: string; actor: string }): Promise<StackOutcome & { commit: CommitInfo }> {
    const { repo, source, head } = await this.findStack(stackName);
    return this.queue.serialize(repo, async () => {
      const target = await this.rollbackTarget(source, stackName, opts.to);
      const rendered = renderSnapshot(await source.snapshot(target.sha), this.renderOptions(repo));
      const then = rendered.stacks.find((s) => s.def.name === stackName);
      if (!then?.ok) {
        throw new EngineError(`stack ${stackName} ${then ? 'was invalid' : 'did not exist'} at commit ${target.sha.slice(0, 7)}: nothing changed`);
      }
      const base: AuditInput = { kind: 'rollback.started', repo, commit: target, stack: stackName, trigger: 'manual', actor: opts.actor };
      this.audit.append({ ...base, message: `manual rollback of ${stackName} to ${target.sha.slice(0, 7)} (${target.message.split('\n')[0]}), asked by ${opts.actor}` });
      this.holds.set({ stack: stackName, repo, commitSha: target.sha, headSha: head.sha, reason: 'rollback', actor: opts.actor });
      const pass = await this.pass(repo, { trigger: 'manual', actor: opts.actor, stack: stackName, ignoreHolds: true }, { commit: target, rendered });
      const outcome = pass.stacks.find((s) => s.stack === stackName) ?? { stack: stackName, status: 'failed' as const, errors: [pass.error ?? 'failed'] };
      const ok = outcome.status === 'synced' || outcome.status === 'unchanged';
      this.audit.append({ ...base, kind: ok ? 'rollback.succeeded' : 'rollback.failed', outcome: ok ? 'ok' : 'error', message: ok ? `held at ${target.sha.slice(0, 7)} until resumed or a new commit` : outcome.errors?.join('\n') });
      return { ...outcome, commit: target };
    });
  }

  /**
   * Checks the hosts periodically (`hostCheck`), audits their changes, and calls `onChange` when one
   * is lost or comes back, so that its replicas are placed again. Without it, each pass checks once.
   */
  startMonitor(onChange?: () => void): void {
    this.onHostsChanged = onChange;
    this.monitoring = true;
    this.monitor.start();
  }

  /** The hosts' states: the monitor's when it runs, else one check now. */
  private async hostStatuses(): Promise<HostStatus[]> {
    const known = this.monitoring ? this.monitor.status() : [];
    return known.length === this.hosts.size ? known : this.monitor.check();
  }

  private hostChanged(before: HostStatus | undefined, after: HostStatus): void {
    const log = this.log.child({ host: after.name });
    if (after.state === 'up' && before && before.state !== 'up') {
      this.audit.append({ kind: 'host.up', host: after.name, message: `answers again (Docker ${after.version ?? '?'})` });
      log.info('host is up again');
    } else if (after.state === 'unreachable') {
      this.audit.append({ kind: 'host.down', host: after.name, outcome: 'error', message: `${after.error ?? 'does not answer'}; nothing is done on it until it answers, its replicas move after ${this.config.hostCheck.graceMs / 1000} s` });
      log.warn({ err: after.error }, 'host does not answer');
    } else if (after.state === 'lost') {
      this.audit.append({ kind: 'host.lost', host: after.name, outcome: 'error', message: `has not answered for ${this.config.hostCheck.graceMs / 1000} s: its replicated replicas are placed on the other hosts` });
      log.warn('host lost: its replicas move to the other hosts');
    } else return;
    if (before && (after.state === 'lost' || after.state === 'up')) this.onHostsChanged?.();
  }

  /**
   * Follows every host's Docker events and resyncs a repo within seconds of a change to one of its
   * containers that berth did not make (drift); every `resyncMs` a full pass inspects every
   * container (the backstop). A container that died by itself gets `restartGraceMs` for Docker's
   * restart policy to bring it back first; other events are acted on once they have stopped for `debounceMs` (at most DRIFT_WAIT_MAX of those after the first), so that a
   * burst (or a `docker rm` then `docker run`) makes one pass. Returns a function that stops it.
   */
  watchDrift({ resyncMs, restartGraceMs = 10_000, debounceMs = 250 }: { resyncMs: number; restartGraceMs?: number; debounceMs?: number }): () => void {
    const stops = [...this.hosts.values()].map((h) =>
      watchEvents(h.name, h.docker, (e) => {
        this.world.apply(e);
        this.onContainerEvent(e, restartGraceMs, debounceMs);
      }, this.log.child({ host: h.name })),
    );
    this.following = true;
    const resync = setInterval(() => {
      for (const r of this.config.repos) {
        this.suspects.set(r.name, 'all');
        void this.syncRepo(r.name, { trigger: 'drift' }).catch(() => undefined);
      }
    }, resyncMs);
    resync.unref();
    return () => {
      this.following = false;
      stops.forEach((stop) => stop());
      clearInterval(resync);
      for (const t of this.driftTimers.values()) clearTimeout(t.timer);
    };
  }

  /**
   * Runs the scheduled jobs (`x-berth.schedule`) on their schedules, as each pass from now on
   * installs them from the stacks it renders. Returns a function that stops them.
   */
  startSchedules(): () => void {
    const scheduler = (this.schedules ??= new JobScheduler((job) => this.runScheduled(job), this.log.child({ trigger: 'schedule' })));
    return () => {
      scheduler.stop();
      if (this.schedules === scheduler) this.schedules = undefined;
    };
  }

  /** The scheduled jobs installed now (none until startSchedules()). */
  scheduled(): ScheduledJob[] {
    return this.schedules?.jobs() ?? [];
  }

  /** One run of a scheduled job on the hosts that answer, each run audited. */
  private runScheduled(job: ScheduledJob): Promise<void> {
    const down = new Set(this.monitor.status().filter((st) => st.state !== 'up').map((st) => st.name));
    const hosts = [...this.hosts.values()].filter((h) => !down.has(h.name));
    const log = this.log.child({ repo: job.repo, stack: job.stack, service: job.service, trigger: 'schedule' });
    return runScheduledJob(job, hosts, (e) => {
      const entry = stepRow(e);
      this.audit.append({ ...entry, repo: job.repo, commit: job.commit, stack: job.stack, trigger: 'schedule', actor: 'berth' });
      log[entry.outcome === 'error' ? 'warn' : 'info']({ host: entry.host, container: entry.containerAfter?.slice(0, 12) }, `${e.kind}: ${entry.message}`);
    }, log);
  }

  private onContainerEvent(e: ContainerEvent, restartGraceMs: number, debounceMs: number): void {
    if (e.action === 'health_status') return; // a health check's verdict is the container's own doing, never a change by hand
    if (!this.sources.has(e.repo) || this.hosts.get(e.host)?.isOwn(e.id, e.action, e.name)) return;
    if (e.job && JOB_RUN_ACTIONS.has(e.action)) return; // a job starting and ending is what jobs do, not drift
    this.suspect(e.repo, new Set([e.id]));
    // A crash (die alone) may be Docker's to restart; a stop, kill or removal by hand is drift now.
    // The pass waits until the events have stopped for that long (a `docker rm -f` then `docker run`
    // by hand is one change), but no longer than DRIFT_WAIT_MAX from the first.
    const now = Date.now();
    const pending = this.driftTimers.get(e.repo);
    const first = pending?.first ?? now;
    const delay = e.action === 'die' && !pending ? restartGraceMs : debounceMs;
    const at = Math.min(Math.max(now + delay, pending?.at ?? 0), Math.max(first + DRIFT_WAIT_MAX * debounceMs, first + delay));
    if (pending?.at === at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.driftTimers.delete(e.repo);
      void this.syncRepo(e.repo, { trigger: 'drift' }).catch(() => undefined);
    }, at - now);
    timer.unref();
    this.driftTimers.set(e.repo, { first, at, timer });
  }

  /** Adds containers to inspect for hand-made changes at the repo's next pass. */
  private suspect(repo: string, ids: Set<string> | 'all'): void {
    const set = this.suspects.get(repo);
    if (set === 'all' || ids === 'all') this.suspects.set(repo, 'all');
    else this.suspects.set(repo, new Set([...(set ?? []), ...ids]));
  }

  /** Inspects the stack's suspect containers whose labels say they match Git, and notes what was changed by hand. */
  private async inspectSuspects(live: LiveHost[], repo: string, stack: string, desired: DesiredContainer[], suspects: Set<string> | 'all'): Promise<void> {
    if (suspects !== 'all' && suspects.size === 0) return;
    const wanted = new Map(desired.map((d) => [`${d.host}/${d.service}/${d.slot}`, d]));
    const checks = live.flatMap((h) =>
      h.containers
        .filter((c) => c.repo === repo && c.stack === stack && (suspects === 'all' || suspects.has(c.id)))
        .map((c) => ({ c, d: wanted.get(`${c.host}/${c.service}/${c.slot}`) }))
        .filter((x): x is { c: (typeof x)['c']; d: DesiredContainer } => x.d !== undefined && x.d.specHash === x.c.specHash),
    );
    await mapLimit(checks, 8, async ({ c, d }) => {
      const host = this.hosts.get(c.host);
      const info = await host?.inspect(c.id);
      if (!host || !info) return;
      const found = handChanges(info, d, await host.imageEnv(info.Image));
      if (found.changes.length) Object.assign(c, { handChanges: found.changes, liveView: found.view });
    });
  }

  /**
   * Every stack's status (or one's), with the sync history and the holds. While the hosts' events
   * are followed (berth serve), from what berth last saw, at no cost to the hosts or the forge;
   * otherwise (the CLI on its own) from a dry-run pass that lists the hosts and looks up the branch.
   */
  async status(stack?: string): Promise<StackState[]> {
    if (this.following) return (await this.board.states()).filter((s) => !stack || s.name === stack);
    const passes = await Promise.all(this.config.repos.map((r) => this.pass(r.name, { trigger: 'manual', dryRun: true, stack })));
    return passes.flatMap((pass) => pass.stacks.map((outcome) => this.stateOf(pass.repo, outcome, pass.unreachable)));
  }

  /** Every stack's status from the world alone: the last head of each repo, its hosts as last seen (no Docker or git call). */
  private async statesFromWorld(): Promise<StackState[]> {
    const states: StackState[] = [];
    for (const r of this.config.repos) {
      const head = this.world.head(r.name);
      if (!head) continue; // never read: nothing to say yet
      const pass = await this.pass(r.name, { trigger: 'manual', dryRun: true }, head, { fromWorld: true });
      for (const outcome of pass.stacks) {
        const state = this.stateOf(pass.repo, outcome, pass.unreachable);
        const seen = [...new Set(state.replicas.map((x) => x.host))].map((h) => this.world.seenAt(h)).filter((t): t is string => t !== undefined).sort();
        states.push({ ...state, ...(seen.length ? { observedAt: seen[0] } : {}) });
      }
    }
    return states;
  }

  /** A stack's status from an outcome whose plan describes the hosts as they are, the sync history and the holds. */
  private stateOf(repo: string, outcome: StackOutcome, unreachable: string[] = []): StackState {
    return stackState({
      repo,
      outcome,
      latest: this.syncs.latest(outcome.stack),
      lastSucceeded: this.syncs.lastSucceeded(outcome.stack),
      hold: this.holds.get(outcome.stack),
      unreachable: new Set(unreachable),
    });
  }

  /** Pauses automatic syncs of the stack until `resume` or a new commit. */
  async pause(stackName: string, actor: string): Promise<void> {
    const { repo, head } = await this.findStack(stackName);
    this.holds.set({ stack: stackName, repo, headSha: head.sha, reason: 'pause', actor });
    this.audit.append({ kind: 'stack.paused', repo, commit: head, stack: stackName, trigger: 'manual', actor, message: `auto-sync paused by ${actor}` });
    this.board.changed();
  }

  /** Ends a pause or a manual rollback's hold; the next pass applies the branch's head. */
  async resume(stackName: string, actor: string): Promise<boolean> {
    const hold = this.holds.release(stackName);
    if (!hold) return false;
    this.audit.append({ kind: 'stack.resumed', repo: hold.repo, stack: stackName, trigger: 'manual', actor, message: `auto-sync resumed by ${actor} (held since ${hold.since} by ${hold.actor}: ${hold.reason})` });
    this.board.changed();
    return true;
  }

  /** The repo whose head defines the stack. */
  private async findStack(stackName: string): Promise<{ repo: string; source: GitSource; head: CommitInfo }> {
    for (const [repo, source] of this.sources) {
      const { commit, rendered } = await this.readHead(repo, source, this.log);
      if (rendered.stacks.some((s) => s.def.name === stackName)) return { repo, source, head: commit };
    }
    throw new EngineError(`no repo defines a stack named ${stackName}`);
  }

  private async rollbackTarget(source: GitSource, stackName: string, to?: string): Promise<CommitInfo> {
    if (to) return source.commit(to);
    const applied = this.syncs.lastSucceeded(stackName)?.commitSha;
    if (!applied) throw new EngineError(`stack ${stackName} has no applied commit to roll back from: name one with --to`);
    const history = await source.history();
    const i = history.findIndex((c) => c.sha === applied);
    if (i < 0) throw new EngineError(`the applied commit ${applied.slice(0, 7)} of ${stackName} is not on the branch any more: name a commit with --to`);
    if (i + 1 >= history.length) throw new EngineError(`the applied commit ${applied.slice(0, 7)} of ${stackName} is the branch's first: there is nothing before it`);
    return history[i + 1];
  }

  /** What render needs from the repo's config: its policy. */
  private renderOptions(repo: string): RenderOptions {
    return { policy: this.config.repos.find((r) => r.name === repo)?.policy, ...this.secrets.get(repo)?.options };
  }

  /**
   * Fetches the branch head (one ref look-up when unmoved; a webhook's pass fetches at once, the
   * push having moved it) and renders it (once per commit).
   */
  private async readHead(repo: string, source: GitSource, log: Logger, moved = false): Promise<{ commit: CommitInfo; rendered: RenderResult }> {
    const commit = await source.update({ moved });
    const last = this.rendered.get(repo);
    const fingerprint = this.secrets.get(repo)?.fingerprint() ?? '';
    if (last?.sha === commit.sha && last.secrets === fingerprint) {
      this.world.setHead(repo, { commit, rendered: last.result });
      return { commit, rendered: last.result };
    }
    if (last?.sha === commit.sha) log.info('the secrets folder changed: rendering again');
    else log.info({ commit: commit.sha.slice(0, 7), author: commit.author, message: commit.message.split('\n')[0] }, 'new commit');
    // The stacks whose inputs did not change are taken from the last render (same secrets only: they are inputs too).
    const rendered = renderSnapshot(await source.snapshot(commit.sha), this.renderOptions(repo), last?.secrets === fingerprint ? last.result : undefined);
    this.rendered.set(repo, { sha: commit.sha, secrets: fingerprint, result: rendered });
    this.world.setHead(repo, { commit, rendered });
    return { commit, rendered };
  }

  /** `at`: the commit and render to use instead of the branch head; `fromWorld`: the hosts as last seen, not listed now (and nothing inspected). */
  private async pass(repoName: string, opts: PassOptions, at?: { commit: CommitInfo; rendered: RenderResult }, { fromWorld = false } = {}): Promise<RepoPass> {
    const source = this.sources.get(repoName);
    if (!source) throw new Error(`unknown repo ${repoName}`);
    const log = this.log.child({ repo: repoName });
    // Containers whose events suggest a hand-made change, taken as the hosts are observed: inspected against Git in this pass.
    const suspects = this.suspects.get(repoName) ?? new Set<string>();
    if (!opts.dryRun) this.suspects.delete(repoName);
    // The hosts are observed while the branch is looked up (a round trip to the forge): neither waits for the other.
    const observing = fromWorld ? this.seen() : this.observe(log);
    observing.catch(() => undefined); // awaited below on every path; until then its failure is not unhandled
    let commit: CommitInfo;
    let rendered: RenderResult;
    try {
      ({ commit, rendered } = at ?? (await this.readHead(repoName, source, log, opts.trigger === 'webhook')));
    } catch (err) {
      await observing.catch(() => undefined);
      if (!opts.dryRun) this.suspect(repoName, suspects); // for the next pass
      log.error({ err: (err as Error).message }, 'cannot read the repo');
      return { repo: repoName, error: (err as Error).message, stacks: [] };
    }
    const clog = log.child({ commit: commit.sha.slice(0, 7) });
    const base: AuditInput = { kind: '', repo: repoName, commit, trigger: opts.trigger, actor: opts.actor ?? 'berth' };

    if (rendered.errors.length > 0) {
      const message = rendered.errors.map(formatError).join('\n');
      clog.error({ errors: message }, 'berth.yaml is invalid: nothing changes');
      await observing.catch(() => undefined);
      if (!opts.dryRun) this.recordInvalid(base, undefined, rendered.errors);
      return { repo: repoName, commit, error: message, stacks: [] };
    }

    const { statuses, live } = await observing;
    if (clog.isLevelEnabled('debug')) clog.debug({ hosts: live.map((l) => `${l.host}: ${l.containers.length} container(s)`) }, 'hosts observed');
    const reachable = new Set(live.map((l) => l.host));
    const unreachable = statuses.filter((st) => !reachable.has(st.name)).map((st) => st.name);
    // Replicas placed on a host that does not answer (but is not lost yet) keep their place there.
    const waiting = new Set(statuses.filter((st) => !reachable.has(st.name) && st.state !== 'lost').map((st) => st.name));
    const hostInfos: HostInfo[] = statuses.map((st) => ({
      name: st.name,
      labels: st.labels,
      state: reachable.has(st.name) ? 'up' : st.state === 'lost' ? 'lost' : 'unreachable',
      cpus: st.cpus,
      memoryBytes: st.memoryBytes,
    }));

    const wanted = (name: string) => !opts.stack || opts.stack === name;
    const outcomes: StackOutcome[] = [];
    const inGit = new Set(rendered.stacks.map((s) => s.def.name));
    const liveStacks = new Set(live.flatMap((h) => h.containers.filter((c) => c.repo === repoName).map((c) => c.stack)));
    const index = new LiveIndex(live); // each stack's own containers and what the others hold per host, grouped once
    const work: Array<{ name: string; stack: RenderedStack | null; prune: boolean }> = [];
    const holds = new Map(opts.ignoreHolds ? [] : this.holds.list().map((h) => [h.stack, h])); // one query, not one per stack
    for (const r of rendered.stacks.filter((s) => wanted(s.def.name))) {
      const hold = holds.get(r.def.name);
      const effect = holdEffect(hold, commit.sha, Boolean(opts.dryRun));
      if (hold && effect === 'released') {
        this.holds.release(r.def.name);
        this.audit.append({ ...base, kind: 'stack.resumed', stack: r.def.name, actor: 'berth', message: `a new commit ends the ${hold.reason} hold set by ${hold.actor}` });
        clog.info({ stack: r.def.name }, 'a new commit ends the hold');
      } else if (hold && effect === 'holding') {
        const at = hold.commitSha ? ` at ${hold.commitSha.slice(0, 7)}` : '';
        outcomes.push({ stack: r.def.name, status: 'paused', errors: [`held${at} by ${hold.actor} since ${hold.since} (${hold.reason}): a resume, or a new commit, ends it`], hint: ['resume', r.def.name] });
        continue;
      }
      if (!r.ok) {
        const message = r.errors.map(formatError).join('\n');
        clog.error({ stack: r.def.name, errors: message }, 'stack is invalid: its containers stay as they are');
        if (!opts.dryRun) this.recordInvalid({ ...base, stack: r.def.name }, r.def.name, r.errors);
        outcomes.push({ stack: r.def.name, status: 'invalid', errors: r.errors.map(formatError) });
      } else work.push({ name: r.def.name, stack: r.stack, prune: r.stack.sync.prune });
    }
    for (const name of [...liveStacks].filter((s) => !inGit.has(s) && wanted(s)).sort()) {
      work.push({ name, stack: null, prune: true });
    }

    const one = async (w: (typeof work)[number]): Promise<StackOutcome> => {
      const slog = clog.child({ stack: w.name });
      let plan: StackPlan;
      let unseen: CurrentReplica[];
      try {
        const key = `${repoName}/${w.name}`;
        const own = index.stack(repoName, w.name);
        const current = [...currentReplicas(own, repoName, w.name), ...(this.lastPlaced.get(key) ?? []).filter((r) => waiting.has(r.host))];
        const placed = w.stack ? placeStack(repoName, w.stack, index.hostsFor(hostInfos, repoName, w.name), commit.sha, current) : [];
        index.placed(repoName, w.name, placed.map((d) => ({ host: d.host, reserved: reservedOf(d.create.Labels) })));
        if (!opts.dryRun) this.lastPlaced.set(key, placed.map((d) => ({ service: d.service, slot: d.slot, host: d.host })));
        const desired = placed.filter((d) => reachable.has(d.host)); // replicas kept on a host that does not answer wait for it
        unseen = placed.filter((d) => !reachable.has(d.host)).map((d) => ({ service: d.service, slot: d.slot, host: d.host }));
        if (!fromWorld) await this.inspectSuspects(own, repoName, w.name, desired, suspects);
        plan = planStack({ repo: repoName, stack: w.stack, stackName: w.name, commit: commit.sha, desired, live: own, prune: w.prune });
      } catch (err) {
        if (!(err instanceof PlacementError)) throw err;
        slog.error({ err: err.message }, 'cannot place the stack');
        if (!opts.dryRun) this.recordOnce({ ...base, kind: 'sync.failed', stack: w.name, outcome: 'error', message: err.message });
        return { stack: w.name, status: 'failed', errors: [err.message] };
      }
      const diff = planDiff(plan);
      if (slog.isLevelEnabled('debug')) slog.debug({ actions: plan.actions.map(describeAction) }, 'planned'); // a pass over 1,000 containers builds no strings for nothing
      const decision = decide({
        plan, stack: w.stack, trigger: opts.trigger, dryRun: Boolean(opts.dryRun), commit: commit.sha, now: Date.now(), backoff: this.backoff.get(w.name),
        // read only when it can matter: a history query per stack would be paid by every no-op pass
        lastSucceeded: !opts.dryRun && hasChanges(plan) ? this.syncs.lastSucceeded(w.name)?.commitSha : undefined,
      });
      switch (decision.kind) {
        case 'report':
          return { stack: w.name, status: decision.status, plan, diff, unseen };
        case 'nothing':
          return { stack: w.name, status: 'unchanged', plan, unseen };
        case 'drift-reported':
          this.recordOnce({ ...base, kind: 'drift.detected', stack: w.name, outcome: 'error', diff, message: `${decision.summary}; selfHeal is off: nothing changed` });
          slog.warn({ drift: decision.summary }, 'drift detected; selfHeal is off: out of sync');
          return { stack: w.name, status: 'outofsync', plan, diff, unseen };
        case 'auto-off':
          slog.info('out of sync; auto-sync is off for this stack: sync it by hand');
          return { stack: w.name, status: 'outofsync', plan, diff, unseen };
        case 'backing-off':
          return { stack: w.name, status: 'outofsync', plan, diff, errors: [decision.error], unseen, hint: ['sync', '--stack', w.name] };
        case 'apply': {
          const outcome = await this.applyStack(plan, w.stack, diff, { ...base, trigger: decision.trigger, stack: w.name }, slog, { drift: decision.drift, waitHealthy: opts.waitHealthy });
          const backoff = nextBackoff(this.backoff.get(w.name), commit.sha, outcome.status, Date.now());
          if (backoff) this.backoff.set(w.name, backoff);
          else this.backoff.delete(w.name);
          return { ...outcome, unseen };
        }
      }
    };
    // Stacks are independent: one whose host is slow does not hold up the others.
    outcomes.push(...(await mapLimit(work, this.config.hostConcurrency, one)));
    if (!opts.dryRun && !opts.ignoreHolds) this.schedules?.install(repoName, commit, rendered);
    const result: RepoPass = { repo: repoName, commit, stacks: outcomes, unreachable };
    // What the pass changed is listed again, so that reads (and the event stream) see the hosts as the
    // pass left them, not as events report them one by one; only where something reads the world.
    if (outcomes.some((o) => o.syncId !== undefined) && (this.following || this.events.listenerCount('stack') > 0)) {
      await this.observe(clog).catch(() => undefined);
    }
    if (!opts.dryRun) this.board.changed(); // its syncs, holds released, back-offs
    return result;
  }

  /** The hosts' states, and the live state of those that answer; the others are left alone (berth never acts on a host it cannot see). */
  private async observe(log: Logger): Promise<{ statuses: HostStatus[]; live: LiveHost[] }> {
    const statuses = await this.hostStatuses();
    const observed = await mapLimit(statuses, this.config.hostConcurrency, async (st) => {
      const h = this.hosts.get(st.name);
      if (!h || st.state !== 'up') {
        this.world.dropHost(st.name);
        return undefined;
      }
      try {
        const live = await observeHost(h.name, h.docker);
        this.world.setHost(live);
        return live;
      } catch (err) {
        log.warn({ host: st.name, err: (err as Error).message }, 'cannot list containers: the host is left alone this pass');
        this.world.dropHost(st.name);
        return undefined;
      }
    });
    return { statuses, live: observed.filter((l): l is LiveHost => l !== undefined) };
  }

  /** The hosts' states and their containers as berth last saw them (observe() without a call to a host once the monitor has checked them). */
  private async seen(): Promise<{ statuses: HostStatus[]; live: LiveHost[] }> {
    const statuses = await this.hostStatuses();
    return { statuses, live: this.world.hosts().filter((l) => statuses.some((st) => st.name === l.host && st.state === 'up')) };
  }

  /** Applies one stack's plan, recording the sync and each step in the audit log. */
  private async applyStack(plan: StackPlan, stack: RenderedStack | null, diff: string, base: AuditInput, log: Logger, { drift = false, waitHealthy = false } = {}): Promise<StackOutcome> {
    const changes = plan.actions.filter((a) => a.kind !== 'keep').length;
    for (const orphan of this.syncs.settleOrphans(plan.stack)) {
      this.audit.append({ ...base, commit: undefined, kind: 'sync.failed', syncId: orphan.id, outcome: 'error', message: `sync ${orphan.id} of commit ${orphan.commitSha.slice(0, 7)}: ${orphan.error}` });
      log.warn({ syncId: orphan.id }, orphan.error ?? 'interrupted sync');
    }
    const sync = this.syncs.start({
      repo: plan.repo,
      stack: plan.stack,
      commitSha: base.commit?.sha ?? '',
      trigger: base.trigger ?? 'manual',
      actor: base.actor ?? 'berth',
      plan: summarizePlan(plan),
      diff,
    });
    const row = { ...base, syncId: sync.id };
    this.events.emit('sync', { id: sync.id, repo: plan.repo, stack: plan.stack, phase: 'started' });
    if (drift) {
      // Each drifted container: what differs, live against desired, before anything is done about it.
      for (const a of plan.actions.filter((x) => x.kind !== 'keep' && !isRerun(x))) {
        this.audit.append({
          ...row,
          kind: 'drift.detected',
          service: a.service,
          host: a.host,
          containerBefore: a.kind === 'create' ? undefined : a.live.id,
          outcome: 'error',
          diff: planDiff({ ...plan, networks: [], volumes: [], removeNetworks: [], hooks: [], actions: [a] }),
          message: describeAction(a),
        });
        log.warn({ host: a.host, service: a.service, slot: a.slot }, `drift: ${describeAction(a)}`);
      }
    }
    this.audit.append({ ...row, kind: 'sync.started', diff, message: `${changes} container change(s)${stack ? '' : ', stack removed from Git'}` });
    log.info({ changes }, 'sync started');
    const serviceDiff = (service: string) =>
      planDiff({ ...plan, networks: [], volumes: [], removeNetworks: [], hooks: [], actions: plan.actions.filter((a) => a.service === service) });
    const reruns = new Set(plan.actions.filter(isRerun).map((a) => a.live.id));
    const onStep = (e: StepEvent) => {
      const entry = stepRow(e);
      const withDiff = e.kind === 'container.created' || e.kind === 'container.replaced' || e.kind === 'container.removed';
      this.audit.append({ ...row, ...entry, diff: withDiff ? serviceDiff(entry.service ?? '') : undefined });
      if (drift && withDiff && !(entry.containerBefore && reruns.has(entry.containerBefore))) {
        const done = { 'container.created': 'recreated', 'container.replaced': 'replaced', 'container.removed': 'removed' }[e.kind];
        this.audit.append({ ...row, ...entry, kind: 'drift.corrected', message: `${entry.message}: ${done}` });
      }
      const level = entry.outcome === 'error' ? 'warn' : 'info';
      log[level]({ host: entry.host, service: entry.service, before: entry.containerBefore?.slice(0, 12), after: entry.containerAfter?.slice(0, 12) }, `${e.kind}: ${entry.message}`);
    };
    const result = await applyPlan(plan, stack, this.hosts, onStep, { waitHealthy });
    if (result.outcome === 'synced') {
      this.syncs.finish(sync.id, { outcome: 'succeeded' });
      this.audit.append({ ...row, kind: 'sync.succeeded', message: `${changes} container change(s) applied` });
      this.events.emit('sync', { id: sync.id, repo: plan.repo, stack: plan.stack, phase: 'finished', outcome: 'succeeded' });
      log.info('sync succeeded');
      return { stack: plan.stack, status: changes || diff ? 'synced' : 'unchanged', plan, diff, syncId: sync.id };
    }
    this.syncs.finish(sync.id, { outcome: 'failed', result: result.outcome, error: result.error });
    this.audit.append({ ...row, kind: 'sync.failed', outcome: 'error', service: result.service, message: result.error });
    this.events.emit('sync', { id: sync.id, repo: plan.repo, stack: plan.stack, phase: 'finished', outcome: 'failed' });
    log.error({ err: result.error, outcome: result.outcome }, 'sync failed');
    const status = result.outcome === 'rolledback' ? 'rolledback' : result.outcome === 'paused' ? 'paused' : 'failed';
    // polls leave a paused or rolled-back commit alone: a new commit, or a sync by hand, tries again
    const hint = status === 'failed' ? undefined : ['sync', '--stack', plan.stack];
    return { stack: plan.stack, status, plan, diff, errors: [result.error ?? 'failed'], syncId: sync.id, ...(hint ? { hint } : {}) };
  }


  private recordInvalid(base: AuditInput, stack: string | undefined, errors: ManifestError[]): void {
    this.recordOnce({ ...base, kind: 'manifest.invalid', stack, outcome: 'error', message: errors.map(formatError).join('\n') });
  }

  /** Appends the row unless the same kind, commit, stack and message is already recorded: polling the same bad commit adds no rows. */
  private recordOnce(row: AuditInput): void {
    const seen = this.audit
      .query({ kind: row.kind, commit: row.commit?.sha, stack: row.stack, limit: 1000 })
      .rows.some((r) => r.repo === row.repo && r.stack === row.stack && r.message === row.message);
    if (!seen) this.audit.append(row);
  }
}

/** What a job's container does when it runs: neither is drift (a removal, a rename or a change is). */
/** A drift pass waits for the events to stop, up to this many debounce periods from the first. */
const DRIFT_WAIT_MAX = 4;

const JOB_RUN_ACTIONS = new Set(['start', 'die', 'stop', 'kill', 'oom']);

function repoRef(r: RepoConfig) {
  return {
    name: r.name,
    url: r.url,
    branch: r.branch,
    path: r.path,
    username: r.auth?.username,
    token: r.auth?.tokenFile ? readSecretFile(r.auth.tokenFile, `the token of repo ${r.name}`) : undefined,
    ca: r.caFile ? readSecretFile(r.caFile, `the CA of repo ${r.name}`) : undefined,
  };
}
