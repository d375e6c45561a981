/**
 * The stacks' status as reads see it: worked out from what berth last saw (the World), not by
 * asking the hosts or the forge, and worked out again only after something changed (a host listed,
 * a container event, an audit row: a sync, a hold), and then only for what the change touched: a
 * container's event works out its stack again, a new head its repo's stacks, a host listed every
 * stack. A change reported while someone follows the status (the API's event stream) is worked out
 * within `debounceMs`, and each stack whose status changed is emitted (docs/how-it-works.md, "Reads").
 */
import type { StackState } from './status.ts';
import type { Scope } from './world.ts';

/** A repo with more stacks to work out again than this is worked out whole (one pass, not one per stack). */
const STACKS_ONE_BY_ONE = 8;

/** What is out of date: everything, or per repo all its stacks (true) or some. */
type Dirty = true | Map<string, true | Set<string>>;

export class StatusBoard {
  readonly #compute: (scope?: Scope) => Promise<StackState[]>;
  readonly #emit: (s: StackState) => void;
  readonly #following: () => boolean;
  readonly #debounceMs: number;
  /** by repo and stack name; kept in the order first worked out, so that reads list the stacks in a stable order */
  #states = new Map<string, { state: StackState; json: string }>();
  #version = 0;
  #dirty: Dirty | undefined = true;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `compute` works out the states of a scope (none: every stack) from the World; `emit` is told of
   * each that changed, while `following()` says someone listens.
   */
  constructor(compute: (scope?: Scope) => Promise<StackState[]>, emit: (s: StackState) => void, following: () => boolean, debounceMs = 100) {
    this.#compute = compute;
    this.#emit = emit;
    this.#following = following;
    this.#debounceMs = debounceMs;
  }

  /** Something the status of `scope` (default: every stack) depends on changed. */
  changed(scope?: Scope): void {
    this.#dirty = widen(this.#dirty, scope);
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

  /** Grows each time a state was worked out again (its observedAt included): what a reader may cache its rendering of the states by. */
  get version(): number {
    return this.#version;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Works the states out until none of what they depend on changed meanwhile. */
  async #settle(): Promise<void> {
    while (this.#dirty || this.#running) {
      if (!this.#running) {
        const dirty = this.#dirty!;
        this.#dirty = undefined;
        this.#running = this.#refresh(dirty)
          .catch((err: unknown) => {
            this.#dirty = widen(this.#dirty, undefined); // worked out whole at the next read
            throw err;
          })
          .finally(() => (this.#running = undefined));
      }
      await this.#running;
    }
  }

  async #refresh(dirty: Dirty): Promise<void> {
    if (dirty === true) {
      this.#replace(await this.#compute(), () => true);
      return;
    }
    for (const [repo, stacks] of dirty) {
      if (stacks === true || stacks.size > STACKS_ONE_BY_ONE) {
        this.#replace(await this.#compute({ repo }), (s) => s.repo === repo);
        continue;
      }
      for (const stack of stacks) this.#replace(await this.#compute({ repo, stack }), (s) => s.repo === repo && s.name === stack);
    }
  }

  /** The states `fresh` in place of those `covered` selects; emits each that changed. */
  #replace(fresh: StackState[], covered: (s: StackState) => boolean): void {
    this.#version++;
    const keys = new Set(fresh.map(key));
    for (const [k, { state }] of this.#states) if (covered(state) && !keys.has(k)) this.#states.delete(k);
    const changed: StackState[] = [];
    for (const state of fresh) {
      const { observedAt: _, ...rest } = state;
      const json = JSON.stringify(rest);
      if (this.#states.get(key(state))?.json !== json) changed.push(state);
      this.#states.set(key(state), { state, json });
    }
    if (this.#following()) for (const s of changed) this.#emit(s);
  }
}

const key = (s: StackState) => `${s.repo}\0${s.name}`;

/** What is out of date once `scope` (none: everything) changed too. */
function widen(dirty: Dirty | undefined, scope: Scope | undefined): Dirty {
  if (dirty === true || !scope) return true;
  const map = dirty ?? new Map<string, true | Set<string>>();
  const known = map.get(scope.repo);
  if (known === true) return map;
  if (scope.stack === undefined) map.set(scope.repo, true);
  else map.set(scope.repo, (known ?? new Set<string>()).add(scope.stack));
  return map;
}
