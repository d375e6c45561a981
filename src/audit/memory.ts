/**
 * What the engine remembers of each stack between passes, and across a restart
 * (docs/how-it-works.md, "What survives a restart"), per (repo, stack):
 * - the back-off of a failed apply: when automatic triggers may try the same attempt again, and
 *   never by themselves for a rollout that rolled back or paused (so a restart does not try a
 *   rolled-back commit again);
 * - the last placement: which host each replica was given, so that the replicas of a host that does
 *   not answer (not yet lost) wait for it rather than move at once.
 * Bookkeeping of decisions, not a copy of live state: every pass reads that from the hosts.
 */
import type { CurrentReplica } from '../schedule/place.ts';
import { immediate, upsert, type Db } from './db.ts';

/** A stack's failed apply: which attempt (the commit, and the digests of followed images), how often in a row, and when automatic triggers may try again (ms since the epoch; Infinity: not by themselves). */
export interface Backoff {
  commit: string;
  failures: number;
  until: number;
}

export class StackMemory {
  readonly #db: Db;
  /** what this process last wrote or read of each stack's placement: a pass that places the same writes nothing */
  readonly #placed = new Map<string, CurrentReplica[]>();

  constructor(db: Db) {
    this.#db = db;
  }

  /** The repo's back-offs, by stack name (one query per pass, not one per stack). */
  backoffs(repo: string): Map<string, Backoff> {
    const rows = this.#db.prepare('SELECT stack, attempt, failures, until FROM backoffs WHERE repo = ?').all(repo) as Array<{
      stack: string;
      attempt: string;
      failures: number;
      until: number | null;
    }>;
    return new Map(rows.map((r) => [r.stack, { commit: r.attempt, failures: r.failures, until: r.until ?? Infinity }]));
  }

  /** Records the stack's back-off, or ends it (undefined). */
  setBackoff(repo: string, stack: string, backoff: Backoff | undefined): void {
    if (!backoff) {
      this.#db.prepare('DELETE FROM backoffs WHERE repo = ? AND stack = ?').run(repo, stack);
      return;
    }
    this.#db
      .prepare(upsert('backoffs', ['repo', 'stack', 'attempt', 'failures', 'until', 'time'], ['repo', 'stack']))
      .run(repo, stack, backoff.commit, backoff.failures, Number.isFinite(backoff.until) ? backoff.until : null, new Date().toISOString());
  }

  /** The stack's last placement (empty when none is known). */
  placement(repo: string, stack: string): CurrentReplica[] {
    const key = `${repo}\n${stack}`;
    const rows = this.#db.prepare('SELECT service, slot, host FROM placements WHERE repo = ? AND stack = ?').all(repo, stack) as unknown as CurrentReplica[];
    const placed = rows.map((r) => ({ service: r.service, slot: r.slot, host: r.host }));
    this.#placed.set(key, placed);
    return placed;
  }

  /** Records the stack's placement; writes only when it differs from the one this process knows. */
  setPlacement(repo: string, stack: string, placed: readonly CurrentReplica[]): void {
    const key = `${repo}\n${stack}`;
    if (samePlacement(this.#placed.get(key) ?? this.placement(repo, stack), placed)) return;
    const copy = placed.map((r) => ({ service: r.service, slot: r.slot, host: r.host }));
    immediate(this.#db, () => {
      this.#db.prepare('DELETE FROM placements WHERE repo = ? AND stack = ?').run(repo, stack);
      const insert = this.#db.prepare(upsert('placements', ['repo', 'stack', 'service', 'slot', 'host'], ['repo', 'stack', 'service', 'slot', 'host']));
      for (const r of copy) insert.run(repo, stack, r.service, r.slot, r.host);
    });
    this.#placed.set(key, copy);
  }
}

/** Placement is deterministic in its order: the same replicas on the same hosts come in the same order. */
function samePlacement(a: readonly CurrentReplica[], b: readonly CurrentReplica[]): boolean {
  return a.length === b.length && a.every((r, i) => r.service === b[i]!.service && r.slot === b[i]!.slot && r.host === b[i]!.host);
}
