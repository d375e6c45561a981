/**
 * berth's database: history and bookkeeping (the audit log, sync runs), never a copy of the live
 * state: every pass reads that from the hosts. By default one SQLite file (node:sqlite), which
 * several berth processes (a `serve` and a CLI `sync`) may open; or PostgreSQL (src/audit/pg.ts),
 * which several engines share (docs/how-it-works.md, "Running two engines").
 *
 * The stores (the audit log, syncs, holds, ...) are written once against `Db`, the part of
 * node:sqlite's synchronous API they use, in SQL that both databases read the same way: `?`
 * parameters, `INSERT ... ON CONFLICT ... DO UPDATE` (upsert()), `RETURNING`, and a commit prefix
 * as a range (commitCondition()). The PostgreSQL side translates the rest (pg.ts, toPostgres()).
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, SQLOutputValue } from 'node:sqlite';

/** A value a statement takes or a row holds. */
export type SqlValue = SQLOutputValue;
export type SqlRow = Record<string, SqlValue>;

/** A prepared statement: the calls the stores make. */
export interface Statement {
  get(...params: SQLInputValue[]): SqlRow | undefined;
  all(...params: SQLInputValue[]): SqlRow[];
  /** `changes`: how many rows the statement inserted, updated or deleted */
  run(...params: SQLInputValue[]): { changes: number | bigint };
}

/** berth's database as the stores use it: SQLite's synchronous API, on SQLite or on PostgreSQL. */
export interface Db {
  readonly dialect: 'sqlite' | 'postgres';
  prepare(sql: string): Statement;
  /** runs SQL that returns nothing (one or more statements, no parameters) */
  exec(sql: string): void;
  /**
   * Runs `fn` in a transaction that holds the database's one write lock from its start (taken up
   * front, so that a read-then-write cannot race another process or engine), committing on return
   * and rolling back on throw; inside a transaction already open it just runs `fn`.
   */
  write<T>(fn: () => T): T;
  readonly isOpen: boolean;
  close(): void;
}

/** How long a connection waits for another process's write lock before failing (ms). */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * Schema migrations, applied in order; migration i brings `PRAGMA user_version` from i to i + 1.
 * Append new migrations at the end; never edit one that has shipped.
 */
export const migrations: readonly string[] = [
  // 1: the audit log and sync runs
  `
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    repo TEXT,
    commitSha TEXT,
    commitAuthor TEXT,
    commitEmail TEXT,
    commitMessage TEXT,
    stack TEXT,
    service TEXT,
    host TEXT,
    containerBefore TEXT,
    containerAfter TEXT,
    "trigger" TEXT,
    actor TEXT NOT NULL,
    diff TEXT,
    outcome TEXT NOT NULL,
    message TEXT,
    syncId INTEGER,
    prevHash TEXT NOT NULL,
    hash TEXT NOT NULL
  ) STRICT;
  CREATE INDEX audit_stack ON audit (stack, id);
  CREATE INDEX audit_host ON audit (host, id);
  CREATE INDEX audit_commit ON audit (commitSha, id);
  CREATE INDEX audit_kind ON audit (kind, id);
  CREATE INDEX audit_time ON audit (time);
  -- append-only: stops accidental edits (verify() catches deliberate ones)
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

  CREATE TABLE syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    commitSha TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    actor TEXT NOT NULL,
    startedAt TEXT NOT NULL,
    finishedAt TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    error TEXT,
    plan TEXT,
    diff TEXT
  ) STRICT;
  CREATE INDEX syncs_stack ON syncs (stack, id);
  CREATE INDEX syncs_commit ON syncs (commitSha, id);
  `,
  // 2: which process runs a sync (`hostname:pid`), so that one left 'running' by a killed engine can be settled
  `ALTER TABLE syncs ADD COLUMN owner TEXT;`,
  // 3: how a failed sync ended (failed, paused, rolledback), and stacks held at a commit (paused, or
  // rolled back by hand) until resumed or a new commit arrives
  `ALTER TABLE syncs ADD COLUMN result TEXT;
  CREATE TABLE holds (
    stack TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    commitSha TEXT,
    headSha TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('pause', 'rollback')),
    actor TEXT NOT NULL,
    since TEXT NOT NULL
  ) STRICT;`,
  // 4: every webhook delivery with what came of it (one row per delivery and matched repo), so that
  // "the webhook did nothing" can be answered from berth itself
  `CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    provider TEXT NOT NULL,
    deliveryId TEXT,
    event TEXT,
    repo TEXT,
    branch TEXT,
    commitSha TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected', 'ignored')),
    reason TEXT,
    detail TEXT,
    status INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX deliveries_delivery ON deliveries (provider, deliveryId);
  CREATE INDEX deliveries_repo ON deliveries (repo, id);`,
  // 5: the steps of one sync run (GET /api/v1/syncs/:id) without a scan of the whole log
  `CREATE INDEX audit_sync ON audit (syncId, id);`,
  // 6: the digest each service's image was pinned to, per spec, so that a later pass (or a restart)
  // creates its replicas from the same bits instead of asking the registry again
  `CREATE TABLE pins (
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    service TEXT NOT NULL,
    specHash TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT NOT NULL,
    commitSha TEXT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (repo, stack, service, specHash)
  ) STRICT;`,
  // 7: digests of followed images (x-berth.watch-image) whose rollout failed: not tried again by
  // themselves, so that berth does not fight a rollback
  `CREATE TABLE refused_digests (
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    service TEXT NOT NULL,
    digest TEXT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (repo, stack, service, digest)
  ) STRICT;`,
  // 8: every per-stack record keyed by (repo, stack), so that what one repo's stack left (a hold) never
  // applies to another repo's stack of the same name; and what a restart used to lose: a failed
  // apply's back-off (a rolled-back commit is not tried again by itself) and the last placement (the
  // replicas of a host that does not answer wait for it instead of moving at once)
  `CREATE TABLE holds_by_repo (
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    commitSha TEXT,
    headSha TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('pause', 'rollback')),
    actor TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (repo, stack)
  ) STRICT;
  INSERT INTO holds_by_repo (repo, stack, commitSha, headSha, reason, actor, since)
    SELECT repo, stack, commitSha, headSha, reason, actor, since FROM holds;
  DROP TABLE holds;
  ALTER TABLE holds_by_repo RENAME TO holds;
  CREATE TABLE backoffs (
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    attempt TEXT NOT NULL,
    failures INTEGER NOT NULL,
    until INTEGER,
    time TEXT NOT NULL,
    PRIMARY KEY (repo, stack)
  ) STRICT;
  CREATE TABLE placements (
    repo TEXT NOT NULL,
    stack TEXT NOT NULL,
    service TEXT NOT NULL,
    slot INTEGER NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (repo, stack, service, slot, host)
  ) STRICT;
  CREATE INDEX syncs_repo_stack ON syncs (repo, stack, id);`,
  // 9: the notifications queue and its history (src/audit/notifications.ts): pending deliveries outlive a
  // restart; `nextAt` and `lease` (ms since the epoch) are when one is due and how long a worker holds it
  `CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT NOT NULL,
    repo TEXT,
    stack TEXT,
    host TEXT,
    commitSha TEXT,
    syncId INTEGER,
    payload TEXT NOT NULL,
    count INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'delivered', 'failed', 'dropped')),
    attempts INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    createdAt TEXT NOT NULL,
    lastAttemptAt TEXT,
    nextAt INTEGER,
    finishedAt TEXT,
    lease INTEGER
  ) STRICT;
  CREATE INDEX notifications_queue ON notifications (outcome, target, id);
  CREATE INDEX notifications_target ON notifications (target, id);`,
  // 10: the comment berth wrote with the plan of a pull request, per forge target, repo and pull
  // request (src/audit/plan-comments.ts): a later plan of the same request edits it instead of adding one
  `CREATE TABLE plan_comments (
    target TEXT NOT NULL,
    repo TEXT NOT NULL,
    pull INTEGER NOT NULL,
    commentId TEXT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (target, repo, pull)
  ) STRICT;`,
  // 11: the evidence of a failed step (src/apply/evidence.ts), as JSON: with the step's audit row (hashed
  // with it), and with its sync; and the replica counts of a sync's rollout per service when it ended
  `ALTER TABLE audit ADD COLUMN evidence TEXT;
  ALTER TABLE syncs ADD COLUMN evidence TEXT;
  ALTER TABLE syncs ADD COLUMN progress TEXT;`,
];

/**
 * Opens (creating it and its folder if needed) berth's database at `file`, in WAL mode with a
 * busy timeout so that several processes can share it, and brings its schema up to date. The file
 * is its owner's only (0600): the audit log holds diffs, commit messages and who did what.
 */
export function openDatabase(file: string): SqliteDb {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true });
    ownerOnly(file);
  }
  let raw: DatabaseSync;
  try {
    raw = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new Error(`cannot open the database ${file}: ${(err as Error).message}`, { cause: err });
  }
  const db = new SqliteDb(raw);
  try {
    raw.exec('PRAGMA journal_mode = WAL');
    raw.exec('PRAGMA synchronous = NORMAL'); // safe with WAL: a power cut loses at most the last commits
    migrate(db, file);
  } catch (err) {
    raw.close();
    throw err;
  }
  return db;
}

/** A SQLite database (node:sqlite) as a Db. */
export class SqliteDb implements Db {
  readonly dialect = 'sqlite';
  /** node:sqlite's own connection, for what only SQLite has (PRAGMAs, iterating a statement) */
  readonly raw: DatabaseSync;

  constructor(raw: DatabaseSync) {
    this.raw = raw;
  }

  prepare(sql: string) {
    return this.raw.prepare(sql);
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  /** `BEGIN IMMEDIATE`: SQLite's write lock, taken up front. */
  write<T>(fn: () => T): T {
    const db = this.raw;
    if (db.isTransaction) return fn();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  get isOpen(): boolean {
    return this.raw.isOpen;
  }

  close(): void {
    this.raw.close();
  }
}

/**
 * Makes `file` (created empty if missing: an empty file is an empty SQLite database) readable and
 * writable by its owner only, and its -wal and -shm files when they exist. SQLite creates those
 * with the mode of the database file, so they are 0600 from then on. A file this process may not
 * chmod (another user's) is left as it is.
 */
function ownerOnly(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return; // SQLite's own open says why
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch {
      // missing (no -wal yet), or not ours
    }
  }
}

function migrate(db: SqliteDb, file: string): void {
  const version = () => (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (version() === migrations.length) return;
  // Re-read the version under the write lock: another process may have migrated meanwhile.
  immediate(db, () => {
    const from = version();
    if (from > migrations.length) {
      throw new Error(`the database ${file} has schema version ${from}, newer than this berth knows (${migrations.length}); upgrade berth`);
    }
    for (let v = from; v < migrations.length; v++) {
      db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    }
  });
}

/** Runs `fn` under the database's write lock (Db.write). */
export function immediate<T>(db: Db, fn: () => T): T {
  return db.write(fn);
}

/**
 * A SQL condition matching `column` against a full commit SHA or a prefix of at least 4 hex
 * characters; throws a clear Error for anything else.
 */
export function commitCondition(column: string, commit: string): { sql: string; params: [string, string] } {
  const sha = commit.trim().toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(sha)) {
    throw new Error(`invalid commit "${commit}": give a full SHA or a prefix of at least 4 hex characters`);
  }
  // Every string starting with the prefix sorts from it up to (not including) the prefix followed by
  // 'g', the character after the hex digits: an exact prefix match both databases compare the same
  // way (their byte order of ASCII) and answer from an index.
  return { sql: `${column} >= ? AND ${column} < ?`, params: [sha, `${sha}g`] };
}

/**
 * `INSERT INTO table (columns) VALUES (?, ...)` that replaces the row with the same `key` columns:
 * the upsert both databases read the same way.
 */
export function upsert(table: string, columns: readonly string[], key: readonly string[]): string {
  const q = (c: string) => `"${c}"`;
  const rest = columns.filter((c) => !key.includes(c));
  return (
    `INSERT INTO ${table} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ` +
    `ON CONFLICT (${key.map(q).join(', ')}) DO ${rest.length ? `UPDATE SET ${rest.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : 'NOTHING'}`
  );
}

/** A page of rows, newest first; `nextCursor` is set when older rows remain (pass it back as `cursor`). */
export interface Page<R> {
  rows: R[];
  nextCursor?: number;
}

/**
 * Reads one page of `table`, newest (highest id) first: rows matching all `where` conditions
 * with id < `cursor`; `limit` defaults to 100 and is capped at 1000.
 */
export function readPage<R>(
  db: Db,
  table: string,
  where: string[],
  params: SQLInputValue[],
  page: { limit?: number; cursor?: number },
  toRow: (r: SqlRow) => R,
): Page<R> {
  const limit = page.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`invalid limit ${limit}: give a whole number from 1 to 1000`);
  const conditions = [...where];
  const values = [...params];
  if (page.cursor !== undefined) {
    if (!Number.isInteger(page.cursor) || page.cursor < 1) throw new Error(`invalid cursor ${page.cursor}: give the nextCursor of the previous page`);
    conditions.push('id < ?');
    values.push(page.cursor);
  }
  const n = Math.min(limit, 1000);
  const sql = `SELECT * FROM ${table} ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
  const found = db.prepare(sql).all(...values, n + 1); // one more than asked: are there older rows?
  const rows = found.slice(0, n);
  const result: Page<R> = { rows: rows.map(toRow) };
  if (found.length > n) result.nextCursor = rows[n - 1]!.id as number;
  return result;
}

/** Copies a row, dropping NULL (and undefined) columns: absent optional fields. */
export function withoutNulls(r: SqlRow): SqlRow {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v != null));
}
