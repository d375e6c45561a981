/**
 * Which engine acts (docs/how-it-works.md, "Running two engines"). On the SQLite file, the one
 * engine does. On PostgreSQL, every `berth serve` takes part in an election through the lease row
 * (src/audit/lease.ts, kept by the database's worker, src/audit/pg.ts): the leader runs every pass
 * that changes hosts; the others (followers) serve reads, keep their view of the hosts current,
 * and hand what they are asked to do to the leader (src/engine/handoff.ts).
 *
 * Fencing: before each step that would change a host, the engine checks that it still leads, by its
 * lease (held and not lapsed on its own clock) and by the lease row (its term is still the current
 * one); a step that fails the check is refused, with an `engine.fenced` row.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.ts';
import type { Db } from '../audit/db.ts';
import { PostgresDb } from '../audit/pg.ts';
import type { RoleEvent } from '../audit/pg-worker.ts';

export type Role = 'leader' | 'follower';

/** GET /api/v1/cluster (docs/api.md). */
export interface ClusterView {
  self: { id: string; role: Role; since: string };
  leader?: { id: string; since: string };
  engines: Array<{ id: string; role: Role | 'stopped'; lastSeen: string; version: string }>;
}

/** A step refused to an engine that no longer leads. */
export class FencedError extends Error {
  override name = 'FencedError';
  readonly code = 'fenced';
}

export interface ClusterOptions {
  id: string;
  version: string;
  /** how long a lease lasts unrenewed (config database.lease) */
  leaseMs: number;
}

export class Cluster {
  readonly id: string;
  readonly #db: Db;
  readonly #pg: PostgresDb | undefined;
  readonly #opts: ClusterOptions;
  readonly #log: Logger;
  readonly #audit: AuditLog;
  readonly #listeners = new Set<(e: RoleEvent) => void>();
  #role: Role;
  #since = new Date().toISOString();
  #term = 0;
  #stopLease: (() => void) | undefined;
  /** when the last engine.fenced row was written: one a lease lost, not one per refused step */
  #fencedTerm = -1;
  /** rows about the engine the database could not take when they happened (it was out of reach): written once it answers */
  readonly #pending: Array<Parameters<AuditLog['append']>[0]> = [];

  constructor(db: Db, opts: ClusterOptions, log: Logger, audit: AuditLog) {
    this.#db = db;
    this.#pg = db instanceof PostgresDb ? db : undefined;
    this.#opts = opts;
    this.id = opts.id;
    this.#log = log.child({ component: 'cluster' });
    this.#audit = audit;
    // Alone on its SQLite file, the engine leads from its start. On PostgreSQL it follows until elected.
    this.#role = this.#pg ? 'follower' : 'leader';
  }

  /** True on PostgreSQL: several engines may share the database, and one of them leads. */
  get shared(): boolean {
    return this.#pg !== undefined;
  }

  /** Whether this engine may change hosts now. */
  get leading(): boolean {
    return this.#pg ? this.#role === 'leader' && this.#pg.heldTerm() > 0 : true;
  }

  get term(): number {
    return this.#term;
  }

  /** Hears every change of role (after the engine's own bookkeeping of it). */
  onRole(listener: (e: RoleEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Joins the election (PostgreSQL; alone on SQLite, nothing to do). */
  start(): void {
    if (!this.#pg || this.#stopLease) return;
    const renewMs = Math.max(500, Math.round(this.#opts.leaseMs / 5));
    this.#stopLease = this.#pg.startLease({ engine: this.id, version: this.#opts.version, leaseMs: this.#opts.leaseMs, renewMs }, (e) => this.#changed(e));
  }

  /** Gives the lease up at once, so that another engine leads without waiting for it to lapse. */
  stop(): void {
    if (!this.#pg || !this.#stopLease) return;
    this.#stopLease();
    this.#stopLease = undefined;
    try {
      this.#pg.releaseLease();
    } catch (err) {
      this.#log.warn({ err }, 'could not give up the lease: another engine leads once it lapses');
    }
  }

  #changed(e: RoleEvent): void {
    this.#flush();
    const was = this.#role;
    this.#role = e.role;
    this.#term = e.term;
    if (e.role !== was) this.#since = new Date().toISOString();
    if (e.role === 'leader' && was !== 'leader') {
      this.#log.info({ term: e.term, previous: e.previous }, `this engine leads (term ${e.term})`);
      this.#record(() => ({
        kind: 'engine.leader',
        outcome: 'info',
        message: `engine ${this.id} leads from term ${e.term}${e.previous && e.previous !== this.id ? `, taking over from engine ${e.previous}` : e.previous === this.id ? ', again after its lease lapsed' : ''}`,
      }));
    } else if (e.role === 'follower' && was === 'leader') {
      this.#log.warn(
        { term: e.term, reason: e.reason, stoppedAt: e.stoppedAt },
        e.reason === 'released' ? 'this engine gave up the lead' : 'this engine lost its lease: it stopped acting',
      );
    }
    for (const listener of this.#listeners) listener(e);
  }

  /**
   * Throws FencedError unless this engine leads now: its lease is held and current on its own
   * clock, and the lease row still names it with its term. Called before each step that changes a
   * host (src/apply/docker-host.ts); `step` names it for the audit row.
   */
  fence(step: string, where: { host?: string; repo?: string; stack?: string } = {}): void {
    if (!this.#pg) return;
    const held = this.#pg.heldTerm();
    let refusal: string | undefined;
    if (held === 0) refusal = 'its lease lapsed';
    else {
      let row: { engine: string; term: number } | undefined;
      try {
        row = this.#pg.prepare('SELECT engine, term FROM leader_lease WHERE id = 1').get() as typeof row;
      } catch (err) {
        refusal = `the database cannot confirm its lease (${(err as Error).message})`;
      }
      if (!refusal && (row?.engine !== this.id || row.term !== held)) refusal = `engine ${row?.engine ?? '(none)'} leads in term ${row?.term ?? 0}`;
    }
    if (!refusal) return;
    const message = `engine ${this.id} (term ${held || this.#term}) no longer leads (${refusal}): refused to ${step}`;
    if (this.#fencedTerm !== this.#term) {
      this.#fencedTerm = this.#term;
      this.#record(() => ({ kind: 'engine.fenced', outcome: 'error', message, ...where }));
    }
    this.#log.warn({ ...where, term: held || this.#term }, message);
    throw new FencedError(message);
  }

  /**
   * An audit row about the engine itself. When the database cannot take it (an engine fenced out
   * because it lost the database), it is logged, kept, and written at the next change of role
   * (which the lease's connection reports once it reaches the database again).
   */
  #record(make: () => Parameters<AuditLog['append']>[0]): void {
    const row = make();
    try {
      this.#audit.append(row);
    } catch (err) {
      this.#log.error({ err, kind: row.kind }, 'could not record this in the audit log now: it is written once the database answers');
      if (this.#pending.length < 100)
        this.#pending.push({ ...row, message: `${row.message} (recorded late: the database did not answer at ${new Date().toISOString()})` });
    }
  }

  #flush(): void {
    while (this.#pending.length) {
      try {
        this.#audit.append(this.#pending[0]!);
        this.#pending.shift();
      } catch {
        return;
      }
    }
  }

  /** GET /api/v1/cluster */
  view(): ClusterView {
    const self = { id: this.id, role: this.leading ? ('leader' as const) : ('follower' as const), since: this.#since };
    if (!this.#pg)
      return {
        self,
        leader: { id: this.id, since: this.#since },
        engines: [{ id: this.id, role: 'leader', lastSeen: new Date().toISOString(), version: this.#opts.version }],
      };
    const lease = this.#db.prepare('SELECT engine, since, expires > now() AS live FROM leader_lease WHERE id = 1').get() as
      { engine: string; since: string; live: boolean } | undefined;
    const engines = this.#db
      .prepare(`SELECT id, role, "lastSeen", version FROM engines WHERE "lastSeen" > now() - interval '1 hour' OR id = ? ORDER BY id`)
      .all(this.id) as ClusterView['engines'];
    return {
      self,
      ...(lease?.live ? { leader: { id: lease.engine, since: lease.since } } : {}),
      engines: engines.map((e) => (e.id === this.id ? { ...e, role: self.role } : e)),
    };
  }
}
