import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { migrations, openDatabase, type SqliteDb } from '../src/audit/db.ts';
import { formatAuditTable, parseSince } from '../src/audit/format.ts';
import { AuditLog, GENESIS_HASH, rowHash } from '../src/audit/log.ts';
import type { AuditInput, AuditRow } from '../src/audit/log.ts';
import { SyncStore } from '../src/audit/syncs.ts';
import { HoldStore } from '../src/audit/holds.ts';
import { StackMemory } from '../src/audit/memory.ts';

const SHA_A = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const SHA_B = 'a1b2ffffe5f60718293a4b5c6d7e8f9012345678'; // shares the 4-char prefix "a1b2" with SHA_A
const SHA_C = 'c0ffee00e5f60718293a4b5c6d7e8f9012345678';
const commit = (sha: string) => ({ sha, author: 'Ada', email: 'ada@example.com', message: `commit ${sha.slice(0, 7)}` });

let dir: string;
let file: string;
const opened: Array<DatabaseSync | SqliteDb> = [];

/** Opens the test database (another connection each call), closed after the test. */
function open(): SqliteDb {
  const db = openDatabase(file);
  opened.push(db);
  return db;
}

/** A raw second connection, as a tamperer would open it. */
function raw(): DatabaseSync {
  const db = new DatabaseSync(file);
  opened.push(db);
  return db;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-audit-'));
  file = join(dir, 'nested', 'data', 'berth.db'); // openDatabase must create the folders
});

afterEach(() => {
  vi.useRealTimers();
  for (const db of opened.splice(0)) if (db.isOpen) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function appendMany(log: AuditLog, n: number, make: (i: number) => Partial<AuditInput> = () => ({})): AuditRow[] {
  return Array.from({ length: n }, (_, i) => log.append({ kind: 'container.created', message: `event ${i + 1}`, ...make(i) }));
}

describe('openDatabase', () => {
  it('creates the folder, uses WAL and migrates to the latest version once', () => {
    const db = open();
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: migrations.length });
    expect(migrations.length).toBeGreaterThan(0);
    new AuditLog(db).append({ kind: 'sync.started' });
    // reopening keeps the data (no second migration run, which would fail on CREATE TABLE)
    expect(new AuditLog(open()).query().rows).toHaveLength(1);
  });

  it("creates the database and its -wal and -shm files readable by their owner only (0600), whatever the umask; tightens an older one's", () => {
    const mode = (f: string) => statSync(f).mode & 0o777;
    const umask = process.umask(0o022); // the usual one, which would leave them readable by everyone
    try {
      const db = open();
      new AuditLog(db).append({ kind: 'sync.started', message: 'the audit log holds diffs and who did what' });
      const files = [file, `${file}-wal`, `${file}-shm`];
      expect(files.map(existsSync)).toEqual([true, true, true]);
      expect(files.map(mode)).toEqual([0o600, 0o600, 0o600]);
      db.close();

      // a database made by an earlier berth, open to everyone
      for (const f of files.filter(existsSync)) chmodSync(f, 0o644);
      const again = open();
      new AuditLog(again).append({ kind: 'sync.started' });
      expect(files.filter(existsSync).map(mode)).toEqual(files.filter(existsSync).map(() => 0o600));
    } finally {
      process.umask(umask);
    }
  });

  it('keeps the holds of a database made before they were keyed by repo', () => {
    // a database at the schema before holds were keyed by (repo, stack), with a hold in it
    const oldFile = join(dir, 'old.db');
    const old = new DatabaseSync(oldFile);
    opened.push(old);
    for (const m of migrations.slice(0, 7)) old.exec(m);
    old.exec('PRAGMA user_version = 7');
    old
      .prepare(
        `INSERT INTO holds (stack, repo, commitSha, headSha, reason, actor, since) VALUES ('shop', 'platform', NULL, 'abc', 'pause', 'ops', '2026-01-01T00:00:00.000Z')`,
      )
      .run();
    old.close();
    const reopened = openDatabase(oldFile);
    opened.push(reopened);
    const holds = new HoldStore(reopened);
    expect(holds.get('platform', 'shop')).toEqual({
      repo: 'platform',
      stack: 'shop',
      headSha: 'abc',
      reason: 'pause',
      actor: 'ops',
      since: '2026-01-01T00:00:00.000Z',
    });
    expect(holds.get('other', 'shop')).toBeUndefined();
  });

  it('refuses a database from a newer berth', () => {
    open();
    raw().exec(`PRAGMA user_version = ${migrations.length + 1}`);
    expect(() => openDatabase(file)).toThrow(/newer than this berth knows.*upgrade berth/);
  });
});

describe('AuditLog.append', () => {
  it('stores every field, with defaults, chained from 64 zeros', () => {
    const log = new AuditLog(open());
    const first = log.append({ kind: 'sync.started' });
    expect(first).toMatchObject({ id: 1, kind: 'sync.started', actor: 'berth', outcome: 'ok', prevHash: GENESIS_HASH });
    expect(first.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(first)).not.toContain('stack'); // absent, not null or undefined

    const input: AuditInput = {
      kind: 'container.replaced',
      repo: 'platform',
      commit: commit(SHA_A),
      stack: 'shop',
      service: 'web',
      host: 'h1',
      containerBefore: 'c-old',
      containerAfter: 'c-new',
      trigger: 'webhook',
      actor: 'ci',
      diff: '-a\n+b\n',
      outcome: 'error',
      message: 'health check failed',
      syncId: 7,
    };
    const second = log.append(input);
    expect(second).toMatchObject({
      id: 2,
      kind: 'container.replaced',
      repo: 'platform',
      commitSha: SHA_A,
      commitAuthor: 'Ada',
      commitEmail: 'ada@example.com',
      commitMessage: 'commit a1b2c3d',
      stack: 'shop',
      service: 'web',
      host: 'h1',
      containerBefore: 'c-old',
      containerAfter: 'c-new',
      trigger: 'webhook',
      actor: 'ci',
      diff: '-a\n+b\n',
      outcome: 'error',
      message: 'health check failed',
      syncId: 7,
      prevHash: first.hash,
    });
    expect(second.hash).toBe(rowHash(second));
    // what append returned is exactly what is stored
    expect(log.query().rows).toEqual([second, first]);
  });

  it('refuses plain UPDATE and DELETE', () => {
    const log = new AuditLog(open());
    log.append({ kind: 'sync.started' });
    expect(() => raw().exec(`UPDATE audit SET message = 'x'`)).toThrow(/append-only/);
    expect(() => raw().exec('DELETE FROM audit')).toThrow(/append-only/);
  });
});

describe('AuditLog.query', () => {
  let log: AuditLog;
  let all: AuditRow[];

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    log = new AuditLog(open());
    const fixture: AuditInput[] = [
      { kind: 'sync.started', stack: 'shop', host: 'h1', commit: commit(SHA_A) }, // 1  10:00
      { kind: 'container.created', stack: 'shop', host: 'h2', commit: commit(SHA_A) }, // 2  11:00
      { kind: 'container.created', stack: 'blog', host: 'h1', commit: commit(SHA_B) }, // 3  12:00
      { kind: 'sync.failed', stack: 'blog', host: 'h2', commit: commit(SHA_C) }, // 4  13:00
      { kind: 'container.created', stack: 'shop', host: 'h1', commit: commit(SHA_C) }, // 5  14:00
      { kind: 'host.down', host: 'h3' }, // 6  15:00
    ];
    all = fixture.map((f, i) => {
      vi.setSystemTime(new Date(Date.UTC(2024, 4, 1, 10 + i)));
      return log.append(f);
    });
  });

  const ids = (rows: AuditRow[]) => rows.map((r) => r.id);

  it.each([
    ['no filter', {}, [6, 5, 4, 3, 2, 1]],
    ['stack', { stack: 'shop' }, [5, 2, 1]],
    ['host', { host: 'h1' }, [5, 3, 1]],
    ['kind', { kind: 'container.created' }, [5, 3, 2]],
    ['full commit', { commit: SHA_A }, [2, 1]],
    ['commit prefix of 4', { commit: 'a1b2' }, [3, 2, 1]],
    ['commit prefix, upper case', { commit: 'C0FFEE' }, [5, 4]],
    ['since (inclusive)', { since: new Date('2024-05-01T13:00:00Z') }, [6, 5, 4]],
    ['until (exclusive)', { until: new Date('2024-05-01T12:00:00Z') }, [2, 1]],
    ['since and until', { since: new Date('2024-05-01T11:30:00Z'), until: new Date('2024-05-01T14:00:00.001Z') }, [5, 4, 3]],
    ['all combined', { stack: 'shop', host: 'h1', kind: 'container.created', commit: 'c0ff' }, [5]],
    ['nothing matches', { stack: 'nope' }, []],
  ])('filters by %s', (_, filter, expected) => {
    const page = log.query(filter);
    expect(ids(page.rows)).toEqual(expected);
    expect(page.nextCursor).toBeUndefined();
  });

  it('pages newest first with a cursor', () => {
    const p1 = log.query({ limit: 4 });
    expect(ids(p1.rows)).toEqual([6, 5, 4, 3]);
    expect(p1.nextCursor).toBe(3);
    const p2 = log.query({ limit: 4, cursor: p1.nextCursor });
    expect(ids(p2.rows)).toEqual([2, 1]);
    expect(p2.nextCursor).toBeUndefined();
    // a page that ends exactly at the last row has no next cursor
    expect(log.query({ limit: 6 }).nextCursor).toBeUndefined();
    // cursors combine with filters
    const s1 = log.query({ stack: 'shop', limit: 2 });
    expect(ids(s1.rows)).toEqual([5, 2]);
    expect(ids(log.query({ stack: 'shop', limit: 2, cursor: s1.nextCursor }).rows)).toEqual([1]);
    expect(all).toHaveLength(6);
  });

  it.each([
    [{ commit: 'a1b' }, /at least 4 hex/],
    [{ commit: 'zzzz' }, /invalid commit "zzzz"/],
    [{ commit: 'a1b2*' }, /invalid commit/],
    [{ limit: 0 }, /invalid limit 0/],
    [{ limit: 2.5 }, /invalid limit/],
    [{ cursor: -1 }, /invalid cursor/],
    [{ since: new Date('nope') }, /invalid since/],
  ])('refuses %o', (filter, error) => {
    expect(() => log.query(filter)).toThrow(error);
  });
});

describe('AuditLog page sizes', () => {
  it('defaults to 100 rows and caps at 1000', () => {
    const db = open();
    const log = new AuditLog(db);
    appendMany(log, 1005);
    const first = log.query();
    expect(first.rows).toHaveLength(100);
    expect(first.rows[0]!.id).toBe(1005);
    expect(first.nextCursor).toBe(906);
    const big = log.query({ limit: 5000 });
    expect(big.rows).toHaveLength(1000);
    expect(big.nextCursor).toBe(6);
    expect(log.query({ limit: 5000, cursor: big.nextCursor }).rows.map((r) => r.id)).toEqual([5, 4, 3, 2, 1]);
    // walking every page visits every row once
    const seen: number[] = [];
    let cursor: number | undefined;
    do {
      const page = log.query({ limit: 77, cursor });
      seen.push(...page.rows.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(seen).toEqual(Array.from({ length: 1005 }, (_, i) => 1005 - i));
  });
});

describe('AuditLog.verify', () => {
  let log: AuditLog;

  beforeEach(() => {
    log = new AuditLog(open());
    appendMany(log, 50, (i) => ({ stack: i % 2 ? 'shop' : 'blog', commit: commit(SHA_A), diff: `+line ${i}\n` }));
  });

  /** Lifts the append-only triggers, as someone editing the file by hand would. */
  function tamper(): DatabaseSync {
    const db = raw();
    db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
    return db;
  }

  it('passes on an untouched log', () => {
    expect(log.verify()).toEqual({ ok: true, rows: 50 });
  });

  it('passes on an empty log', () => {
    raw().exec('DROP TRIGGER audit_no_delete; DELETE FROM audit');
    expect(log.verify()).toEqual({ ok: true, rows: 0 });
  });

  it('names a row whose message was changed', () => {
    tamper().prepare(`UPDATE audit SET message = 'nothing to see' WHERE id = 23`).run();
    expect(log.query({ limit: 1, cursor: 24 }).rows[0]!.message).toBe('nothing to see');
    const result = log.verify();
    expect(result).toMatchObject({ ok: false, badRow: 23, rows: 23 });
    expect(result.ok === false && result.reason).toMatch(/row 23: .*edited/);
  });

  it('names a row whose diff or commit was changed', () => {
    tamper().prepare(`UPDATE audit SET commitSha = ? WHERE id = 40`).run(SHA_C);
    expect(log.verify()).toMatchObject({ ok: false, badRow: 40 });
  });

  it('names the row after a removed middle row', () => {
    tamper().prepare('DELETE FROM audit WHERE id = 30').run();
    const result = log.verify();
    expect(result).toMatchObject({ ok: false, badRow: 31 });
    expect(result.ok === false && result.reason).toMatch(/row 30 was removed \(ids jump from 29 to 31\)/);
  });

  it('names the first row left when the oldest rows were removed', () => {
    tamper().exec('DELETE FROM audit WHERE id <= 3');
    const result = log.verify();
    expect(result).toMatchObject({ ok: false, badRow: 4, rows: 1 });
    expect(result.ok === false && result.reason).toMatch(/rows 1-3 were removed \(the log starts at row 4\)/);
  });

  it('sees removed newest rows once another row is appended', () => {
    tamper().exec('DELETE FROM audit WHERE id >= 48');
    expect(log.verify()).toEqual({ ok: true, rows: 47 }); // a hash chain alone cannot see a cut tail...
    expect(log.append({ kind: 'sync.started' }).id).toBe(51);
    expect(log.verify()).toMatchObject({ ok: false, badRow: 51 }); // ...but the next row shows the gap
  });

  it('names the next row when a row was rewritten with a consistent hash of its own', () => {
    const db = tamper();
    const row = log.query({ limit: 1, cursor: 18 }).rows[0]!;
    expect(row.id).toBe(17);
    const forged = { ...row, message: 'forged' };
    forged.hash = rowHash(forged);
    db.prepare('UPDATE audit SET message = ?, hash = ? WHERE id = 17').run(forged.message, forged.hash);
    // row 17 on its own checks out...
    const stored = log.query({ limit: 1, cursor: 18 }).rows[0]!;
    expect(stored.message).toBe('forged');
    expect(rowHash(stored)).toBe(stored.hash);
    // ...but row 18 still points at the old hash
    const result = log.verify();
    expect(result).toMatchObject({ ok: false, badRow: 18, rows: 18 });
    expect(result.ok === false && result.reason).toMatch(/row 18: .*does not match the hash of row 17/);
  });

  it('names a row whose id was renumbered', () => {
    tamper().exec('UPDATE audit SET id = 1000 WHERE id = 50');
    expect(log.verify()).toMatchObject({ ok: false, badRow: 1000 });
  });
});

describe('AuditLog with several writers', () => {
  it('keeps one chain when two connections interleave appends', () => {
    const a = new AuditLog(open());
    const b = new AuditLog(open());
    for (let i = 0; i < 40; i++) {
      a.append({ kind: 'sync.started', actor: 'a' });
      b.append({ kind: 'sync.started', actor: 'b' });
    }
    expect(a.verify()).toEqual({ ok: true, rows: 80 });
    const rows = b.query({ limit: 1000 }).rows.reverse();
    expect(rows.map((r) => r.actor)).toEqual(Array.from({ length: 80 }, (_, i) => (i % 2 ? 'b' : 'a')));
    rows.slice(1).forEach((r, i) => expect(r.prevHash).toBe(rows[i]!.hash));
  });

  it('keeps one chain when two processes append at the same time', async () => {
    open(); // create and migrate first
    const logUrl = new URL('../src/audit/log.ts', import.meta.url).href;
    const dbUrl = new URL('../src/audit/db.ts', import.meta.url).href;
    const script = `
      const { openDatabase } = await import(${JSON.stringify(dbUrl)});
      const { AuditLog } = await import(${JSON.stringify(logUrl)});
      const [file, actor] = process.argv.slice(1);
      const log = new AuditLog(openDatabase(file));
      for (let i = 0; i < 150; i++) log.append({ kind: 'sync.started', actor });`;
    const run = promisify(execFile);
    await Promise.all(['p1', 'p2'].map((actor) => run(process.execPath, ['--input-type=module', '-e', script, file, actor])));
    const log = new AuditLog(open());
    expect(log.verify()).toEqual({ ok: true, rows: 300 });
    const rows = log.query({ limit: 1000 }).rows;
    expect(rows.filter((r) => r.actor === 'p1')).toHaveLength(150);
    expect(rows.filter((r) => r.actor === 'p2')).toHaveLength(150);
  }, 60_000);
});

describe('parseSince', () => {
  const now = new Date('2024-05-10T12:00:00.000Z');
  it.each([
    ['30m', '2024-05-10T11:30:00.000Z'],
    ['2h', '2024-05-10T10:00:00.000Z'],
    ['7d', '2024-05-03T12:00:00.000Z'],
    ['90s', '2024-05-10T11:58:30.000Z'],
    ['2w', '2024-04-26T12:00:00.000Z'],
    ['0m', '2024-05-10T12:00:00.000Z'],
    [' 2h ', '2024-05-10T10:00:00.000Z'],
    ['2024-05-01', '2024-05-01T00:00:00.000Z'],
    ['2024-05-01T10:00', '2024-05-01T10:00:00.000Z'],
    ['2024-05-01 10:00:30', '2024-05-01T10:00:30.000Z'],
    ['2024-05-01T10:00:00Z', '2024-05-01T10:00:00.000Z'],
    ['2024-05-01T10:00:00.250Z', '2024-05-01T10:00:00.250Z'],
    ['2024-05-01T12:00+02:00', '2024-05-01T10:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
  ])('%s', (input, expected) => {
    expect(parseSince(input, now).toISOString()).toBe(expected);
  });

  it.each([
    '',
    'yesterday',
    '2h30',
    '-2h',
    '2 h',
    '2y',
    '1.5h',
    '2024-13-01',
    '2024-02-30',
    '2023-02-29',
    '2024-05-01T25:00',
    '2024-5-1',
    '2024-05-01T10:00+0200',
  ])('refuses %j', (input) => {
    expect(() => parseSince(input, now)).toThrow(/invalid time .*30m, 2h or 7d.*2024-05-01/);
  });
});

describe('formatAuditTable', () => {
  it('prints a header and one aligned line per row, without the diff', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-05-01T10:00:00.123Z'));
    const log = new AuditLog(open());
    const rows = [
      log.append({
        kind: 'container.replaced',
        stack: 'shop',
        service: 'web',
        host: 'h1',
        commit: commit(SHA_A),
        actor: 'ci',
        outcome: 'error',
        message: 'line one\nline two\u001b[31m',
        diff: '+SECRET_DIFF_LINE',
      }),
      log.append({ kind: 'host.down', host: 'edge-7', outcome: 'info' }),
    ];
    const lines = formatAuditTable(rows).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(/\s+/)).toEqual(['TIME', 'KIND', 'STACK/SERVICE', 'HOST', 'COMMIT', 'ACTOR', 'OUTCOME', 'MESSAGE']);
    expect(lines[1]!.split(/\s{2,}/)).toEqual([
      '2024-05-01T10:00:00Z',
      'container.replaced',
      'shop/web',
      'h1',
      'a1b2c3d',
      'ci',
      'error',
      'line one line two [31m',
    ]);
    expect(lines[2]!.split(/\s{2,}/)).toEqual(['2024-05-01T10:00:00Z', 'host.down', '-', 'edge-7', '-', 'berth', 'info']);
    // columns line up
    expect(lines[1]!.indexOf('a1b2c3d')).toBe(lines[0]!.indexOf('COMMIT'));
    expect(lines[2]!.indexOf('berth')).toBe(lines[0]!.indexOf('ACTOR'));
    expect(lines.join('\n')).not.toContain('SECRET_DIFF_LINE');
  });
});

describe('SyncStore', () => {
  const base = { repo: 'platform', stack: 'shop', commitSha: SHA_A, trigger: 'webhook' as const, actor: 'ci' };

  it('round-trips a sync run from start to finish', () => {
    const store = new SyncStore(open());
    const plan = { actions: [{ op: 'replace', service: 'web', slot: 1 }], note: null };
    const started = store.start({ ...base, plan, diff: '-a\n+b\n' });
    expect(started).toEqual({
      id: 1,
      ...base,
      startedAt: expect.stringMatching(/Z$/),
      outcome: 'running',
      plan,
      diff: '-a\n+b\n',
      owner: `${hostname()}:${process.pid}`,
    });
    expect(store.get(1)).toEqual(started);

    store.finish(1, { outcome: 'failed', error: 'web slot 1 unhealthy' });
    const failed = new SyncStore(open()).get(1)!; // another connection sees it
    expect(failed).toMatchObject({ outcome: 'failed', error: 'web slot 1 unhealthy', plan, diff: '-a\n+b\n' });
    expect(Date.parse(failed.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(failed.startedAt));

    const second = store.start(base);
    expect(second).not.toHaveProperty('plan');
    store.finish(second.id, { outcome: 'succeeded', plan: { actions: [] }, diff: '' });
    expect(store.get(second.id)).toMatchObject({ outcome: 'succeeded', plan: { actions: [] }, diff: '' });
    expect(store.get(second.id)).not.toHaveProperty('error');
    expect(store.get(99)).toBeUndefined();
  });

  it('settles the syncs left running by a process of this machine that is gone, and only those', () => {
    const db = open();
    const store = new SyncStore(db);
    const owners = {
      dead: `${hostname()}:${2 ** 22 + 12345}`, // above Linux's pid_max default: no such process
      alive: `${hostname()}:${process.ppid}`,
      elsewhere: 'another-machine:1',
      mine: `${hostname()}:${process.pid}`,
    };
    const ids: Record<string, number> = {};
    for (const [who, owner] of Object.entries(owners)) {
      ids[who] = store.start({ ...base, stack: 'shop' }).id;
      db.prepare('UPDATE syncs SET owner = ? WHERE id = ?').run(owner, ids[who]);
    }
    const other = store.start({ ...base, stack: 'other' }).id;
    db.prepare('UPDATE syncs SET owner = ? WHERE id = ?').run(owners.dead, other);

    const settled = store.settleOrphans('platform', 'shop');
    expect(settled.map((r) => r.id)).toEqual([ids.dead]);
    expect(settled[0]).toMatchObject({ outcome: 'failed', error: `interrupted: the berth process that ran it (${owners.dead}) stopped` });
    for (const who of ['alive', 'elsewhere', 'mine']) expect(store.get(ids[who])!.outcome).toBe('running');
    expect(store.get(other)!.outcome).toBe('running');
    expect(store.settleOrphans('platform', 'shop')).toEqual([]);
  });

  it('refuses to finish an unknown or finished sync', () => {
    const store = new SyncStore(open());
    const { id } = store.start(base);
    store.finish(id, { outcome: 'succeeded' });
    expect(() => store.finish(id, { outcome: 'failed' })).toThrow(`sync ${id} has already finished (succeeded)`);
    expect(store.get(id)!.outcome).toBe('succeeded');
    expect(() => store.finish(42, { outcome: 'failed' })).toThrow('there is no sync 42');
  });

  it('lists by stack and commit, newest first, with paging', () => {
    const store = new SyncStore(open());
    store.start({ ...base }); // 1
    store.start({ ...base, stack: 'blog' }); // 2
    store.start({ ...base, commitSha: SHA_C }); // 3
    store.start({ ...base, stack: 'blog', commitSha: SHA_B }); // 4
    const ids = (f: Parameters<SyncStore['list']>[0]) => store.list(f).rows.map((r) => r.id);
    expect(ids({})).toEqual([4, 3, 2, 1]);
    expect(ids({ stack: 'shop' })).toEqual([3, 1]);
    expect(ids({ commit: SHA_A })).toEqual([2, 1]);
    expect(ids({ commit: 'a1b2' })).toEqual([4, 2, 1]);
    expect(ids({ stack: 'blog', commit: 'a1b2' })).toEqual([4, 2]);
    const p1 = store.list({ limit: 3 });
    expect(p1.rows.map((r) => r.id)).toEqual([4, 3, 2]);
    expect(p1.nextCursor).toBe(2);
    expect(store.list({ limit: 3, cursor: p1.nextCursor })).toEqual({ rows: [store.get(1)] });
    expect(() => store.list({ commit: 'xyz' })).toThrow(/invalid commit/);
  });

  it('finds the last succeeded sync of a stack', () => {
    const store = new SyncStore(open());
    expect(store.lastSucceeded('platform', 'shop')).toBeUndefined();
    const a = store.start(base);
    store.finish(a.id, { outcome: 'succeeded' });
    const b = store.start({ ...base, commitSha: SHA_B });
    store.finish(b.id, { outcome: 'succeeded' });
    const c = store.start({ ...base, commitSha: SHA_C });
    store.finish(c.id, { outcome: 'failed', error: 'boom' });
    store.start({ ...base, commitSha: SHA_C }); // still running
    const other = store.start({ ...base, stack: 'blog' });
    store.finish(other.id, { outcome: 'succeeded' });
    expect(store.lastSucceeded('platform', 'shop')).toMatchObject({ id: b.id, commitSha: SHA_B });
    expect(store.lastSucceeded('platform', 'blog')).toMatchObject({ id: other.id });
    expect(store.lastSucceeded('platform', 'nope')).toBeUndefined();
  });
});

describe('per (repo, stack) records', () => {
  it("holds one repo's stack and never another repo's stack of the same name", () => {
    const holds = new HoldStore(open());
    holds.set({ repo: 'platform', stack: 'shop', headSha: 'abc', reason: 'pause', actor: 'ops' });
    expect(holds.get('platform', 'shop')).toMatchObject({ reason: 'pause', actor: 'ops' });
    expect(holds.get('web', 'shop')).toBeUndefined();
    holds.set({ repo: 'web', stack: 'shop', commitSha: 'def', headSha: 'abc', reason: 'rollback', actor: 'dev' });
    expect(holds.list('web')).toEqual([expect.objectContaining({ repo: 'web', reason: 'rollback' })]);
    expect(holds.list().map((h) => h.repo)).toEqual(['platform', 'web']);
    expect(holds.release('web', 'shop')).toMatchObject({ actor: 'dev' });
    expect(holds.get('platform', 'shop')).toMatchObject({ actor: 'ops' });
  });

  it('finds the last sync of a stack in its own repo only', () => {
    const store = new SyncStore(open());
    const mine = store.start({ repo: 'platform', stack: 'shop', commitSha: SHA_A, trigger: 'webhook', actor: 'ci' });
    store.finish(mine.id, { outcome: 'succeeded' });
    const theirs = store.start({ repo: 'web', stack: 'shop', commitSha: SHA_B, trigger: 'webhook', actor: 'ci' });
    store.finish(theirs.id, { outcome: 'succeeded' });
    expect(store.lastSucceeded('platform', 'shop')).toMatchObject({ id: mine.id, commitSha: SHA_A });
    expect(store.latest('platform', 'shop')).toMatchObject({ id: mine.id });
    expect(store.latest('web', 'shop')).toMatchObject({ id: theirs.id });
  });

  it('keeps back-offs and placements across a reopening, per repo', () => {
    const memory = new StackMemory(open());
    memory.setBackoff('platform', 'shop', { commit: SHA_A, failures: 1, until: Infinity });
    memory.setBackoff('platform', 'blog', { commit: SHA_B, failures: 2, until: 1_000 });
    memory.setPlacement('platform', 'shop', [
      { service: 'web', slot: 1, host: 'h1' },
      { service: 'web', slot: 2, host: 'h2' },
      { service: 'agent', slot: 1, host: 'h1' },
      { service: 'agent', slot: 1, host: 'h2' }, // a global service: one replica per host, each slot 1
    ]);
    const again = new StackMemory(open());
    expect(again.backoffs('platform')).toEqual(
      new Map([
        ['shop', { commit: SHA_A, failures: 1, until: Infinity }],
        ['blog', { commit: SHA_B, failures: 2, until: 1_000 }],
      ]),
    );
    expect(again.backoffs('web')).toEqual(new Map());
    expect(again.placement('platform', 'shop')).toHaveLength(4);
    expect(again.placement('web', 'shop')).toEqual([]);
    again.setBackoff('platform', 'shop', undefined);
    again.setPlacement('platform', 'shop', [{ service: 'web', slot: 1, host: 'h3' }]);
    const third = new StackMemory(open());
    expect([...third.backoffs('platform').keys()]).toEqual(['blog']);
    expect(third.placement('platform', 'shop')).toEqual([{ service: 'web', slot: 1, host: 'h3' }]);
  });
});
