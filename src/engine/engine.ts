/**
 * The engine: it owns the state (the audit database, the World berth last saw) and wires the parts
 * that act on it: the work queue (queue.ts: one pass per repo at a time), the pass (pass.ts, which
 * decides with decide.ts and applies with record.ts), the hosts (fleet.ts), the drift watcher
 * (drift.ts), the actions by hand (actions.ts) and the status board reads are answered from
 * (board.ts). docs/how-it-works.md walks the same data flow.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig, RepoConfig } from '../config.ts';
import { readSecretFile } from '../config.ts';
import type { CommitInfo, RenderOptions, RenderResult } from '../model.ts';
import { GitSource, UnknownRefError } from '../source/git.ts';
import { renderSnapshot } from '../render/index.ts';
import { stepRow } from '../audit/steps.ts';
import type { Db } from '../audit/db.ts';
import { openStore } from '../audit/store.ts';
import { AuditLog, type AuditRow } from '../audit/log.ts';
import { loadAuditSigner } from '../audit/anchor.ts';
import { Checkpointer, checkAnchorFile } from '../audit/checkpoint.ts';
import { PROCESS_ID, SyncStore } from '../audit/syncs.ts';
import { VERSION } from '../paths.ts';
import { Cluster } from './cluster.ts';
import { Handoffs, serveHandoffs, type HandoffRequest } from './handoff.ts';
import { relayEvents } from './relay.ts';
import { PostgresDb } from '../audit/pg.ts';
import { HoldStore, type Hold } from '../audit/holds.ts';
import { PinStore } from '../audit/pins.ts';
import { StackMemory } from '../audit/memory.ts';
import { NotificationStore, type NotificationRecord } from '../audit/notifications.ts';
import { PlanCommentStore } from '../audit/plan-comments.ts';
import { Notifier, type NotifyOptions } from '../notify/deliver.ts';
import type { ForgeType } from '../notify/config.ts';
import type { PullRequest } from '../server/forges.ts';
import { imageKey } from '../apply/registries.ts';
import { repoSecrets, type RepoSecrets } from './secrets.ts';
import { stackState, type StackState } from './status.ts';
import { JobScheduler, runScheduledJob, type ScheduledJob } from './cron.ts';
import type { SyncEvent } from './events.ts';
import { EngineError } from './errors.ts';
import { claimDataDir } from './owner.ts';
import { World, type Head } from './world.ts';
import { PassQueue } from './queue.ts';
import type { RepoPass, StackOutcome, StackStatus } from './outcome.ts';
import { StatusBoard } from './board.ts';
import { Fleet } from './fleet.ts';
import { DriftWatcher, type DriftOptions } from './drift.ts';
import { Recorder } from './record.ts';
import type { ServiceProgress } from './progress.ts';
import { Reconciler, type PassOptions } from './pass.ts';
import { Actions } from './actions.ts';
import { makePlan, type RepoPlan } from './plans.ts';

export { EngineError };
export type { PassOptions, RepoPass, RepoPlan, StackOutcome, StackStatus };

/**
 * What Engine.events emits: 'audit' with every row appended to engine.audit (by the engine, the
 * webhooks, the API); 'sync' with each sync run's phases (a 'step' per audit row it writes);
 * 'stack' with a stack's status after a change that may have changed it (worked out only while
 * someone listens to 'stack'); 'notification' with a notification delivery each time it changes
 * (queued, attempted, delivered, failed, dropped).
 */
export interface EngineEvents {
  /** `from`: the engine that appended the row, when another one on the same database (relay.ts) */
  audit: [row: AuditRow, from?: string];
  /** `from`: the engine that runs the sync, when another one on the same database (relay.ts) */
  sync: [event: SyncEvent, from?: string];
  stack: [state: StackState];
  notification: [record: NotificationRecord];
}

export interface EngineOptions {
  /** how notifications are delivered (src/notify/deliver.ts): the retry schedule, the request timeout, the queue's limits */
  notify?: NotifyOptions;
}

export class Engine {
  readonly config: BerthConfig;
  /** Listeners must not throw: they run inside the append. */
  readonly events = new EventEmitter<EngineEvents>();
  readonly log: Logger;
  readonly db: Db;
  readonly audit: AuditLog;
  readonly syncs: SyncStore;
  readonly holds: HoldStore;
  /** which engine acts, when several share a PostgreSQL database; alone on SQLite, this one (cluster.ts) */
  readonly cluster: Cluster;
  /** what followers hand to the leader (PostgreSQL only: handoff.ts) */
  readonly handoffs: Handoffs | undefined;
  /** who is told what berth did (docs/notifications.md): events are queued as audit rows are appended; startNotifications() sends them */
  readonly notifier: Notifier;
  /** what berth last saw of the hosts and the repos: what reads are answered from */
  readonly world = new World();
  readonly fleet: Fleet;
  readonly #sources = new Map<string, GitSource>();
  readonly #secrets = new Map<string, RepoSecrets>();
  /** the last commit rendered per repo: a poll of an unmoved branch (and unchanged secrets folder) reads and renders nothing again */
  readonly #rendered = new Map<string, { sha: string; secrets: string; result: RenderResult }>();
  /** per repo: one pass at a time, requests merged into the one waiting (queue.ts) */
  readonly #queue = new PassQueue<PassOptions, RepoPass>((repo, opts) => this.#reconciler.run(repo, opts));
  readonly #drift: DriftWatcher;
  readonly #reconciler: Reconciler;
  readonly #actions: Actions;
  readonly #board: StatusBoard;
  readonly #recorder: Recorder;
  /** the scheduled jobs' triggers, once startSchedules() was called */
  #schedules?: JobScheduler;
  /** signs the audit log's checkpoints, with an auditKeyFile (src/audit/checkpoint.ts) */
  readonly #checkpoints?: Checkpointer;
  /** per repo and pull request, the plan being made: the next waits for it, so that plans are posted in the order their deliveries came */
  readonly #pulls = new Map<string, Promise<unknown>>();

  constructor(config: BerthConfig, log: Logger, opts: EngineOptions = {}) {
    this.config = config;
    this.log = log;
    // the audit key and anchor file are checked before anything is opened: either stops berth at once
    const signer = config.auditKeyFile ? loadAuditSigner(config.auditKeyFile) : undefined;
    if (config.auditAnchorFile) checkAnchorFile(config.auditAnchorFile);
    claimDataDir(config);
    this.db = openStore(config);
    this.audit = new AuditLog(this.db);
    this.cluster = new Cluster(this.db, { id: PROCESS_ID, version: VERSION, leaseMs: config.database?.leaseMs ?? 10_000 }, log, this.audit);
    this.handoffs = this.cluster.shared ? new Handoffs(this.db, PROCESS_ID) : undefined;
    if (signer) {
      this.#checkpoints = new Checkpointer(this.audit, signer, { anchorFile: config.auditAnchorFile, log: log.child({ component: 'audit' }) });
      this.#checkpoints.start();
    }
    this.audit.onAppend((row) => this.events.emit('audit', row));
    this.audit.onAppend((row) => {
      if (row.syncId !== undefined && row.stack) this.events.emit('sync', { id: row.syncId, repo: row.repo, stack: row.stack, phase: 'step', step: row });
    });
    // Among several engines only the leader runs syncs: one left running by any other engine was cut short.
    this.syncs = new SyncStore(this.db, this.cluster.shared ? { ownerGone: (owner) => owner !== PROCESS_ID } : {});
    this.holds = new HoldStore(this.db);
    this.notifier = new Notifier(
      {
        targets: config.notifications,
        publicUrl: config.publicUrl,
        store: new NotificationStore(this.db),
        syncOf: (id) => this.syncs.get(id),
        audit: this.audit,
        log: log.child({ component: 'notify' }),
        onChange: (record) => this.events.emit('notification', record),
        comments: new PlanCommentStore(this.db),
      },
      opts.notify,
    );
    this.audit.onAppend((row) => this.notifier.observe(row));
    for (const r of config.repos) {
      this.#sources.set(r.name, new GitSource(repoRef(r), join(config.dataDir, 'git', r.name), { limits: config.limits }));
      this.#secrets.set(r.name, repoSecrets(r));
    }
    this.fleet = new Fleet(config, this.audit, this.world, log, {
      fence: (step, host) => this.cluster.fence(step, { host }),
      leading: () => this.cluster.leading,
    });
    const repos = new Set(this.#sources.keys());
    this.#drift = new DriftWatcher(this.fleet.hosts, repos, this.world, log, (repo) => void this.syncRepo(repo, { trigger: 'drift' }).catch(() => undefined));
    this.#board = new StatusBoard(
      (scope) => this.#statesFromWorld(scope),
      (s) => this.events.emit('stack', s),
      () => this.events.listenerCount('stack') > 0,
    );
    // While events keep the world current, every change of it, and every audit row (syncs and their
    // outcomes come with one), is shown at once. Otherwise the hosts are known again only when a pass
    // ends, and a status worked out in the middle of one would mix the new outcome with the hosts as they were.
    this.world.onChange((scope) => this.following && this.#board.changed(scope));
    this.audit.onAppend((row) => this.following && this.#board.changed(row.repo ? { repo: row.repo, stack: row.stack } : undefined));
    // among several engines: what the others append and run, shown live here too
    if (this.db instanceof PostgresDb) {
      relayEvents(this.db, PROCESS_ID, this.audit, this.events, log.child({ component: 'cluster' }), (row) => {
        if (this.following) this.#board.changed(row.repo ? { repo: row.repo, stack: row.stack } : undefined);
      });
    }
    const changed = () => this.#board.changed();
    this.#recorder = new Recorder(this.audit, this.syncs, this.fleet.hosts, (e) => this.events.emit('sync', e));
    this.#reconciler = new Reconciler({
      config,
      log,
      audit: this.audit,
      holds: this.holds,
      syncs: this.syncs,
      pins: new PinStore(this.db),
      memory: new StackMemory(this.db),
      fleet: this.fleet,
      drift: this.#drift,
      recorder: this.#recorder,
      readHead: (repo, plog, moved) => this.#readHead(repo, plog, moved),
      schedules: () => this.#schedules,
      declaredStacks: (repo) => (this.world.head(repo)?.rendered.stacks ?? []).map((s) => s.def.name),
      watched: () => this.following || this.events.listenerCount('stack') > 0,
      changed,
    });
    this.#actions = new Actions({
      audit: this.audit,
      holds: this.holds,
      syncs: this.syncs,
      sources: this.#sources,
      changed,
      readHead: (repo) => this.#readHead(repo, log.child({ repo })),
      lastHead: (repo) => this.world.head(repo),
      render: async (repo, source, sha) => renderSnapshot(await source.snapshot(sha), this.#renderOptions(repo)),
      serialize: (repo, task) => this.#queue.serialize(repo, task),
      passAt: (repo, opts, at) => this.#reconciler.run(repo, opts, at),
      runningRepos: (stackName) => [...new Set(this.world.hosts().flatMap((h) => h.containers.filter((c) => c.stack === stackName).map((c) => c.repo)))],
    });
  }

  /** The engine's Docker hosts, by name. */
  get hosts() {
    return this.fleet.hosts;
  }

  get monitor() {
    return this.fleet.monitor;
  }

  /** True while the hosts' events keep the World current (watchDrift): reads then ask nothing of the hosts or the forge. */
  get following(): boolean {
    return this.#drift.following;
  }

  /** Resolves once every pass that is running or queued has ended. */
  async drain(): Promise<void> {
    await this.#queue.drain();
  }

  /** Stops the timers, signs a last checkpoint of the audit log (with an auditKeyFile) and closes the database; a second call does nothing. */
  close(): void {
    this.cluster.stop();
    this.notifier.stop();
    this.#board.stop();
    this.#schedules?.stop();
    this.fleet.stop();
    if (!this.db.isOpen) return;
    this.#checkpoints?.close();
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
    if (opts.dryRun) return this.#reconciler.run(repo, opts);
    if (!this.cluster.leading) return this.#follow(repo, opts);
    return this.#queue.request(repo, opts);
  }

  /**
   * A pass asked of a follower: a webhook's is handed to the leader (handoff.ts); every pass here
   * is a dry run, which keeps this engine's view of the repo and the hosts current for reads.
   */
  #follow(repo: string, opts: PassOptions): Promise<RepoPass> {
    if (opts.trigger === 'webhook' && this.handoffs) {
      this.handoffs.submit({ kind: 'pass', repo, opts: { trigger: opts.trigger, ...(opts.actor ? { actor: opts.actor } : {}) } });
    }
    return this.#reconciler.run(repo, { trigger: opts.trigger, dryRun: true, ...(opts.stack ? { stack: opts.stack } : {}) });
  }

  /**
   * The plan of `ref` (a branch, a ref such as refs/pull/7/head, a commit SHA) of `repo`: fetched
   * without moving the branch berth tracks, rendered with the repo's policy, placed on the live
   * hosts and diffed against what runs there, as a dry-run pass; nothing is changed, applied or
   * recorded (src/engine/plans.ts). Refuses an unknown repo (unknown-repo) and a ref the remote
   * does not have (unknown-ref).
   */
  async plan(repo: string, ref: string): Promise<RepoPlan> {
    const source = this.#sources.get(repo);
    if (!source) {
      const names = this.config.repos.map((r) => r.name).join(', ') || 'none';
      throw new EngineError(`there is no repo named ${repo} in the engine config (its repos: ${names})`, 'unknown-repo');
    }
    return makePlan(repo, ref, {
      fetch: (r) =>
        source.fetchRef(r).catch((err: unknown) => {
          throw err instanceof UnknownRefError ? new EngineError(err.message, 'unknown-ref') : err;
        }),
      render: async (commit) => {
        // the stacks whose inputs are those of the branch head's last render are taken from it (it is only read)
        const last = this.#rendered.get(repo);
        const same = last?.secrets === (this.#secrets.get(repo)?.fingerprint() ?? '');
        return renderSnapshot(await source.snapshot(commit.sha), this.#renderOptions(repo), same ? last?.result : undefined);
      },
      dryRun: (head) => this.#reconciler.run(repo, { trigger: 'manual', dryRun: true }, head),
    });
  }

  /**
   * A pull request's plan, posted through the repo's forge targets of that forge (src/notify/plan.ts):
   * its status and its comment are queued, and sent by the notifier. Never throws: a head that
   * cannot be fetched or planned is posted as a failure saying why. Plans of one request are made one
   * after the other.
   */
  planPull(repo: string, forge: ForgeType, pull: PullRequest): Promise<void> {
    const key = `${repo}\0${forge}\0${pull.number}`;
    const log = this.log.child({ repo, pull: pull.number });
    const run = (this.#pulls.get(key) ?? Promise.resolve()).then(async () => {
      let plan: RepoPlan;
      try {
        plan = await this.plan(repo, pull.headRef);
      } catch (err) {
        // the head cannot be fetched (or the hosts listed): the request is told so on its head commit
        log.warn({ ref: pull.headRef, err: (err as Error).message }, 'cannot plan the pull request');
        const error = `berth cannot plan ${pull.headRef}: ${(err as Error).message}`;
        plan = { repo, ref: pull.headRef, commit: { sha: pull.headSha }, verdict: 'failure', error, stacks: [], unreachable: [], diff: '' };
      }
      const targets = this.notifier.enqueuePlan(forge, { repo, pull: pull.number, headSha: plan.commit.sha || pull.headSha, plan });
      log.info({ commit: plan.commit.sha.slice(0, 7), verdict: plan.verdict, targets }, 'pull request planned');
    });
    const settled = run.catch((err: unknown) => log.error({ err: (err as Error).message }, 'cannot post the plan of the pull request'));
    this.#pulls.set(key, settled);
    void settled.then(() => this.#pulls.get(key) === settled && this.#pulls.delete(key));
    return settled;
  }

  /** Whether a pass of every stack of the repo is queued and not started yet: a webhook's or a poll's syncRepo() now joins it. */
  passQueued(repo: string): boolean {
    return this.#queue.queued(repo, { trigger: 'webhook' });
  }

  /** The repo whose branch head defines the stack, or undefined; from the heads last read when they define it. */
  stackRepo(stackName: string): Promise<string | undefined> {
    return this.#actions.stackRepo(stackName);
  }

  /** Applies `stack` as it was at commit `to` (default: the one before the commit last applied) and holds it there (actions.ts). */
  rollback(stackName: string, opts: { to?: string; actor: string; waitHealthy?: boolean }): Promise<StackOutcome & { commit: CommitInfo }> {
    return this.#actions.rollback(stackName, opts);
  }

  /** Per service, the replicas a sync running in this process changes and how they fare so far (undefined for any other sync). */
  progressOf(syncId: number): ServiceProgress[] | undefined {
    return this.#recorder.progressOf(syncId);
  }

  /** Pauses automatic syncs of the stack until `resume` or a new commit. */
  pause(stackName: string, actor: string): Promise<void> {
    return this.#actions.pause(stackName, actor);
  }

  /** The stack's hold, if it has one (its owning repo's). */
  holdOf(stackName: string): Promise<Hold | undefined> {
    return this.#actions.holdOf(stackName);
  }

  /** Ends a pause or a manual rollback's hold; false when the stack was not held. */
  async resume(stackName: string, actor: string): Promise<boolean> {
    return this.#actions.resume(stackName, actor);
  }

  /**
   * Checks the hosts periodically (`hostCheck`), audits their changes, and calls `onChange` when one
   * is lost or comes back, so that its replicas are placed again. Without it, each pass checks once.
   */
  startMonitor(onChange?: () => void): void {
    this.fleet.start(onChange);
  }

  /**
   * Follows every host's Docker events (the World kept current, drift acted on within seconds) and
   * every `resyncMs` inspects every container (drift.ts). Returns a function that stops it.
   */
  watchDrift(opts: DriftOptions): () => void {
    return this.#drift.watch(opts);
  }

  /**
   * Every `everyMs`, a pass of each repo whose last head follows an image's tag
   * (x-berth.watch-image): its pass resolves the tag again. Returns a function that stops it.
   */
  watchImages(everyMs: number): () => void {
    const timer = setInterval(() => {
      for (const r of this.config.repos) {
        if (this.#followedImages(r.name).size) void this.syncRepo(r.name, { trigger: 'poll' }).catch(() => undefined);
      }
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * The repos whose last head has a service following the tag of one of these images
   * (x-berth.watch-image), references compared as Docker reads them (`nginx` is
   * `docker.io/library/nginx:latest`): what a registry's push notification wakes.
   */
  followersOf(images: readonly string[]): string[] {
    const pushed = new Set(images.map(imageKey));
    return this.config.repos.map((r) => r.name).filter((repo) => [...this.#followedImages(repo)].some((key) => pushed.has(key)));
  }

  /** The image keys (imageKey) that services of the repo's last head follow. */
  #followedImages(repo: string): Set<string> {
    const stacks = this.world.head(repo)?.rendered.stacks ?? [];
    return new Set(stacks.flatMap((s) => (s.ok ? s.stack.services.filter((svc) => svc.watchImage).map((svc) => imageKey(svc.image)) : [])));
  }

  /**
   * Runs the scheduled jobs (`x-berth.schedule`) on their schedules, as each pass from now on
   * installs them from the stacks it renders. Returns a function that stops them.
   */
  startSchedules(): () => void {
    const scheduler = (this.#schedules ??= new JobScheduler((job) => this.#runScheduled(job), this.log.child({ trigger: 'schedule' })));
    return () => {
      scheduler.stop();
      if (this.#schedules === scheduler) this.#schedules = undefined;
    };
  }

  /**
   * Among several engines on one PostgreSQL (docs/how-it-works.md, "Running two engines"): joins the
   * election, and while this engine leads, carries out what followers hand over (`run`), sends the
   * notifications, and starts with a pass of every repo, which finishes what a former leader left
   * half done. Alone on SQLite, sends the notifications. Returns a function that stops it all and
   * gives up the lead.
   */
  startCluster(run: (request: HandoffRequest) => Promise<unknown>): () => void {
    const handoffs = this.handoffs;
    if (!handoffs) return this.startNotifications();
    const log = this.log.child({ component: 'cluster' });
    const stopServing = serveHandoffs(handoffs, { leading: () => (this.cluster.leading ? this.cluster.term : 0), run, log });
    const off = this.cluster.onRole((e) => {
      if (e.role !== 'leader') {
        this.notifier.stop();
        return;
      }
      try {
        const { requeued, lost } = handoffs.recover(e.term);
        if (requeued + lost) log.info({ requeued, lost }, 'hand-overs a former leader left unanswered');
      } catch (err) {
        log.warn({ err }, 'could not read the hand-overs a former leader left');
      }
      this.startNotifications();
      void this.syncAll({ trigger: 'startup' }).catch((err: unknown) => log.error({ err }, 'the first pass as leader failed'));
    });
    this.cluster.start();
    return () => {
      off();
      stopServing();
      this.cluster.stop();
      this.notifier.stop();
    };
  }

  /**
   * Sends the notifications (docs/notifications.md): what is pending in the database (an earlier
   * run's too), then each as it is queued. Returns a function that stops it (close() does too).
   */
  startNotifications(): () => void {
    return this.notifier.start();
  }

  /** The scheduled jobs installed now (none until startSchedules()). */
  scheduled(): ScheduledJob[] {
    return this.#schedules?.jobs() ?? [];
  }

  /** One run of a scheduled job on the hosts that answer, each run audited. */
  #runScheduled(job: ScheduledJob): Promise<void> {
    if (!this.cluster.leading) return Promise.resolve(); // the leader runs it
    const down = this.fleet.down();
    const hosts = [...this.fleet.hosts.values()].filter((h) => !down.has(h.name));
    const log = this.log.child({ repo: job.repo, stack: job.stack, service: job.service, trigger: 'schedule' });
    return runScheduledJob(
      job,
      hosts,
      (e) => {
        const entry = stepRow(e);
        this.audit.append({ ...entry, repo: job.repo, commit: job.commit, stack: job.stack, trigger: 'schedule', actor: 'berth' });
        log[entry.outcome === 'error' ? 'warn' : 'info']({ host: entry.host, container: entry.containerAfter?.slice(0, 12) }, `${e.kind}: ${entry.message}`);
      },
      log,
    );
  }

  /**
   * Every stack's status (or one's), with the sync history and the holds. While the hosts' events
   * are followed (berth serve), from what berth last saw, at no cost to the hosts or the forge;
   * otherwise (the CLI on its own) from a dry-run pass that lists the hosts and looks up the branch.
   */
  async status(stack?: string): Promise<StackState[]> {
    if (this.following) return (await this.#board.states()).filter((s) => !stack || s.name === stack);
    const passes = await Promise.all(this.config.repos.map((r) => this.#reconciler.run(r.name, { trigger: 'manual', dryRun: true, stack })));
    return passes.flatMap((pass) => pass.stacks.map((outcome) => this.#stateOf(pass.repo, outcome, pass.unreachable)));
  }

  /** Under berth serve, the status board's version (board.ts): the same number, the same status() answer. */
  statusVersion(): number | undefined {
    return this.following ? this.#board.version : undefined;
  }

  /** The stacks' status from the World alone (no Docker or git call): those of `scope`, else every stack. */
  async #statesFromWorld(scope?: { repo: string; stack?: string }): Promise<StackState[]> {
    const states: StackState[] = [];
    for (const r of this.config.repos.filter((x) => !scope || x.name === scope.repo)) {
      const head = this.world.head(r.name);
      if (!head) continue; // never read: nothing to say yet
      const pass = await this.#reconciler.run(r.name, { trigger: 'manual', dryRun: true, stack: scope?.stack }, head, { fromWorld: true });
      for (const outcome of pass.stacks) {
        const state = this.#stateOf(pass.repo, outcome, pass.unreachable);
        const seen = [...new Set(state.replicas.map((x) => x.host))]
          .map((h) => this.world.seenAt(h))
          .filter((t): t is string => t !== undefined)
          .sort();
        states.push({ ...state, ...(seen.length ? { observedAt: seen[0] } : {}) });
      }
    }
    return states;
  }

  /** A stack's status from an outcome whose plan describes the hosts as they are, the sync history and the holds. */
  #stateOf(repo: string, outcome: StackOutcome, unreachable: string[] = []): StackState {
    return stackState({
      repo,
      outcome,
      latest: this.syncs.latest(repo, outcome.stack),
      lastSucceeded: this.syncs.lastSucceeded(repo, outcome.stack),
      hold: this.holds.get(repo, outcome.stack),
      unreachable: new Set(unreachable),
    });
  }

  /** What render needs from the config: the repo's policy and secrets, the limits, and the hosts (a global service's containers are counted on them). */
  #renderOptions(repo: string): RenderOptions {
    const { limits, hosts } = this.config;
    return {
      policy: this.config.repos.find((r) => r.name === repo)?.policy,
      limits,
      hosts: hosts.map((h) => ({ name: h.name, labels: h.labels })),
      ...this.#secrets.get(repo)?.options,
    };
  }

  /**
   * Fetches the branch head (one ref look-up when unmoved; a webhook's pass fetches at once, the
   * push having moved it) and renders it (once per commit).
   */
  async #readHead(repo: string, log: Logger, moved = false): Promise<Head> {
    const source = this.#sources.get(repo);
    if (!source) throw new Error(`unknown repo ${repo}`);
    const commit = await source.update({ moved });
    const last = this.#rendered.get(repo);
    const fingerprint = this.#secrets.get(repo)?.fingerprint() ?? '';
    if (last?.sha === commit.sha && last.secrets === fingerprint) {
      this.world.setHead(repo, { commit, rendered: last.result });
      return { commit, rendered: last.result };
    }
    if (last?.sha === commit.sha) log.info('the secrets folder changed: rendering again');
    else log.info({ commit: commit.sha.slice(0, 7), author: commit.author, message: commit.message.split('\n')[0] }, 'new commit');
    // The stacks whose inputs did not change are taken from the last render (same secrets only: they are inputs too).
    const rendered = renderSnapshot(await source.snapshot(commit.sha), this.#renderOptions(repo), last?.secrets === fingerprint ? last.result : undefined);
    this.#rendered.set(repo, { sha: commit.sha, secrets: fingerprint, result: rendered });
    this.world.setHead(repo, { commit, rendered });
    return { commit, rendered };
  }
}

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
