/**
 * Memory: the size of berth's database after 10,000 audit rows with realistic fields (a
 * container replaced, with its commit, ids and a short diff). The peak RSS with 1,000 containers
 * is measured by bench/noop.ts, in the process that manages them (`peakRssMb`).
 *
 * `node bench/memory.ts`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/audit/db.ts';
import { AuditLog } from '../src/audit/log.ts';
import type { Row } from './lib.ts';

/** This process's peak resident set size so far, in MiB. */
export const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** Appends `rows` audit rows to a fresh database and returns its size (with the WAL) in bytes. */
export function auditDbBytes(rows = 10_000): number {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-db-'));
  try {
    const file = join(dir, 'berth.db');
    const db = openDatabase(file);
    const audit = new AuditLog(db);
    const id = () => randomBytes(32).toString('hex');
    for (let i = 0; i < rows; i++) {
      const stack = `stack${i % 20}`;
      audit.append({
        kind: i % 10 === 0 ? 'sync.succeeded' : 'container.replaced',
        repo: 'apps',
        commit: { sha: randomBytes(20).toString('hex'), author: 'Jane Doe', email: 'jane@example.com', message: `deploy: bump web to v${i}` },
        stack,
        service: `svc${i % 3}`,
        host: `host${i % 3}`,
        containerBefore: id(),
        containerAfter: id(),
        trigger: 'webhook',
        actor: 'berth',
        diff: `--- ${stack}/web\n+++ ${stack}/web\n@@ -1,3 +1,3 @@\n-image: registry.example.com/web:v${i - 1}\n+image: registry.example.com/web:v${i}\n replicas: 2\n`,
        message: `replaced ${stack}-svc${i % 3}-1`,
        syncId: Math.floor(i / 10) + 1,
      });
    }
    db.close();
    const size = (f: string) => { try { return statSync(f).size; } catch { return 0; } };
    return size(file) + size(`${file}-wal`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The database-size row. */
export function memory(): Row[] {
  const bytes = auditDbBytes();
  return [{ scenario: 'database after 10,000 audit rows', value: `${(bytes / 1024 / 1024).toFixed(1)} MiB`, against: `${(bytes / 10_000).toFixed(0)} bytes per row` }];
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  printTable('berth bench: memory', memory());
}
