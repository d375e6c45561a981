/**
 * The engine's work queue: per repo, one pass at a time. A request that arrives while a pass runs
 * waits for it, and the requests that arrive meanwhile share the one pass that follows when it
 * does all they ask (`covers`); other work for the repo (a rollback) queues behind them.
 */

/** What decides whether a queued pass does what a new request asks. */
export interface PassRequest {
  /** only this stack (undefined: every stack) */
  stack?: string;
  trigger: string;
  waitHealthy?: boolean;
}

/** Whether a queued pass does all a new request asks: the same stacks or more, a manual sync's apply-anyway when it is manual, and its wait for health. */
export function covers(queued: PassRequest, request: PassRequest): boolean {
  return (
    (queued.stack === undefined || queued.stack === request.stack) &&
    (request.trigger !== 'manual' || queued.trigger === 'manual') &&
    (!request.waitHealthy || queued.waitHealthy === true)
  );
}

export class PassQueue<O extends PassRequest, R> {
  readonly #run: (repo: string, opts: O) => Promise<R>;
  /** per repo: the end of its queue */
  readonly #lanes = new Map<string, Promise<unknown>>();
  /** per repo: the pass waiting to start, which new requests join */
  readonly #waiting = new Map<string, { opts: O; pass: Promise<R> }>();

  constructor(run: (repo: string, opts: O) => Promise<R>) {
    this.#run = run;
  }

  /** A pass over `repo` as `opts` asks: the one already waiting when it covers the request, else a new one at the end of the queue. */
  request(repo: string, opts: O): Promise<R> {
    const waiting = this.#waiting.get(repo);
    if (waiting && covers(waiting.opts, opts)) return waiting.pass;
    const next: Promise<R> = this.serialize(repo, () => {
      if (this.#waiting.get(repo)?.pass === next) this.#waiting.delete(repo);
      return this.#run(repo, opts);
    });
    this.#waiting.set(repo, { opts, pass: next });
    return next;
  }

  /** Whether a pass that would cover `probe` is queued and not started yet. */
  queued(repo: string, probe: PassRequest): boolean {
    const waiting = this.#waiting.get(repo);
    return waiting !== undefined && covers(waiting.opts, probe);
  }

  /** Runs `task` after everything already queued for the repo. */
  serialize<T>(repo: string, task: () => Promise<T>): Promise<T> {
    const next = (this.#lanes.get(repo) ?? Promise.resolve()).then(task);
    this.#lanes.set(
      repo,
      next.catch(() => undefined),
    );
    return next;
  }

  /** Resolves once everything running or queued has ended. */
  async drain(): Promise<void> {
    await Promise.all(this.#lanes.values());
  }
}
