// berth's store on a real PostgreSQL (the harness's server, a database per test): the schema and its
// parity with SQLite's, every store's round trip, the append-only audit chain with writers in several
// processes, a statement that times out, and `berth migrate` from a SQLite file.
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Db } from '../src/audit/db.ts';
import { AuditLog } from '../src/audit/log.ts';
import { SyncStore } from '../src/audit/syncs.ts';
import { HoldStore } from '../src/audit/holds.ts';
import { PinStore } from '../src/audit/pins.ts';
import { StackMemory } from '../src/audit/memory.ts';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import { NotificationStore } from '../src/audit/notifications.ts';
import { PlanCommentStore } from '../src/audit/plan-comments.ts';
import { openPostgres, StoreError, toPostgres, type PostgresDb } from '../src/audit/pg.ts';
import { openStore } from '../src/audit/store.ts';
import { loadConfig } from '../src/config.ts';
import { stringify } from 'yaml';
import { makeCerts } from './harness/tls.ts';
import { pgMigrations } from '../src/audit/pg-schema.ts';
import { COPIED_TABLES } from '../src/audit/migrate.ts';
import { createDatabase, sql } from './harness/postgres.ts';
import { proxyTo } from './harness/proxy.ts';

const run = promisify(execFile);
const BERTH = join(import.meta.dirname, '..', 'bin', 'berth.js');
const server = inject('postgres');
const SHA_A = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const SHA_B = 'a1b2ffffe5f60718293a4b5c6d7e8f9012345678';
const commit = (sha: string) => ({ sha, author: 'Ada', email: 'ada@example.com', message: `commit ${sha.slice(0, 7)}` });

let dir: string;
const opened: Array<{ close(): void }> = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-pg-'));
});
afterAll(() => {
  for (const db of opened) db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fresh(): Promise<{ db: PostgresDb; url: string; password: string }> {
  const d = await createDatabase(server);
  const db = openPostgres({ url: d.url, password: d.password });
  opened.push(db);
  return { db, url: d.url, password: d.password };
}

describe('toPostgres', () => {
  it('numbers the parameters and quotes camelCase names, leaving strings and quoted names alone', () => {
    expect(toPostgres(`SELECT * FROM syncs WHERE commitSha = ? AND "trigger" = 'a?b' AND startedAt > ? LIMIT ?`)).toBe(
      `SELECT * FROM syncs WHERE "commitSha" = $1 AND "trigger" = 'a?b' AND "startedAt" > $2 LIMIT $3`,
    );
  });
});

describe('the PostgreSQL store', () => {
  it('migrates once, and a second engine opening it finds it current', async () => {
    const { db, url, password } = await fresh();
    expect(db.prepare('SELECT version FROM berth_schema').all()).toEqual([{ version: pgMigrations.length }]);
    const again = openPostgres({ url, password });
    opened.push(again);
    expect(again.prepare('SELECT version FROM berth_schema').all()).toEqual([{ version: pgMigrations.length }]);
  });

  it('holds the same tables and columns as the SQLite file', async () => {
    const { db } = await fresh();
    const lite = openDatabase(join(dir, 'parity.db'));
    opened.push(lite);
    for (const { table } of COPIED_TABLES) {
      const liteColumns = (lite.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as Array<{ name: string }>).map((c) => c.name).sort();
      const pgColumns = (
        db.prepare(`SELECT column_name AS name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()`).all(table) as Array<{
          name: string;
        }>
      )
        .map((c) => c.name)
        .sort();
      expect(pgColumns, table).toEqual(liteColumns);
    }
  });

  it('appends, queries and verifies the audit chain, and refuses UPDATE, DELETE and TRUNCATE', async () => {
    const { db, url, password } = await fresh();
    const log = new AuditLog(db);
    log.append({ kind: 'sync.started', stack: 'shop', commit: commit(SHA_A), diff: '+a\n' });
    log.append({
      kind: 'container.created',
      stack: 'shop',
      host: 'h1',
      commit: commit(SHA_B),
      evidence: { exitCode: 3, oomKilled: false, logs: ['boom'] } as never,
    });
    log.append({ kind: 'sync.failed', stack: 'blog', outcome: 'error', message: 'x', syncId: 7 });
    expect(log.verify()).toEqual({ ok: true, rows: 3 });
    expect(log.query({ commit: 'a1b2' }).rows.map((r) => r.id)).toEqual([2, 1]);
    expect(log.query({ commit: 'a1b2c' }).rows.map((r) => r.id)).toEqual([1]);
    expect(log.query({ stack: 'shop', host: 'h1' }).rows[0]).toMatchObject({ id: 2, commitSha: SHA_B, evidence: { exitCode: 3 } });
    expect(log.query({ syncId: 7 }).rows.map((r) => r.kind)).toEqual(['sync.failed']);
    expect(log.query({ limit: 2 }).nextCursor).toBe(2);
    for (const statement of [`UPDATE audit SET message = 'x'`, 'DELETE FROM audit', 'TRUNCATE audit']) {
      await expect(sql({ url, password }, statement)).rejects.toThrow(/append-only/);
    }
    // a tamperer who drops the triggers is caught by the chain
    await sql({ url, password }, `ALTER TABLE audit DISABLE TRIGGER USER; UPDATE audit SET message = 'edited' WHERE id = 2`);
    expect(log.verify()).toMatchObject({ ok: false, badRow: 2 });
  });

  it('keeps syncs, holds, pins, back-offs, placements, deliveries, notifications and plan comments', async () => {
    const { db } = await fresh();
    const syncs = new SyncStore(db);
    const s = syncs.start({ repo: 'r', stack: 'shop', commitSha: SHA_A, trigger: 'poll', actor: 'berth', plan: { a: 1 }, diff: '+x' });
    syncs.finish(s.id, { outcome: 'failed', result: 'rolledback', error: 'no', progress: [{ service: 'web', total: 2, updated: 1, failed: 1 }] });
    expect(syncs.get(s.id)).toMatchObject({ outcome: 'failed', result: 'rolledback', plan: { a: 1 }, progress: [{ service: 'web', updated: 1 }] });
    expect(syncs.list({ commit: 'a1b2c3' }).rows.map((r) => r.id)).toEqual([s.id]);
    expect(() => syncs.finish(s.id, { outcome: 'succeeded' })).toThrow(/already finished/);

    const holds = new HoldStore(db);
    holds.set({ repo: 'r', stack: 'shop', headSha: SHA_A, reason: 'pause', actor: 'ada' });
    holds.set({ repo: 'r', stack: 'shop', headSha: SHA_B, reason: 'rollback', actor: 'bob', commitSha: SHA_A });
    expect(holds.list()).toMatchObject([{ stack: 'shop', reason: 'rollback', actor: 'bob' }]);
    expect(holds.release('r', 'shop')?.actor).toBe('bob');
    expect(holds.get('r', 'shop')).toBeUndefined();

    const pins = new PinStore(db);
    pins.set({ repo: 'r', stack: 'shop', service: 'web', specHash: 'h', image: 'web:1', digest: 'sha256:1', commitSha: SHA_A });
    pins.set({ repo: 'r', stack: 'shop', service: 'web', specHash: 'h', image: 'web:1', digest: 'sha256:2', commitSha: SHA_B });
    expect([...pins.forRepo('r').values()].map((p) => p.digest)).toEqual(['sha256:2']);
    pins.refuse('r', 'shop', 'web', 'sha256:3');
    pins.refuse('r', 'shop', 'web', 'sha256:3');
    expect(pins.refused('r', 'shop', 'web', 'sha256:3')).toBe(true);

    const memory = new StackMemory(db);
    memory.setBackoff('r', 'shop', { commit: SHA_A, failures: 2, until: 1_900_000_000_000 });
    expect(memory.backoffs('r').get('shop')).toEqual({ commit: SHA_A, failures: 2, until: 1_900_000_000_000 });
    memory.setPlacement('r', 'shop', [{ service: 'web', slot: 1, host: 'h1' }]);
    expect(new StackMemory(db).placement('r', 'shop')).toEqual([{ service: 'web', slot: 1, host: 'h1' }]);

    const deliveries = new DeliveryStore(db);
    const d = deliveries.record({ provider: 'github', deliveryId: 'x1', outcome: 'accepted', repo: 'r', status: 202 });
    expect(deliveries.query({}).rows.map((r) => r.id)).toEqual([d.id]);

    const notifications = new NotificationStore(db);
    const queued = notifications.enqueue(
      { target: 't', type: 'webhook', event: 'sync.succeeded', payload: '{}' },
      { coalesce: false, limits: { coalesceAbove: 100, maxPending: 1000 }, now: Date.now() },
    );
    expect(queued.record).toMatchObject({ outcome: 'pending', target: 't' });

    const comments = new PlanCommentStore(db);
    comments.set({ target: 't', repo: 'r', pull: 7 }, '100');
    comments.set({ target: 't', repo: 'r', pull: 7 }, '101');
    expect(comments.get({ target: 't', repo: 'r', pull: 7 })).toBe('101');
  });

  it('keeps one chain when two processes append at the same time', async () => {
    const { db, url, password } = await fresh();
    const script = `
      const { openPostgres } = await import(${JSON.stringify(new URL('../src/audit/pg.ts', import.meta.url).href)});
      const { AuditLog } = await import(${JSON.stringify(new URL('../src/audit/log.ts', import.meta.url).href)});
      const [url, password, actor] = process.argv.slice(1);
      const db = openPostgres({ url, password });
      const log = new AuditLog(db);
      for (let i = 0; i < 150; i++) log.append({ kind: 'sync.started', actor });
      db.close();`;
    await Promise.all(['p1', 'p2'].map((actor) => run(process.execPath, ['--input-type=module', '-e', script, url, password, actor])));
    const log = new AuditLog(db);
    expect(log.verify()).toEqual({ ok: true, rows: 300 });
    const rows = log.query({ limit: 1000 }).rows;
    expect(rows.filter((r) => r.actor === 'p1')).toHaveLength(150);
    expect(rows.filter((r) => r.actor === 'p2')).toHaveLength(150);
  }, 60_000);

  it('fails a statement the database does not answer in time with store-unavailable, and works again once it answers', async () => {
    // The client runs in a process of its own: its thread waits for each answer, and the front that
    // cuts the connection runs in this one.
    const d = await createDatabase(server);
    const front = await proxyTo(join(server.socketDir, `.s.PGSQL.${server.port}`));
    const script = `
      const { openPostgres } = await import(${JSON.stringify(new URL('../src/audit/pg.ts', import.meta.url).href)});
      const { AuditLog } = await import(${JSON.stringify(new URL('../src/audit/log.ts', import.meta.url).href)});
      const { createInterface } = await import('node:readline');
      const [url, password] = process.argv.slice(1);
      const log = new AuditLog(openPostgres({ url, password, timeoutMs: 1000 }));
      const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      const step = (kind) => { try { log.append({ kind }); return 'ok'; } catch (err) { return err.code + ' ' + err.message; } };
      console.log(step('sync.started'));
      await lines.next();
      console.log(step('sync.started'));
      await lines.next();
      console.log(step('sync.succeeded'));
      console.log(JSON.stringify(log.verify()));
      process.exit(0);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, `postgres://${server.user}@127.0.0.1:${front.port}/${d.name}`, d.password]);
    const out = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => String((await out.next()).value);
    try {
      expect(await next()).toBe('ok');
      await front.hang();
      child.stdin.write('go\n');
      const failed = await next();
      expect(failed).toMatch(/^store-unavailable the database postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ /);
      expect(failed).not.toContain(d.password);
      await front.resume();
      child.stdin.write('go\n');
      expect(await next()).toBe('ok');
      expect(JSON.parse(await next())).toEqual({ ok: true, rows: 2 });
    } finally {
      child.kill();
      await front.stop();
    }
  });
});

describe('TLS to the database', () => {
  it("connects over TLS with database.tls's CA, and refuses a server certificate of another CA", async () => {
    const d = await createDatabase(server);
    writeFileSync(join(dir, 'db.password'), d.password);
    const configFile = (caFile: string) => {
      const file = join(dir, `tls-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, stringify({ dataDir: join(dir, 'data'), database: { url: d.url, passwordFile: 'db.password', tls: { caFile }, timeout: '3s' } }));
      return loadConfig(file);
    };
    const db = openStore(configFile(server.caFile));
    opened.push(db);
    expect(db.prepare('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').get()).toEqual({ ssl: true });
    const other = await makeCerts(join(dir, 'other-ca'), { keyType: 'ec' });
    let error: unknown;
    try {
      opened.push(openStore(configFile(other.ca)));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('store-unavailable');
    expect((error as Error).message).toMatch(/certificate/);
    expect((error as Error).message).not.toContain(d.password);
  });
});

describe('berth migrate', () => {
  it('moves a SQLite history to PostgreSQL with the chain verified, new ids following, and refuses a target that is not empty', async () => {
    const file = join(dir, 'old', 'berth.db');
    const lite = openDatabase(file);
    const log = new AuditLog(lite);
    for (let i = 0; i < 1200; i++) log.append({ kind: 'container.created', stack: 'shop', message: `row ${i}`, commit: commit(SHA_A) });
    const syncs = new SyncStore(lite);
    for (let i = 0; i < 3; i++) syncs.start({ repo: 'r', stack: 'shop', commitSha: SHA_A, trigger: 'poll', actor: 'berth' });
    new HoldStore(lite).set({ repo: 'r', stack: 'shop', headSha: SHA_A, reason: 'pause', actor: 'ada' });
    lite.close();
    const d = await createDatabase(server);
    const passwordFile = join(dir, 'pw');
    writeFileSync(passwordFile, `${d.password}\n`);
    const { stdout } = await run(process.execPath, [BERTH, 'migrate', '--from', `sqlite:${file}`, '--to', d.url, '--password-file', passwordFile]);
    expect(stdout).toContain('audit: 1200 row(s)');
    expect(stdout).toContain('syncs: 3 row(s)');
    expect(stdout).toMatch(/the audit chain holds \(1200 row\(s\)\)/);
    expect(stdout).not.toContain(d.password);
    const db = openPostgres({ url: d.url, password: d.password });
    opened.push(db);
    expect(new AuditLog(db).append({ kind: 'sync.started' }).id).toBe(1201);
    expect(new AuditLog(db).verify()).toEqual({ ok: true, rows: 1201 });
    expect(new SyncStore(db).start({ repo: 'r', stack: 'shop', commitSha: SHA_A, trigger: 'poll', actor: 'berth' }).id).toBe(4);
    expect(new HoldStore(db as Db).get('r', 'shop')?.actor).toBe('ada');
    const again = await run(process.execPath, [BERTH, 'migrate', '--from', `sqlite:${file}`, '--to', d.url, '--password-file', passwordFile]).catch(
      (e: unknown) => e,
    );
    expect((again as { code: number }).code).toBe(1);
    expect((again as { stderr: string }).stderr).toMatch(/already holds 1201 row\(s\) in audit/);
  }, 60_000);
});
