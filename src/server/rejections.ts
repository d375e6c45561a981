/**
 * How many `webhook.rejected` audit rows a flood of forged deliveries may write: anyone who can
 * reach /webhooks can send deliveries whose signature fails, and the audit log is append-only.
 * So per (source address, provider) the first rejection of a window is audited on its own; those
 * after it within the window are only counted (each is still kept in the deliveries table, counted
 * in the metrics and logged), and one row sums them up when the window ends. At most one row per
 * window and pair: the summary starts the next window.
 */

/** The rejections of one (address, provider) that no row has told yet. */
export interface Unaudited<T> {
  address: string;
  provider: string;
  /** how many */
  count: number;
  /** when the first of them came (ms since the epoch) */
  since: number;
  /** what the caller said of the latest of them */
  last: T;
}

/** What to do with a rejection: audit it now or not; when now, with the rejections before it that no row told yet. */
export type Admission<T> = { audit: false } | { audit: true; before?: Unaudited<T> };

interface Window<T> {
  start: number;
  pending?: Unaudited<T>;
}

export interface RejectionWindowsOptions {
  /** how long a window lasts (ms); default one minute */
  windowMs?: number;
  /** the clock (ms since the epoch) */
  now?: () => number;
}

/** The windows of rejected deliveries, per (source address, provider); `T` is what the summary row tells of the latest one. */
export class RejectionWindows<T> {
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window<T>>();

  constructor({ windowMs = 60_000, now = Date.now }: RejectionWindowsOptions = {}) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /**
   * A rejected delivery from `address` for `provider`: audited when it is the first of its window
   * (with the rejections left untold by a window that ended before ended() was asked), else counted.
   */
  admit(address: string, provider: string, about: T): Admission<T> {
    const key = `${provider} ${address}`;
    const now = this.#now();
    const w = this.#windows.get(key);
    if (w && now - w.start < this.#windowMs) {
      w.pending = w.pending ? { ...w.pending, count: w.pending.count + 1, last: about } : { address, provider, count: 1, since: now, last: about };
      return { audit: false };
    }
    this.#windows.set(key, { start: now });
    return w?.pending ? { audit: true, before: w.pending } : { audit: true };
  }

  /**
   * The rejections of every window that ended, for one summary row each; each such row starts a
   * new window (so a pair gets at most one row per window). Windows that ended with nothing untold
   * are forgotten. With `all`, every window's untold rejections, ended or not (the server stops).
   */
  ended({ all = false }: { all?: boolean } = {}): Array<Unaudited<T>> {
    const now = this.#now();
    const due: Array<Unaudited<T>> = [];
    for (const [key, w] of this.#windows) {
      if (!all && now - w.start < this.#windowMs) continue;
      if (w.pending) {
        due.push(w.pending);
        this.#windows.set(key, { start: now });
      } else this.#windows.delete(key);
    }
    return due;
  }

  /** How many (address, provider) pairs have a window open. */
  get size(): number {
    return this.#windows.size;
  }
}
