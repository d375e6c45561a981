/**
 * Two engines on PostgreSQL (docs/how-it-works.md, "Running two engines"):
 *
 * - audit rows a second, appended one at a time (each its own transaction under the write lock,
 *   chained to the row before): on PostgreSQL against the SQLite file, one writer each, and on
 *   PostgreSQL with two processes appending at once;
 * - failover: two `berth serve` on one database with the default lease (10 s); the leader is
 *   SIGKILLed and the time until the other answers `role: leader` on GET /api/v1/cluster is taken
 *   (target: within 15 s).
 *
 * The PostgreSQL server is the tests' (test/harness/postgres.ts: initdb into a temp folder, its own
 * port, fsync off as in the tests; a production server syncs its commits, which costs more per row).
 *
 * `node bench/cluster.ts [runs]` (as root: the server runs as the postgres user).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createDatabase, startPostgres, type TestPostgres } from '../test/harness/postgres.ts';
import { freePort, median, printTable, until, type Row } from './lib.ts';

const run = promisify(execFile);
const BERTH_BIN = resolve(import.meta.dirname, '../bin/berth.js');
const ROWS = 3000;

/** Appends `rows` audit rows in a process of its own (as an engine would); resolves to rows a second. */
async function appendRate(target: { sqlite: string } | { url: string; password: string }, rows: number, actor = 'bench'): Promise<number> {
  const script = `
    const { AuditLog } = await import(${JSON.stringify(new URL('../src/audit/log.ts', import.meta.url).href)});
    const { openDatabase } = await import(${JSON.stringify(new URL('../src/audit/db.ts', import.meta.url).href)});
    const { openPostgres } = await import(${JSON.stringify(new URL('../src/audit/pg.ts', import.meta.url).href)});
    const [target, rows, actor] = [JSON.parse(process.argv[1]), Number(process.argv[2]), process.argv[3]];
    const db = target.sqlite ? openDatabase(target.sqlite) : openPostgres({ url: target.url, password: target.password });
    const log = new AuditLog(db);
    const t0 = performance.now();
    for (let i = 0; i < rows; i++) {
      log.append({ kind: 'container.replaced', actor, stack: 'shop', service: 'web', host: 'h1', message: 'web.1: spec changed', containerBefore: 'a'.repeat(64), containerAfter: 'b'.repeat(64), diff: '-image: web:1\\n+image: web:2\\n' });
    }
    console.log(rows / ((performance.now() - t0) / 1000));
    db.close();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(target), String(rows), actor]);
  return Number(stdout.trim());
}

/** A `berth serve` on the database with no repo (a host that is not there: nothing to apply). */
async function serve(dir: string, database: Record<string, unknown>): Promise<{ url: string; child: ReturnType<typeof spawn> }> {
  const port = await freePort();
  const home = mkdtempSync(join(dir, 'engine-'));
  writeFileSync(
    join(home, 'berth.config.yaml'),
    stringify({
      dataDir: join(home, 'data'),
      listen: `127.0.0.1:${port}`,
      hosts: [{ name: 'none', endpoint: `unix://${join(home, 'none.sock')}` }],
      repos: [],
      database,
    }),
  );
  const child = spawn(process.execPath, [BERTH_BIN, '--config', join(home, 'berth.config.yaml'), 'serve'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await until(async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 'berth to be ready', 60_000, 100);
  return { url, child };
}

const role = async (url: string): Promise<string | undefined> =>
  ((await (await fetch(`${url}/api/v1/cluster`).catch(() => undefined))?.json().catch(() => undefined)) as { self?: { role?: string } } | undefined)?.self
    ?.role;

/** One failover: seconds from the leader's SIGKILL until the other engine leads. */
async function failover(pg: TestPostgres, dir: string): Promise<number> {
  const db = await createDatabase(pg);
  writeFileSync(join(dir, 'pw'), pg.password);
  const database = { url: db.url, passwordFile: join(dir, 'pw') };
  const engines = [await serve(dir, database), await serve(dir, database)];
  try {
    const leader = await until(
      async () => {
        for (const e of engines) if ((await role(e.url)) === 'leader') return e;
        return undefined;
      },
      'a leader',
      30_000,
      100,
    );
    const other = engines.find((e) => e !== leader)!;
    leader.child.kill('SIGKILL');
    const t0 = performance.now();
    await until(async () => ((await role(other.url)) === 'leader' ? true : undefined), 'the other engine to lead', 60_000, 50);
    return (performance.now() - t0) / 1000;
  } finally {
    for (const e of engines) e.child.kill('SIGKILL');
  }
}

export async function cluster(runs = 3): Promise<Row[]> {
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-cluster-'));
  try {
    const sqliteRates: number[] = [];
    const pgRates: number[] = [];
    const pgTwo: number[] = [];
    for (let i = 0; i < runs; i++) {
      sqliteRates.push(await appendRate({ sqlite: join(dir, `run${i}.db`) }, ROWS));
      const db = await createDatabase(pg);
      pgRates.push(await appendRate(db, ROWS));
      const shared = await createDatabase(pg);
      const both = await Promise.all([appendRate(shared, ROWS / 2, 'p1'), appendRate(shared, ROWS / 2, 'p2')]);
      pgTwo.push(both[0] + both[1]);
    }
    const failovers: number[] = [];
    for (let i = 0; i < runs; i++) failovers.push(await failover(pg, dir));
    const rate = (x: number) => `${Math.round(x)} rows/s`;
    const rows: Row[] = [
      {
        scenario: `audit rows appended, one writer (${ROWS} rows, median of ${runs})`,
        value: rate(median(pgRates)),
        against: `SQLite file: ${rate(median(sqliteRates))} (PostgreSQL ${(median(pgRates) / median(sqliteRates)).toFixed(2)}x)`,
      },
      {
        scenario: 'audit rows appended, two processes at once on PostgreSQL (together)',
        value: rate(median(pgTwo)),
        against: `one writer: ${rate(median(pgRates))}`,
      },
      {
        scenario: `failover: leader SIGKILLed -> the other leads (lease 10 s; runs ${failovers.map((f) => f.toFixed(1)).join(', ')} s)`,
        value: `${median(failovers).toFixed(1)} s`,
        target: 'within 15 s',
        met: Math.max(...failovers) < 15,
      },
    ];
    return rows;
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const rows = await cluster(Number(process.argv[2] ?? 3));
  printTable('Two engines on PostgreSQL', rows);
}
