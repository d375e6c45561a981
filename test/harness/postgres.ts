// A private PostgreSQL server for tests: Debian's `postgresql` package, `initdb` into a folder of its
// own under TEST_ROOT and `pg_ctl` on a free loopback port, run as the `postgres` user, with password
// (SCRAM) logins only. Each test file makes databases of its own on it (createDatabase()). A killed
// run's server and folder are reaped by the next start, like the harness's daemons.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { TEST_ROOT } from './daemon.ts';
import { makeCerts } from './tls.ts';

const run = promisify(execFile);
const SETUP_HINT = 'run scripts/setup.sh (as root) to install postgresql';

/** What tests need to reach the server (also what the global setup provides: `inject('postgres')`). */
export interface TestPostgresInfo {
  host: string;
  port: number;
  /** the superuser's name and password */
  user: string;
  password: string;
  /** the folder of the server's unix socket (`.s.PGSQL.<port>`), for a front that can cut the connection */
  socketDir: string;
  /** the CA (PEM file) of the server's certificate: it takes TLS too, for 127.0.0.1 */
  caFile: string;
}

export interface TestPostgres extends TestPostgresInfo {
  stop(): Promise<void>;
}

/** The newest installed server's programs (`/usr/lib/postgresql/<major>/bin`). */
function binDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).filter((d) => /^\d+$/.test(d)) : [];
  if (majors.length === 0) throw new Error(`PostgreSQL is not installed (${base} is missing): ${SETUP_HINT}`);
  return join(base, String(Math.max(...majors.map(Number))), 'bin');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const asPostgres = (bin: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', bin, ...args], { maxBuffer: 1 << 24 });

/** Stops and removes the servers of test runs that are gone. */
async function reap(bin: string): Promise<void> {
  const dirs = existsSync(TEST_ROOT) ? readdirSync(TEST_ROOT).filter((d) => /^pg-\d+-/.test(d)) : [];
  for (const d of dirs) {
    const pid = Number(d.split('-')[1]);
    try {
      process.kill(pid, 0);
      continue; // its run is alive
    } catch {
      // its run is gone
    }
    await asPostgres(join(bin, 'pg_ctl'), ['stop', '-D', join(TEST_ROOT, d, 'data'), '-m', 'immediate']).catch(() => undefined);
    await rm(join(TEST_ROOT, d), { recursive: true, force: true });
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  await mkdir(TEST_ROOT, { recursive: true });
  await reap(bin);
  const dir = join(TEST_ROOT, `pg-${process.pid}-${randomBytes(3).toString('hex')}`);
  const data = join(dir, 'data');
  await mkdir(dir, { recursive: true });
  const password = randomBytes(12).toString('hex');
  await writeFile(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
  const { uid, gid } = await run('id', ['-u', 'postgres']).then(
    async ({ stdout }) => ({ uid: Number(stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) }),
    () => {
      throw new Error(`there is no postgres user: ${SETUP_HINT}`);
    },
  );
  // TLS for 127.0.0.1 (a connection may use it or not: initdb's `host` lines take both)
  const certs = await makeCerts(join(dir, 'tls'), { keyType: 'ec' });
  await chown(dir, uid, gid);
  await chown(join(dir, 'pwfile'), uid, gid);
  await chown(join(dir, 'tls'), uid, gid);
  for (const f of [certs.serverCert, certs.serverKey]) await chown(f, uid, gid);
  await asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${join(dir, 'pwfile')}`, '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const tls = `-c ssl=on -c ssl_cert_file=${certs.serverCert} -c ssl_key_file=${certs.serverKey}`;
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c shared_buffers=32MB ${tls}`;
  try {
    await asPostgres(join(bin, 'pg_ctl'), ['start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', options]);
  } catch (err) {
    const { stdout } = await run('tail', ['-n', '30', join(dir, 'server.log')]).catch(() => ({ stdout: '' }));
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${stdout}`, { cause: err });
  }
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    socketDir: dir,
    caFile: certs.ca,
    stop: async () => {
      await asPostgres(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A new empty database on the server; returns its URL (without the password) and the password. */
export async function createDatabase(
  server: TestPostgresInfo,
  name = `berth_${randomBytes(5).toString('hex')}`,
): Promise<{ url: string; password: string; name: string }> {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return { url: `postgres://${server.user}@${server.host}:${server.port}/${name}`, password: server.password, name };
}

/** Runs SQL on a database as the superuser (a tamperer, or a test's look behind berth). */
export async function sql<R = Record<string, unknown>>(db: { url: string; password: string }, text: string, params: unknown[] = []): Promise<R[]> {
  const url = new URL(db.url);
  url.password = encodeURIComponent(db.password);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as R[];
  } finally {
    await client.end();
  }
}
