/**
 * What people ask of berth, defined once: the stacks and hosts, the sync history, the audit log,
 * the webhook deliveries, the plan of a ref, a stack's logs, and the actions sync, rollback, pause and resume (docs/api.md). Two
 * implementations: LocalOps, over an Engine in this process (what the API's routes call, and the
 * CLI without BERTH_URL), and the CLI's HTTP one (src/cli/remote.ts), over a running berth's API.
 * A refusal is an EngineError with a stable code; the API answers it with the
 * HTTP status of that code.
 */
import type { Evidence } from '../apply/evidence.ts';
import type { AuditFilter, AuditRow } from '../audit/log.ts';
import { DeliveryStore, type DeliveryFilter, type DeliveryRecord } from '../audit/deliveries.ts';
import type { Page } from '../audit/db.ts';
import { parseSince } from '../audit/format.ts';
import type { SyncFilter, SyncRecord } from '../audit/syncs.ts';
import { countManagedContainers, explainError, type HostStatus } from '../observe/hosts.ts';
import { observeHost, type LiveContainer } from '../observe/live.ts';
import { sampleContainer, type ResourceSample } from '../observe/stats.ts';
import type { Engine } from './engine.ts';
import type { ClusterView } from './cluster.ts';
import { EngineError, type EngineErrorCode } from './errors.ts';
import type { LogQuery } from './log-lines.ts';
import { StackLogs, type LogStream } from './logs.ts';
import type { SyncEvent } from './events.ts';
import { mapLimit } from './limit.ts';
import { awaitAnswer, type HandedAction, type HandoffRequest } from './handoff.ts';
import type { RepoPass, StackOutcome } from './outcome.ts';
import type { RepoPlan } from './plans.ts';
import type { StackState } from './status.ts';

/** A commit as views show it. */
export interface CommitView {
  sha: string;
  author: string;
  message: string;
}

/** A stack's status with the applied commit's author and message, when known. */
export type StackView = StackState & { commitInfo?: CommitView };

/** A host's status with how many berth-managed containers it has (absent when not up, or they could not be counted). */
export type HostSummary = HostStatus & { containers?: number; observedAt?: string };

/** One berth-managed container on a host, as a host's view lists it. */
export type HostContainer = Pick<LiveContainer, 'id' | 'name' | 'stack' | 'service' | 'slot' | 'state' | 'health' | 'job' | 'image' | 'imageId' | 'commit'>;

/** A host's status with its berth-managed containers (none when it does not answer). */
export type HostView = HostStatus & { containers: HostContainer[]; observedAt?: string };

/** A sync run with its steps (audit rows), oldest first; a running one's `progress` is as of now. */
export type SyncView = SyncRecord & { steps: AuditRow[] };

/** One replica's resource use (a sample), or why it has none: not running, or its host did not answer. */
export type ReplicaStats = { service: string; slot: number; host: string; container?: string } & ({ sample: ResourceSample } | { error: string });

/** A stack's resource use, one sample per replica (GET /api/v1/stacks/:stack/stats). */
export interface StackStats {
  stack: string;
  /** when the samples were asked for, ISO 8601 */
  sampledAt: string;
  replicas: ReplicaStats[];
}

/** The audit log's filter as a client sends it: times as ISO or how long ago (30m, 2h, 7d). */
export type AuditQuery = Omit<AuditFilter, 'since' | 'until' | 'syncId'> & { since?: string; until?: string };

/** What a sync or a rollback that was waited for came to. */
export interface ActionOutcome {
  stack: string;
  status: StackOutcome['status'];
  errors?: string[];
  /** what the failing container showed, when a replica's failure ended the sync (src/apply/evidence.ts) */
  evidence?: Evidence;
  syncId?: number;
  /** a rollback's target */
  commit?: CommitView;
  /** the berth command's arguments a person runs next (StackOutcome.hint) */
  hint?: string[];
}

/** The outcome of a sync of every stack (or one), per repo. */
export interface SyncReport {
  repo: string;
  /** the commit the pass was at, when known */
  commit?: CommitView;
  /** the repo could not be read, or its berth.yaml is invalid (`commit` set) */
  error?: string;
  /** `started`: a server synced it in the background (not waited for) */
  stacks: Array<Omit<ActionOutcome, 'status'> & { status: ActionOutcome['status'] | 'started'; changes?: number }>;
}

export interface ActionOptions {
  /** who asked: a token's name, or cli:<user> */
  actor: string;
  /** answer once it ended (and, for a sync, once what it changed runs healthy); false: once it started */
  wait: boolean;
}

/** Every code an API error answer carries (docs/api.md, "Errors"): an operation's refusals, and the server's own. */
export type ApiErrorCode = EngineErrorCode | 'unauthenticated' | 'forbidden' | 'no-such-route' | 'too-large' | 'rate-limited' | 'repo-unreadable' | 'internal';

/** The operations, local or remote. */
export interface Operations {
  stacks(): Promise<StackView[]>;
  /** throws unknown-stack */
  stack(name: string): Promise<StackView>;
  /**
   * One resource sample of each of the stack's replicas, asked of their hosts now. Throws
   * unknown-stack. `known`: the stack's status as the caller has just read it, so that the replicas
   * are not looked up a second time (locally, that look is a pass over the hosts).
   */
  stats(name: string, known?: StackView): Promise<StackStats>;
  hosts(): Promise<HostSummary[]>;
  /** the engines on this database and which leads (docs/how-it-works.md, "Running two engines") */
  cluster(): Promise<ClusterView>;
  /** throws unknown-host */
  host(name: string): Promise<HostView>;
  syncs(filter: SyncFilter): Promise<Page<SyncRecord>>;
  /** throws unknown-sync */
  sync(id: number): Promise<SyncView>;
  audit(filter: AuditQuery): Promise<Page<AuditRow>>;
  deliveries(filter: DeliveryFilter): Promise<Page<DeliveryRecord>>;
  /** One stack's sync; undefined when not waited for (it runs on). Throws unknown-stack. */
  syncStack(name: string, opts: ActionOptions): Promise<ActionOutcome | undefined>;
  /** Every stack's sync (or `stack`'s), as per-repo reports. */
  syncAll(opts: ActionOptions & { stack?: string }): Promise<SyncReport[]>;
  /** Throws unknown-stack, nothing-to-roll-back, rollback-target-invalid. */
  rollback(name: string, opts: ActionOptions & { to?: string }): Promise<ActionOutcome | undefined>;
  pause(name: string, actor: string): Promise<void>;
  /** throws not-held */
  resume(name: string, actor: string): Promise<void>;
  /**
   * Calls `onEvent` with every sync event (SyncEvent: a sync's start, steps, rollout progress and
   * end) from now on, once listening (the promise resolves then); returns a function that stops it.
   */
  follow(onEvent: (e: SyncEvent) => void): Promise<() => void>;
  /** What `ref` of `repo` would do to the hosts, changing nothing (src/engine/plans.ts). Throws unknown-repo, unknown-ref. */
  plan(repo: string, ref: string): Promise<RepoPlan>;
  /**
   * The stack's logs (docs/api.md, "Logs"): its containers, then their lines; destroying `records`
   * stops the reading. Throws unknown-stack, unknown-service, unknown-host, invalid-request,
   * too-many-followers.
   */
  logs(name: string, query: LogQuery): Promise<LogStream>;
}

export type { LogQuery, LogStream };

/** What the server adds to the local operations: who asked for an action is audited, and a failure nobody waited for is told. */
export interface LocalHooks {
  /** an action on a known stack, before it is done */
  asked?(a: { repo: string; stack: string; actor: string; message: string }): void;
  /** a sync or rollback that was not waited for failed */
  failed?(a: { stack: string; actor: string; what: string; err: unknown }): void;
}

/** The operations over an Engine in this process. */
export class LocalOps implements Operations {
  readonly #engine: Engine;
  readonly #deliveries: DeliveryStore;
  /** commits are immutable: their author and message, once read from the audit log, by SHA (the newest 1,000) */
  readonly #commits = new Map<string, CommitView>();
  readonly #hooks: LocalHooks;
  readonly #logs: StackLogs;
  #stacksJson?: { version: number; body: Buffer };

  constructor(engine: Engine, hooks: LocalHooks = {}) {
    this.#engine = engine;
    this.#deliveries = new DeliveryStore(engine.db);
    this.#hooks = hooks;
    this.#logs = new StackLogs(engine);
  }

  /** Under berth serve, from what it last saw (docs/how-it-works.md, "Reads"); else a dry-run pass. */
  async stacks(): Promise<StackView[]> {
    return (await this.#engine.status()).map((s) => this.withCommitInfo(s));
  }

  /**
   * `{ stacks }` as JSON (UTF-8 bytes), for GET /api/v1/stacks: under berth serve made once per version of
   * the status board, so that readers polling it share one rendering (500 stacks are ~0.5 MB).
   */
  async stacksJson(): Promise<Buffer> {
    const states = await this.#engine.status();
    const version = this.#engine.statusVersion();
    if (version !== undefined && this.#stacksJson?.version === version) return this.#stacksJson.body;
    // encoded once too: each read then writes the same bytes, allocating nothing of its size
    const body = Buffer.from(JSON.stringify({ stacks: states.map((s) => this.withCommitInfo(s)) }));
    if (version !== undefined) this.#stacksJson = { version, body };
    return body;
  }

  async stack(name: string): Promise<StackView> {
    const state = (await this.#engine.status(name)).find((s) => s.name === name);
    if (!state) throw unknownStack(name);
    return this.withCommitInfo(state);
  }

  async stats(name: string, known?: StackView): Promise<StackStats> {
    const engine = this.#engine;
    const { replicas } = known?.name === name ? known : await this.stack(name);
    const sampledAt = new Date().toISOString();
    // Docker takes two readings a second apart for the CPU figure: the host check's timeout on top
    const timeoutMs = engine.config.hostCheck.timeoutMs + 2_000;
    const sampled = await mapLimit(
      replicas.filter((r) => !r.extra),
      STATS_CONCURRENCY,
      async (r): Promise<ReplicaStats> => {
        const where = { service: r.service, slot: r.slot, host: r.host, ...(r.container ? { container: r.container } : {}) };
        const docker = engine.hosts.get(r.host)?.docker;
        if (!r.container || r.state !== 'running' || !docker) return { ...where, error: r.container ? `not running (${r.state})` : 'missing' };
        try {
          return { ...where, sample: await sampleContainer(docker, r.container, timeoutMs) };
        } catch (err) {
          return { ...where, error: `no stats from ${r.host}: ${explainError(err, timeoutMs)}` };
        }
      },
    );
    return { stack: name, sampledAt, replicas: sampled };
  }

  async hosts(): Promise<HostSummary[]> {
    const engine = this.#engine;
    const statuses = await this.#engine.fleet.readStatuses();
    return Promise.all(
      statuses.map(async (s): Promise<HostSummary> => {
        const docker = engine.hosts.get(s.name)?.docker;
        if (s.state !== 'up' || !docker) return s;
        // under berth serve, from what it last saw of the host: a read asks nothing of it
        const seen = engine.following ? engine.world.host(s.name) : undefined;
        if (seen) return { ...s, containers: seen.containers.length, observedAt: engine.world.seenAt(s.name) };
        return { ...s, containers: await countManagedContainers(docker, engine.config.hostCheck.timeoutMs).catch(() => undefined) };
      }),
    );
  }

  async host(name: string): Promise<HostView> {
    const engine = this.#engine;
    const docker = engine.hosts.get(name)?.docker;
    if (!docker) throw new EngineError(`there is no host named ${name} in the engine config: GET /api/v1/hosts lists them`, 'unknown-host');
    const status = (await this.#engine.fleet.readStatuses()).find((s) => s.name === name)!;
    // a host that does not answer is not asked: its last status says why
    if (status.state !== 'up') return { ...status, containers: [] };
    const seen = engine.following ? engine.world.host(name) : undefined;
    if (seen) return { ...status, containers: seen.containers.map(containerView).sort(byPlace), observedAt: engine.world.seenAt(name) };
    const { timeoutMs } = engine.config.hostCheck;
    try {
      const live = await observeHost(name, docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
      return { ...status, containers: live.containers.map(containerView).sort(byPlace) };
    } catch (err) {
      return { ...status, containers: [], error: `berth could not list its containers: ${explainError(err, timeoutMs)}` };
    }
  }

  async cluster(): Promise<ClusterView> {
    return this.#engine.cluster.view();
  }

  async syncs(filter: SyncFilter): Promise<Page<SyncRecord>> {
    return this.#engine.syncs.list(filter);
  }

  async sync(id: number): Promise<SyncView> {
    const sync = this.#engine.syncs.get(id);
    if (!sync) throw new EngineError(`there is no sync ${id}: GET /api/v1/syncs lists them`, 'unknown-sync');
    const steps: AuditRow[] = [];
    let cursor: number | undefined;
    do {
      const page = this.#engine.audit.query({ syncId: sync.id, limit: 1000, cursor });
      steps.push(...page.rows);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const progress = sync.outcome === 'running' ? this.#engine.progressOf(sync.id) : undefined;
    return { ...sync, ...(progress ? { progress } : {}), steps: steps.reverse() };
  }

  async audit({ since, until, ...rest }: AuditQuery): Promise<Page<AuditRow>> {
    const filter: AuditFilter = { ...rest };
    for (const [key, value] of [
      ['since', since],
      ['until', until],
    ] as const) {
      if (value === undefined) continue;
      try {
        filter[key] = parseSince(value);
      } catch (err) {
        throw new EngineError(`${key}: ${(err as Error).message}`, 'invalid-request');
      }
    }
    return this.#engine.audit.query(filter);
  }

  async deliveries(filter: DeliveryFilter): Promise<Page<DeliveryRecord>> {
    return this.#deliveries.query(filter);
  }

  async syncStack(name: string, { actor, wait }: ActionOptions): Promise<ActionOutcome | undefined> {
    const repo = await this.#repoOf(name);
    this.#hooks.asked?.({ repo, stack: name, actor, message: `sync of ${name}` });
    if (this.#follower()) return this.#handOver('syncStack', [name, { actor, wait }]) as Promise<ActionOutcome | undefined>;
    // waiting, the sync ends once the replicas it changed run and are healthy: converged
    const running = this.#engine.syncRepo(repo, { trigger: 'manual', actor, stack: name, waitHealthy: wait }).then((pass) => outcomeOf(pass, name));
    if (wait) return running;
    running.catch((err: unknown) => this.#hooks.failed?.({ stack: name, actor, what: `the sync of ${name}`, err }));
    return undefined;
  }

  async syncAll({ actor, wait, stack }: ActionOptions & { stack?: string }): Promise<SyncReport[]> {
    if (this.#follower()) return this.#handOver('syncAll', [{ actor, wait, ...(stack ? { stack } : {}) }]) as Promise<SyncReport[]>;
    const passes = await this.#engine.syncAll({ trigger: 'manual', actor, stack, waitHealthy: wait });
    return passes.map(reportOf);
  }

  async rollback(name: string, { to, actor, wait }: ActionOptions & { to?: string }): Promise<ActionOutcome | undefined> {
    const repo = await this.#repoOf(name);
    this.#hooks.asked?.({ repo, stack: name, actor, message: `rollback of ${name} to ${to ?? 'the commit before the one applied'}` });
    if (this.#follower()) return this.#handOver('rollback', [name, { actor, wait, ...(to ? { to } : {}) }]) as Promise<ActionOutcome | undefined>;
    // waiting, the rollback ends once the replicas it changed run and are healthy, as a sync does
    const running = this.#engine
      .rollback(name, { to, actor, waitHealthy: wait })
      .then((o): ActionOutcome => ({ ...outcomeView(o), commit: commitView(o.commit) }));
    if (wait) return running;
    running.catch((err: unknown) => this.#hooks.failed?.({ stack: name, actor, what: `the rollback of ${name}`, err }));
    return undefined;
  }

  async pause(name: string, actor: string): Promise<void> {
    const repo = await this.#repoOf(name);
    this.#hooks.asked?.({ repo, stack: name, actor, message: `pause of ${name}` });
    if (this.#follower()) return void (await this.#handOver('pause', [name, actor]));
    await this.#engine.pause(name, actor);
  }

  async resume(name: string, actor: string): Promise<void> {
    const hold = await this.#engine.holdOf(name);
    if (hold)
      this.#hooks.asked?.({ repo: hold.repo, stack: name, actor, message: `resume of ${name} (held since ${hold.since} by ${hold.actor}: ${hold.reason})` });
    else await this.#repoOf(name); // an unknown stack is said so
    if (this.#follower()) return void (await this.#handOver('resume', [name, actor]));
    if (!hold || !(await this.#engine.resume(name, actor))) throw new EngineError(`${name} is not paused or held: there is nothing to resume`, 'not-held');
  }

  /** True on an engine that follows another (several engines on PostgreSQL): actions go to the leader. */
  #follower(): boolean {
    return this.#engine.handoffs !== undefined && !this.#engine.cluster.leading;
  }

  /** Hands an action to the leader and gives its answer as the leader gave it (src/engine/handoff.ts). */
  async #handOver(action: HandedAction, args: unknown[]): Promise<unknown> {
    const handoffs = this.#engine.handoffs!;
    if (!this.#engine.cluster.view().leader) {
      throw new EngineError(
        `no berth engine leads on this database now: ${action} needs one (start berth serve, or wait for a follower to take over)`,
        'no-leader',
      );
    }
    return awaitAnswer(handoffs, handoffs.submit({ kind: 'action', action, args }));
  }

  async follow(onEvent: (e: SyncEvent) => void): Promise<() => void> {
    const listener = (e: SyncEvent) => onEvent(e);
    this.#engine.events.on('sync', listener);
    return () => this.#engine.events.off('sync', listener);
  }

  plan(repo: string, ref: string): Promise<RepoPlan> {
    return this.#engine.plan(repo, ref);
  }

  logs(name: string, query: LogQuery): Promise<LogStream> {
    return this.#logs.open(name, query);
  }

  /** Ends the logs answers still open (followed ones): a server closing would otherwise wait for them. */
  closeLogs(): void {
    this.#logs.close();
  }

  /** The state with the applied commit's author and message, from the audit rows of that commit. */
  withCommitInfo(state: StackState): StackView {
    if (!state.commit) return state;
    let info = this.#commits.get(state.commit);
    if (!info) {
      const row = this.#engine.audit.query({ commit: state.commit, limit: 1 }).rows[0];
      if (row?.commitSha !== state.commit) return state;
      info = { sha: state.commit, author: row.commitAuthor ?? '', message: row.commitMessage ?? '' };
      this.#commits.set(state.commit, info);
      if (this.#commits.size > 1000) this.#commits.delete(this.#commits.keys().next().value!);
    }
    return { ...state, commitInfo: info };
  }

  /** The repo that defines the stack, or unknown-stack. */
  async #repoOf(name: string): Promise<string> {
    const repo = await this.#engine.stackRepo(name);
    if (!repo) throw unknownStack(name);
    return repo;
  }
}

/** How many replicas' stats are asked for at once (each request holds a connection for about a second). */
const STATS_CONCURRENCY = 16;

const unknownStack = (name: string) => new EngineError(`no repo defines a stack named ${name}: GET /api/v1/stacks lists them`, 'unknown-stack');

const commitView = (c: CommitView): CommitView => ({ sha: c.sha, author: c.author, message: c.message });

/** What a client is told of a container: where it belongs and how it runs, not its full spec view. */
function containerView(c: LiveContainer): HostContainer {
  return {
    id: c.id,
    name: c.name,
    stack: c.stack,
    service: c.service,
    slot: c.slot,
    state: c.state,
    image: c.image,
    commit: c.commit,
    ...(c.health ? { health: c.health } : {}),
    ...(c.job ? { job: c.job } : {}),
    ...(c.imageId ? { imageId: c.imageId } : {}),
  };
}

const byPlace = (a: HostContainer, b: HostContainer) => a.stack.localeCompare(b.stack) || a.service.localeCompare(b.service) || a.slot - b.slot;

/** What a client that waited is told of a stack's sync. */
function outcomeView(o: StackOutcome): ActionOutcome {
  return {
    stack: o.stack,
    status: o.status,
    ...(o.errors ? { errors: o.errors } : {}),
    ...(o.evidence ? { evidence: o.evidence } : {}),
    ...(o.syncId !== undefined ? { syncId: o.syncId } : {}),
    ...(o.hint ? { hint: o.hint } : {}),
  };
}

/** The stack's outcome in a pass; a pass that failed as a whole (repo unreadable, berth.yaml broken) fails it too. */
function outcomeOf(pass: RepoPass, stack: string): ActionOutcome {
  const found = pass.stacks.find((s) => s.stack === stack);
  if (found) return outcomeView(found);
  return { stack, status: pass.commit && pass.error ? 'invalid' : 'failed', errors: [pass.error ?? `the pass over ${pass.repo} did not reach ${stack}`] };
}

/** A pass as a sync report: each stack's outcome with its count of container changes. */
function reportOf(pass: RepoPass): SyncReport {
  return {
    repo: pass.repo,
    ...(pass.commit ? { commit: commitView(pass.commit) } : {}),
    ...(pass.error ? { error: pass.error } : {}),
    stacks: pass.stacks.map((s) => ({ ...outcomeView(s), changes: s.plan?.actions.filter((a) => a.kind !== 'keep').length ?? 0 })),
  };
}

/** What the leader runs for a follower's hand-over: a webhook's pass, or one of the actions (with no API hooks: the follower audited the request). */
export function handoffRunner(engine: Engine): (request: HandoffRequest) => Promise<unknown> {
  const ops = new LocalOps(engine);
  const actions: Record<HandedAction, (...args: never[]) => Promise<unknown>> = {
    syncStack: (name: string, o: ActionOptions) => ops.syncStack(name, o),
    syncAll: (o: ActionOptions & { stack?: string }) => ops.syncAll(o),
    rollback: (name: string, o: ActionOptions & { to?: string }) => ops.rollback(name, o),
    pause: (name: string, actor: string) => ops.pause(name, actor),
    resume: (name: string, actor: string) => ops.resume(name, actor),
  };
  return (request) =>
    request.kind === 'pass'
      ? engine.syncRepo(request.repo, request.opts).then(() => null)
      : (actions[request.action] as (...args: unknown[]) => Promise<unknown>)(...request.args);
}
