/**
 * Which engine leads, decided from the lease row in PostgreSQL (docs/how-it-works.md, "Running two
 * engines"). One row holds the leader's id, its term (a number that grows with every change of
 * leader: the fencing token) and when its lease expires, all in the database's clock. An engine
 * renews its own lease every few seconds; another takes the row only once it has expired. The
 * leader itself stops acting a margin before its lease can expire, timed on its own monotonic clock
 * from before the renewal was sent, so that two engines never act at once.
 */

/** The lease row as read, with the database's verdict on its expiry. */
export interface LeaseRow {
  engine: string;
  term: number;
  /** when this term began (ISO 8601) */
  since: string;
  expired: boolean;
}

/** What one engine does on a renewal tick, given the row it read under a row lock. */
export type LeaseStep = { do: 'insert' } | { do: 'renew'; term: number } | { do: 'take'; term: number; previous: string } | { do: 'follow'; leader: LeaseRow };

export function decideLease(row: LeaseRow | undefined, self: string): LeaseStep {
  if (!row) return { do: 'insert' };
  if (row.engine === self && !row.expired) return { do: 'renew', term: row.term };
  // An expired lease is taken with a new term, by its last holder too: whatever that holder did
  // under the old term may have been cut short, and a new term is what fences its late steps out.
  if (row.expired) return { do: 'take', term: row.term + 1, previous: row.engine };
  return { do: 'follow', leader: row };
}

/**
 * Until when (on the engine's monotonic clock, ms) a lease renewed by a request sent at `sentAt`
 * lets the engine act: the lease's length less a margin for the clocks' drift and the time the
 * engine takes to notice, so that it stops before the database lets another engine take over.
 */
export function actUntil(sentAt: number, leaseMs: number): number {
  return sentAt + leaseMs - Math.min(1000, leaseMs / 5);
}

/** The engine's monotonic clock in ms, the same in every thread of the process. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
