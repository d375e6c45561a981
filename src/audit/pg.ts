/**
 * berth's database on PostgreSQL, shared by several engines (docs/how-it-works.md, "Running two
 * engines"), through the `pg` driver (node-postgres).
 *
 * The stores are written against SQLite's synchronous API (db.ts: a pass reads its holds, pins and
 * back-offs between Docker calls, and the audit log chains each row to the one before it under a
 * write lock, in one call). node-postgres is asynchronous. Rather than turning every store, and
 * every caller of one, asynchronous, this Db runs the driver in a worker thread (pg-worker.ts) and
 * waits for each answer (Atomics.wait on a shared counter, the answer read with
 * receiveMessageOnPort): the same calls, in the same order, with the same transactions. A call
 * costs a loopback round trip (~0.2 ms) on the engine's thread; one that has no answer within
 * `timeoutMs` fails with `store-unavailable`, and its connection is dropped (a transaction open on it
 * rolls back), so that a database that went away stalls the engine for at most that long.
 *
 * Written by hand rather than with a library for synchronous workers (synckit): a call that timed
 * out must be told apart from its late answer (each call has an id, late answers are dropped), the
 * connection behind it must be reset, and the same worker keeps the engine's lease on a connection
 * of its own (lease.ts), whose state the engine reads from shared memory.
 */
import { readFileSync } from 'node:fs';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { ClientConfig } from 'pg';
import type { SQLInputValue } from 'node:sqlite';
import type { Db, SqlRow, Statement } from './db.ts';
import { monotonicMs } from './lease.ts';
import { pgMigrations } from './pg-schema.ts';
import type { Answer, Request, RoleEvent, WorkerEvent, WorkerInit } from './pg-worker.ts';

/** How to reach the database (the engine config's `database:`). */
export interface PostgresOptions {
  /** `postgres://user@host:port/name`; a password in it is used, but better given as `password` */
  url: string;
  password?: string;
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** how long one statement may keep the engine waiting (default 5 s) */
  timeoutMs?: number;
}

/** Why a call to the database failed: it did not answer (or the connection broke), or it refused the statement. */
export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: 'store-unavailable' | 'store-refused';
  /** PostgreSQL's SQLSTATE, when it answered */
  readonly sqlState?: string;
  constructor(message: string, code: StoreError['code'], sqlState?: string) {
    super(message);
    this.code = code;
    if (sqlState) this.sqlState = sqlState;
  }
}

/** A request without its id (#call numbers it). */
type Call = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

/** Every transaction that writes takes this one lock first: what BEGIN IMMEDIATE is to SQLite. */
const WRITE_LOCK = 0x62657274; // 'bert'

export class PostgresDb implements Db {
  readonly dialect = 'postgres';
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #wake: Int32Array;
  readonly #lease: Float64Array;
  readonly #timeoutMs: number;
  readonly #roleListeners = new Set<(e: RoleEvent) => void>();
  readonly #notifyListeners = new Set<(payload: string) => void>();
  readonly #translated = new Map<string, string>();
  /** where the database is, without a password (for messages) */
  readonly where: string;
  #ids = 0;
  #inTransaction = false;
  #open = true;

  constructor(o: PostgresOptions) {
    this.where = safeUrl(o.url);
    this.#timeoutMs = o.timeoutMs ?? 5000;
    const calls = new MessageChannel();
    const events = new MessageChannel();
    const wake = new SharedArrayBuffer(4);
    const lease = new SharedArrayBuffer(16);
    this.#wake = new Int32Array(wake);
    this.#lease = new Float64Array(lease);
    const connection: ClientConfig = {
      connectionString: withPassword(o.url, o.password),
      ...(o.tls ? { ssl: o.tls } : {}),
      application_name: 'berth',
      keepAlive: true,
      connectionTimeoutMillis: this.#timeoutMs,
    };
    const init: WorkerInit = { connection, port: calls.port2, events: events.port2, wake, lease };
    this.#worker = new Worker(workerFile(), {
      workerData: init,
      transferList: [calls.port2, events.port2],
      name: 'berth-postgres',
      // none of the process's Node options: a script given with -e would run instead of the worker's
      // file, and V8's heap sizes (bin/berth.js sets them) are refused in a worker
      execArgv: [],
    });
    this.#worker.unref();
    this.#worker.on('error', () => undefined); // a call then finds no answer and says so
    this.#port = calls.port1;
    this.#port.unref();
    events.port1.on('message', (e: WorkerEvent) => {
      if (e.type === 'notify') for (const listener of this.#notifyListeners) listener(e.payload);
      else for (const listener of this.#roleListeners) listener(e);
    });
    events.port1.unref();
  }

  /** Connects and brings the schema up to date (under the write lock: engines starting together migrate once). */
  migrate(): void {
    this.write(() => {
      this.exec('CREATE TABLE IF NOT EXISTS berth_schema (version INTEGER NOT NULL)');
      const row = this.prepare('SELECT version FROM berth_schema').get() as { version: number } | undefined;
      const from = row?.version ?? 0;
      if (from > pgMigrations.length) {
        throw new Error(`the database ${this.where} has schema version ${from}, newer than this berth knows (${pgMigrations.length}); upgrade berth`);
      }
      for (let v = from; v < pgMigrations.length; v++) this.exec(pgMigrations[v]!);
      if (!row) this.prepare('INSERT INTO berth_schema (version) VALUES (?)').run(pgMigrations.length);
      else if (from < pgMigrations.length) this.prepare('UPDATE berth_schema SET version = ?').run(pgMigrations.length);
    });
  }

  prepare(sql: string): Statement {
    let text = this.#translated.get(sql);
    if (text === undefined) {
      text = toPostgres(sql);
      this.#translated.set(sql, text);
    }
    const query = (params: SQLInputValue[]) => this.#call({ op: 'query', sql: text, params }) as { rows: SqlRow[]; changes: number };
    return {
      get: (...params) => query(params).rows[0],
      all: (...params) => query(params).rows,
      run: (...params) => ({ changes: query(params).changes }),
    };
  }

  exec(sql: string): void {
    this.#call({ op: 'exec', sql });
  }

  write<T>(fn: () => T): T {
    if (this.#inTransaction) return fn();
    this.exec(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK})`);
    this.#inTransaction = true;
    try {
      const result = fn();
      this.exec('COMMIT');
      return result;
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'store-unavailable')) {
        try {
          this.exec('ROLLBACK');
        } catch {
          // the connection is gone, and the transaction with it
        }
      }
      throw err;
    } finally {
      this.#inTransaction = false;
    }
  }

  get isOpen(): boolean {
    return this.#open;
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#call({ op: 'close' });
    } catch {
      // closing anyway
    }
    void this.#worker.terminate();
  }

  /**
   * Starts taking part in leader election: the worker renews this engine's lease (or waits for the
   * leader's to expire) every `renewMs`; `onRole` hears every change of role.
   */
  startLease(o: { engine: string; version: string; leaseMs: number; renewMs: number }, onRole: (e: RoleEvent) => void): () => void {
    this.#roleListeners.add(onRole);
    this.#call({ op: 'lease', ...o });
    return () => this.#roleListeners.delete(onRole);
  }

  /**
   * Hears every notification on `channel` (LISTEN, on a connection of the worker's own), as they
   * come, from every engine on the database (this one's too). Returns a function that stops hearing.
   */
  listen(channel: string, onPayload: (payload: string) => void): () => void {
    this.#notifyListeners.add(onPayload);
    this.#call({ op: 'listen', channel });
    return () => this.#notifyListeners.delete(onPayload);
  }

  /** Notifies every engine listening on `channel` (NOTIFY: at most 8,000 bytes). */
  notify(channel: string, payload: string): void {
    this.#call({ op: 'notify', channel, payload });
  }

  /** Gives up the lease at once when this engine holds it (a clean stop). */
  releaseLease(): void {
    this.#call({ op: 'release' });
  }

  /** The term this engine leads in, while its lease lets it act; 0 otherwise. Read from shared memory, no round trip. */
  heldTerm(): number {
    const term = this.#lease[0]!;
    return term > 0 && monotonicMs() < this.#lease[1]! ? term : 0;
  }

  #call(req: Call): Extract<Answer, { rows: unknown }> {
    if (!this.#open && req.op !== 'close') throw new StoreError(`the database ${this.where} is closed`, 'store-unavailable');
    const id = ++this.#ids;
    this.#port.postMessage({ ...req, id });
    const deadline = monotonicMs() + this.#timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.#wake, 0);
      for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) {
        const a = m.message as Answer;
        if (a.id !== id) continue; // the late answer of a call that timed out
        if ('error' in a) {
          if (a.error.unavailable) {
            if (this.#inTransaction) this.#inTransaction = false;
            throw new StoreError(`the database ${this.where} cannot be reached: ${a.error.message}`, 'store-unavailable', a.error.code);
          }
          throw new StoreError(`the database ${this.where} refused a statement: ${a.error.message}`, 'store-refused', a.error.code);
        }
        return a;
      }
      const left = deadline - monotonicMs();
      if (left <= 0) {
        this.#port.postMessage({ id: ++this.#ids, op: 'reset' });
        throw new StoreError(`the database ${this.where} did not answer within ${this.#timeoutMs} ms`, 'store-unavailable');
      }
      Atomics.wait(this.#wake, 0, seen, left);
    }
  }
}

/** Opens the database and brings its schema up to date. */
export function openPostgres(o: PostgresOptions): PostgresDb {
  const db = new PostgresDb(o);
  try {
    db.migrate();
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** The TLS options of `database.tls`, with the files read. */
export function readTls(tls: { caFile?: string; certFile?: string; keyFile?: string; rejectUnauthorized?: boolean }): PostgresOptions['tls'] {
  return {
    ...(tls.caFile ? { ca: readFileSync(tls.caFile, 'utf8') } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile, 'utf8') } : {}),
    ...(tls.keyFile ? { key: readFileSync(tls.keyFile, 'utf8') } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  };
}

/** The URL with the password in it (node-postgres takes a connection string's fields over its own options). */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** A postgres:// URL with its password taken out, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * The store's SQL as PostgreSQL reads it: `?` parameters numbered `$1`, `$2`, ...; and camelCase
 * names (berth's columns: `commitSha`, `startedAt`) quoted, which PostgreSQL would otherwise fold to
 * lower case. Quoted names and string literals are left as they are.
 */
export function toPostgres(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length;) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i))![0];
      out += /[a-z]/.test(word) && /[A-Z]/.test(word) ? `"${word}"` : word;
      i += word.length;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The worker's file: beside this one when run from the sources, beside the bundle (dist/) when bundled. */
function workerFile(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('./pg-worker.ts', import.meta.url) : new URL('./pg-worker.mjs', import.meta.url);
}
