/**
 * The comment berth wrote on a pull request with its plan, per forge target, repo and pull request
 * (docs/notifications.md, "Plans on pull requests"): the next plan of that request edits this
 * comment instead of adding another. Only the forge's id of the comment is kept, never its text.
 */
import { upsert, type Db } from './db.ts';

/** Whose comment: the notification target it was posted through, the repo, the pull request's number. */
export interface PlanCommentKey {
  target: string;
  repo: string;
  pull: number;
}

/** The plan_comments table of a database opened with openDatabase(). */
export class PlanCommentStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** The forge's id of the comment, when berth wrote one. */
  get({ target, repo, pull }: PlanCommentKey): string | undefined {
    const row = this.#db.prepare('SELECT commentId FROM plan_comments WHERE target = ? AND repo = ? AND pull = ?').get(target, repo, pull) as
      { commentId: string } | undefined;
    return row?.commentId;
  }

  /** Remembers the comment berth wrote. */
  set({ target, repo, pull }: PlanCommentKey, commentId: string): void {
    this.#db
      .prepare(upsert('plan_comments', ['target', 'repo', 'pull', 'commentId', 'time'], ['target', 'repo', 'pull']))
      .run(target, repo, pull, commentId, new Date().toISOString());
  }

  /** Forgets a comment the forge no longer has (a person deleted it): the next plan adds a new one. */
  forget({ target, repo, pull }: PlanCommentKey): void {
    this.#db.prepare('DELETE FROM plan_comments WHERE target = ? AND repo = ? AND pull = ?').run(target, repo, pull);
  }
}
