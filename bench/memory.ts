/**
 * Memory: the size of berth's database after 10,000 audit rows with realistic fields (a
 * container replaced, with its commit, ids and a short diff), and (`serveRss`, called by
 * bench/noop.ts once the 1,000 containers run) the peak RSS of a `berth serve` process managing
 * them.
 *
 * `node bench/memory.ts` (the database size only).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { openDatabase } from '../src/audit/db.ts';
import { AuditLog } from '../src/audit/log.ts';
import { freePort, until, type Row } from './lib.ts';

const BERTH_BIN = resolve(import.meta.dirname, '../bin/berth.js');
/** How long `berth serve` runs once ready: polls every 2 s and full resyncs every 10 s in it. */
const WINDOW_MS = 45_000;

/** VmHWM (peak resident set) and VmRSS of a process, in KiB, from /proc/PID/status. */
function procMemory(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

/**
 * Runs `berth serve` (a child process, Node as this one) on the daemons' sockets for the repo, whose
 * containers already run and are in sync: its startup pass, then WINDOW_MS of polls every 2 s,
 * full resyncs every 10 s (each inspects every managed container) and a GET /api/v1/stacks every
 * 5 s. Returns the row of its peak RSS (VmHWM) against the target (150 MB, from 1,000
 * containers on; `targetMb` another). `nodeArgs` go to Node (V8 flags, to see what would bring the
 * peak down); `hostNames` name the hosts as the engine that deployed the containers did (h0, h1, ...
 * by default); `config` adds keys to its config (limits).
 */
export async function serveRss(
  dir: string,
  sockets: string[],
  repo: { name: string; url: string },
  containers: number,
  nodeArgs: string[] = [],
  { hostNames, targetMb = 150, config = {} }: { hostNames?: string[]; targetMb?: number; config?: Record<string, unknown> } = {},
): Promise<Row> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const file = join(dir, 'berth.config.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      listen: `127.0.0.1:${port}`,
      resync: '10s',
      hosts: sockets.map((s, i) => ({ name: hostNames?.[i] ?? `h${i}`, endpoint: `unix://${s}` })),
      repos: [{ name: repo.name, url: repo.url, branch: 'main', poll: '2s' }],
      ...config,
    }),
  );
  const logFile = join(dir, 'serve.log');
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...nodeArgs, BERTH_BIN, 'serve', '--config', file], {
    env: { ...process.env, BERTH_LOG_JSON: '1' },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const api = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(60_000) });
  try {
    await until(
      async () => {
        if (gone) throw new Error(`bench: berth serve exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        return (await api('/readyz').catch(() => undefined))?.status === 200 ? true : undefined;
      },
      'berth serve to be ready',
      600_000,
      200,
    );
    const deadline = Date.now() + WINDOW_MS;
    let stacks = 0;
    while (Date.now() < deadline) {
      const res = await api('/api/v1/stacks');
      if (res.status !== 200) throw new Error(`bench: GET /api/v1/stacks answered ${res.status}: ${await res.text()}`);
      stacks = ((await res.json()) as { stacks: unknown[] }).stacks.length;
      await sleep(5000);
    }
    const mem = procMemory(child.pid!);
    const errors = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l));
    if (errors.length) throw new Error(`bench: berth serve logged errors: ${errors.slice(0, 3).join('\n')}`);
    const mb = (mem.hwm * 1024) / 1e6;
    return {
      scenario: `peak RSS of berth serve managing ${containers} containers (${stacks} stacks, ${sockets.length} hosts)`,
      value: `${mb.toFixed(0)} MB`,
      against: `VmHWM over its startup pass and ${WINDOW_MS / 1000} s of polls every 2 s, full resyncs every 10 s, GET /api/v1/stacks every 5 s; ${((mem.rss * 1024) / 1e6).toFixed(0)} MB resident at the end`,
      target: containers >= 1000 ? `under ${targetMb} MB` : undefined,
      met: mb < targetMb,
    };
  } finally {
    if (!gone) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
  }
}

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
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    return size(file) + size(`${file}-wal`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The database-size row. */
export function memory(): Row[] {
  const bytes = auditDbBytes();
  return [
    { scenario: 'database after 10,000 audit rows', value: `${(bytes / 1024 / 1024).toFixed(1)} MiB`, against: `${(bytes / 10_000).toFixed(0)} bytes per row` },
  ];
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  printTable('berth bench: memory', memory());
}
