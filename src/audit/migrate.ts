/**
 * `berth migrate`: an engine's history moved from its SQLite file to PostgreSQL (docs/how-it-works.md,
 * "Running two engines"). Every table is copied as it is, ids and hashes included, in one
 * transaction; the audit chain is checked before (a broken chain is not carried over) and after
 * (on the target, as `berth audit verify` would).
 */
import type { Db, SqlRow } from './db.ts';
import { AuditLog, type VerifyResult } from './log.ts';

/** The tables both databases hold, each with the columns that order its rows, and whether it has an identity id. */
export const COPIED_TABLES: ReadonlyArray<{ table: string; order: string; identity: boolean }> = [
  { table: 'audit', order: 'id', identity: false },
  { table: 'syncs', order: 'id', identity: true },
  { table: 'holds', order: 'repo, stack', identity: false },
  { table: 'deliveries', order: 'id', identity: true },
  { table: 'pins', order: 'repo, stack, service, specHash', identity: false },
  { table: 'refused_digests', order: 'repo, stack, service, digest', identity: false },
  { table: 'backoffs', order: 'repo, stack', identity: false },
  { table: 'placements', order: 'repo, stack, service, slot, host', identity: false },
  { table: 'notifications', order: 'id', identity: true },
  { table: 'plan_comments', order: 'target, repo, pull', identity: false },
];

export class MigrateError extends Error {
  override name = 'MigrateError';
  readonly code: 'chain-broken' | 'target-not-empty';
  constructor(message: string, code: MigrateError['code']) {
    super(message);
    this.code = code;
  }
}

export interface MigrateResult {
  /** rows copied, by table */
  copied: Record<string, number>;
  /** the chain as checked on the target */
  verified: VerifyResult;
}

/** Copies every table of `from` into the empty `to`; `onTable` hears of each as it is done. */
export function migrateStore(from: Db, to: Db, onTable: (table: string, rows: number) => void = () => undefined): MigrateResult {
  const before = new AuditLog(from).verify();
  if (!before.ok) throw new MigrateError(`the source's audit chain does not hold (${before.reason}): nothing was copied`, 'chain-broken');
  const copied: Record<string, number> = {};
  to.write(() => {
    for (const { table } of COPIED_TABLES) {
      const n = Number((to.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
      if (n > 0) throw new MigrateError(`the target already holds ${n} row(s) in ${table}: berth migrates into an empty database only`, 'target-not-empty');
    }
    for (const { table, order, identity } of COPIED_TABLES) {
      let count = 0;
      let insert: ReturnType<Db['prepare']> | undefined;
      let columns: string[] = [];
      // a page at a time, by offset: the source is not written meanwhile (berth is stopped for a migration)
      for (let offset = 0; ; offset += 1000) {
        const rows = from.prepare(`SELECT * FROM ${table} ORDER BY ${order} LIMIT 1000 OFFSET ?`).all(offset);
        for (const row of rows) {
          if (!insert) {
            columns = Object.keys(row);
            insert = to.prepare(`INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
          }
          insert.run(...columns.map((c) => (row as SqlRow)[c] ?? null));
          count++;
        }
        if (rows.length < 1000) break;
      }
      // the next id a new row gets follows the copied ones
      if (identity && count > 0 && to.dialect === 'postgres') {
        to.prepare(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), (SELECT max(id) FROM ${table}))`).get();
      }
      copied[table] = count;
      onTable(table, count);
    }
  });
  return { copied, verified: new AuditLog(to).verify() };
}
