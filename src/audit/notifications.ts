/**
 * The notification queue and its history: one row per event and target, pending until the worker
 * (src/notify/deliver.ts) has delivered it, given up on it (failed) or dropped it from a full
 * queue. The rows are the queue, so deliveries still pending when berth stops are sent by the next
 * start. A row names its target, never the target's URL or token.
 */
import { immediate, readPage, withoutNulls, type Db, type Page, type SqlRow } from './db.ts';

/** pending: to send (again); delivered: a 2xx; failed: given up (a 4xx, or every retry used); dropped: left out of a full queue. */
export type NotificationOutcome = 'pending' | 'delivered' | 'failed' | 'dropped';

export const NOTIFICATION_OUTCOMES: readonly NotificationOutcome[] = ['pending', 'delivered', 'failed', 'dropped'];

export interface NotificationInput {
  /** the target's name in the engine config */
  target: string;
  /** webhook, slack, discord, teams, github, gitlab, gitea, bitbucket */
  type: string;
  /** the event's name (src/notify/events.ts) */
  event: string;
  repo?: string;
  stack?: string;
  host?: string;
  commitSha?: string;
  syncId?: number;
  /** the event as JSON: what the request is built from when it is sent */
  payload: string;
}

/** One delivery as the API shows it (the payload and the worker's bookkeeping left out). */
export interface NotificationRecord extends Omit<NotificationInput, 'payload'> {
  id: number;
  /** how many events it stands for: more than 1 when drift events were coalesced into it in a full queue */
  count: number;
  outcome: NotificationOutcome;
  attempts: number;
  /** the HTTP status of the last attempt, when the server answered */
  status?: number;
  /** why the last attempt did not deliver it (or why it was dropped); never a URL's path or a token */
  error?: string;
  /** ISO 8601, UTC, milliseconds */
  createdAt: string;
  lastAttemptAt?: string;
  /** while pending: when it is sent next */
  nextAttemptAt?: string;
  /** when it was delivered, failed or dropped */
  finishedAt?: string;
}

/** A pending delivery as the worker reads it. */
export interface QueuedNotification {
  record: NotificationRecord;
  payload: string;
  /** ms since the epoch: not sent before */
  nextAt: number;
}

/** How big a target's queue may grow (docs/notifications.md, "Delivery"). */
export interface QueueLimits {
  /** past this many pending, a drift event joins a pending one of the same target, repo, stack and event (its count grows) */
  coalesceAbove: number;
  /** past this many pending, the oldest are dropped */
  maxPending: number;
}

export interface NotificationFilter {
  target?: string;
  outcome?: NotificationOutcome;
  /** default 100, at most 1000 */
  limit?: number;
  /** rows with id < cursor (the nextCursor of the previous page) */
  cursor?: number;
}

const INSERT_SQL = `INSERT INTO notifications (target, type, event, repo, stack, host, commitSha, syncId, payload, count, outcome, attempts, createdAt, nextAt)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'pending', 0, ?, ?)`;

/** A row as the API shows it: without the payload, the lease and the raw next time. */
function toRecord(r: SqlRow): NotificationRecord {
  const { payload: _payload, lease: _lease, nextAt, ...rest } = withoutNulls(r);
  const rec = rest as unknown as NotificationRecord;
  return rec.outcome === 'pending' && typeof nextAt === 'number' ? { ...rec, nextAttemptAt: new Date(nextAt).toISOString() } : rec;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The notifications table of a database opened with openDatabase(). */
export class NotificationStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Queues one delivery, due at once. With `coalesce` (a drift event) and more than
   * limits.coalesceAbove pending for the target, it joins the pending one of the same repo, stack
   * and event instead (its count grows). Past limits.maxPending the oldest pending are dropped, and returned.
   */
  enqueue(input: NotificationInput, { coalesce, limits, now }: { coalesce: boolean; limits: QueueLimits; now: number }) {
    return immediate(this.#db, () => {
      const db = this.#db;
      const pending = () =>
        (db.prepare("SELECT count(*) AS n FROM notifications WHERE outcome = 'pending' AND target = ?").get(input.target) as { n: number }).n;
      const free = '(lease IS NULL OR lease < ?)';
      if (coalesce && pending() > limits.coalesceAbove) {
        const same = db
          .prepare(
            `SELECT id FROM notifications WHERE outcome = 'pending' AND target = ? AND event = ? AND repo IS ? AND stack IS ? AND ${free} ORDER BY id LIMIT 1`,
          )
          .get(input.target, input.event, input.repo ?? null, input.stack ?? null, now) as { id: number } | undefined;
        if (same) {
          db.prepare('UPDATE notifications SET count = count + 1 WHERE id = ?').run(same.id);
          return { record: this.get(same.id)!, coalesced: true, dropped: [] as NotificationRecord[] };
        }
      }
      const { id: inserted } = db
        .prepare(`${INSERT_SQL} RETURNING id`)
        .get(
          input.target,
          input.type,
          input.event,
          input.repo ?? null,
          input.stack ?? null,
          input.host ?? null,
          input.commitSha ?? null,
          input.syncId ?? null,
          input.payload,
          iso(now),
          now,
        ) as { id: number };
      const over = pending() - limits.maxPending;
      const dropped: NotificationRecord[] = [];
      if (over > 0) {
        const oldest = db
          .prepare(`SELECT id FROM notifications WHERE outcome = 'pending' AND target = ? AND ${free} ORDER BY id LIMIT ?`)
          .all(input.target, now, over) as Array<{ id: number }>;
        const error = `dropped: more than ${limits.maxPending} deliveries were pending for this target`;
        for (const { id } of oldest) {
          db.prepare("UPDATE notifications SET outcome = 'dropped', error = ?, finishedAt = ?, nextAt = NULL WHERE id = ?").run(error, iso(now), id);
          dropped.push(this.get(id)!);
        }
      }
      return { record: this.get(Number(inserted))!, coalesced: false, dropped };
    });
  }

  /** The oldest pending delivery of each target: each target's deliveries go out one at a time, in order. */
  heads(): QueuedNotification[] {
    const rows = this.#db
      .prepare("SELECT * FROM notifications WHERE id IN (SELECT min(id) FROM notifications WHERE outcome = 'pending' GROUP BY target) ORDER BY id")
      .all();
    return rows.map((r) => ({ record: toRecord(r), payload: r.payload as string, nextAt: Number(r.nextAt ?? 0) }));
  }

  /** Takes a pending delivery for one attempt until `until` (ms): false when another worker holds it, or it is no longer pending. */
  claim(id: number, now: number, until: number): boolean {
    const sql = "UPDATE notifications SET lease = ? WHERE id = ? AND outcome = 'pending' AND (lease IS NULL OR lease < ?)";
    return this.#db.prepare(sql).run(until, id, now).changes === 1;
  }

  /** Records an attempt: delivered, failed, or pending again until `nextAt`. */
  attempted(
    id: number,
    a: { outcome: 'delivered' | 'failed' | 'pending'; status?: number; error?: string; nextAt?: number; now: number },
  ): NotificationRecord | undefined {
    const done = a.outcome === 'pending' ? null : iso(a.now);
    this.#db
      .prepare(
        `UPDATE notifications SET outcome = ?, attempts = attempts + 1, status = ?, error = ?, lastAttemptAt = ?, nextAt = ?, finishedAt = ?, lease = NULL
         WHERE id = ? AND outcome = 'pending'`,
      )
      .run(a.outcome, a.status ?? null, a.error ?? null, iso(a.now), a.outcome === 'pending' ? (a.nextAt ?? a.now) : null, done, id);
    return this.get(id);
  }

  /** Gives back deliveries taken for an attempt that did not end (berth stopping): pending as before. */
  release(ids: number[]): void {
    for (const id of ids) this.#db.prepare("UPDATE notifications SET lease = NULL WHERE id = ? AND outcome = 'pending'").run(id);
  }

  /** Drops what is pending for targets no longer in the config (nothing would ever send it), and returns it. */
  dropUnknownTargets(known: string[], now: number): NotificationRecord[] {
    const rows = this.#db.prepare("SELECT id, target FROM notifications WHERE outcome = 'pending'").all() as Array<{ id: number; target: string }>;
    const gone = rows.filter((r) => !known.includes(r.target));
    for (const { id } of gone) {
      this.#db
        .prepare(
          "UPDATE notifications SET outcome = 'dropped', error = 'dropped: its target is no longer in the engine config', finishedAt = ?, nextAt = NULL WHERE id = ?",
        )
        .run(iso(now), id);
    }
    return gone.map((r) => this.get(r.id)!);
  }

  get(id: number): NotificationRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM notifications WHERE id = ?').get(id);
    return r && toRecord(r);
  }

  /** Deliveries matching every given filter, newest first, one page at a time. */
  query(f: NotificationFilter = {}): Page<NotificationRecord> {
    const where: string[] = [];
    const params: string[] = [];
    for (const column of ['target', 'outcome'] as const) {
      const value = f[column];
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      params.push(value);
    }
    return readPage(this.#db, 'notifications', where, params, f, toRecord);
  }
}
