/**
 * The stacks' status as reads see it: worked out from what berth last saw (the World), not by
 * asking the hosts or the forge, and worked out again only after something changed (a host listed,
 * a container event, an audit row: a sync, a hold). A change reported while someone follows the
 * status (the API's event stream) is worked out within `debounceMs`, and each stack whose status
 * changed is emitted (docs/how-it-works.md, "Reads").
 */
import type { StackState } from './status.ts';

export class StatusBoard {
  readonly #compute: () => Promise<StackState[]>;
  readonly #emit: (s: StackState) => void;
  readonly #following: () => boolean;
  readonly #debounceMs: number;
  #states = new Map<string, { state: StackState; json: string }>();
  #dirty = true;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `compute` works the states out from the World; `emit` is told of each that changed, while
   * `following()` says someone listens.
   */
  constructor(compute: () => Promise<StackState[]>, emit: (s: StackState) => void, following: () => boolean, debounceMs = 100) {
    this.#compute = compute;
    this.#emit = emit;
    this.#following = following;
    this.#debounceMs = debounceMs;
  }

  /** Something the status depends on changed. */
  changed(): void {
    this.#dirty = true;
    if (!this.#following() || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#settle().catch(() => undefined); // a failure shows at the next read
    }, this.#debounceMs);
    this.#timer.unref();
  }

  /** Every stack's status as of the last change (worked out now when it is out of date). */
  async states(): Promise<StackState[]> {
    await this.#settle();
    return [...this.#states.values()].map((s) => s.state);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Works the states out until none of what they depend on changed meanwhile. */
  async #settle(): Promise<void> {
    while (this.#dirty || this.#running) {
      if (!this.#running) {
        this.#dirty = false;
        this.#running = this.#refresh().finally(() => (this.#running = undefined));
      }
      await this.#running;
    }
  }

  async #refresh(): Promise<void> {
    const fresh = await this.#compute();
    const next = new Map<string, { state: StackState; json: string }>();
    const changed: StackState[] = [];
    for (const state of fresh) {
      const { observedAt: _, ...rest } = state;
      const json = JSON.stringify(rest);
      const key = `${state.repo}\0${state.name}`;
      if (this.#states.get(key)?.json !== json) changed.push(state);
      next.set(key, { state, json });
    }
    this.#states = next;
    if (this.#following()) for (const s of changed) this.#emit(s);
  }
}
