/**
 * The audit log: one append-only table, one row per event, each row holding the hash
 * of the row before it so that `verify()` proves nothing was removed or edited.
 * Callers must never put secret values in any field.
 */
import { createHash } from 'node:crypto';
import type { Evidence } from '../apply/evidence.ts';
import type { CommitInfo } from '../model.ts';
import { commitCondition, immediate, readPage, withoutNulls } from './db.ts';
import type { Db, Page, SqlRow } from './db.ts';
import type { AuditKind } from './kinds.ts';

export type { AuditKind } from './kinds.ts';

/** What set a sync or an action going. */
export type Trigger = 'poll' | 'webhook' | 'manual' | 'drift' | 'schedule' | 'startup';

export type AuditOutcome = 'ok' | 'error' | 'info';

/** One event to record. */
export interface AuditInput {
  kind: AuditKind;
  repo?: string;
  commit?: Pick<CommitInfo, 'sha' | 'author' | 'email' | 'message'>;
  stack?: string;
  service?: string;
  host?: string;
  containerBefore?: string;
  containerAfter?: string;
  trigger?: Trigger;
  /** the API token's name, or 'berth' (the default) */
  actor?: string;
  /** a unified diff of what changed */
  diff?: string;
  /** default 'ok' */
  outcome?: AuditOutcome;
  message?: string;
  syncId?: number;
  /** what a failing container showed (src/apply/evidence.ts): bounded, secrets masked */
  evidence?: Evidence;
}

/** One stored row; optional fields are absent when not recorded. */
export interface AuditRow {
  id: number;
  /** ISO 8601, UTC, milliseconds */
  time: string;
  kind: AuditKind;
  repo?: string;
  commitSha?: string;
  commitAuthor?: string;
  commitEmail?: string;
  commitMessage?: string;
  stack?: string;
  service?: string;
  host?: string;
  containerBefore?: string;
  containerAfter?: string;
  trigger?: Trigger;
  actor: string;
  diff?: string;
  outcome: AuditOutcome;
  message?: string;
  syncId?: number;
  /** what a failing container showed, with the step that failed (src/apply/evidence.ts) */
  evidence?: Evidence;
  /** the previous row's hash (64 zeros for the first row) */
  prevHash: string;
  /** sha256 (hex) over this row's fields and prevHash, see rowHash() */
  hash: string;
}

export interface AuditFilter {
  stack?: string;
  host?: string;
  /** a full SHA or a prefix of at least 4 hex characters */
  commit?: string;
  kind?: string;
  /** rows at or after this time */
  since?: Date;
  /** rows before this time */
  until?: Date;
  /** default 100, at most 1000 */
  limit?: number;
  /** rows with id < cursor (the nextCursor of the previous page) */
  cursor?: number;
  /** the rows of one sync run */
  syncId?: number;
}

/** The newest row, as appendAfter() hands it to the event it builds. */
export interface AuditHead {
  id: number;
  kind: AuditKind;
  hash: string;
}

export type VerifyResult = { ok: true; rows: number } | { ok: false; rows: number; badRow: number; reason: string };

/** The prevHash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** Every column of the audit table except `hash`, in the order they are hashed. */
const HASHED_FIELDS = [
  'id',
  'time',
  'kind',
  'repo',
  'commitSha',
  'commitAuthor',
  'commitEmail',
  'commitMessage',
  'stack',
  'service',
  'host',
  'containerBefore',
  'containerAfter',
  'trigger',
  'actor',
  'diff',
  'outcome',
  'message',
  'syncId',
  'prevHash',
] as const satisfies readonly (keyof AuditRow)[];

/**
 * The hash of a row: sha256 (hex) over a JSON array of all its fields but `hash`, in a fixed
 * order, absent fields as null. prevHash is one of those fields, which chains the rows. A row with
 * evidence has it (as its JSON text) at the array's end; the rows without keep the array they
 * always had, so their hashes hold.
 */
export function rowHash(row: Omit<AuditRow, 'hash'>): string {
  const fields: unknown[] = HASHED_FIELDS.map((f) => row[f] ?? null);
  if (row.evidence !== undefined) fields.push(JSON.stringify(row.evidence));
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

const COLUMNS = [...HASHED_FIELDS, 'evidence', 'hash'] as const;
const INSERT_SQL = `INSERT INTO audit (${COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`;

/** A stored row as AuditRow: the evidence's JSON parsed. */
function toAuditRow(r: SqlRow): AuditRow {
  const row = withoutNulls(r) as unknown as AuditRow & { evidence?: string | Evidence };
  return typeof row.evidence === 'string' ? { ...row, evidence: JSON.parse(row.evidence) as Evidence } : (row as AuditRow);
}

/** The audit log in a database opened with openDatabase(). Safe to use from several processes at once. */
export class AuditLog {
  readonly #db: Db;
  readonly #listeners = new Set<(row: AuditRow) => void>();

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Calls `listener` with every row this AuditLog instance appends, once it is stored (rows other
   * instances or processes append are not seen). A listener must not throw. Returns a function
   * that removes it.
   */
  onAppend(listener: (row: AuditRow) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Appends one event, chained to the row before it, and returns the stored row. */
  append(input: AuditInput): AuditRow {
    return this.appendAfter(() => input)!;
  }

  /**
   * Appends the event `build` makes from the newest row (undefined for an empty log), read under
   * the write lock so that no other writer appends in between; `build` returning undefined appends
   * nothing. What a checkpoint signs must be the row it is chained to (checkpoint.ts).
   */
  appendAfter(build: (head: AuditHead | undefined) => AuditInput | undefined): AuditRow | undefined {
    const row = this.#insert(build);
    if (row) for (const listener of this.#listeners) listener(row);
    return row;
  }

  #insert(build: (head: AuditHead | undefined) => AuditInput | undefined): AuditRow | undefined {
    const db = this.#db;
    // The write lock is taken before reading the previous hash, so two processes cannot both chain to it.
    return immediate(db, () => {
      const prev = db.prepare('SELECT id, kind, hash FROM audit ORDER BY id DESC LIMIT 1').get() as AuditHead | undefined;
      const input = build(prev);
      if (!input) return undefined;
      if (!input.kind) throw new Error('an audit event needs a kind');
      if (input.syncId !== undefined && !Number.isInteger(input.syncId)) throw new Error(`invalid syncId ${input.syncId}`);
      // AUTOINCREMENT's counter outlives deleted rows: deleting the newest rows leaves a gap that verify() sees.
      // (PostgreSQL's triggers refuse a delete outright: ids follow the newest row's.)
      const seq =
        db.dialect === 'sqlite' ? (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").get() as { seq: number } | undefined) : undefined;
      const fields: Omit<AuditRow, 'hash'> = {
        id: Math.max(prev?.id ?? 0, seq?.seq ?? 0) + 1,
        time: new Date().toISOString(),
        kind: input.kind,
        repo: input.repo,
        commitSha: input.commit?.sha,
        commitAuthor: input.commit?.author,
        commitEmail: input.commit?.email,
        commitMessage: input.commit?.message,
        stack: input.stack,
        service: input.service,
        host: input.host,
        containerBefore: input.containerBefore,
        containerAfter: input.containerAfter,
        trigger: input.trigger,
        actor: input.actor ?? 'berth',
        diff: input.diff,
        outcome: input.outcome ?? 'ok',
        message: input.message,
        syncId: input.syncId,
        ...(input.evidence !== undefined ? { evidence: input.evidence } : {}),
        prevHash: prev?.hash ?? GENESIS_HASH,
      };
      const row = { ...fields, hash: rowHash(fields) };
      db.prepare(INSERT_SQL).run(
        ...COLUMNS.map((c) => (c === 'evidence' ? (row.evidence === undefined ? null : JSON.stringify(row.evidence)) : (row[c] ?? null))),
      );
      return withoutNulls(row as unknown as SqlRow) as unknown as AuditRow;
    });
  }

  /** One row by id. */
  get(id: number): AuditRow | undefined {
    const r = this.#db.prepare('SELECT * FROM audit WHERE id = ?').get(id);
    return r && toAuditRow(r);
  }

  /** Rows matching every given filter, newest first, one page at a time. */
  query(f: AuditFilter = {}): Page<AuditRow> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`"${column}" = ?`);
      params.push(value);
    };
    eq('stack', f.stack);
    eq('host', f.host);
    eq('kind', f.kind);
    if (f.syncId !== undefined) {
      where.push('syncId = ?');
      params.push(f.syncId);
    }
    if (f.commit !== undefined) {
      const c = commitCondition('commitSha', f.commit);
      where.push(c.sql);
      params.push(...c.params);
    }
    // ISO strings of one fixed format compare like the times they denote.
    if (f.since) {
      where.push('time >= ?');
      params.push(isoTime(f.since, 'since'));
    }
    if (f.until) {
      where.push('time < ?');
      params.push(isoTime(f.until, 'until'));
    }
    return readPage(this.#db, 'audit', where, params, f, toAuditRow);
  }

  /** Every row, oldest first, read a page at a time as it is iterated (the whole log is never held in memory). */
  *rows(): Generator<AuditRow> {
    const page = this.#db.prepare('SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT 1000');
    for (let after = 0; ;) {
      const rows = page.all(after);
      for (const r of rows) yield toAuditRow(r);
      if (rows.length < 1000) return;
      after = Number(rows.at(-1)!.id);
    }
  }

  /** Checks the whole chain (verifyChain); `onRow` sees each row as it is checked. */
  verify(onRow?: (row: AuditRow) => void): VerifyResult {
    return verifyChain(this.rows(), onRow);
  }
}

/**
 * Walks rows in id order, recomputing each hash and checking that ids are contiguous from 1 and
 * each prevHash is the previous row's hash; stops at the first bad row. `rows` counts the rows
 * examined (all of them when ok, so the last id is `rows`). `onRow` sees each row that checks out.
 */
export function verifyChain(all: Iterable<AuditRow>, onRow?: (row: AuditRow) => void): VerifyResult {
  let rows = 0;
  let prev: AuditRow | undefined;
  const bad = (badRow: number, reason: string): VerifyResult => ({ ok: false, rows, badRow, reason });
  for (const row of all) {
    rows++;
    const expectedId = (prev?.id ?? 0) + 1;
    if (row.id !== expectedId) {
      const missing = expectedId === row.id - 1 ? `row ${expectedId} was` : `rows ${expectedId}-${row.id - 1} were`;
      const jump = prev ? `ids jump from ${prev.id} to ${row.id}` : `the log starts at row ${row.id}`;
      return bad(row.id, `row ${row.id}: ${missing} removed (${jump})`);
    }
    if (row.prevHash !== (prev?.hash ?? GENESIS_HASH)) {
      return bad(
        row.id,
        `row ${row.id}: its prevHash does not match the hash of row ${prev?.id ?? '(none)'}; the chain is broken (a row before it was replaced)`,
      );
    }
    if (rowHash(row) !== row.hash) {
      return bad(row.id, `row ${row.id}: its content does not match its hash (it was edited after it was written)`);
    }
    onRow?.(row);
    prev = row;
  }
  return { ok: true, rows };
}

function isoTime(d: Date, name: string): string {
  if (Number.isNaN(d.getTime())) throw new Error(`invalid ${name} time`);
  return d.toISOString();
}
