/**
 * The engine's hosts: a DockerHost per configured host, the monitor that checks them (each change of
 * a host's state audited), and the two ways a pass learns what runs there: `observe()` lists the
 * hosts that answer now, `seen()` takes them as berth last saw them (the World), asking nothing.
 */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config.ts';
import { DockerHost } from '../apply/docker-host.ts';
import { Registries } from '../apply/registries.ts';
import type { AuditLog } from '../audit/log.ts';
import { connect } from '../observe/docker.ts';
import { HostMonitor, type HostStatus } from '../observe/hosts.ts';
import { observeHost, observeObjects, observeStack, type LiveHost } from '../observe/live.ts';
import { mapLimit } from './limit.ts';
import type { World } from './world.ts';

/** A host where a pass changed more stacks than this is listed whole again (Fleet.relist). */
const RELIST_STACKS = 3;

export interface Observed {
  statuses: HostStatus[];
  /** the hosts that answered, as listed (or last seen) */
  live: LiveHost[];
}

export class Fleet {
  readonly hosts = new Map<string, DockerHost>();
  readonly monitor: HostMonitor;
  readonly #config: BerthConfig;
  readonly #audit: AuditLog;
  readonly #world: World;
  readonly #log: Logger;
  #monitoring = false;
  #onLostOrBack?: () => void;
  readonly #leading: () => boolean;

  /**
   * `fence`: refuses a step that changes a host to an engine that no longer leads; `leading`: whether
   * this engine records what it sees of the hosts (among several engines, the leader does:
   * src/engine/cluster.ts)
   */
  constructor(
    config: BerthConfig,
    audit: AuditLog,
    world: World,
    log: Logger,
    { fence, leading = () => true }: { fence?: (step: string, host: string) => void; leading?: () => boolean } = {},
  ) {
    this.#leading = leading;
    this.#config = config;
    this.#audit = audit;
    this.#world = world;
    this.#log = log;
    this.monitor = new HostMonitor(this.hosts, { ...config.hostCheck, hosts: config.hosts }, (before, after) => this.#changed(before, after));
    // every file registries: names is read now: one that cannot be read stops berth here, naming it
    const registries = Registries.load(config.registries);
    for (const h of config.hosts) this.hosts.set(h.name, new DockerHost(h.name, connect(h), log, registries, fence));
  }

  /** Checks the hosts every `hostCheck.intervalMs`; `onLostOrBack` when one is lost or answers again (its replicas move). */
  start(onLostOrBack?: () => void): void {
    this.#onLostOrBack = onLostOrBack;
    this.#monitoring = true;
    this.monitor.start();
  }

  stop(): void {
    this.monitor.stop();
  }

  /** The hosts' states: the monitor's when it runs, else one check now. */
  async statuses(): Promise<HostStatus[]> {
    const known = this.#monitoring ? this.monitor.status() : [];
    return known.length === this.hosts.size ? known : this.monitor.check();
  }

  /**
   * The hosts' states for a read: the monitor's when it has checked them all, else one check now
   * that records nothing (a read writes no audit row; the monitor audits what it sees change).
   */
  async readStatuses(): Promise<HostStatus[]> {
    const known = this.monitor.status();
    if (known.length === this.hosts.size) return known;
    return new HostMonitor(this.hosts, { ...this.#config.hostCheck, hosts: this.#config.hosts }).check();
  }

  /** The names of the hosts that do not answer now (as last checked). */
  down(): Set<string> {
    return new Set(
      this.monitor
        .status()
        .filter((st) => st.state !== 'up')
        .map((st) => st.name),
    );
  }

  /**
   * The hosts' states, and the containers of those that answer, listed now; the others are left
   * alone (berth never acts on a host it cannot see). With `fromEvents`, a host whose events have
   * come through without a break since its last full list has its containers taken as those events
   * keep them (World.currentContainers), and its networks and volumes as last listed unless one was
   * made or removed since (World.currentObjects; else they are listed): what the lists would
   * answer, without their cost (docs/how-it-works.md, "Reads").
   */
  async observe(log: Logger, { fromEvents = false }: { fromEvents?: boolean } = {}): Promise<Observed> {
    const statuses = await this.statuses();
    const observed = await mapLimit(statuses, this.#config.hostConcurrency, async (st) => {
      const h = this.hosts.get(st.name);
      if (!h || st.state !== 'up') {
        this.#world.dropHost(st.name);
        return undefined;
      }
      try {
        const known = fromEvents ? this.#world.currentContainers(h.name) : undefined;
        if (known) {
          const knownObjects = this.#world.currentObjects(h.name);
          if (knownObjects) return { host: h.name, containers: known, ...knownObjects };
          const asked = Date.now();
          const objects = await observeObjects(h.name, h.docker);
          this.#world.setObjects(objects, asked);
          return { ...objects, containers: known };
        }
        const asked = Date.now();
        const live = await observeHost(h.name, h.docker);
        this.#world.setHost(live, asked);
        return live;
      } catch (err) {
        log.warn({ host: st.name, err: (err as Error).message }, 'cannot list containers: the host is left alone this pass');
        this.#world.dropHost(st.name);
        return undefined;
      }
    });
    return { statuses, live: observed.filter((l): l is LiveHost => l !== undefined) };
  }

  /**
   * Lists again what a pass changed: on each host, the stacks it changed there (`changed`: host ->
   * stack -> whether its networks or volumes changed too), so that reads see them as the pass left
   * them; the rest of the World is as it was. A host where more than RELIST_STACKS stacks changed is
   * listed whole (one answer rather than many). A host that does not answer is left as last seen:
   * the next pass lists it.
   */
  async relist(changed: ReadonlyMap<string, ReadonlyMap<string, boolean>>, log: Logger): Promise<void> {
    await mapLimit([...changed], this.#config.hostConcurrency, async ([name, stacks]) => {
      const h = this.hosts.get(name);
      if (!h) return;
      try {
        const asked = Date.now();
        if (stacks.size > RELIST_STACKS) return this.#world.setHost(await observeHost(name, h.docker), asked);
        await Promise.all(
          [...stacks].map(async ([stack, objects]) => this.#world.setStack(await observeStack(name, h.docker, stack, { objects }), stack, asked)),
        );
      } catch (err) {
        log.warn({ host: name, err: (err as Error).message }, 'cannot list what the pass changed: the host is shown as last seen');
      }
    });
  }

  /** The hosts' states and their containers as berth last saw them: no call to a host once the monitor has checked them. */
  async seen(): Promise<Observed> {
    const statuses = await this.statuses();
    const up = new Set(statuses.filter((st) => st.state === 'up').map((st) => st.name));
    return { statuses, live: this.#world.hosts().filter((l) => up.has(l.host)) };
  }

  /** An audit row of what the monitor saw, written by the engine that leads (one row however many engines watch). */
  #record(input: Parameters<AuditLog['append']>[0]): void {
    if (this.#leading()) this.#audit.append(input);
  }

  #changed(before: HostStatus | undefined, after: HostStatus): void {
    const log = this.#log.child({ host: after.name });
    const graceS = this.#config.hostCheck.graceMs / 1000;
    if (after.state === 'up' && before && before.state !== 'up') {
      this.#record({ kind: 'host.up', host: after.name, message: `answers again (Docker ${after.version ?? '?'})` });
      log.info('host is up again');
    } else if (after.state === 'unreachable') {
      this.#record({
        kind: 'host.down',
        host: after.name,
        outcome: 'error',
        message: `${after.error ?? 'does not answer'}; nothing is done on it until it answers, its replicas move after ${graceS} s`,
      });
      log.warn({ err: after.error }, 'host does not answer');
    } else if (after.state === 'lost') {
      this.#record({
        kind: 'host.lost',
        host: after.name,
        outcome: 'error',
        message: `has not answered for ${graceS} s: its replicated replicas are placed on the other hosts`,
      });
      log.warn('host lost: its replicas move to the other hosts');
    } else return;
    if (before && (after.state === 'lost' || after.state === 'up')) this.#onLostOrBack?.();
  }
}
