/**
 * Bookkeeping of sync runs: what was planned and how it ended. History only, never a copy of the
 * live state: every pass reads that from the hosts.
 */
import { hostname } from 'node:os';
import { commitCondition, readPage, withoutNulls } from './db.ts';
import type { Db, Page, SqlRow } from './db.ts';
import type { Evidence } from '../apply/evidence.ts';
import type { Trigger } from './log.ts';

/** A service's replicas in a sync's rollout: how many it changes, and how they fare (src/engine/progress.ts counts them). */
export interface ServiceProgress {
  service: string;
  /** the replicas the rollout creates or replaces */
  total: number;
  /** those whose new container runs, and is healthy when it was waited for */
  updated: number;
  /** those that failed: exited, unhealthy, not ready in time, or could not start */
  failed: number;
  /** true once a rollback of the service began */
  rollingBack?: boolean;
}

export type SyncOutcome = 'running' | 'succeeded' | 'failed';

/** One sync run of one stack at one commit; optional fields are absent when not recorded. */
export interface SyncRecord {
  id: number;
  repo: string;
  stack: string;
  commitSha: string;
  trigger: Trigger;
  actor: string;
  /** ISO 8601, UTC, milliseconds */
  startedAt: string;
  finishedAt?: string;
  outcome: SyncOutcome;
  error?: string;
  /** the plan, as JSON */
  plan?: unknown;
  /** a unified diff of what the plan changes */
  diff?: string;
  /** the process that runs it, `hostname:pid` */
  owner?: string;
  /** how a failed sync ended: failed, paused or rolledback */
  result?: 'failed' | 'paused' | 'rolledback';
  /** what the failing container showed, when a replica's failure ended it (src/apply/evidence.ts) */
  evidence?: Evidence;
  /** per service, the replicas its rollout changed and how they fared: when it ended, and while it runs (from the engine running it) */
  progress?: ServiceProgress[];
}

export interface SyncStart {
  repo: string;
  stack: string;
  commitSha: string;
  trigger: Trigger;
  actor: string;
  plan?: unknown;
  diff?: string;
}

export interface SyncFinish {
  outcome: 'succeeded' | 'failed';
  /** how a failed sync ended: 'failed', 'paused' (a rollout stopped) or 'rolledback' */
  result?: 'failed' | 'paused' | 'rolledback';
  error?: string;
  /** replaces the plan recorded at start, when given */
  plan?: unknown;
  /** replaces the diff recorded at start, when given */
  diff?: string;
  evidence?: Evidence;
  progress?: ServiceProgress[];
}

export interface SyncFilter {
  stack?: string;
  /** a full SHA or a prefix of at least 4 hex characters */
  commit?: string;
  /** default 100, at most 1000 */
  limit?: number;
  /** rows with id < cursor (the nextCursor of the previous page) */
  cursor?: number;
}

function toRecord(r: SqlRow): SyncRecord {
  const rec = withoutNulls(r) as unknown as Omit<SyncRecord, 'plan' | 'evidence' | 'progress'> & { plan?: string; evidence?: string; progress?: string };
  const { plan, evidence, progress, ...rest } = rec;
  return {
    ...rest,
    ...(plan !== undefined ? { plan: JSON.parse(plan) as unknown } : {}),
    ...(evidence !== undefined ? { evidence: JSON.parse(evidence) as Evidence } : {}),
    ...(progress !== undefined ? { progress: JSON.parse(progress) as ServiceProgress[] } : {}),
  };
}

/** This process, as recorded in `owner` (and the engine's id among several: src/engine/cluster.ts). */
export const PROCESS_ID = `${hostname()}:${process.pid}`;

/** False only when the owner is a process of this machine that no longer exists. */
function ownerAlive(owner: string | undefined): boolean {
  const m = /^(.*):(\d+)$/.exec(owner ?? '');
  if (!m) return false; // no owner recorded: nothing can still be running it
  if (m[1] !== hostname()) return true; // another machine's: cannot tell, so leave it
  try {
    process.kill(Number(m[2]), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

/** Sync runs in a database opened with openDatabase(). */
export interface SyncStoreOptions {
  /**
   * Whether a sync left running by `owner` can no longer be running. By default: the owner is a
   * process of this machine that is gone. The leader of several engines on one database, which alone
   * runs syncs, passes "any owner but me" (src/engine/cluster.ts).
   */
  ownerGone?: (owner: string | undefined) => boolean;
}

export class SyncStore {
  readonly #db: Db;
  readonly #ownerGone: (owner: string | undefined) => boolean;

  constructor(db: Db, opts: SyncStoreOptions = {}) {
    this.#db = db;
    this.#ownerGone = opts.ownerGone ?? ((owner) => owner !== PROCESS_ID && !ownerAlive(owner));
  }

  /** Records a sync run as started (outcome 'running') and returns it. */
  start(s: SyncStart): SyncRecord {
    const { id } = this.#db
      .prepare(
        `INSERT INTO syncs (repo, stack, commitSha, "trigger", actor, startedAt, outcome, plan, diff, owner)
         VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING id`,
      )
      .get(s.repo, s.stack, s.commitSha, s.trigger, s.actor, new Date().toISOString(), json(s.plan), s.diff ?? null, PROCESS_ID) as { id: number };
    return this.get(Number(id))!;
  }

  /** Records how a running sync ended; throws if it is unknown or already finished. */
  finish(id: number, f: SyncFinish): void {
    const { changes } = this.#db
      .prepare(
        `UPDATE syncs SET finishedAt = ?, outcome = ?, result = ?, error = ?, plan = coalesce(?, plan), diff = coalesce(?, diff),
         evidence = ?, progress = ?
         WHERE id = ? AND outcome = 'running'`,
      )
      .run(new Date().toISOString(), f.outcome, f.result ?? null, f.error ?? null, json(f.plan), f.diff ?? null, json(f.evidence), json(f.progress), id);
    if (changes === 0) {
      const found = this.get(id);
      throw new Error(found ? `sync ${id} has already finished (${found.outcome})` : `there is no sync ${id}`);
    }
  }

  /**
   * Marks as failed the stack's syncs left 'running' by a berth process that is gone (killed
   * mid-plan: SyncStoreOptions.ownerGone), and returns them. Syncs of live processes stay.
   */
  settleOrphans(repo: string, stack: string): SyncRecord[] {
    const running = this.#db.prepare(`SELECT * FROM syncs WHERE repo = ? AND stack = ? AND outcome = 'running'`).all(repo, stack).map(toRecord);
    const orphans = running.filter((r) => this.#ownerGone(r.owner));
    for (const r of orphans) this.finish(r.id, { outcome: 'failed', error: `interrupted: the berth process that ran it (${r.owner ?? 'unknown'}) stopped` });
    return orphans.map((r) => this.get(r.id)!);
  }

  /** One sync run by id. */
  get(id: number): SyncRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM syncs WHERE id = ?').get(id);
    return r && toRecord(r);
  }

  /** Sync runs matching the filters, newest first, one page at a time. */
  list(f: SyncFilter = {}): Page<SyncRecord> {
    const where: string[] = [];
    const params: string[] = [];
    if (f.stack !== undefined) {
      where.push('stack = ?');
      params.push(f.stack);
    }
    if (f.commit !== undefined) {
      const c = commitCondition('commitSha', f.commit);
      where.push(c.sql);
      params.push(...c.params);
    }
    return readPage(this.#db, 'syncs', where, params, f, toRecord);
  }

  /** The repo's stack's latest sync run (by id), running or finished. */
  latest(repo: string, stack: string): SyncRecord | undefined {
    const r = this.#db.prepare(`SELECT * FROM syncs WHERE repo = ? AND stack = ? ORDER BY id DESC LIMIT 1`).get(repo, stack);
    return r && toRecord(r);
  }

  /** The repo's stack's sync run that succeeded last (by finishing time), if any. */
  lastSucceeded(repo: string, stack: string): SyncRecord | undefined {
    const r = this.#db
      .prepare(`SELECT * FROM syncs WHERE repo = ? AND stack = ? AND outcome = 'succeeded' ORDER BY finishedAt DESC, id DESC LIMIT 1`)
      .get(repo, stack);
    return r && toRecord(r);
  }
}
