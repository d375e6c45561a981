// The executor's operations as data, as Kamal tests its commands: applyPlan (src/apply/execute.ts)
// on a recording fake of the hosts (HostOps), no Docker. Plans are made as the engine makes them
// (a Compose file rendered, placed, planned against the live containers of the file before it);
// each host operation is logged in order, with the step events among them, and the tests assert
// the order of a rollout (what is created, started, stopped, renamed aside and removed, and when)
// and its result. Nothing here waits for real time: see the mock of node:timers/promises.
import type Dockerode from 'dockerode';
import { describe, expect, it, vi } from 'vitest';
import { applyPlan, type ApplyResult, type ProgressEvent, type StepEvent } from '../src/apply/execute.ts';
import type { CreateOptions, HostOps } from '../src/apply/host-ops.ts';
import { planStack, type StackPlan } from '../src/diff/plan.ts';
import type { ContainerSpec, FileDelivery, NetworkSpec, RenderedStack, VolumeSpec } from '../src/model.ts';
import type { LiveContainer } from '../src/observe/live.ts';
import type { DesiredContainer } from '../src/schedule/container.ts';
import { placeStack } from '../src/schedule/place.ts';
import { liveOf } from './harness/live.ts';
import { stackOf } from './render/helpers.ts';

// The executor's and the health wait's sleeps (the start-first drain of 1 s, the health polls of
// 200 ms, delays between batches) last at most 1 ms here: what they wait for is the fake's answer.
vi.mock('node:timers/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:timers/promises')>();
  const setTimeout = ((ms?: number, value?: unknown, options?: { signal?: AbortSignal }) =>
    real.setTimeout(Math.min(ms ?? 0, 1), value, options)) as typeof real.setTimeout;
  return { ...real, setTimeout };
});

const REPO = 'r';

/** One entry of the log: a host operation `[host, op, ...args]` (a container by its name at the time of the call), or `['step', kind, what]`. */
type Entry = [string, string, ...string[]];

/** What becomes of a container of the fake: how its create and start go, and how it then fares. */
interface Fate {
  /** the create throws this (the daemon's words) */
  createFails?: string;
  /** the start throws this */
  startFails?: string;
  /** once started: running (no health check, the default), healthy or unhealthy (by its health check), or exited with a code */
  becomes?: 'running' | 'healthy' | 'unhealthy' | { exitCode: number };
  /** how many inspections it is still starting (health `starting`) before it becomes so */
  startingFor?: number;
}
type Fates = (c: { host: string; name: string; image: string }) => Fate | undefined;

interface FakeContainer {
  id: string;
  name: string;
  image: string;
  spec: ContainerSpec;
  status: 'created' | 'running' | 'exited';
  exitCode: number;
  health?: 'starting' | 'healthy' | 'unhealthy';
  /** inspections left before it leaves `starting` */
  starting: number;
  fate: Fate;
}

/** The hosts of the fake: their containers, and the one log of everything done on them. */
class FakeFleet {
  readonly log: Entry[] = [];
  readonly hosts = new Map<string, FakeHost>();
  readonly fates: Fates;
  private ids = 0;
  constructor(names: string[], fates: Fates = () => undefined) {
    this.fates = fates;
    for (const n of names) this.hosts.set(n, new FakeHost(n, this));
  }

  nextId(): string {
    return `n${++this.ids}`;
  }

  /** A running container of an earlier sync, as the live state lists it. */
  add(d: DesiredContainer, id: string): LiveContainer {
    const h = this.hosts.get(d.host)!;
    const c = h.make(id, d.name, d);
    c.status = 'running';
    c.health = c.fate.becomes === 'healthy' ? 'healthy' : undefined;
    return liveOf(d, { id, repo: REPO, image: c.image });
  }

  /** The containers on `host` now, by name: image and state. */
  state(host: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of [...this.hosts.get(host)!.containers.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      out[c.name] = `${c.image} ${c.status}${c.health ? ` (${c.health})` : ''}`;
    }
    return out;
  }
}

/** A recording HostOps: each call logged as plain data, the containers kept as Docker would (one per name). */
class FakeHost implements HostOps {
  readonly name: string;
  readonly containers = new Map<string, FakeContainer>();
  private readonly fleet: FakeFleet;
  constructor(name: string, fleet: FakeFleet) {
    this.name = name;
    this.fleet = fleet;
  }

  private record(op: string, ...args: string[]): void {
    this.fleet.log.push([this.name, op, ...args]);
  }

  /** A container's name, for the log (its id once it is gone). */
  private named(id: string): string {
    return this.containers.get(id)?.name ?? id;
  }

  private byName(name: string): FakeContainer | undefined {
    return [...this.containers.values()].find((c) => c.name === name);
  }

  make(id: string, name: string, spec: ContainerSpec): FakeContainer {
    if (this.byName(name)) throw new Error(`create container ${name} on ${this.name}: Conflict. The container name "/${name}" is already in use`);
    const image = spec.create.Image ?? '';
    const c: FakeContainer = {
      id,
      name,
      image,
      spec,
      status: 'created',
      exitCode: 0,
      starting: 0,
      fate: this.fleet.fates({ host: this.name, name, image }) ?? {},
    };
    this.containers.set(id, c);
    return c;
  }

  private get(id: string, what: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new Error(`${what} ${id} on ${this.name}: No such container: ${id}`);
    return c;
  }

  async prepare(spec: ContainerSpec): Promise<boolean> {
    this.record('prepare', spec.create.Image ?? '');
    return false;
  }

  async createNetwork(spec: NetworkSpec, _repo: string, _stack: string, opts: { fixedSubnet?: boolean } = {}): Promise<string> {
    this.record('createNetwork', spec.name, ...(opts.fixedSubnet ? ['fixedSubnet'] : []));
    return `net-${spec.name}`;
  }

  async createVolume(spec: VolumeSpec): Promise<void> {
    this.record('createVolume', spec.name);
  }

  async removeNetwork(name: string): Promise<void> {
    this.record('removeNetwork', name);
  }

  async createAndStart(spec: ContainerSpec, opts: CreateOptions = {}): Promise<string> {
    this.record('createAndStart', opts.name ?? spec.name);
    const id = await this.createQuietly(spec, opts);
    await this.startQuietly(id);
    return id;
  }

  async create(spec: ContainerSpec, opts: CreateOptions = {}): Promise<string> {
    this.record('create', opts.name ?? spec.name);
    return this.createQuietly(spec, opts);
  }

  private async createQuietly(spec: ContainerSpec, { name = spec.name }: CreateOptions): Promise<string> {
    const image = spec.create.Image ?? '';
    const failure = this.fleet.fates({ host: this.name, name, image })?.createFails;
    if (failure) throw new Error(`create container ${name} on ${this.name}: ${failure}`);
    return this.make(this.fleet.nextId(), name, spec).id;
  }

  async start(id: string): Promise<void> {
    this.record('start', this.named(id));
    await this.startQuietly(id);
  }

  private async startQuietly(id: string): Promise<void> {
    const c = this.get(id, 'start container');
    if (c.fate.startFails) throw new Error(`start container ${c.name} (${id}) on ${this.name}: ${c.fate.startFails}`);
    c.status = 'running';
    c.exitCode = 0;
    c.starting = c.fate.startingFor ?? 0;
    c.health = c.fate.becomes === 'healthy' || c.fate.becomes === 'unhealthy' ? 'starting' : undefined;
    this.settle(c);
  }

  /** A started container becomes what its fate says once it is no longer starting. */
  private settle(c: FakeContainer): void {
    if (c.status !== 'running' || c.starting > 0) return;
    const becomes = c.fate.becomes ?? 'running';
    if (typeof becomes === 'object') {
      c.status = 'exited';
      c.exitCode = becomes.exitCode;
      c.health = undefined;
    } else if (becomes !== 'running') c.health = becomes;
  }

  async stop(id: string): Promise<void> {
    this.record('stop', this.named(id));
    const c = this.containers.get(id);
    if (c) c.status = 'exited';
  }

  async joinService(id: string): Promise<void> {
    this.record('joinService', this.named(id));
  }

  async drain(id: string): Promise<void> {
    this.record('drain', this.named(id));
  }

  async rename(id: string, name: string): Promise<void> {
    this.record('rename', this.named(id), name);
    const c = this.get(id, 'rename');
    if (this.byName(name) && this.byName(name) !== c)
      throw new Error(`rename ${id} to ${name} on ${this.name}: Conflict. The name "/${name}" is already in use`);
    c.name = name;
  }

  /** Not logged (a read): what waitReady and waitJob poll; each inspection brings a starting container nearer its fate. */
  async inspect(id: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    const c = this.containers.get(id);
    if (!c) return undefined;
    if (c.starting > 0 && --c.starting === 0) this.settle(c);
    const checked = c.health !== undefined;
    const info = {
      Id: c.id,
      Name: `/${c.name}`,
      Image: c.image,
      RestartCount: 0,
      State: {
        Status: c.status,
        Running: c.status === 'running',
        Restarting: false,
        ExitCode: c.exitCode,
        ...(checked
          ? { Health: { Status: c.health, FailingStreak: 0, Log: c.health === 'unhealthy' ? [{ ExitCode: 1, Output: 'connection refused' }] : [] } }
          : {}),
      },
      Config: {
        ...c.spec.create,
        Labels: c.spec.create.Labels ?? {},
        Healthcheck: c.spec.create.Healthcheck ?? (checked ? { Test: ['CMD', 'true'] } : undefined),
      },
      HostConfig: c.spec.create.HostConfig ?? {},
      NetworkSettings: { Networks: Object.fromEntries(c.spec.networks.map((n) => [n.network, { Aliases: n.aliases }])) },
    };
    return info as unknown as Dockerode.ContainerInspectInfo;
  }

  async readFiles(): Promise<FileDelivery[]> {
    return [];
  }

  /** Logged: the read of a failed container's output, for its evidence (never while a rollout goes well). */
  async tail(id: string): Promise<string> {
    this.record('tail', this.named(id));
    return 'the last output';
  }

  mask(_id: string, _env: readonly string[], text: string): string {
    return text;
  }

  async stopAndRemove(id: string): Promise<void> {
    this.record('stopAndRemove', this.named(id));
    this.containers.delete(id);
  }

  async remove(id: string): Promise<void> {
    this.record('remove', this.named(id));
    this.containers.delete(id);
  }
}

const HOST_INFO = (name: string) => ({ name, labels: {}, state: 'up' as const });

/**
 * The plan that takes the stack "app" from Compose file `before` (its containers running on the
 * fake, ids c1, c2, ...; none when undefined) to `after`, on `hosts`, as the engine makes it.
 */
function deploy(after: string, before: string | undefined, { hosts = ['h1'], fates }: { hosts?: string[]; fates?: Fates } = {}) {
  const fleet = new FakeFleet(hosts, fates);
  const infos = hosts.map(HOST_INFO);
  const live = before ? placeStack(REPO, stackOf({ 'app/compose.yaml': before }, 'app'), infos, 'c1', []).map((d, i) => fleet.add(d, `c${i + 1}`)) : [];
  const stack = stackOf({ 'app/compose.yaml': after }, 'app');
  const desired = placeStack(REPO, stack, infos, 'c2', live);
  const plan = planStack({
    repo: REPO,
    stack,
    stackName: 'app',
    commit: 'c2',
    desired,
    prune: true,
    live: hosts.map((host) => ({
      host,
      containers: live.filter((c) => c.host === host),
      networks: before ? stack.networks.map((n) => ({ name: n.name, repo: REPO, stack: 'app' })) : [],
      volumes: before ? stack.volumes.map((v) => ({ name: v.name, repo: REPO, stack: 'app' })) : [],
    })),
  });
  return { plan, stack, fleet };
}

/** Applies the plan on the fake, the step events logged among the operations; the result, the log, and the events. */
async function apply({
  plan,
  stack,
  fleet,
}: {
  plan: StackPlan;
  stack: RenderedStack;
  fleet: FakeFleet;
}): Promise<{ result: ApplyResult; log: Entry[]; events: StepEvent[]; progress: string[] }> {
  const events: StepEvent[] = [];
  const progress: string[] = [];
  const onProgress = (e: ProgressEvent) => progress.push(`${e.kind} ${e.service}#${e.slot} ${e.container}${e.rollback ? ' rollback' : ''}`);
  const result = await applyPlan(
    plan,
    stack,
    fleet.hosts,
    (e) => {
      events.push(e);
      fleet.log.push(['step', e.kind, what(e)]);
    },
    { onProgress },
  );
  return { result, log: fleet.log, events, progress };
}

/** A step event's subject: `web#1` for a replica, `1/2` for a batch (`1/2 rollback`), `NAME@HOST` for a network or volume, else the service. */
function what(e: StepEvent): string {
  if ('slot' in e) return `${e.service}#${e.slot}`;
  if (e.kind === 'rollout.batch') return `${e.batch}/${e.of}${e.rollback ? ' rollback' : ''}`;
  return 'service' in e ? e.service : `${e.name}@${e.host}`;
}

const ops = (log: Entry[]) => log.filter((e) => e[0] !== 'step');
const at = (log: Entry[], ...entry: string[]) => log.findIndex((e) => e.length === entry.length && e.every((x, i) => x === entry[i]));

const web = (image: string, deploy: string, extra = '') => `services:
  web:
    image: ${image}
${extra}    deploy:
${deploy}
`;

describe('the executor on a recording fake of the hosts', () => {
  it('start-first: the new replica is created and started beside the old, which goes only once the new one is ready', async () => {
    const deployCfg = '      update_config: { order: start-first }';
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg));
    const { result, log } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    expect(log).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['step', 'rollout.batch', '1/1'],
      ['h1', 'create', 'app-web-1-next'],
      ['h1', 'start', 'app-web-1-next'],
      ['h1', 'joinService', 'app-web-1-next'],
      ['h1', 'drain', 'app-web-1'],
      ['step', 'container.replaced', 'web#1'],
      ['step', 'container.healthy', 'web#1'],
      // after the drain: the old one goes, the new one takes its name
      ['h1', 'stopAndRemove', 'app-web-1'],
      ['h1', 'rename', 'app-web-1-next', 'app-web-1'],
    ]);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:2 running' });
  });

  it('start-first: a replica left under the temporary name (berth stopped before its rename) takes its own name back, then is replaced', async () => {
    const deployCfg = '      update_config: { order: start-first }';
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg));
    d.fleet.hosts.get('h1')!.containers.get('c1')!.name = 'app-web-1-next';
    const { result, log } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    expect(ops(log).slice(0, 3)).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['h1', 'rename', 'app-web-1-next', 'app-web-1'],
      ['h1', 'create', 'app-web-1-next'],
    ]);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:2 running' });
  });

  it('start-first: a new replica that exits is removed, the old one serves on untouched; failure_action pause', async () => {
    const deployCfg = '      update_config: { order: start-first }';
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg), {
      fates: ({ image }) => (image === 'web:2' ? { becomes: { exitCode: 3 } } : undefined),
    });
    const { result, log, events } = await apply(d);
    // the reason names the replica and its last line of output; the evidence was read before the container went
    expect(result).toMatchObject({
      outcome: 'paused',
      service: 'web',
      error: 'web: rollout paused: 1 of 1 replica(s) failed (batch 1 of 1): web.1@h1 exited 3: the last output',
      evidence: { container: 'app-web-1-next', host: 'h1', cause: 'exited', exitCode: 3, oomKilled: false, logs: ['the last output'] },
    });
    expect(ops(log)).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['h1', 'create', 'app-web-1-next'],
      ['h1', 'start', 'app-web-1-next'],
      ['h1', 'tail', 'app-web-1-next'],
      ['h1', 'stopAndRemove', 'app-web-1-next'],
    ]);
    expect(events.map((e) => e.kind)).toEqual(['rollout.batch', 'container.unhealthy', 'rollout.failed', 'rollout.paused']);
    expect(events[1]).toMatchObject({ reason: 'it exited with code 3; last output: the last output', evidence: result.evidence });
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:1 running' });
  });

  it('stop-first: the old replica is stopped and renamed aside, the new one created and started, and the old removed only when the rollout ends', async () => {
    const deployCfg = '      replicas: 2';
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg));
    const { result, log } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    expect(log).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['step', 'rollout.batch', '1/2'],
      ['h1', 'rename', 'app-web-1', 'app-web-1-old-c1'],
      ['h1', 'stop', 'app-web-1-old-c1'],
      ['h1', 'create', 'app-web-1'],
      ['h1', 'start', 'app-web-1'],
      ['step', 'container.replaced', 'web#1'],
      ['step', 'container.healthy', 'web#1'],
      ['step', 'rollout.batch', '2/2'],
      ['h1', 'rename', 'app-web-2', 'app-web-2-old-c2'],
      ['h1', 'stop', 'app-web-2-old-c2'],
      ['h1', 'create', 'app-web-2'],
      ['h1', 'start', 'app-web-2'],
      ['step', 'container.replaced', 'web#2'],
      ['step', 'container.healthy', 'web#2'],
      // kept aside until the rollout ended: a rollback could have put them back
      ['h1', 'remove', 'app-web-1-old-c1'],
      ['h1', 'remove', 'app-web-2-old-c2'],
    ]);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:2 running', 'app-web-2': 'web:2 running' });
  });

  it.each([
    ['create', { createFails: 'Bind for 0.0.0.0:8080 failed: port is already allocated' }],
    ['start', { startFails: 'Bind for 0.0.0.0:8080 failed: port is already allocated' }],
  ] as const)('stop-first: a new replica whose %s fails is removed, the old one renamed back and started; failure_action pause', async (step, fate: Fate) => {
    const d = deploy(web('web:2', '      replicas: 1'), web('web:1', '      replicas: 1'), { fates: ({ image }) => (image === 'web:2' ? fate : undefined) });
    const { result, log, events } = await apply(d);
    expect(result).toMatchObject({
      outcome: 'paused',
      service: 'web',
      error: expect.stringMatching(/^web: rollout paused: 1 of 1 replica\(s\) failed \(batch 1 of 1\): web\.1@h1 did not start: .*port is already allocated$/),
      evidence: { container: 'app-web-1', host: 'h1', cause: 'start-error', error: expect.stringContaining('port is already allocated') },
    });
    expect(ops(log)).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['h1', 'rename', 'app-web-1', 'app-web-1-old-c1'],
      ['h1', 'stop', 'app-web-1-old-c1'],
      ['h1', 'create', 'app-web-1'],
      // a started-and-failed new container is read for its evidence, then removed; one never created is not there
      ...(step === 'start'
        ? [
            ['h1', 'start', 'app-web-1'],
            ['h1', 'tail', 'app-web-1'],
            ['h1', 'remove', 'app-web-1'],
          ]
        : []),
      ['h1', 'rename', 'app-web-1-old-c1', 'app-web-1'],
      ['h1', 'start', 'app-web-1'],
    ]);
    const restored = events.find((e) => e.kind === 'container.restored');
    expect(restored).toMatchObject({
      failed: true,
      containerAfter: 'c1',
      containerBefore: step === 'start' ? 'n1' : undefined,
      reason: expect.stringContaining('port is already allocated'),
    });
    expect(events.map((e) => e.kind)).toEqual(['rollout.batch', 'container.restored', 'rollout.failed', 'rollout.paused']);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:1 running' });
  });

  it('an unhealthy new replica with failure_action rollback: the replicas changed so far get their old containers back', async () => {
    const deployCfg = `      replicas: 3
      update_config: { failure_action: rollback, monitor: 0s }
      rollback_config: { parallelism: 0 }`;
    const healthcheck = '    healthcheck: { test: ["CMD", "true"], interval: 1s, timeout: 1s, start_period: 0s, retries: 1 }\n';
    const fates: Fates = ({ name, image }) =>
      image === 'web:2' ? { becomes: name === 'app-web-2' ? 'unhealthy' : 'healthy', startingFor: 1 } : { becomes: 'healthy' };
    const d = deploy(web('web:2', deployCfg, healthcheck), web('web:1', deployCfg, healthcheck), { fates });
    const { result, log } = await apply(d);
    expect(result).toMatchObject({
      outcome: 'rolledback',
      service: 'web',
      error: 'web: rolled back: 1 of 3 replica(s) failed (batch 2 of 3): web.2@h1 unhealthy: health check: connection refused',
      evidence: { container: 'app-web-2', cause: 'unhealthy', health: [{ exitCode: 1, output: 'connection refused' }], telling: 'connection refused' },
    });
    const rollback = at(log, 'step', 'rollback.started', 'web');
    expect(rollback).toBeGreaterThan(at(log, 'step', 'container.unhealthy', 'web#2'));
    // the third replica was never touched; the first two come back as they were, together (rollback parallelism 0)
    expect(log.slice(rollback)).toEqual([
      ['step', 'rollback.started', 'web'],
      ['step', 'rollout.batch', '1/1 rollback'],
      ['h1', 'remove', 'app-web-1'],
      ['h1', 'remove', 'app-web-2'],
      ['h1', 'rename', 'app-web-1-old-c1', 'app-web-1'],
      ['h1', 'rename', 'app-web-2-old-c2', 'app-web-2'],
      ['h1', 'start', 'app-web-1'],
      ['h1', 'start', 'app-web-2'],
      ['step', 'container.restored', 'web#1'],
      ['step', 'container.restored', 'web#2'],
      ['step', 'container.healthy', 'web#1'],
      ['step', 'container.healthy', 'web#2'],
      ['step', 'rollback.succeeded', 'web'],
    ]);
    expect(ops(log).filter((e) => e.includes('app-web-3'))).toEqual([]);
    expect(d.fleet.state('h1')).toEqual({
      'app-web-1': 'web:1 running (healthy)',
      'app-web-2': 'web:1 running (healthy)',
      'app-web-3': 'web:1 running (healthy)',
    });
  });

  it('an unhealthy new replica of a start-first rollout with failure_action rollback: a replaced replica is recreated from what it was', async () => {
    const deployCfg = `      replicas: 2
      update_config: { order: start-first, failure_action: rollback }`;
    const healthcheck = '    healthcheck: { test: ["CMD", "true"], interval: 1s }\n';
    const fates: Fates = ({ name }) => ({ becomes: name === 'app-web-2-next' ? 'unhealthy' : 'healthy' });
    const d = deploy(web('web:2', deployCfg, healthcheck), web('web:1', deployCfg, healthcheck), { fates });
    const { result, log } = await apply(d);
    expect(result).toMatchObject({
      outcome: 'rolledback',
      service: 'web',
      error: 'web: rolled back: 1 of 2 replica(s) failed (batch 2 of 2): web.2@h1 unhealthy: health check: connection refused',
    });
    expect(ops(log)).toEqual([
      ['h1', 'prepare', 'web:2'],
      ['h1', 'create', 'app-web-1-next'],
      ['h1', 'start', 'app-web-1-next'],
      ['h1', 'joinService', 'app-web-1-next'],
      ['h1', 'drain', 'app-web-1'],
      // the second replica's new container never got ready: removed, its old one serves on
      ['h1', 'create', 'app-web-2-next'],
      ['h1', 'start', 'app-web-2-next'],
      ['h1', 'tail', 'app-web-2-next'],
      ['h1', 'stopAndRemove', 'app-web-2-next'],
      // the first replica's replacement finishes (its drain) before the rollback begins
      ['h1', 'stopAndRemove', 'app-web-1'],
      ['h1', 'rename', 'app-web-1-next', 'app-web-1'],
      // rollback_config's order (stop-first, the default): the new container aside, the old spec (web:1) created again, the aside one removed
      ['h1', 'rename', 'app-web-1', 'app-web-1-old-n1'],
      ['h1', 'stop', 'app-web-1-old-n1'],
      ['h1', 'create', 'app-web-1'],
      ['h1', 'start', 'app-web-1'],
      ['h1', 'remove', 'app-web-1-old-n1'],
    ]);
    expect(at(log, 'step', 'rollback.started', 'web')).toBeGreaterThan(at(log, 'h1', 'rename', 'app-web-1-next', 'app-web-1'));
    expect(log.filter((e) => e[0] === 'step').slice(-4)).toEqual([
      ['step', 'rollout.batch', '1/1 rollback'],
      ['step', 'container.replaced', 'web#1'],
      ['step', 'container.healthy', 'web#1'],
      ['step', 'rollback.succeeded', 'web'],
    ]);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:1 running (healthy)', 'app-web-2': 'web:1 running (healthy)' });
  });

  it('parallelism 2 with 4 replicas: two batches, the second begun only once the first is up', async () => {
    const deployCfg = `      replicas: 4
      update_config: { parallelism: 2, delay: 0s }`;
    const healthcheck = '    healthcheck: { test: ["CMD", "true"], interval: 1s }\n';
    // each new replica is `starting` for its first 3 inspections: the rollout has to wait for it
    const d = deploy(web('web:2', deployCfg, healthcheck), web('web:1', deployCfg, healthcheck), { fates: () => ({ becomes: 'healthy', startingFor: 3 }) });
    const { result, log } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    const touching = (n: number) => log.flatMap((e, i) => (e[0] !== 'step' && e.slice(2).some((x) => x.startsWith(`app-web-${n}`)) ? [i] : []));
    const healthy = (n: number) => at(log, 'step', 'container.healthy', `web#${n}`);
    const batch2 = at(log, 'step', 'rollout.batch', '2/2');
    // the first batch goes together: both its new replicas are started before either is up
    expect(Math.max(at(log, 'h1', 'start', 'app-web-1'), at(log, 'h1', 'start', 'app-web-2'))).toBeLessThan(Math.min(healthy(1), healthy(2)));
    // the second begins once both replicas of the first are up
    expect(batch2).toBeGreaterThan(Math.max(healthy(1), healthy(2)));
    expect(Math.min(...touching(3), ...touching(4))).toBeGreaterThan(batch2);
    expect(at(log, 'h1', 'start', 'app-web-3')).toBeGreaterThan(-1);
    expect(at(log, 'h1', 'start', 'app-web-4')).toBeLessThan(Math.min(healthy(3), healthy(4)));
    // the old containers, aside, go at the end
    const removals = log.flatMap((e, i) => (e[1] === 'remove' ? [i] : []));
    expect(removals).toHaveLength(4);
    expect(Math.min(...removals)).toBeGreaterThan(Math.max(healthy(3), healthy(4)));
    expect(Object.values(d.fleet.state('h1'))).toEqual(Array(4).fill('web:2 running (healthy)'));
  });

  it('a create-only plan on two hosts: each host gets its network, volume and container', async () => {
    const compose = `services:
  web:
    image: web:2
    volumes: [data:/data]
    deploy: { mode: global }
volumes:
  data: {}
`;
    const d = deploy(compose, undefined, { hosts: ['h1', 'h2'] });
    const { result, log, events } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    for (const h of ['h1', 'h2']) {
      expect(ops(log).filter((e) => e[0] === h)).toEqual([
        [h, 'createNetwork', 'app_default'],
        [h, 'createVolume', 'app_data'],
        [h, 'prepare', 'web:2'],
        [h, 'createAndStart', 'app-web-1'],
      ]);
      expect(d.fleet.state(h)).toEqual({ 'app-web-1': 'web:2 running' });
    }
    expect(log.filter((e) => e[0] === 'step').map((e) => e[1])).toEqual([
      'network.created',
      'network.created',
      'volume.created',
      'volume.created',
      'container.created',
      'container.created',
    ]);
    expect(events.flatMap((e) => (e.kind === 'container.created' ? [e.host] : [])).sort()).toEqual(['h1', 'h2']);
  });
  it('a rollout that goes well reads no container for evidence, and tells each replica stopped, started and ready', async () => {
    const deployCfg = '      replicas: 2';
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg));
    const { result, log, events, progress } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    expect(ops(log).filter((e) => e[1] === 'tail')).toEqual([]);
    expect(events.some((e) => 'evidence' in e)).toBe(false);
    expect(progress).toEqual([
      'replica.stopped web#1 c1',
      'replica.started web#1 n1',
      'replica.ready web#1 n1',
      'replica.stopped web#2 c2',
      'replica.started web#2 n2',
      'replica.ready web#2 n2',
    ]);
  });

  it('a new replica (none before it) that exits: the sync fails naming it and its last line, with its evidence; it is left for inspection', async () => {
    const d = deploy(web('web:2', '      replicas: 1'), undefined, { fates: () => ({ becomes: { exitCode: 3 } }) });
    const { result, log, events, progress } = await apply(d);
    expect(result).toEqual({
      outcome: 'failed',
      service: 'web',
      error: 'web: a new replica is not up: web.1@h1 exited 3: the last output',
      evidence: {
        container: 'app-web-1',
        id: 'n1',
        host: 'h1',
        service: 'web',
        slot: 1,
        cause: 'exited',
        exitCode: 3,
        oomKilled: false,
        health: [],
        logs: ['the last output'],
        telling: 'the last output',
        summary: 'web.1@h1 exited 3: the last output',
      },
    });
    expect(ops(log).slice(-2)).toEqual([
      ['h1', 'createAndStart', 'app-web-1'],
      ['h1', 'tail', 'app-web-1'],
    ]);
    expect(events.find((e) => e.kind === 'container.unhealthy')).toMatchObject({ evidence: result.evidence });
    expect(progress).toEqual(['replica.started web#1 n1']);
    expect(d.fleet.state('h1')).toEqual({ 'app-web-1': 'web:2 exited' });
  });

  it("a new replica that cannot start: the daemon's words are its evidence, read without asking the host again", async () => {
    const d = deploy(web('web:2', '      replicas: 1'), undefined, { fates: () => ({ startFails: 'exec: "/nope": stat /nope: no such file or directory' }) });
    const { result, log } = await apply(d);
    expect(result).toMatchObject({
      outcome: 'failed',
      error: expect.stringContaining('no such file or directory'),
      evidence: { container: 'app-web-1', cause: 'start-error', summary: expect.stringMatching(/^web\.1@h1 did not start: .*exec: "\/nope"/) },
    });
    expect(result.evidence?.id).toBeUndefined();
    expect(ops(log).filter((e) => e[1] === 'tail')).toEqual([]);
  });

  it('failure_action continue: a batch that goes well after one that failed says nothing more, and the rollout ends synced', async () => {
    const deployCfg = `      replicas: 3
      update_config: { failure_action: continue, monitor: 0s }`;
    const d = deploy(web('web:2', deployCfg), web('web:1', deployCfg), {
      fates: ({ name, image }) => (image === 'web:2' && name === 'app-web-1' ? { becomes: { exitCode: 1 } } : undefined),
    });
    const { result, events } = await apply(d);
    expect(result).toEqual({ outcome: 'synced' });
    expect(events.filter((e) => e.kind === 'rollout.failed').map((e) => ('reason' in e ? e.reason : ''))).toEqual([
      '1 of 3 replica(s) failed (batch 1 of 3): web.1@h1 exited 1: the last output',
    ]);
  });
});
