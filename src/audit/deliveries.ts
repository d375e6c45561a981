/**
 * Bookkeeping of webhook deliveries: every delivery `POST /webhooks/:provider` received, with what
 * came of it and why, one row per delivery and matched repo. History only: the syncs a delivery set
 * going are in the audit log and the syncs table.
 */
import { readPage, withoutNulls, type Db, type Page, type SqlRow } from './db.ts';

/** accepted: a pass of the repo was queued (or joined), or a pull request's plan is made; rejected: refused (401, 400, 413); ignored: nothing to do. */
export type DeliveryOutcome = 'accepted' | 'rejected' | 'ignored';

/** Why a delivery set no new pass going (or, for `coalesced`, joined one already queued). */
export type DeliveryReason =
  | 'bad signature'
  | 'no signature'
  | 'no webhook secret'
  | 'bad payload'
  | 'body too large'
  | 'no repo matches'
  | 'branch not watched'
  | 'not a push'
  | 'ping'
  | 'duplicate'
  | 'coalesced'
  /** a pull request closed, merged, edited ...: berth plans one opened, reopened or whose head moved */
  | 'action not planned'
  /** a pull request that would merge into another branch than the repo's */
  | 'base branch not watched'
  /** no forge target of the pull request's forge takes the repo: the plan would reach nobody */
  | 'no plan target';

export interface DeliveryInput {
  /** github, gitlab, gitea, bitbucket, generic, registry */
  provider: string;
  /** the forge's id of the delivery (the same when it redelivers) */
  deliveryId?: string;
  /** the forge's event name: push, Push Hook, repo:push, ping ... */
  event?: string;
  /** the configured repo it matched */
  repo?: string;
  /** the branch pushed; a pull request's base branch */
  branch?: string;
  /** the branch's new head, as the payload says; a pull request's head */
  commitSha?: string;
  outcome: DeliveryOutcome;
  reason?: DeliveryReason;
  /** the reason in words a person can act on; never a secret or a signature */
  detail?: string;
  /** the HTTP status answered */
  status: number;
}

/** One stored delivery; optional fields are absent when not recorded. */
export interface DeliveryRecord extends DeliveryInput {
  id: number;
  /** ISO 8601, UTC, milliseconds */
  time: string;
}

export interface DeliveryFilter {
  repo?: string;
  provider?: string;
  deliveryId?: string;
  outcome?: DeliveryOutcome;
  /** default 100, at most 1000 */
  limit?: number;
  /** rows with id < cursor (the nextCursor of the previous page) */
  cursor?: number;
}

const COLUMNS = ['time', 'provider', 'deliveryId', 'event', 'repo', 'branch', 'commitSha', 'outcome', 'reason', 'detail', 'status'] as const;
const INSERT_SQL = `INSERT INTO deliveries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`;

const toRecord = (r: SqlRow) => withoutNulls(r) as unknown as DeliveryRecord;

/** The deliveries table of a database opened with openDatabase(). */
export class DeliveryStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Records one delivery (for one repo) and returns the stored row. */
  record(input: DeliveryInput): DeliveryRecord {
    const row = { ...input, time: new Date().toISOString() };
    const { id } = this.#db.prepare(`${INSERT_SQL} RETURNING id`).get(...COLUMNS.map((c) => row[c] ?? null)) as { id: number };
    return { ...row, id: Number(id) };
  }

  /** Whether this delivery of this provider was already accepted for the repo: a redelivery. */
  wasAccepted(provider: string, deliveryId: string, repo: string): boolean {
    const sql = "SELECT 1 FROM deliveries WHERE provider = ? AND deliveryId = ? AND repo = ? AND outcome = 'accepted' LIMIT 1";
    return this.#db.prepare(sql).get(provider, deliveryId, repo) !== undefined;
  }

  /** Deliveries matching every given filter, newest first, one page at a time. */
  query(f: DeliveryFilter = {}): Page<DeliveryRecord> {
    const where: string[] = [];
    const params: string[] = [];
    for (const column of ['repo', 'provider', 'deliveryId', 'outcome'] as const) {
      const value = f[column];
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      params.push(value);
    }
    return readPage(this.#db, 'deliveries', where, params, f, toRecord);
  }
}
