/**
 * The PostgreSQL connections of one engine, in a worker thread (src/audit/pg.ts explains why).
 *
 * - The store's connection runs what the main thread asks, one request at a time, and answers on
 *   its port; it then bumps a shared counter, which wakes the main thread waiting on it.
 * - The lease's connection renews the engine's lease on its own timer (src/audit/lease.ts), so that
 *   a main thread busy with a long statement does not lose it, and writes the term and until when
 *   the engine may act into shared memory, where the main thread reads them without a round trip.
 *   Changes of role go to the main thread as events.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';
import { actUntil, decideLease, monotonicMs, type LeaseRow } from './lease.ts';

/** What the main thread hands over at start. */
export interface WorkerInit {
  connection: pg.ClientConfig;
  /** requests and their answers */
  port: MessagePort;
  /** role changes, unasked */
  events: MessagePort;
  /** Int32Array[1]: bumped after every answer */
  wake: SharedArrayBuffer;
  /** Float64Array[2]: the term held (0: none) and until when it lets the engine act (monotonicMs) */
  lease: SharedArrayBuffer;
}

export type Request =
  | { id: number; op: 'query'; sql: string; params: unknown[] }
  | { id: number; op: 'exec'; sql: string }
  | { id: number; op: 'reset' }
  | { id: number; op: 'close' }
  | { id: number; op: 'lease'; engine: string; version: string; leaseMs: number; renewMs: number }
  | { id: number; op: 'release' }
  | { id: number; op: 'listen'; channel: string }
  | { id: number; op: 'notify'; channel: string; payload: string };

export type Answer =
  { id: number; rows: Record<string, unknown>[]; changes: number } | { id: number; error: { message: string; code?: string; unavailable: boolean } };

/** What the worker tells the main thread unasked: a change of role, or a notification on the channel it listens to. */
export type WorkerEvent = ({ type: 'role' } & RoleEvent) | { type: 'notify'; payload: string };

/** A change of role, sent as it happens. */
export interface RoleEvent {
  role: 'leader' | 'follower';
  term: number;
  /** the leader's id and since when it leads (ISO 8601), when known */
  leader?: { id: string; since: string };
  /** the engine that led before, when this one took over from it */
  previous?: string;
  /** why this engine stopped leading */
  reason?: 'lease-lost' | 'released';
  /**
   * when it stopped leading, on this machine's wall clock (ISO 8601): the moment its fence began
   * refusing steps, which is before its lease could lapse in the database. It is reported later
   * than that when the renewal that finds it out waits on a database that does not answer.
   */
  stoppedAt?: string;
}

// bigint (ids, counts, times in ms) as numbers: none comes near 2^53
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

/** SQLSTATE classes that mean the connection, not the statement, failed. */
const UNAVAILABLE_CLASSES = ['08', '57', '53'];

const init = workerData as WorkerInit;
const wake = new Int32Array(init.wake);
const leaseState = new Float64Array(init.lease);

function answer(a: Answer): void {
  init.port.postMessage(a);
  Atomics.add(wake, 0, 1);
  Atomics.notify(wake, 0);
}

/** A row with its times (TIMESTAMPTZ) as ISO 8601 strings, as the stores keep times. */
function isoDates(row: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(row)) if (v instanceof Date) row[k] = v.toISOString();
  return row;
}

/** A client that connects on first use and is dropped when it fails, so that the next use reconnects. */
class Connection {
  #client: Promise<pg.Client> | undefined;
  readonly #config: pg.ClientConfig;

  constructor(config: pg.ClientConfig) {
    this.#config = config;
  }

  async query(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
    const client = await this.#connect();
    try {
      return await client.query(sql, params);
    } catch (err) {
      if (unavailable(err)) this.drop();
      throw err;
    }
  }

  #connect(): Promise<pg.Client> {
    if (!this.#client) {
      const client = new pg.Client(this.#config);
      client.on('error', () => this.drop()); // a connection lost while idle: the next use reconnects
      this.#client = client.connect().then(
        () => client,
        (err: unknown) => {
          this.#client = undefined;
          throw err;
        },
      );
    }
    return this.#client;
  }

  /** Closes the connection at once (a statement in flight fails; an open transaction rolls back). */
  drop(): void {
    const c = this.#client;
    this.#client = undefined;
    void c?.then(
      (client) => client.end().catch(() => undefined),
      () => undefined,
    );
  }
}

function unavailable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_CLASSES.includes(code.slice(0, 2));
  return true; // no SQLSTATE: the socket, DNS or TLS failed, or the client timed out
}

const store = new Connection(init.connection);
let lease: Lease | undefined;
let listener: Listener | undefined;

init.port.on('message', (req: Request) => {
  void handle(req).then(answer, (err: unknown) =>
    answer({ id: req.id, error: { message: (err as Error).message, code: (err as { code?: string }).code, unavailable: unavailable(err) } }),
  );
});

async function handle(req: Request): Promise<Answer> {
  switch (req.op) {
    case 'query': {
      const r = await store.query(req.sql, req.params);
      return { id: req.id, rows: (r.rows as Record<string, unknown>[]).map(isoDates), changes: r.rowCount ?? 0 };
    }
    case 'exec':
      await store.query(req.sql);
      return { id: req.id, rows: [], changes: 0 };
    case 'reset':
      store.drop();
      return { id: req.id, rows: [], changes: 0 };
    case 'lease':
      lease ??= new Lease(req);
      return { id: req.id, rows: [], changes: 0 };
    case 'release':
      await lease?.release();
      return { id: req.id, rows: [], changes: 0 };
    case 'listen':
      listener ??= new Listener(req.channel);
      return { id: req.id, rows: [], changes: 0 };
    case 'notify':
      await store.query('SELECT pg_notify($1, $2)', [req.channel, req.payload]);
      return { id: req.id, rows: [], changes: 0 };
    case 'close':
      await lease?.release().catch(() => undefined);
      lease?.stop();
      listener?.stop();
      store.drop();
      return { id: req.id, rows: [], changes: 0 };
  }
}

/** The engine's lease: renewed (or taken, once expired) every renewMs on a connection of its own. */
class Lease {
  readonly #engine: string;
  readonly #version: string;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #db: Connection;
  #timer: NodeJS.Timeout | undefined;
  #role: RoleEvent['role'] | undefined;
  #term = 0;
  #stopped = false;

  constructor(o: { engine: string; version: string; leaseMs: number; renewMs: number }) {
    this.#engine = o.engine;
    this.#version = o.version;
    this.#leaseMs = o.leaseMs;
    this.#renewMs = o.renewMs;
    // A renewal that cannot finish within a tick is as good as lost: fail it and try afresh.
    this.#db = new Connection({ ...init.connection, query_timeout: o.renewMs, connectionTimeoutMillis: o.renewMs });
    void this.#tick();
  }

  async #tick(): Promise<void> {
    const sentAt = monotonicMs();
    try {
      await this.#renew(sentAt);
    } catch {
      this.#db.drop();
    }
    if (this.#role === 'leader' && monotonicMs() >= leaseState[1]!) this.#lost('lease-lost');
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#tick(), this.#renewMs);
  }

  async #renew(sentAt: number): Promise<void> {
    const db = this.#db;
    await db.query('BEGIN');
    try {
      const row = (await db.query(`SELECT engine, term, since, expires <= now() AS expired FROM leader_lease WHERE id = 1 FOR UPDATE`)).rows[0] as
        (Omit<LeaseRow, 'since'> & { since: Date }) | undefined;
      const step = decideLease(row && { ...row, since: row.since.toISOString() }, this.#engine);
      const interval = `make_interval(secs => ${this.#leaseMs / 1000})`;
      let held: { term: number; since: Date } | undefined;
      let previous: string | undefined;
      if (step.do === 'insert') {
        held = (
          await db.query(
            `INSERT INTO leader_lease (id, engine, term, since, expires) VALUES (1, $1, 1, now(), now() + ${interval})
             ON CONFLICT (id) DO NOTHING RETURNING term, since`,
            [this.#engine],
          )
        ).rows[0];
      } else if (step.do === 'renew') {
        held = (await db.query(`UPDATE leader_lease SET expires = now() + ${interval} WHERE id = 1 RETURNING term, since`)).rows[0];
      } else if (step.do === 'take') {
        held = (
          await db.query(`UPDATE leader_lease SET engine = $1, term = $2, since = now(), expires = now() + ${interval} WHERE id = 1 RETURNING term, since`, [
            this.#engine,
            step.term,
          ])
        ).rows[0];
        previous = step.previous;
      }
      const role = held ? 'leader' : 'follower';
      await db.query(
        `INSERT INTO engines (id, version, role, "startedAt", "lastSeen") VALUES ($1, $2, $3, now(), now())
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, role = excluded.role, "lastSeen" = excluded."lastSeen"`,
        [this.#engine, this.#version, role],
      );
      await db.query('COMMIT');
      if (held) {
        leaseState[0] = held.term;
        leaseState[1] = actUntil(sentAt, this.#leaseMs);
        if (this.#role !== 'leader' || this.#term !== held.term) {
          this.#role = 'leader';
          this.#term = held.term;
          this.#post({ role: 'leader', term: held.term, leader: { id: this.#engine, since: held.since.toISOString() }, ...(previous ? { previous } : {}) });
        }
      } else if (step.do === 'follow') {
        const leader = { id: step.leader.engine, since: step.leader.since };
        if (this.#role === 'leader') this.#lost('lease-lost');
        if (this.#role !== 'follower' || this.#term !== step.leader.term) {
          this.#role = 'follower';
          this.#term = step.leader.term;
          this.#post({ role: 'follower', term: step.leader.term, leader });
        }
      }
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  #lost(reason: 'lease-lost' | 'released'): void {
    // the wall-clock time of the deadline the fence went by (now, when that is still ahead)
    const stoppedAt = new Date(Date.now() - Math.max(0, monotonicMs() - leaseState[1]!)).toISOString();
    leaseState[0] = 0;
    leaseState[1] = 0;
    this.#role = 'follower';
    this.#post({ role: 'follower', term: this.#term, reason, stoppedAt });
  }

  #post(e: RoleEvent): void {
    init.events.postMessage({ type: 'role', ...e } satisfies WorkerEvent);
  }

  /** Gives the lease up at once (a clean stop), so that another engine takes over without waiting for it to expire. */
  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#role === 'leader') {
      const term = this.#term;
      this.#lost('released');
      await this.#db.query(`UPDATE leader_lease SET expires = now() WHERE id = 1 AND engine = $1 AND term = $2`, [this.#engine, term]);
    }
    await this.#db.query(`UPDATE engines SET role = 'stopped', "lastSeen" = now() WHERE id = $1`, [this.#engine]);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#db.drop();
  }
}

/**
 * LISTEN on a connection of its own, passing each notification to the main thread; a connection
 * that breaks is made again (and LISTENs again) a second later. What was notified meanwhile is lost:
 * what listens for it (src/engine/cluster.ts, the relayed events) shows live progress, not history.
 */
class Listener {
  readonly #channel: string;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(channel: string) {
    this.#channel = channel;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ ...init.connection, keepAlive: true });
    this.#client = client;
    const again = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      void client.end().catch(() => undefined);
      if (!this.#stopped) this.#timer = setTimeout(() => void this.#connect(), 1000);
    };
    client.on('error', again);
    client.on('end', again);
    client.on('notification', (n) => {
      if (n.payload !== undefined) init.events.postMessage({ type: 'notify', payload: n.payload } satisfies WorkerEvent);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch {
      again();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const c = this.#client;
    this.#client = undefined;
    void c?.end().catch(() => undefined);
  }
}
