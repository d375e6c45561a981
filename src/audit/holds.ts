/**
 * Holds: stacks that automatic syncs leave alone, because someone paused them or rolled them back
 * by hand (docs/how-it-works.md, "Manual rollback, pause, resume"). A hold ends with `resume`, or
 * by itself when the branch gets a new commit. Bookkeeping of a decision, not a copy of live state.
 */
import type { DatabaseSync, SQLOutputValue } from 'node:sqlite';
import { withoutNulls } from './db.ts';

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

const toHold = (r: Record<string, SQLOutputValue>) => withoutNulls(r) as unknown as Hold;

export class HoldStore {
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Holds the stack (replacing a hold it already had). */
  set(h: Omit<Hold, 'since'>): Hold {
    this.#db
      .prepare(`INSERT OR REPLACE INTO holds (stack, repo, commitSha, headSha, reason, actor, since) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(h.stack, h.repo, h.commitSha ?? null, h.headSha, h.reason, h.actor, new Date().toISOString());
    return this.get(h.stack)!;
  }

  get(stack: string): Hold | undefined {
    const r = this.#db.prepare('SELECT * FROM holds WHERE stack = ?').get(stack);
    return r && toHold(r);
  }

  /** Ends the stack's hold; returns it, or undefined when there was none. */
  release(stack: string): Hold | undefined {
    const h = this.get(stack);
    if (h) this.#db.prepare('DELETE FROM holds WHERE stack = ?').run(stack);
    return h;
  }

  list(): Hold[] {
    return this.#db.prepare('SELECT * FROM holds ORDER BY stack').all().map(toHold);
  }
}
