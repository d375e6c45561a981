/**
 * The drift watcher: follows every host's Docker events, keeps the World current with them, and
 * asks for a pass of a repo within seconds of a change to one of its containers that berth did not
 * make. The containers such events name are "suspects": the repo's next pass inspects them against
 * Git (a label that still matches may hide a change made by hand, docs/how-it-works.md, "Drift").
 */
import type { Logger } from 'pino';
import type { DockerHost } from '../apply/docker-host.ts';
import { handChanges } from '../diff/drift.ts';
import { watchEvents, watchObjects, type ContainerEvent } from '../observe/events.ts';
import type { LiveHost } from '../observe/live.ts';
import type { DesiredContainer } from '../schedule/container.ts';
import { mapLimit } from './limit.ts';
import type { World } from './world.ts';

export type Suspects = Set<string> | 'all';

export interface DriftOptions {
  /** a full pass of every repo this often: every container inspected (the backstop for a missed event) */
  resyncMs: number;
  /** a container that died by itself: time for Docker's restart policy to bring it back first */
  restartGraceMs?: number;
  /** other events are acted on once they have stopped for this long */
  debounceMs?: number;
}

/** A drift pass waits for the events to stop, up to this many debounce periods from the first. */
const DRIFT_WAIT_MAX = 4;

/** What a job's container does when it runs: neither is drift (a removal, a rename or a change is). */
const JOB_RUN_ACTIONS = new Set(['start', 'die', 'stop', 'kill', 'oom']);

export class DriftWatcher {
  readonly #hosts: ReadonlyMap<string, DockerHost>;
  readonly #repos: ReadonlySet<string>;
  readonly #world: World;
  readonly #log: Logger;
  readonly #pass: (repo: string) => void;
  /** per repo: containers to inspect for hand-made changes at the next pass ('all': every one) */
  readonly #suspects = new Map<string, Suspects>();
  readonly #timers = new Map<string, { first: number; at: number; timer: NodeJS.Timeout }>();
  #following = false;

  /** `pass(repo)` asks for a drift pass of the repo (it must not throw). */
  constructor(hosts: ReadonlyMap<string, DockerHost>, repos: ReadonlySet<string>, world: World, log: Logger, pass: (repo: string) => void) {
    this.#hosts = hosts;
    this.#repos = repos;
    this.#world = world;
    this.#log = log;
    this.#pass = pass;
  }

  /** Whether the hosts' events are followed now: the World is then current within seconds. */
  get following(): boolean {
    return this.#following;
  }

  /**
   * Follows every host's events until the returned function is called. A container that died by
   * itself gets `restartGraceMs`; other events are acted on once they have stopped for
   * `debounceMs` (at most DRIFT_WAIT_MAX of those after the first), so that a burst (or a
   * `docker rm` then `docker run`) makes one pass. Every `resyncMs` a pass of every repo inspects
   * every container.
   */
  watch({ resyncMs, restartGraceMs = 10_000, debounceMs = 250 }: DriftOptions): () => void {
    // per host, its containers' events and (a second stream) its networks' and volumes': a pass
    // lists those again only where one was made or removed
    const stops = [...this.#hosts.values()].flatMap((h) => {
      const log = this.#log.child({ host: h.name });
      const onEvent = (e: ContainerEvent) => {
        this.#world.apply(e);
        h.noteEvent(e.id); // a readiness wait on it looks again now
        this.#onEvent(e, restartGraceMs, debounceMs);
      };
      return [
        watchEvents(h.name, h.docker, onEvent, log, (up) => this.#world.following(h.name, up)),
        watchObjects(
          h.name,
          h.docker,
          () => this.#world.objectsChanged(h.name),
          log,
          (up) => this.#world.following(h.name, up, { objects: true }),
        ),
      ];
    });
    this.#following = true;
    const resync = setInterval(() => {
      for (const repo of this.#repos) {
        this.suspect(repo, 'all');
        this.#pass(repo);
      }
    }, resyncMs);
    resync.unref();
    return () => {
      this.#following = false;
      stops.forEach((stop) => stop());
      clearInterval(resync);
      for (const t of this.#timers.values()) clearTimeout(t.timer);
      this.#timers.clear();
    };
  }

  /** Adds containers to inspect for hand-made changes at the repo's next pass. */
  suspect(repo: string, ids: Suspects): void {
    const set = this.#suspects.get(repo);
    if (set === 'all' || ids === 'all') this.#suspects.set(repo, 'all');
    else this.#suspects.set(repo, new Set([...(set ?? []), ...ids]));
  }

  /** The repo's suspects; `take` hands them to this pass (a pass that fails puts them back with suspect()). */
  suspects(repo: string, take: boolean): Suspects {
    const found = this.#suspects.get(repo) ?? new Set<string>();
    if (take) this.#suspects.delete(repo);
    return found;
  }

  /** Inspects the stack's suspect containers whose labels say they match Git, and notes on each what was changed by hand. */
  async inspect(live: LiveHost[], repo: string, stack: string, desired: DesiredContainer[], suspects: Suspects): Promise<void> {
    if (suspects !== 'all' && suspects.size === 0) return;
    const wanted = new Map(desired.map((d) => [`${d.host}/${d.service}/${d.slot}`, d]));
    const checks = live.flatMap((h) =>
      h.containers
        .filter((c) => c.repo === repo && c.stack === stack && (suspects === 'all' || suspects.has(c.id)))
        .map((c) => ({ c, d: wanted.get(`${c.host}/${c.service}/${c.slot}`) }))
        .filter((x): x is { c: (typeof x)['c']; d: DesiredContainer } => x.d !== undefined && x.d.specHash === x.c.specHash),
    );
    await mapLimit(checks, 8, async ({ c, d }) => {
      const host = this.#hosts.get(c.host);
      const info = await host?.inspect(c.id);
      if (!host || !info) return;
      const found = handChanges(info, d, await host.imageEnv(info.Image));
      if (found.changes.length) Object.assign(c, { handChanges: found.changes, liveView: found.view });
    });
  }

  #onEvent(e: ContainerEvent, restartGraceMs: number, debounceMs: number): void {
    if (e.action === 'health_status') return; // a health check's verdict is the container's own doing, never a change by hand
    if (!this.#repos.has(e.repo) || this.#hosts.get(e.host)?.isOwn(e.id, e.action, e.name)) return;
    if (e.job && JOB_RUN_ACTIONS.has(e.action)) return; // a job starting and ending is what jobs do, not drift
    this.suspect(e.repo, new Set([e.id]));
    // A crash (die alone) may be Docker's to restart; a stop, kill or removal by hand is drift now.
    // The pass waits until the events have stopped for that long (a `docker rm -f` then `docker run`
    // by hand is one change), but no longer than DRIFT_WAIT_MAX from the first.
    const now = Date.now();
    const pending = this.#timers.get(e.repo);
    const first = pending?.first ?? now;
    const delay = e.action === 'die' && !pending ? restartGraceMs : debounceMs;
    const at = Math.min(Math.max(now + delay, pending?.at ?? 0), Math.max(first + DRIFT_WAIT_MAX * debounceMs, first + delay));
    if (pending?.at === at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(e.repo);
      this.#pass(e.repo);
    }, at - now);
    timer.unref();
    this.#timers.set(e.repo, { first, at, timer });
  }
}
