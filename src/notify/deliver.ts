/**
 * Delivery of notifications (docs/notifications.md, "Delivery"). Never on a sync's path: an audit
 * row that makes an event is queued for each target that wants it (one insert) and nothing more;
 * a worker, started by `berth serve`, sends each target's deliveries one at a time and in order,
 * with retries on its own schedule, and records every attempt. The queue is the database's, so
 * what is pending when berth stops is sent after the next start, and what a CLI run queued is sent
 * by the serve that shares its database.
 */
import type { Logger } from 'pino';
import { readSecretFile, ConfigError } from '../config.ts';
import type { AuditLog, AuditRow } from '../audit/log.ts';
import type { NotificationFilter, NotificationRecord, NotificationStore, QueueLimits, QueuedNotification } from '../audit/notifications.ts';
import type { Page } from '../audit/db.ts';
import type { PlanCommentStore } from '../audit/plan-comments.ts';
import { httpUrl, isForge, type ForgeTarget, type ForgeType, type NotificationTarget } from './config.ts';
import { eventOf, EVENT_KINDS, type NotificationEvent, type SyncContext } from './events.ts';
import { FORGE_CLIENTS } from './forges.ts';
import { judge, RETRY_DELAYS_MS, send, type HttpAnswer, type Verdict } from './http.ts';
import { commentIdOf, planComment, planStatus, PLAN_EVENT, type PlanDelivery } from './plan.ts';
import { commitStatus, requestFor, type ResolvedTarget } from './targets.ts';

export interface NotifyOptions {
  /** the wait before each retry (default RETRY_DELAYS_MS: 1 s, 5 s, 30 s, 2 min, 10 min); once they run out, the delivery has failed */
  retryDelaysMs?: readonly number[];
  /** how long one request may take (default 10 s) */
  requestTimeoutMs?: number;
  /** how often the worker looks for deliveries another process queued (default 5 s) */
  pollMs?: number;
  /** how big a target's queue may grow (default: drift coalesced past 100 pending, the oldest dropped past 1,000) */
  limits?: QueueLimits;
}

export interface NotifierDeps {
  targets: NotificationTarget[];
  /** the engine config's publicUrl: the links to the dashboard */
  publicUrl?: string;
  store: NotificationStore;
  /** the sync record a row belongs to (eventOf reads how it ended) */
  syncOf: (id: number) => SyncContext | undefined;
  audit: Pick<AuditLog, 'append'>;
  log: Logger;
  /** told of every change of a delivery: queued, attempted, delivered, failed, dropped */
  onChange?: (record: NotificationRecord) => void;
  /** the comments berth wrote with pull requests' plans, so that the next plan edits its own (docs/notifications.md, "Plans on pull requests") */
  comments?: PlanCommentStore;
}

export const DEFAULT_LIMITS: QueueLimits = { coalesceAbove: 100, maxPending: 1000 };

/** A target as the worker holds it: with its secrets, and what may be shown of it. */
type Target = ResolvedTarget & {
  /** `ops (slack, https://hooks.slack.com)`: the URL's origin only */
  label: string;
  /** what must never appear in a message: the token, the URL, its path and query */
  secrets: string[];
};

export class Notifier {
  readonly #deps: NotifierDeps;
  readonly #targets = new Map<string, Target>();
  readonly #delays: readonly number[];
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #limits: QueueLimits;
  #running = false;
  #timer?: NodeJS.Timeout;
  #wakeQueued = false;
  /** per target, the delivery being sent */
  readonly #inFlight = new Map<string, { id: number; abort: AbortController }>();

  /** Reads every target's secret files: one that cannot be read stops berth (ConfigError), naming the file, never its content. */
  constructor(deps: NotifierDeps, opts: NotifyOptions = {}) {
    this.#deps = deps;
    this.#delays = opts.retryDelaysMs ?? RETRY_DELAYS_MS;
    this.#timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.#pollMs = opts.pollMs ?? 5_000;
    this.#limits = opts.limits ?? DEFAULT_LIMITS;
    for (const t of deps.targets) this.#targets.set(t.name, resolve(t));
  }

  /** Whether any target is configured: without one, rows are not even looked at. */
  get enabled(): boolean {
    return this.#targets.size > 0;
  }

  /**
   * Queues the event `row` makes for every target that wants it; runs inside the audit append, so
   * it only inserts, and never throws (a notification that cannot be queued is logged).
   */
  observe(row: AuditRow): void {
    if (!this.enabled || !EVENT_KINDS.has(row.kind)) return;
    try {
      const sync = row.syncId !== undefined && (row.kind === 'sync.failed' || row.kind === 'job.failed') ? this.#deps.syncOf(row.syncId) : undefined;
      const ev = eventOf(row, sync);
      if (ev) this.enqueue(ev);
    } catch (err) {
      this.#deps.log.error({ row: row.id, kind: row.kind, err: (err as Error).message }, 'cannot queue a notification');
    }
  }

  /** Queues `ev` for every target whose filters take it. */
  enqueue(ev: NotificationEvent): void {
    const now = Date.now();
    for (const t of this.#targets.values()) {
      if (!wants(t.config, ev) || (isForge(t.config) && !commitStatus(ev, undefined))) continue;
      const { record, dropped } = this.#deps.store.enqueue(
        {
          target: t.config.name,
          type: t.config.type,
          event: ev.event,
          repo: ev.repo,
          stack: ev.stack,
          host: ev.host,
          commitSha: ev.commit?.sha,
          syncId: ev.syncId,
          payload: JSON.stringify(ev),
        },
        { coalesce: ev.event === 'drift.detected' || ev.event === 'drift.corrected', limits: this.#limits, now },
      );
      this.#changed(record);
      for (const d of dropped) {
        this.#deps.log.warn({ target: t.label, id: d.id, event: d.event }, `notification dropped: ${d.error}`);
        this.#changed(d);
      }
    }
    this.#wake();
  }

  /**
   * The forge targets a pull request's plan goes to: those of the forge the request is on (a
   * GitHub pull request's number means nothing to GitLab) whose `repos` take the repo.
   */
  planTargets(repo: string, forge: ForgeType): ForgeTarget[] {
    return [...this.#targets.values()]
      .map((t) => t.config)
      .filter((t): t is ForgeTarget => isForge(t) && t.type === forge && (!t.repos || t.repos.includes(repo)));
  }

  /** Queues a pull request's plan (its status and its comment) for each of planTargets(); returns their names. */
  enqueuePlan(forge: ForgeType, d: PlanDelivery): string[] {
    const targets = this.planTargets(d.repo, forge);
    for (const t of targets) {
      const { record } = this.#deps.store.enqueue(
        { target: t.name, type: t.type, event: PLAN_EVENT, repo: d.repo, commitSha: d.headSha, payload: JSON.stringify(d) },
        { coalesce: false, limits: this.#limits, now: Date.now() },
      );
      this.#changed(record);
    }
    this.#wake();
    return targets.map((t) => t.name);
  }

  /**
   * Sends a plan: the status on its commit, then the comment, edited when berth wrote one on that
   * request before (added anew when the forge no longer has it). The first answer that is not a
   * 2xx is the attempt's; a retry sends the status again (it replaces itself) and the comment.
   */
  async #sendPlan(target: Target, d: PlanDelivery, opts: { timeoutMs: number; signal: AbortSignal; secrets: string[] }): Promise<HttpAnswer> {
    if (!('client' in target)) return { error: 'a plan goes to a forge target only' };
    const { client } = target;
    const ok = (a: HttpAnswer) => a.status !== undefined && a.status >= 200 && a.status < 300;
    const status = await send(client.statusRequest(planStatus(d, client.forge, this.#deps.publicUrl)), opts);
    if (!ok(status)) return status;
    const body = planComment(d, client.forge);
    const key = { target: target.config.name, repo: d.repo, pull: d.pull };
    const known = this.#deps.comments?.get(key);
    if (known !== undefined) {
      const edited = await send(client.commentRequest(d.pull, body, known), opts);
      if (edited.status !== 404) return edited;
      this.#deps.comments?.forget(key); // deleted on the forge: a new one is added
    }
    const { json, ...created } = await send(client.commentRequest(d.pull, body), { ...opts, json: true });
    if (ok(created)) {
      const id = commentIdOf(json);
      if (id !== undefined) this.#deps.comments?.set(key, id);
      else
        this.#deps.log.warn({ target: target.label, repo: d.repo, pull: d.pull }, 'the forge answered the comment without its id: the next plan adds another');
    }
    return created;
  }

  /** Deliveries matching the filter, newest first (GET /api/v1/notifications). */
  query(filter: NotificationFilter): Page<NotificationRecord> {
    return this.#deps.store.query(filter);
  }

  /** Starts the worker: it sends what is due now (what an earlier run left pending too), then as deliveries become due. Returns stop(). */
  start(): () => void {
    if (this.#running) return () => this.stop();
    for (const d of this.#deps.store.dropUnknownTargets([...this.#targets.keys()], Date.now())) this.#changed(d);
    if (!this.enabled) return () => this.stop();
    this.#running = true;
    this.#tick();
    return () => this.stop();
  }

  /** Stops the worker; a request in flight is abandoned and its delivery stays pending, for the next start. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#timer);
    const held = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const f of held) f.abort.abort();
    this.#deps.store.release(held.map((f) => f.id));
  }

  /** A tick soon, outside the caller's work (an audit append). */
  #wake(): void {
    if (!this.#running || this.#wakeQueued) return;
    this.#wakeQueued = true;
    setImmediate(() => {
      this.#wakeQueued = false;
      this.#tick();
    });
  }

  /** Sends each target's oldest pending delivery that is due, and sets the timer for the next one. */
  #tick(): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    const now = Date.now();
    let next = now + this.#pollMs;
    try {
      for (const head of this.#deps.store.heads()) {
        const target = this.#targets.get(head.record.target);
        if (!target || this.#inFlight.has(target.config.name)) continue;
        if (head.nextAt > now) {
          next = Math.min(next, head.nextAt);
          continue;
        }
        if (!this.#deps.store.claim(head.record.id, now, now + this.#timeoutMs + 60_000)) continue; // another berth sends it
        void this.#attempt(target, head);
      }
    } catch (err) {
      this.#deps.log.error({ err: (err as Error).message }, 'cannot read the notification queue');
    }
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, next - now));
    this.#timer.unref();
  }

  async #attempt(target: Target, head: QueuedNotification): Promise<void> {
    const { record } = head;
    const abort = new AbortController();
    this.#inFlight.set(target.config.name, { id: record.id, abort });
    const log = this.#deps.log.child({ target: target.label, id: record.id, event: record.event });
    try {
      const opts = { timeoutMs: this.#timeoutMs, signal: abort.signal, secrets: target.secrets };
      const plan = record.event === PLAN_EVENT ? (JSON.parse(head.payload) as PlanDelivery) : undefined;
      let answer: HttpAnswer | undefined;
      if (plan) answer = await this.#sendPlan(target, plan, opts);
      else {
        const ev = JSON.parse(head.payload) as NotificationEvent;
        const req = requestFor(target, ev, { id: record.id, count: record.count, publicUrl: this.#deps.publicUrl });
        answer = req && (await send(req, opts));
      }
      if (abort.signal.aborted || !this.#running) return; // stopped meanwhile: released, pending for the next start
      this.#inFlight.delete(target.config.name);
      const attempt = record.attempts + 1;
      const now = Date.now();
      // an event with nothing to send (a status about no commit) is never queued; should one be, it fails at once
      const verdict: Verdict = answer ? judge(answer, attempt, this.#delays, now) : { next: 'failed', error: 'nothing to send for this event' };
      const status = 'status' in verdict ? verdict.status : undefined;
      const error = verdict.next === 'delivered' ? undefined : verdict.error;
      const updated = this.#deps.store.attempted(record.id, {
        outcome: verdict.next === 'retry' ? 'pending' : verdict.next,
        status,
        error,
        nextAt: verdict.next === 'retry' ? now + verdict.delayMs : undefined,
        now,
      });
      if (verdict.next === 'delivered') {
        log.debug({ attempt, status }, 'notification delivered');
        if (plan) this.#posted(plan, target);
      } else if (verdict.next === 'retry')
        log.info({ attempt, status, err: error, retryInMs: verdict.delayMs }, 'notification not delivered yet: it is tried again');
      else {
        log.warn({ attempt, status, err: error }, 'notification failed');
        this.#deps.audit.append({
          kind: 'notification.failed',
          repo: record.repo,
          stack: record.stack,
          host: record.host, // no syncId: the row is not one of the steps of the sync it tells of
          outcome: 'error',
          message: `${record.event}${record.commitSha ? ` of ${record.commitSha.slice(0, 7)}` : ''} to ${target.label} failed after ${attempt} attempt(s): ${error}`,
        });
      }
      if (updated) this.#changed(updated);
    } catch (err) {
      this.#inFlight.delete(target.config.name);
      if (this.#running) log.error({ err: (err as Error).message }, 'cannot send a notification');
    } finally {
      if (this.#running) this.#wake();
    }
  }

  /** A plan delivered: audited with its repo, pull request, commit and verdict, and the target by its label (no URL path, no token). */
  #posted(d: PlanDelivery, target: Target): void {
    const { commit, verdict, error } = d.plan;
    this.#deps.audit.append({
      kind: 'plan.posted',
      repo: d.repo,
      commit: { sha: d.headSha, author: commit.author ?? '', email: '', message: commit.message ?? '' },
      outcome: 'info',
      message: `the plan of pull request #${d.pull} at ${d.headSha.slice(0, 7)} (${verdict}${error ? `: ${error.split('\n')[0]}` : ''}) posted to ${target.label}`,
    });
  }

  #changed(record: NotificationRecord): void {
    try {
      this.#deps.onChange?.(record);
    } catch (err) {
      this.#deps.log.error({ err: (err as Error).message }, 'a notification listener failed');
    }
  }
}

/**
 * Whether a target wants an event: one of its events, of one of its repos and stacks. A host's
 * events concern every repo and stack: only `events` filters them.
 */
export function wants(t: Pick<NotificationTarget, 'events' | 'repos' | 'stacks'>, ev: Pick<NotificationEvent, 'event' | 'repo' | 'stack'>): boolean {
  if (!t.events.includes(ev.event)) return false;
  if (ev.event === 'host.lost' || ev.event === 'host.up') return true;
  if (t.repos && (ev.repo === undefined || !t.repos.includes(ev.repo))) return false;
  if (t.stacks && (ev.stack === undefined || !t.stacks.includes(ev.stack))) return false;
  return true;
}

/** A target with its secrets read (urlFile, secretFile, tokenFile), and its label. */
function resolve(t: NotificationTarget): Target {
  if (isForge(t)) {
    const token = readSecretFile(t.tokenFile, `the token of notification ${t.name}`);
    if (!token) throw new ConfigError(`the token file of notification ${t.name}, ${t.tokenFile}, is empty`);
    return {
      config: t,
      client: FORGE_CLIENTS[t.type]({ apiUrl: t.apiUrl, repository: t.repository, token }),
      label: `${t.name} (${t.type}, ${new URL(t.apiUrl).origin})`,
      secrets: [token],
    };
  }
  const url = t.url ?? readSecretFile(t.urlFile!, `the URL of notification ${t.name}`);
  if (!httpUrl(url)) throw new ConfigError(`the file ${t.urlFile} (urlFile of notification ${t.name}) does not hold an http:// or https:// URL`);
  const secret = t.secretFile === undefined ? undefined : readSecretFile(t.secretFile, `the secret of notification ${t.name}`);
  if (secret === '') throw new ConfigError(`the secret file of notification ${t.name}, ${t.secretFile}, is empty`);
  const parsed = new URL(url);
  const rest = `${parsed.pathname}${parsed.search}`;
  return {
    config: t,
    url,
    ...(secret !== undefined ? { secret } : {}),
    label: `${t.name} (${t.type}, ${parsed.origin})`,
    secrets: [url, ...(rest.length > 1 ? [rest] : []), ...(secret !== undefined ? [secret] : [])],
  };
}
