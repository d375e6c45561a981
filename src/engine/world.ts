/**
 * What berth last saw, kept so that reads cost the hosts and the forge nothing: per host its
 * managed containers, networks and volumes as the last pass listed them, then kept current by the
 * host's Docker events (create, start, die, destroy, rename, pause, health status); per repo the
 * last head fetched and rendered. A pass lists the hosts again and replaces what is here, so that
 * an event missed is corrected at the latest by the periodic full resync (docs/how-it-works.md,
 * "Reads").
 *
 * Pure bookkeeping: no Docker or git call is made here.
 */
import type { CommitInfo, RenderResult } from '../model.ts';
import { liveFromLabels, type LiveContainer, type LiveHost, type StackOnHost } from '../observe/live.ts';
import type { ContainerEvent } from '../observe/events.ts';

interface HostEntry {
  live: LiveHost;
  /** when the host was last listed, or an event of it seen (ms since the epoch) */
  seenAt: number;
  /** when its containers were last listed whole: when that list was asked for (ms since the epoch) */
  listedAt: number;
  /** when its networks and volumes were last listed (ms since the epoch) */
  objectsListedAt: number;
}

export interface Head {
  commit: CommitInfo;
  rendered: RenderResult;
}

/** What a change touched: one repo's stacks (or one of them); none said: everything. */
export interface Scope {
  repo: string;
  stack?: string;
}

/** How long a host's container events are kept to be applied again to a list asked for before they came. */
const EVENTS_KEPT_MS = 120_000;

export class World {
  readonly #hosts = new Map<string, HostEntry>();
  readonly #heads = new Map<string, Head>();
  readonly #changed = new Set<(scope?: Scope) => void>();
  /** containers seen with a health status: they have a health check, and start again as `starting` */
  readonly #checked = new WeakSet<object>();
  /** Calls `fn` after every change (a host listed, an event, a head) with what it touched; returns a function that stops it. */
  onChange(fn: (scope?: Scope) => void): () => void {
    this.#changed.add(fn);
    return () => this.#changed.delete(fn);
  }

  /** since when each host's container events have come through without a break (ms since the epoch); absent: not followed now */
  readonly #followedSince = new Map<string, number>();
  /** the same for its networks' and volumes' events */
  readonly #objectsFollowedSince = new Map<string, number>();
  /** when a network or volume of each host was last made or removed, as its events told (ms since the epoch) */
  readonly #objectsChangedAt = new Map<string, number>();
  /** each host's container events of the last EVENTS_KEPT_MS, with when they came */
  readonly #recent = new Map<string, Array<{ at: number; e: ContainerEvent }>>();

  /** A host as a pass just listed it; `at`: when the list was asked for. */
  setHost(live: LiveHost, at = Date.now()): void {
    this.#hosts.set(live.host, { live, seenAt: at, listedAt: at, objectsListedAt: at });
    this.#replay(live.host, at);
    this.#changedNow();
  }

  /** The host's event stream of containers (`objects`: of networks and volumes) is up (every later event comes through it) or down. */
  following(host: string, up: boolean, { objects = false }: { objects?: boolean } = {}): void {
    const since = objects ? this.#objectsFollowedSince : this.#followedSince;
    if (!up) since.delete(host);
    else if (!since.has(host)) since.set(host, Date.now());
  }

  /** A network or volume was made or removed on the host: its list is to be made again (a list asked for before now may not show it). */
  objectsChanged(host: string): void {
    this.#objectsChangedAt.set(host, Date.now());
  }

  /**
   * The host's networks and volumes as last listed, when none has been made or removed since and
   * their events have come through without a break since before that list was asked for. Copies;
   * undefined when the list would have to be made again.
   */
  currentObjects(host: string): Pick<LiveHost, 'networks' | 'volumes'> | undefined {
    const entry = this.#hosts.get(host);
    const since = this.#objectsFollowedSince.get(host);
    if (!entry || since === undefined || entry.objectsListedAt <= Math.max(since, this.#objectsChangedAt.get(host) ?? 0)) return undefined;
    return { networks: entry.live.networks.map((n) => ({ ...n })), volumes: entry.live.volumes.map((v) => ({ ...v })) };
  }

  /**
   * The host's containers as its events have kept them since its last full list, when they have come
   * through without a break since before that list was asked for: then nothing it ran since is
   * unknown here. Copies, for a pass to work on; undefined when the list would have to be made again.
   */
  currentContainers(host: string): LiveContainer[] | undefined {
    const entry = this.#hosts.get(host);
    const since = this.#followedSince.get(host);
    if (!entry || since === undefined || entry.listedAt <= since) return undefined;
    return entry.live.containers.map((c) => ({ ...c }));
  }

  /** A host's networks and volumes as just listed (`at`: when that list was asked for), its containers left as its events keep them. */
  setObjects(live: Pick<LiveHost, 'host' | 'networks' | 'volumes'>, at = Date.now()): void {
    const entry = this.#hosts.get(live.host);
    if (!entry) return;
    entry.live = { ...entry.live, networks: live.networks, volumes: live.volumes };
    entry.objectsListedAt = at;
    this.#changedNow();
  }

  /**
   * One stack of a host as a pass just listed it again: what the World had of it there is replaced
   * (its networks and volumes only when they were listed), the host's other stacks are kept as they
   * were. A host not listed before is left for the next pass to list whole.
   */
  setStack(live: StackOnHost, stack: string, at = Date.now()): void {
    const entry = this.#hosts.get(live.host);
    if (!entry) return;
    const theirs = <T extends { stack: string }>(xs: T[], fresh: T[] | undefined) => (fresh ? [...xs.filter((x) => x.stack !== stack), ...fresh] : xs);
    entry.live = {
      host: live.host,
      containers: theirs(entry.live.containers, live.containers),
      networks: theirs(entry.live.networks, live.networks),
      volumes: theirs(entry.live.volumes, live.volumes),
    };
    this.#replay(live.host, at, stack);
    this.#changedNow();
  }

  /** Forgets a host that did not answer: what ran there is unknown now. */
  dropHost(name: string): void {
    if (this.#hosts.delete(name)) this.#changedNow();
  }

  setHead(repo: string, head: Head): void {
    const last = this.#heads.get(repo);
    if (last?.commit.sha === head.commit.sha && last.rendered === head.rendered) return;
    this.#heads.set(repo, head);
    this.#changedNow({ repo });
  }

  head(repo: string): Head | undefined {
    return this.#heads.get(repo);
  }

  /** The hosts as last seen; those never listed (or dropped) are absent. */
  hosts(): LiveHost[] {
    return [...this.#hosts.values()].map((e) => e.live);
  }

  host(name: string): LiveHost | undefined {
    return this.#hosts.get(name)?.live;
  }

  /** When each host was last listed or heard from (ISO 8601). */
  seenAt(name: string): string | undefined {
    const at = this.#hosts.get(name)?.seenAt;
    return at === undefined ? undefined : new Date(at).toISOString();
  }

  /**
   * Applies one of a host's container events to what is known of it. An event of a host not yet
   * listed is kept only to be applied again: a list asked for before it came may not show it (the
   * list and the events are two connections), so each list that replaces what is known gets the
   * events that came since it was asked for applied again (EVENTS_KEPT_MS of them).
   */
  apply(e: ContainerEvent): void {
    const now = Date.now();
    const recent = this.#recent.get(e.host) ?? this.#recent.set(e.host, []).get(e.host)!;
    recent.push({ at: now, e });
    while (recent[0]!.at < now - EVENTS_KEPT_MS) recent.shift();
    if (this.#applyEvent(e)) this.#changedNow({ repo: e.repo, stack: e.stack });
  }

  /** The events of the host that came at `at` or after (of `stack` only, when given), applied again to what was just listed. */
  #replay(host: string, at: number, stack?: string): void {
    for (const r of this.#recent.get(host) ?? []) if (r.at >= at && (stack === undefined || r.e.stack === stack)) this.#applyEvent(r.e);
  }

  /** Applies the event to what is known of its host; false when it changed nothing that is kept. */
  #applyEvent(e: ContainerEvent): boolean {
    const entry = this.#hosts.get(e.host);
    if (!entry) return false;
    const at = Math.round(e.time * 1000);
    entry.seenAt = Math.max(entry.seenAt, at);
    const list = entry.live.containers;
    const i = list.findIndex((c) => c.id === e.id);
    const c = list[i];
    switch (e.action) {
      case 'create':
        if (!c && e.labels)
          list.push(
            liveFromLabels(e.host, { id: e.id, name: e.name ?? '', labels: e.labels, image: e.image ?? '', state: 'created', created: Math.floor(e.time) }),
          );
        break;
      case 'destroy':
        if (c) list.splice(i, 1);
        break;
      case 'start':
        if (c) Object.assign(c, { state: 'running', exitCode: undefined, health: this.#hasCheck(c) ? 'starting' : undefined });
        break;
      case 'unpause':
        if (c) c.state = 'running';
        break;
      case 'die':
        if (!c) break;
        this.#hasCheck(c); // remembered before the health goes with the run
        Object.assign(c, { state: 'exited', exitCode: e.exitCode, health: undefined });
        break;
      case 'pause':
        if (c) c.state = 'paused';
        break;
      case 'rename':
        if (c && e.name) c.name = e.name;
        break;
      case 'health_status':
        if (c && e.health) c.health = e.health;
        break;
      default:
        return false; // kill, stop, oom, update: the state follows in another event
    }
    return true;
  }

  /** Whether the container has a health check, as far as its health statuses tell. */
  #hasCheck(c: { health?: string }): boolean {
    if (c.health !== undefined) this.#checked.add(c);
    return this.#checked.has(c);
  }

  #changedNow(scope?: Scope): void {
    for (const fn of this.#changed) fn(scope);
  }
}
