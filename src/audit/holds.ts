/**
 * Holds: stacks that automatic syncs leave alone, because someone paused them or rolled them back
 * by hand (docs/how-it-works.md, "Manual rollback, pause, resume"). A hold ends with `resume`, or
 * by itself when the branch gets a new commit. Bookkeeping of a decision, not a copy of live state;
 * kept per (repo, stack), so that a hold one repo's stack left never applies to another repo's.
 */
import { upsert, withoutNulls, type Db, type SqlRow } from './db.ts';

export interface Hold {
  stack: string;
  repo: string;
  /** the commit the stack is held at (a manual rollback's target); absent for a plain pause */
  commitSha?: string;
  /** the branch's head when the hold began: a different head ends the hold */
  headSha: string;
  reason: 'pause' | 'rollback';
  actor: string;
  since: string;
}

const SET_SQL = upsert('holds', ['repo', 'stack', 'commitSha', 'headSha', 'reason', 'actor', 'since'], ['repo', 'stack']);

const toHold = (r: SqlRow) => withoutNulls(r) as unknown as Hold;

export class HoldStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Holds the repo's stack (replacing a hold it already had). */
  set(h: Omit<Hold, 'since'>): Hold {
    this.#db.prepare(SET_SQL).run(h.repo, h.stack, h.commitSha ?? null, h.headSha, h.reason, h.actor, new Date().toISOString());
    return this.get(h.repo, h.stack)!;
  }

  get(repo: string, stack: string): Hold | undefined {
    const r = this.#db.prepare('SELECT * FROM holds WHERE repo = ? AND stack = ?').get(repo, stack);
    return r && toHold(r);
  }

  /** Ends the stack's hold; returns it, or undefined when there was none. */
  release(repo: string, stack: string): Hold | undefined {
    const h = this.get(repo, stack);
    if (h) this.#db.prepare('DELETE FROM holds WHERE repo = ? AND stack = ?').run(repo, stack);
    return h;
  }

  /** The repo's holds (every repo's without one), by stack name. */
  list(repo?: string): Hold[] {
    return (
      repo === undefined
        ? this.#db.prepare('SELECT * FROM holds ORDER BY stack, repo').all()
        : this.#db.prepare('SELECT * FROM holds WHERE repo = ? ORDER BY stack').all(repo)
    ).map(toHold);
  }
}
