/**
 * One simulated Docker host: its containers, networks, volumes and images in memory, the state
 * changes Docker makes (create, start, stop, rename, connect, ...), the events it emits, and the
 * health checks and exits of its containers driven by the clock (bench/sim/README.md says the
 * rules). No process runs: a container is a record whose state changes when the API or a timer
 * says so. The JSON shapes are those of Docker 20.10 (API 1.41), the daemon the tests run.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { CATALOGUE, type ImageConfig, type SimImageSpec } from './images.ts';

/** A Docker API error: the HTTP status and Docker's message. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

type Json = Record<string, unknown>;

export interface HostOptions {
  name: string;
  /** what `info` reports, which berth's placement reads */
  cpus?: number;
  memoryBytes?: number;
  /** images present from the start (default: the test images, bench/sim/images.ts) */
  images?: SimImageSpec[];
  /** the first octet pair of the subnets given to networks, as the test daemons' pool (10.64.0.0/10 in /24s) */
  subnetBase?: [number, number];
  /** how long a health check's probe takes (default 0: its result counts when it begins) */
  probeMs?: number;
}

export interface SimImage {
  id: string;
  tags: string[];
  digests: string[];
  created: number;
  config: ImageConfig;
  size: number;
}

interface Endpoint {
  networkId: string;
  /** the aliases asked for (null: none given) */
  aliases: string[] | null;
  ipamConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  ip: string;
  endpointId: string;
}

interface HealthPlan {
  intervalMs: number;
  /** how long each probe takes: its result counts this long after it began */
  probeMs: number;
  startPeriodMs: number;
  retries: number;
  pass: boolean;
}

/** A container's health as frozen when it stopped (Docker 20.10 turns a stopped container's health to `unhealthy`). */
interface FrozenHealth {
  Status: string;
  FailingStreak: number;
  Log: Json[];
}

export interface SimContainer {
  id: string;
  name: string;
  created: number;
  imageRef: string;
  image: SimImage;
  config: Json & { Labels: Record<string, string>; Env: string[] };
  hostConfig: Json;
  /** by network name */
  endpoints: Map<string, Endpoint>;
  mounts: Json[];
  state: 'created' | 'running' | 'restarting' | 'exited' | 'removing' | 'dead';
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  restartCount: number;
  pid: number;
  /** the run's health checks; undefined: none */
  health?: HealthPlan;
  frozenHealth?: FrozenHealth;
  /** host ports it holds while it runs */
  ports: Array<{ container: string; type: string; hostIp: string; hostPort: string }>;
  /** stopped through the API (no restart policy applies), as Docker's HasBeenManuallyStopped */
  stoppedByUser: boolean;
  timers: Set<NodeJS.Timeout>;
  /** files written in through the archive endpoint, by absolute path */
  files: Map<string, { mode: number; uid: number; gid: number; content: Buffer; mtime: number }>;
  /** anonymous volumes made for it, removed with it when asked (`v`) */
  anonymous: string[];
  /** its last start's record */
  record?: StartRecord;
  /** when its last start makes it ready (healthy, or running without a health check); undefined: never */
  readyDue?: number;
  waiters: Set<() => void>;
}

export interface SimNetwork {
  id: string;
  name: string;
  driver: string;
  created: number;
  labels: Record<string, string>;
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  options: Record<string, string>;
  ipamDriver: string;
  ipamOptions: Record<string, string> | null;
  subnet: string;
  gateway: string;
  /** whether the caller configured the subnet: only then does Docker take an address from the caller */
  userSubnet: boolean;
  builtin: boolean;
  used: Set<string>;
}

export interface SimVolume {
  name: string;
  driver: string;
  labels: Record<string, string> | null;
  options: Record<string, string> | null;
  created: number;
}

/** A container's start and the moment it was ready (healthy; running, when it has no health check): what the host made its caller wait. */
export interface StartRecord {
  id: string;
  name: string;
  startedAt: number;
  /** undefined until it is ready (it may never be) */
  readyAt?: number;
  /** when an inspect first showed it ready: how long its caller took to see it */
  seenReadyAt?: number;
}

interface Subscriber {
  filters: Record<string, string[]>;
  res: ServerResponse;
}

/** How many past events a host keeps for `since` (Docker keeps 256). */
const EVENTS_KEPT = 256;
const NAME_OK = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ZERO_TIME = '0001-01-01T00:00:00Z';
const DEFAULT_INTERVAL_NS = 30e9;
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

const hex64 = () => randomBytes(32).toString('hex');
const iso = (ms: number) => (ms ? new Date(ms).toISOString() : ZERO_TIME);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** `nginx` -> `nginx:latest`; `docker.io/library/nginx:1` -> `nginx:1`; a digest kept. */
export function normalRef(ref: string): string {
  let r = ref.replace(/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '');
  if (r.includes('@')) return r;
  const lastSlash = r.lastIndexOf('/');
  if (!r.slice(lastSlash + 1).includes(':')) r += ':latest';
  return r;
}

/** The image's repository (without tag or digest). */
const repoOf = (ref: string) =>
  normalRef(ref)
    .replace(/@.*$/, '')
    .replace(/:[^:/]*$/, '');

/** The fake registry digest of a reference: the same on every host and every run. */
export const fakeDigest = (ref: string) => `sha256:${sha(`digest ${repoOf(ref)}:${normalRef(ref).split(':').at(-1)}`)}`;

/** Go's units.HumanDuration, as Docker's container list says how long ago. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(ms / 3_600_000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/**
 * How a container's main command ends, by the simulator's rule (bench/sim/README.md): the last
 * statement of its script (`sh -c SCRIPT`, else the command line; after the last `;`, newline or
 * `&&`) decides: `exit N` exits N, `false` exits 1, `true` or `:` exits 0; a `sleep S` in the
 * script delays that by S seconds. Anything else, `A || exit 1` included (A is taken to succeed),
 * runs until it is stopped.
 */
export function commandExit(argv: string[]): { code: number; afterMs: number } | undefined {
  const shell = argv.length >= 3 && /(^|\/)(ba)?sh$/.test(argv[0]!) && argv[1] === '-c';
  const script = (shell ? argv[2]! : argv.join(' ')).trim();
  const statements = script
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  const last = (statements.at(-1) ?? '').split('&&').at(-1)!.trim();
  const sleep = /(?:^|[;&|\n]\s*)sleep\s+(\d+(?:\.\d+)?)/.exec(script);
  const afterMs = sleep ? Number(sleep[1]) * 1000 : 0;
  const exit = /^exit\s+(\d+)$/.exec(last);
  if (exit) return { code: Number(exit[1]), afterMs };
  if (last === 'false') return { code: 1, afterMs };
  if (last === 'true' || last === ':') return { code: 0, afterMs };
  return undefined;
}

/** Whether a health check's test fails, by the same rule: `false`, `exit N` with N > 0 (as `CMD-SHELL` or `CMD`). */
export function healthFails(test: string[]): boolean {
  const [kind, ...rest] = test;
  const argv = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : rest;
  const end = commandExit(argv);
  return end !== undefined && end.code !== 0;
}

export class SimHost {
  readonly name: string;
  readonly id: string;
  readonly cpus: number;
  readonly memoryBytes: number;
  /** how long a health probe takes, for the containers started from now on */
  probeMs: number;
  readonly containers = new Map<string, SimContainer>();
  readonly networks = new Map<string, SimNetwork>();
  readonly volumes = new Map<string, SimVolume>();
  readonly images = new Map<string, SimImage>();
  /** calls answered, by `METHOD /template` */
  readonly calls = new Map<string, number>();
  /** calls to endpoints the simulator does not have, by `METHOD /path` */
  readonly unknown = new Map<string, number>();
  /** every container start since the last reset, with when it was ready */
  readonly starts: StartRecord[] = [];
  readonly #events: string[] = [];
  readonly #eventTimes: number[] = [];
  readonly #subscribers = new Set<Subscriber>();
  readonly #subnetBase: [number, number];
  #nextSubnet = 0;
  #nanoSeq = 0;
  #closed = false;

  constructor(opts: HostOptions) {
    this.name = opts.name;
    this.id = Array.from({ length: 12 }, () => randomBytes(2).toString('hex').slice(0, 4).toUpperCase()).join(':');
    this.cpus = opts.cpus ?? 4;
    this.memoryBytes = opts.memoryBytes ?? 8 * 2 ** 30;
    this.probeMs = opts.probeMs ?? 0;
    this.#subnetBase = opts.subnetBase ?? [10, 64];
    for (const spec of opts.images ?? CATALOGUE) this.addImage(spec);
    const builtin = (name: string, driver: string, subnet = '', gateway = '') =>
      this.networks.set(name, {
        id: hex64(),
        name,
        driver,
        created: Date.now(),
        labels: {},
        internal: false,
        attachable: false,
        enableIPv6: false,
        options: {},
        ipamDriver: 'default',
        ipamOptions: null,
        subnet,
        gateway,
        userSubnet: false,
        builtin: true,
        used: new Set(),
      });
    builtin('bridge', 'bridge', '172.17.0.0/16', '172.17.0.1');
    builtin('host', 'host');
    builtin('none', 'null');
  }

  /** Stops every timer and ends every event stream. */
  close(): void {
    this.#closed = true;
    for (const c of this.containers.values()) this.#clearTimers(c);
    for (const s of this.#subscribers) s.res.end();
    this.#subscribers.clear();
  }

  count(key: string, unknown = false, by = 1): void {
    const map = unknown ? this.unknown : this.calls;
    const n = (map.get(key) ?? 0) + by;
    if (n > 0) map.set(key, n);
    else map.delete(key);
  }

  resetCounts(): void {
    this.calls.clear();
    this.unknown.clear();
    this.starts.length = 0;
  }

  // ---- images ----

  addImage(spec: SimImageSpec): SimImage {
    const id = `sha256:${sha(`image ${spec.ref} ${JSON.stringify(spec.config)}`)}`;
    const ref = normalRef(spec.ref);
    const existing = this.images.get(id);
    const image: SimImage = existing ?? {
      id,
      tags: [],
      digests: [],
      created: spec.created ?? Date.now(),
      config: spec.config,
      size: spec.size ?? 2_000_000,
    };
    for (const other of this.images.values()) other.tags = other.tags.filter((t) => t !== ref);
    image.tags.push(ref);
    if (spec.pulled) image.digests = [...new Set([...image.digests, `${repoOf(ref)}@${fakeDigest(ref)}`])];
    this.images.set(id, image);
    for (const [key, other] of this.images) if (key !== id && other.tags.length === 0 && !this.#imageUsed(other)) this.images.delete(key);
    return image;
  }

  #imageUsed(image: SimImage): boolean {
    for (const c of this.containers.values()) if (c.image === image) return true;
    return false;
  }

  /** An image by reference, id or id prefix; undefined when absent. */
  findImage(ref: string): SimImage | undefined {
    const byId = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
    if (/^sha256:[0-9a-f]{4,64}$/.test(byId)) {
      for (const image of this.images.values()) if (image.id.startsWith(byId)) return image;
    }
    const want = normalRef(ref);
    for (const image of this.images.values()) if (image.tags.includes(want) || image.digests.includes(want)) return image;
    if (want.includes('@')) {
      // name:tag@sha256:... : Docker finds it by the digest
      const digest = `${repoOf(want)}@${want.split('@')[1]}`;
      for (const image of this.images.values()) if (image.digests.includes(digest)) return image;
    }
    return undefined;
  }

  image(ref: string): SimImage {
    const found = this.findImage(ref);
    if (!found) throw new ApiError(404, `no such image: ${ref}: No such image: ${ref}`);
    return found;
  }

  /** A pull: any reference is found, with the fake digest (a pulled image has the default config unless the catalogue knows it). */
  pull(ref: string): SimImage {
    const known = CATALOGUE.find((s) => normalRef(s.ref) === normalRef(ref.replace(/@.*$/, '')));
    return this.addImage({ ref: ref.replace(/@.*$/, ''), config: known?.config ?? { Env: [DEFAULT_PATH], Cmd: ['sh'] }, pulled: true });
  }

  removeImage(ref: string): Json[] {
    const image = this.image(ref);
    for (const c of this.containers.values()) {
      if (c.image === image) {
        throw new ApiError(
          409,
          `conflict: unable to remove repository reference "${ref}" (must force) - container ${c.id.slice(0, 12)} is using its referenced image ${image.id.slice(7, 19)}`,
        );
      }
    }
    const want = normalRef(ref);
    const out: Json[] = [];
    if (image.tags.includes(want) && image.tags.length > 1) {
      image.tags = image.tags.filter((t) => t !== want);
      return [{ Untagged: want }];
    }
    for (const t of image.tags) out.push({ Untagged: t });
    this.images.delete(image.id);
    out.push({ Deleted: image.id });
    return out;
  }

  tagImage(ref: string, repo: string, tag: string): void {
    const image = this.image(ref);
    const name = normalRef(`${repo}:${tag || 'latest'}`);
    for (const other of this.images.values()) other.tags = other.tags.filter((t) => t !== name);
    image.tags.push(name);
  }

  imageJson(image: SimImage): Json {
    return {
      Id: image.id,
      RepoTags: image.tags,
      RepoDigests: image.digests,
      Parent: '',
      Comment: '',
      Created: iso(image.created),
      Container: '',
      DockerVersion: '20.10.24+sim',
      Author: '',
      Config: {
        Hostname: '',
        Domainname: '',
        User: image.config.User ?? '',
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        ExposedPorts: image.config.ExposedPorts,
        Tty: false,
        OpenStdin: false,
        StdinOnce: false,
        Env: image.config.Env ?? null,
        Cmd: image.config.Cmd ?? null,
        Healthcheck: image.config.Healthcheck,
        Image: '',
        Volumes: image.config.Volumes ?? null,
        WorkingDir: image.config.WorkingDir ?? '',
        Entrypoint: image.config.Entrypoint ?? null,
        OnBuild: null,
        Labels: image.config.Labels ?? null,
        ...(image.config.StopSignal ? { StopSignal: image.config.StopSignal } : {}),
      },
      Architecture: 'amd64',
      Os: 'linux',
      Size: image.size,
      VirtualSize: image.size,
      GraphDriver: { Data: {}, Name: 'overlay2' },
      RootFS: { Type: 'layers', Layers: [`sha256:${sha(image.id)}`] },
      Metadata: { LastTagTime: iso(image.created) },
    };
  }

  imageSummary(image: SimImage): Json {
    return {
      Containers: -1,
      Created: Math.floor(image.created / 1000),
      Id: image.id,
      Labels: image.config.Labels ?? null,
      ParentId: '',
      RepoDigests: image.digests,
      RepoTags: image.tags,
      SharedSize: -1,
      Size: image.size,
      VirtualSize: image.size,
    };
  }

  // ---- containers ----

  /** A container by id, id prefix or name; throws Docker's 404. */
  container(ref: string): SimContainer {
    const c = this.findContainer(ref);
    if (!c) throw new ApiError(404, `No such container: ${ref}`);
    return c;
  }

  findContainer(ref: string): SimContainer | undefined {
    const byId = this.containers.get(ref);
    if (byId) return byId;
    const name = ref.replace(/^\//, '');
    for (const c of this.containers.values()) if (c.name === name) return c;
    if (/^[0-9a-f]+$/.test(ref)) {
      const found = [...this.containers.values()].filter((c) => c.id.startsWith(ref));
      if (found.length === 1) return found[0];
    }
    return undefined;
  }

  #nameFree(name: string, self?: SimContainer): void {
    for (const c of this.containers.values()) {
      if (c !== self && c.name === name) {
        throw new ApiError(
          409,
          `Conflict. The container name "/${name}" is already in use by container "${c.id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
    }
  }

  createContainer(nameAsked: string | undefined, body: Json): SimContainer {
    if (nameAsked !== undefined && nameAsked !== '' && !NAME_OK.test(nameAsked)) {
      throw new ApiError(400, `Invalid container name (${nameAsked}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const name = nameAsked ? nameAsked.replace(/^\//, '') : `sim_${randomBytes(4).toString('hex')}`;
    this.#nameFree(name);
    const imageRef = String(body.Image ?? '');
    const image = this.findImage(imageRef);
    if (!image) throw new ApiError(404, `No such image: ${imageRef}`);
    const id = hex64();
    const config = mergeConfig(body, image.config, id);
    const hostConfig = hostConfigOf(body.HostConfig as Json | undefined);
    const c: SimContainer = {
      id,
      name,
      created: Date.now(),
      imageRef,
      image,
      config,
      hostConfig,
      endpoints: new Map(),
      mounts: [],
      state: 'created',
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      restartCount: 0,
      pid: 0,
      ports: [],
      stoppedByUser: false,
      timers: new Set(),
      files: new Map(),
      anonymous: [],
      waiters: new Set(),
    };
    c.mounts = this.#mountsOf(c);
    const mode = String(hostConfig.NetworkMode || 'default');
    const endpoints = ((body.NetworkingConfig as Json | undefined)?.EndpointsConfig ?? {}) as Record<string, Json>;
    const first = ['default', 'bridge'].includes(mode) ? 'bridge' : mode;
    if (!['host', 'none'].includes(mode) && !mode.startsWith('container:')) {
      const ep = endpoints[first] ?? endpoints[mode] ?? {};
      // Docker 20.10 takes a create on a network that does not exist; its start fails (startContainer)
      const net = this.findNetwork(first);
      c.endpoints.set(net?.name ?? first, {
        networkId: '',
        aliases: (ep.Aliases as string[] | undefined)?.length ? [...(ep.Aliases as string[])] : null,
        ipamConfig: (ep.IPAMConfig as Endpoint['ipamConfig']) ?? null,
        ip: '',
        endpointId: '',
      });
    }
    this.containers.set(id, c);
    this.#containerEvent(c, 'create');
    return c;
  }

  #mountsOf(c: SimContainer): Json[] {
    const out: Json[] = [];
    const targets = new Set<string>();
    const volume = (name: string, target: string, rw: boolean, anonymous: boolean) => {
      if (!this.volumes.has(name)) this.volumes.set(name, { name, driver: 'local', labels: null, options: null, created: Date.now() });
      if (anonymous) c.anonymous.push(name);
      targets.add(target);
      out.push({
        Type: 'volume',
        Name: name,
        Source: `/var/lib/docker/volumes/${name}/_data`,
        Destination: target,
        Driver: 'local',
        Mode: 'z',
        RW: rw,
        Propagation: '',
      });
    };
    for (const m of (c.hostConfig.Mounts as Json[] | undefined) ?? []) {
      const target = String(m.Target ?? '');
      const rw = !m.ReadOnly;
      if (m.Type === 'volume') volume(m.Source ? String(m.Source) : hex64(), target, rw, !m.Source);
      else if (m.Type === 'bind') {
        targets.add(target);
        out.push({ Type: 'bind', Source: m.Source, Destination: target, Mode: '', RW: rw, Propagation: 'rprivate' });
      } else if (m.Type === 'tmpfs') {
        targets.add(target);
        out.push({ Type: 'tmpfs', Source: '', Destination: target, Mode: '', RW: rw, Propagation: '' });
      }
    }
    for (const bind of (c.hostConfig.Binds as string[] | undefined) ?? []) {
      const [source = '', target = '', mode = ''] = bind.split(':');
      const rw = !mode.split(',').includes('ro');
      if (source.startsWith('/')) {
        targets.add(target);
        out.push({ Type: 'bind', Source: source, Destination: target, Mode: mode, RW: rw, Propagation: 'rprivate' });
      } else volume(source, target, rw, false);
    }
    for (const target of Object.keys((c.config.Volumes as Json | null) ?? {})) if (!targets.has(target)) volume(hex64(), target, true, true);
    return out;
  }

  startContainer(c: SimContainer): void {
    if (c.state === 'running' || c.state === 'restarting') throw new ApiError(304, '');
    const mode = String(c.hostConfig.NetworkMode || 'default');
    if (mode.startsWith('container:')) {
      const peer = this.findContainer(mode.slice('container:'.length));
      if (!peer) throw new ApiError(404, `No such container: ${mode.slice('container:'.length)}`);
      if (peer.state !== 'running') throw new ApiError(409, `cannot join network of a non running container: ${peer.id}`);
    }
    for (const name of c.endpoints.keys()) {
      if (!this.findNetwork(name)) throw new ApiError(404, `network ${name} not found`);
    }
    this.#bindPorts(c);
    this.#run(c);
  }

  /** A run begins: addresses, health checks, and the exit the command's rule gives. */
  #run(c: SimContainer): void {
    c.state = 'running';
    c.startedAt = Date.now();
    c.pid = 1000 + Math.floor(Math.random() * 60000);
    c.stoppedByUser = false;
    c.frozenHealth = undefined;
    for (const [name, ep] of c.endpoints) this.#attach(c, this.findNetwork(name)!, ep);
    const hc = c.config.Healthcheck as { Test?: string[]; Interval?: number; StartPeriod?: number; Retries?: number } | undefined;
    const record: StartRecord = { id: c.id, name: c.name, startedAt: c.startedAt };
    this.starts.push(record);
    c.record = record;
    if (hc?.Test?.length && hc.Test[0] !== 'NONE') {
      const plan: HealthPlan = {
        intervalMs: (hc.Interval || DEFAULT_INTERVAL_NS) / 1e6,
        probeMs: this.probeMs,
        startPeriodMs: (hc.StartPeriod ?? 0) / 1e6,
        retries: hc.Retries || 3,
        pass: !healthFails(hc.Test),
      };
      c.health = plan;
      const at = healthChangeAt(plan);
      c.readyDue = plan.pass ? c.startedAt + at : undefined;
      const started = c.startedAt;
      this.#later(c, at, () => {
        if (c.state !== 'running' || c.startedAt !== started) return;
        if (plan.pass) record.readyAt ??= started + at;
        this.#containerEvent(c, `health_status: ${plan.pass ? 'healthy' : 'unhealthy'}`);
      });
    } else {
      c.health = undefined;
      record.readyAt = c.startedAt;
      c.readyDue = c.startedAt;
    }
    this.#containerEvent(c, 'start');
    const argv = [...((c.config.Entrypoint as string[] | null) ?? []), ...((c.config.Cmd as string[] | null) ?? [])];
    const end = commandExit(argv);
    if (end) {
      const started = c.startedAt;
      this.#later(c, end.afterMs, () => {
        if (c.state === 'running' && c.startedAt === started) this.#exit(c, end.code, false);
      });
    }
  }

  #attach(c: SimContainer, net: SimNetwork, ep: Endpoint): void {
    if (net.driver === 'host' || net.driver === 'null') return;
    ep.networkId = net.id;
    ep.endpointId = hex64();
    ep.ip = ep.ipamConfig?.IPv4Address ?? allocate(net);
    net.used.add(ep.ip);
    if (!net.builtin) {
      const short = c.id.slice(0, 12);
      ep.aliases = [...(ep.aliases ?? []).filter((a) => a !== short), short];
    }
    this.#networkEvent(net, 'connect', c.id);
  }

  #detach(c: SimContainer, net: SimNetwork | undefined, ep: Endpoint): void {
    if (ep.ip && net) net.used.delete(ep.ip);
    ep.ip = '';
    ep.endpointId = '';
    if (net) this.#networkEvent(net, 'disconnect', c.id);
  }

  /** The container's run ends: by itself (`byUser` false: a restart policy applies) or stopped, killed, removed. */
  #exit(c: SimContainer, code: number, byUser: boolean): void {
    this.#clearTimers(c);
    c.state = 'exited';
    c.exitCode = code;
    c.finishedAt = Date.now();
    c.pid = 0;
    c.stoppedByUser = byUser;
    if (c.health) c.frozenHealth = { Status: 'unhealthy', FailingStreak: 0, Log: healthLog(c, c.finishedAt) };
    c.ports = [];
    this.#containerEvent(c, 'die', { exitCode: String(code) });
    for (const [name, ep] of c.endpoints) this.#detach(c, this.findNetwork(name), ep);
    for (const wake of c.waiters) wake();
    c.waiters.clear();
    if (!byUser) this.#maybeRestart(c);
  }

  #maybeRestart(c: SimContainer): void {
    const policy = (c.hostConfig.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined) ?? {};
    const name = policy.Name ?? '';
    const again =
      name === 'always' ||
      name === 'unless-stopped' ||
      (name === 'on-failure' && c.exitCode !== 0 && (!policy.MaximumRetryCount || c.restartCount < policy.MaximumRetryCount));
    if (!again) return;
    c.state = 'restarting';
    // Docker's back-off: 100 ms, doubled at each restart
    this.#later(c, 100 * 2 ** Math.min(c.restartCount, 10), () => {
      if (c.state !== 'restarting') return;
      c.restartCount++;
      this.#bindPorts(c);
      this.#run(c);
    });
  }

  stopContainer(c: SimContainer, signal?: string): void {
    if (c.state === 'restarting') {
      this.#clearTimers(c);
      c.state = 'exited';
      c.stoppedByUser = true;
      return;
    }
    if (c.state !== 'running') throw new ApiError(304, '');
    const sig = signal ?? (c.config.StopSignal as string | undefined) ?? 'SIGTERM';
    this.#containerEvent(c, 'kill', { signal: String(SIGNALS[sig] ?? sig) });
    // the simulated process ends on its stop signal at once, cleanly
    this.#exit(c, 0, true);
    this.#containerEvent(c, 'stop');
  }

  killContainer(c: SimContainer, signal = 'SIGKILL'): void {
    if (c.state !== 'running') throw new ApiError(409, `Cannot kill container: ${c.id}: Container ${c.id} is not running`);
    const num = SIGNALS[signal.startsWith('SIG') ? signal : `SIG${signal}`] ?? Number(signal);
    this.#containerEvent(c, 'kill', { signal: String(num) });
    this.#exit(c, 128 + (Number.isFinite(num) ? num : 9), true);
  }

  removeContainer(c: SimContainer, { force = false, volumes = false } = {}): void {
    if (c.state === 'running' || c.state === 'restarting') {
      if (!force) {
        throw new ApiError(409, `You cannot remove a running container ${c.id}. Stop the container before attempting removal or force remove`);
      }
      if (c.state === 'running') this.killContainer(c);
    }
    this.#clearTimers(c);
    this.containers.delete(c.id);
    if (volumes) for (const v of c.anonymous) this.volumes.delete(v);
    this.#containerEvent(c, 'destroy');
  }

  renameContainer(c: SimContainer, name: string): void {
    if (!NAME_OK.test(name)) throw new ApiError(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const next = name.replace(/^\//, '');
    try {
      this.#nameFree(next, c);
    } catch (err) {
      throw new ApiError(409, `Error when allocating new name: ${(err as Error).message}`);
    }
    const old = c.name;
    c.name = next;
    this.#containerEvent(c, 'rename', { oldName: `/${old}` });
  }

  /** Resolves with the exit code once the container is not running (POST /containers/{id}/wait). */
  waitContainer(c: SimContainer): Promise<number> {
    if (c.state !== 'running' && c.state !== 'restarting') return Promise.resolve(c.exitCode);
    return new Promise((resolve) => c.waiters.add(() => resolve(c.exitCode)));
  }

  #bindPorts(c: SimContainer): void {
    const bindings = (c.hostConfig.PortBindings ?? {}) as Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;
    const held = new Set<string>();
    for (const other of this.containers.values()) for (const p of other.ports) held.add(`${p.hostPort}/${p.type}`);
    const ports: SimContainer['ports'] = [];
    for (const [port, list] of Object.entries(bindings)) {
      const type = port.split('/')[1] ?? 'tcp';
      for (const b of list ?? []) {
        let hostPort = b.HostPort ?? '';
        if (!hostPort) {
          let p = 32768;
          while (held.has(`${p}/${type}`)) p++;
          hostPort = String(p);
        }
        if (held.has(`${hostPort}/${type}`)) {
          throw new ApiError(
            500,
            `driver failed programming external connectivity on endpoint ${c.name} (${hex64()}): Bind for ${b.HostIp || '0.0.0.0'}:${hostPort} failed: port is already allocated`,
          );
        }
        held.add(`${hostPort}/${type}`);
        ports.push({ container: port, type, hostIp: b.HostIp || '0.0.0.0', hostPort });
      }
    }
    c.ports = ports;
  }

  #later(c: SimContainer, ms: number, fn: () => void): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      c.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    c.timers.add(t);
  }

  #clearTimers(c: SimContainer): void {
    for (const t of c.timers) clearTimeout(t);
    c.timers.clear();
  }

  /** Docker's health object for the container now, or undefined (no health check, or never started). */
  health(c: SimContainer, now = Date.now()): FrozenHealth | undefined {
    if (c.frozenHealth) return c.frozenHealth;
    if (!c.health || c.state !== 'running') return undefined;
    const p = c.health;
    const probes = Math.floor((now - c.startedAt - p.probeMs) / p.intervalMs);
    if (p.pass) return { Status: probes >= 1 ? 'healthy' : 'starting', FailingStreak: 0, Log: healthLog(c, now) };
    const counted = Math.max(0, probes - firstCounted(p) + 1);
    return { Status: counted >= p.retries ? 'unhealthy' : 'starting', FailingStreak: counted, Log: healthLog(c, now) };
  }

  /** `Up 3 seconds (healthy)`, `Exited (0) 2 minutes ago`, as the list says it. */
  status(c: SimContainer, now = Date.now()): string {
    switch (c.state) {
      case 'created':
        return 'Created';
      case 'running': {
        const h = this.health(c, now)?.Status;
        const health = h === 'starting' ? ' (health: starting)' : h ? ` (${h})` : '';
        return `Up ${humanDuration(now - c.startedAt)}${health}`;
      }
      case 'restarting':
        return `Restarting (${c.exitCode}) ${humanDuration(now - c.finishedAt)} ago`;
      case 'exited':
        return `Exited (${c.exitCode}) ${humanDuration(now - c.finishedAt)} ago`;
      default:
        return c.state === 'removing' ? 'Removal In Progress' : 'Dead';
    }
  }

  inspectJson(c: SimContainer, now = Date.now()): Json {
    const r = c.record;
    if (r && c.state === 'running' && r.seenReadyAt === undefined && c.readyDue !== undefined && c.readyDue <= now) {
      r.readyAt ??= c.readyDue; // its timer may not have run yet
      r.seenReadyAt = now;
    }
    const argv = [...((c.config.Entrypoint as string[] | null) ?? []), ...((c.config.Cmd as string[] | null) ?? [])];
    const health = this.health(c, now);
    const running = c.state === 'running';
    return {
      Id: c.id,
      Created: iso(c.created),
      Path: argv[0] ?? '',
      Args: argv.slice(1),
      State: {
        Status: c.state,
        Running: running,
        Paused: false,
        Restarting: c.state === 'restarting',
        OOMKilled: false,
        Dead: c.state === 'dead',
        Pid: c.pid,
        ExitCode: c.exitCode,
        Error: '',
        StartedAt: iso(c.startedAt),
        FinishedAt: iso(c.finishedAt),
        ...(health ? { Health: health } : {}),
      },
      Image: c.image.id,
      ResolvConfPath: `/var/lib/docker/containers/${c.id}/resolv.conf`,
      HostnamePath: `/var/lib/docker/containers/${c.id}/hostname`,
      HostsPath: `/var/lib/docker/containers/${c.id}/hosts`,
      LogPath: `/var/lib/docker/containers/${c.id}/${c.id}-json.log`,
      Name: `/${c.name}`,
      RestartCount: c.restartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: null,
      HostConfig: c.hostConfig,
      GraphDriver: { Data: {}, Name: 'overlay2' },
      Mounts: c.mounts,
      Config: c.config,
      NetworkSettings: {
        Bridge: '',
        SandboxID: running ? sha(c.id + c.startedAt) : '',
        HairpinMode: false,
        LinkLocalIPv6Address: '',
        LinkLocalIPv6PrefixLen: 0,
        Ports: running ? this.#portMap(c) : {},
        SandboxKey: running ? `/var/run/docker/netns/${c.id.slice(0, 12)}` : '',
        SecondaryIPAddresses: null,
        SecondaryIPv6Addresses: null,
        EndpointID: '',
        Gateway: '',
        GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0,
        IPAddress: c.endpoints.get('bridge')?.ip ?? '',
        IPPrefixLen: c.endpoints.get('bridge')?.ip ? 16 : 0,
        IPv6Gateway: '',
        MacAddress: '',
        Networks: this.#networksJson(c, true),
      },
    };
  }

  #networksJson(c: SimContainer, withAliases: boolean): Json {
    const out: Json = {};
    for (const [name, ep] of c.endpoints) {
      const net = this.findNetwork(name);
      out[name] = {
        IPAMConfig: ep.ipamConfig,
        Links: null,
        Aliases: withAliases ? ep.aliases : null,
        NetworkID: ep.networkId,
        EndpointID: ep.endpointId,
        Gateway: ep.ip && net ? net.gateway : '',
        IPAddress: ep.ip,
        IPPrefixLen: ep.ip && net ? Number(net.subnet.split('/')[1]) : 0,
        IPv6Gateway: '',
        GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0,
        MacAddress: ep.ip ? macOf(ep.ip) : '',
        DriverOpts: null,
      };
    }
    return out;
  }

  #portMap(c: SimContainer): Json {
    const out: Record<string, Json[] | null> = {};
    for (const port of Object.keys((c.config.ExposedPorts as Json | undefined) ?? {})) out[port] = null;
    for (const p of c.ports) {
      out[p.container] = [...(out[p.container] ?? []), { HostIp: p.hostIp, HostPort: p.hostPort }];
      if (p.hostIp === '0.0.0.0') out[p.container]!.push({ HostIp: '::', HostPort: p.hostPort });
    }
    return out;
  }

  summaryJson(c: SimContainer, now = Date.now()): Json {
    const argv = [...((c.config.Entrypoint as string[] | null) ?? []), ...((c.config.Cmd as string[] | null) ?? [])];
    const ports: Json[] = [];
    const bound = new Set(c.ports.map((p) => p.container));
    for (const port of Object.keys((c.config.ExposedPorts as Json | undefined) ?? {})) {
      if (!bound.has(port)) ports.push({ PrivatePort: Number(port.split('/')[0]), Type: port.split('/')[1] ?? 'tcp' });
    }
    for (const p of c.ports) {
      const base = { PrivatePort: Number(p.container.split('/')[0]), PublicPort: Number(p.hostPort), Type: p.type };
      ports.push({ IP: p.hostIp, ...base });
      if (p.hostIp === '0.0.0.0') ports.push({ IP: '::', ...base });
    }
    return {
      Id: c.id,
      Names: [`/${c.name}`],
      Image: c.imageRef,
      ImageID: c.image.id,
      Command: argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' '),
      Created: Math.floor(c.created / 1000),
      Ports: ports,
      Labels: c.config.Labels,
      State: c.state,
      Status: this.status(c, now),
      HostConfig: { NetworkMode: c.hostConfig.NetworkMode ?? 'default' },
      NetworkSettings: { Networks: this.#networksJson(c, false) },
      Mounts: c.mounts.map((m) => ({ ...m })),
    };
  }

  /** The containers a list call returns (newest first, as Docker lists them). */
  listContainers(all: boolean, filters: Record<string, string[]>): SimContainer[] {
    for (const key of Object.keys(filters)) {
      if (!['label', 'name', 'status', 'id', 'ancestor', 'network', 'volume'].includes(key)) throw new ApiError(400, `Invalid filter '${key}'`);
    }
    const list = [...this.containers.values()].filter((c) => all || c.state === 'running' || filters.status?.length);
    return list
      .filter((c) => matchLabels(c.config.Labels, filters.label))
      .filter((c) => !filters.name?.length || filters.name.some((n) => new RegExp(n).test(`/${c.name}`)))
      .filter((c) => !filters.status?.length || filters.status.includes(c.state))
      .filter((c) => !filters.id?.length || filters.id.some((i) => c.id.startsWith(i)))
      .filter((c) => !filters.ancestor?.length || filters.ancestor.some((a) => this.findImage(a) === c.image))
      .filter((c) => !filters.network?.length || filters.network.some((n) => c.endpoints.has(n)))
      .filter((c) => !filters.volume?.length || c.mounts.some((m) => filters.volume!.includes(String(m.Name ?? m.Destination))))
      .sort((a, b) => b.created - a.created);
  }

  // ---- networks ----

  findNetwork(ref: string): SimNetwork | undefined {
    const byName = this.networks.get(ref);
    if (byName) return byName;
    for (const n of this.networks.values()) if (n.id === ref) return n;
    if (/^[0-9a-f]+$/.test(ref)) {
      const found = [...this.networks.values()].filter((n) => n.id.startsWith(ref));
      if (found.length === 1) return found[0];
    }
    return undefined;
  }

  network(ref: string): SimNetwork {
    const n = this.findNetwork(ref);
    if (!n) throw new ApiError(404, `network ${ref} not found`);
    return n;
  }

  createNetwork(body: Json): SimNetwork {
    const name = String(body.Name ?? '');
    if (!name) throw new ApiError(400, 'invalid name: name is empty');
    if (this.networks.has(name)) throw new ApiError(409, `network with name ${name} already exists`);
    const ipam = (body.IPAM ?? {}) as { Driver?: string; Config?: Array<{ Subnet?: string; Gateway?: string }>; Options?: Record<string, string> };
    const given = ipam.Config?.find((c) => c.Subnet);
    let subnet = given?.Subnet ?? '';
    if (!subnet) {
      const taken = new Set([...this.networks.values()].map((n) => n.subnet));
      do {
        const k = this.#nextSubnet++;
        subnet = `${this.#subnetBase[0]}.${this.#subnetBase[1] + Math.floor(k / 256)}.${k % 256}.0/24`;
      } while (taken.has(subnet));
    }
    const gateway = given?.Gateway ?? subnet.replace(/\.\d+\/\d+$/, '.1');
    const net: SimNetwork = {
      id: hex64(),
      name,
      driver: String(body.Driver || 'bridge'),
      created: Date.now(),
      labels: (body.Labels as Record<string, string> | undefined) ?? {},
      internal: Boolean(body.Internal),
      attachable: Boolean(body.Attachable),
      enableIPv6: Boolean(body.EnableIPv6),
      options: (body.Options as Record<string, string> | undefined) ?? {},
      ipamDriver: ipam.Driver ?? 'default',
      ipamOptions: ipam.Options ?? null,
      subnet,
      gateway,
      userSubnet: given !== undefined,
      builtin: false,
      used: new Set([gateway]),
    };
    this.networks.set(name, net);
    this.#networkEvent(net, 'create');
    return net;
  }

  removeNetwork(net: SimNetwork): void {
    if (net.builtin) throw new ApiError(403, `${net.name} is a pre-defined network and cannot be removed`);
    const attached = [...this.containers.values()].some((c) => c.endpoints.get(net.name)?.ip);
    if (attached) throw new ApiError(403, `error while removing network: network ${net.name} id ${net.id} has active endpoints`);
    // a stopped container keeps the network in its config, as with Docker: its next start fails
    this.networks.delete(net.name);
    this.#networkEvent(net, 'destroy');
  }

  connect(net: SimNetwork, ref: string, config: Json | undefined): void {
    const c = this.container(ref);
    const existing = c.endpoints.get(net.name);
    if (existing && (existing.ip || c.state !== 'running')) throw new ApiError(403, `endpoint with name ${c.name} already exists in network ${net.name}`);
    const ipamConfig = (config?.IPAMConfig as Endpoint['ipamConfig'] | undefined) ?? null;
    if (ipamConfig?.IPv4Address && !net.userSubnet) {
      throw new ApiError(400, 'user specified IP address is supported only when connecting to networks with user configured subnets');
    }
    if (ipamConfig?.IPv4Address && net.used.has(ipamConfig.IPv4Address)) throw new ApiError(403, `Address already in use`);
    const aliases = (config?.Aliases as string[] | undefined) ?? [];
    const ep: Endpoint = { networkId: '', aliases: aliases.length ? [...aliases] : null, ipamConfig, ip: '', endpointId: '' };
    c.endpoints.set(net.name, ep);
    if (c.state === 'running') this.#attach(c, net, ep);
  }

  disconnect(net: SimNetwork, ref: string): void {
    const c = this.container(ref);
    const ep = c.endpoints.get(net.name);
    if (!ep) throw new ApiError(500, `container ${c.id} is not connected to network ${net.name}`);
    if (ep.ip) this.#detach(c, net, ep);
    c.endpoints.delete(net.name);
  }

  networkJson(net: SimNetwork, withContainers: boolean): Json {
    const containers: Json = {};
    if (withContainers) {
      for (const c of this.containers.values()) {
        const ep = c.endpoints.get(net.name);
        if (!ep?.ip) continue;
        containers[c.id] = {
          Name: c.name,
          EndpointID: ep.endpointId,
          MacAddress: macOf(ep.ip),
          IPv4Address: `${ep.ip}/${net.subnet.split('/')[1]}`,
          IPv6Address: '',
        };
      }
    }
    return {
      Name: net.name,
      Id: net.id,
      Created: iso(net.created),
      Scope: 'local',
      Driver: net.driver,
      EnableIPv6: net.enableIPv6,
      IPAM: { Driver: net.ipamDriver, Options: net.ipamOptions, Config: net.subnet ? [{ Subnet: net.subnet, Gateway: net.gateway }] : [] },
      Internal: net.internal,
      Attachable: net.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options: net.options,
      Labels: net.labels,
    };
  }

  listNetworks(filters: Record<string, string[]>): SimNetwork[] {
    return [...this.networks.values()]
      .filter((n) => matchLabels(n.labels, filters.label))
      .filter((n) => !filters.name?.length || filters.name.some((f) => n.name.includes(f)))
      .filter((n) => !filters.id?.length || filters.id.some((f) => n.id.startsWith(f)))
      .filter((n) => !filters.driver?.length || filters.driver.includes(n.driver))
      .filter((n) => !filters.type?.length || filters.type.includes(n.builtin ? 'builtin' : 'custom'));
  }

  // ---- volumes ----

  createVolume(body: Json): SimVolume {
    const name = String(body.Name || hex64());
    const existing = this.volumes.get(name);
    if (existing) return existing;
    const v: SimVolume = {
      name,
      driver: String(body.Driver || 'local'),
      labels: (body.Labels as Record<string, string> | undefined) ?? null,
      options: (body.DriverOpts as Record<string, string> | undefined) ?? null,
      created: Date.now(),
    };
    this.volumes.set(name, v);
    this.#emit({ Type: 'volume', Action: 'create', Actor: { ID: name, Attributes: { driver: v.driver } } });
    return v;
  }

  volume(name: string): SimVolume {
    const v = this.volumes.get(name);
    if (!v) throw new ApiError(404, `get ${name}: no such volume`);
    return v;
  }

  removeVolume(v: SimVolume): void {
    const users = [...this.containers.values()].filter((c) => c.mounts.some((m) => m.Type === 'volume' && m.Name === v.name));
    if (users.length) throw new ApiError(409, `remove ${v.name}: volume is in use - [${users.map((c) => c.id).join(', ')}]`);
    this.volumes.delete(v.name);
    this.#emit({ Type: 'volume', Action: 'destroy', Actor: { ID: v.name, Attributes: { driver: v.driver } } });
  }

  volumeJson(v: SimVolume): Json {
    return {
      CreatedAt: new Date(Math.floor(v.created / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
      Driver: v.driver,
      Labels: v.labels,
      Mountpoint: `/var/lib/docker/volumes/${v.name}/_data`,
      Name: v.name,
      Options: v.options,
      Scope: 'local',
    };
  }

  listVolumes(filters: Record<string, string[]>): SimVolume[] {
    return [...this.volumes.values()]
      .filter((v) => matchLabels(v.labels ?? {}, filters.label))
      .filter((v) => !filters.name?.length || filters.name.some((f) => v.name.includes(f)))
      .filter((v) => !filters.driver?.length || filters.driver.includes(v.driver));
  }

  // ---- events ----

  #containerEvent(c: SimContainer, action: string, extra: Record<string, string> = {}): void {
    const attributes: Record<string, string> = { ...c.config.Labels, image: c.imageRef, name: c.name, ...extra };
    this.#emit({ status: action, id: c.id, from: c.imageRef, Type: 'container', Action: action, Actor: { ID: c.id, Attributes: attributes } });
  }

  #networkEvent(net: SimNetwork, action: string, container?: string): void {
    const attributes: Record<string, string> = { ...(container ? { container } : {}), name: net.name, type: net.driver };
    this.#emit({ Type: 'network', Action: action, Actor: { ID: net.id, Attributes: attributes } });
  }

  #emit(event: Json): void {
    const now = Date.now();
    // nanoseconds past the millisecond keep the events of one millisecond in order
    const nano = BigInt(now) * 1_000_000n + BigInt(this.#nanoSeq++ % 1_000_000);
    const line = `${JSON.stringify({ ...event, scope: 'local', time: Math.floor(now / 1000), timeNano: 0 }).replace('"timeNano":0', `"timeNano":${nano}`)}\n`;
    this.#events.push(line);
    this.#eventTimes.push(now);
    if (this.#events.length > EVENTS_KEPT) {
      this.#events.shift();
      this.#eventTimes.shift();
    }
    for (const s of this.#subscribers) if (matchEvent(event, s.filters)) s.res.write(line);
  }

  /**
   * Streams events to `res`: those kept since `sinceMs` first, then new ones until `untilMs` (then
   * the stream ends) or the client goes.
   */
  subscribe(res: ServerResponse, filters: Record<string, string[]>, sinceMs?: number, untilMs?: number): void {
    const replay =
      sinceMs === undefined ? [] : this.#events.filter((_, i) => this.#eventTimes[i]! >= sinceMs && (untilMs === undefined || this.#eventTimes[i]! <= untilMs));
    for (const line of replay) if (matchEvent(JSON.parse(line) as Json, filters)) res.write(line);
    if (untilMs !== undefined && untilMs <= Date.now()) {
      res.end();
      return;
    }
    const s: Subscriber = { filters, res };
    this.#subscribers.add(s);
    const done = () => this.#subscribers.delete(s);
    res.on('close', done);
    if (untilMs !== undefined) {
      const t = setTimeout(() => {
        done();
        res.end();
      }, untilMs - Date.now());
      t.unref();
      res.on('close', () => clearTimeout(t));
    }
  }

  info(): Json {
    const all = [...this.containers.values()];
    const running = all.filter((c) => c.state === 'running').length;
    return {
      ID: this.id,
      Containers: all.length,
      ContainersRunning: running,
      ContainersPaused: 0,
      ContainersStopped: all.length - running,
      Images: this.images.size,
      Driver: 'overlay2',
      DockerRootDir: '/var/lib/docker',
      Name: this.name,
      NCPU: this.cpus,
      MemTotal: this.memoryBytes,
      ServerVersion: SERVER_VERSION,
      OperatingSystem: 'berth Docker simulator',
      OSType: 'linux',
      Architecture: 'x86_64',
      KernelVersion: '6.1.0-sim',
      IndexServerAddress: 'https://index.docker.io/v1/',
      Labels: [],
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      Warnings: null,
    };
  }

  version(): Json {
    return {
      Platform: { Name: 'berth Docker simulator' },
      Components: [{ Name: 'Engine', Version: SERVER_VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: '1.12', Os: 'linux', Arch: 'amd64' } }],
      Version: SERVER_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: '1.12',
      GitCommit: 'sim',
      GoVersion: 'go1.19.8',
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: '6.1.0-sim',
      BuildTime: '2026-01-01T00:00:00.000000000+00:00',
    };
  }
}

export const API_VERSION = '1.41';
export const SERVER_VERSION = '20.10.24-sim';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** When a health plan changes the status from `starting`, ms after the start. */
function healthChangeAt(p: HealthPlan): number {
  return (p.pass ? 1 : firstCounted(p) + p.retries - 1) * p.intervalMs + p.probeMs;
}

/** The first probe whose failure counts: Docker does not count failures inside the start period. */
function firstCounted(p: HealthPlan): number {
  return Math.max(1, Math.ceil(p.startPeriodMs / p.intervalMs));
}

/** The last 5 probes' results up to `now`, as State.Health.Log. */
function healthLog(c: SimContainer, now: number): Json[] {
  const p = c.health;
  if (!p || !c.startedAt) return [];
  const probes = Math.floor((Math.min(now, c.finishedAt > c.startedAt ? c.finishedAt : now) - c.startedAt - p.probeMs) / p.intervalMs);
  const out: Json[] = [];
  for (let k = Math.max(1, probes - 4); k <= probes; k++) {
    const start = c.startedAt + k * p.intervalMs;
    out.push({ Start: iso(start), End: iso(start + Math.max(1, p.probeMs)), ExitCode: p.pass ? 0 : 1, Output: '' });
  }
  return out;
}

function allocate(net: SimNetwork): string {
  const [a, b, c] = net.subnet.split('/')[0]!.split('.').map(Number);
  const bits = Number(net.subnet.split('/')[1]);
  const size = 2 ** (32 - bits);
  for (let i = 2; i < size - 1; i++) {
    const n = ((a! << 24) >>> 0) + (b! << 16) + (c! << 8) + i;
    const ip = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    if (!net.used.has(ip)) return ip;
  }
  throw new ApiError(500, `no available IPv4 addresses on this network's address pools: ${net.name} (${net.id})`);
}

const macOf = (ip: string) =>
  `02:42:${ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .join(':')}`;

/** Whether `labels` match every `key` or `key=value` of a label filter. */
function matchLabels(labels: Record<string, string>, wanted: string[] | undefined): boolean {
  if (!wanted?.length) return true;
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? w in labels : labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/** Docker's events filters: type, event (the action before any `:`), label, container, image, network, volume. */
function matchEvent(e: Json, filters: Record<string, string[]>): boolean {
  const actor = e.Actor as { ID: string; Attributes: Record<string, string> };
  const action = String(e.Action).split(':')[0]!.trim();
  const has = (k: string) => (filters[k]?.length ?? 0) > 0;
  if (has('type') && !filters.type!.includes(String(e.Type))) return false;
  if (has('event') && !filters.event!.includes(action) && !filters.event!.includes(String(e.Action))) return false;
  if (has('label') && !matchLabels(actor.Attributes, filters.label)) return false;
  if (has('container') && (e.Type !== 'container' || !filters.container!.some((c) => actor.ID.startsWith(c) || actor.Attributes.name === c))) return false;
  if (has('image') && !filters.image!.includes(String(e.from))) return false;
  if (has('network') && (e.Type !== 'network' || !filters.network!.some((n) => actor.ID.startsWith(n) || actor.Attributes.name === n))) return false;
  if (has('volume') && (e.Type !== 'volume' || !filters.volume!.includes(actor.ID))) return false;
  return true;
}

/** The container's Config: what was asked, merged with its image's as Docker merges them (daemon/commit.go merge). */
function mergeConfig(body: Json, image: ImageConfig, id: string): SimContainer['config'] {
  const given = (k: string) => body[k];
  const userEnv = (given('Env') as string[] | undefined) ?? [];
  const keyOf = (e: string) => e.split('=')[0];
  const env = userEnv.length ? [...userEnv, ...(image.Env ?? []).filter((e) => !userEnv.some((u) => keyOf(u) === keyOf(e)))] : [...(image.Env ?? [])];
  const userEntry = given('Entrypoint') as string[] | undefined;
  let cmd = given('Cmd') as string[] | undefined;
  let entrypoint = userEntry;
  if (!userEntry?.length) {
    if (!cmd?.length) cmd = image.Cmd ?? undefined;
    if (userEntry === undefined) entrypoint = image.Entrypoint ?? undefined;
  }
  const hc = given('Healthcheck') as Json | undefined;
  const ihc = image.Healthcheck as Json | undefined;
  const healthcheck = hc
    ? {
        ...(ihc ?? {}),
        ...Object.fromEntries(Object.entries(hc).filter(([, v]) => v !== undefined && v !== 0 && !(Array.isArray(v) && v.length === 0))),
      }
    : ihc;
  return {
    Hostname: (given('Hostname') as string | undefined) || id.slice(0, 12),
    Domainname: (given('Domainname') as string | undefined) ?? '',
    User: (given('User') as string | undefined) || image.User || '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ExposedPorts: { ...(image.ExposedPorts ?? {}), ...((given('ExposedPorts') as Json | undefined) ?? {}) },
    Tty: Boolean(given('Tty')),
    OpenStdin: Boolean(given('OpenStdin')),
    StdinOnce: false,
    Env: env,
    Cmd: cmd ?? null,
    ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    Image: String(given('Image') ?? ''),
    Volumes: { ...(image.Volumes ?? {}), ...((given('Volumes') as Json | undefined) ?? {}) },
    WorkingDir: (given('WorkingDir') as string | undefined) || image.WorkingDir || '',
    Entrypoint: entrypoint ?? null,
    OnBuild: null,
    Labels: { ...(image.Labels ?? {}), ...((given('Labels') as Record<string, string> | undefined) ?? {}) },
    ...((given('StopSignal') as string | undefined) || image.StopSignal ? { StopSignal: (given('StopSignal') as string | undefined) || image.StopSignal } : {}),
    ...(given('StopTimeout') !== undefined ? { StopTimeout: given('StopTimeout') } : {}),
  };
}

/** HostConfig as inspect shows it: what was asked, over Docker's defaults. */
function hostConfigOf(asked: Json | undefined): Json {
  const mounts = (asked?.Mounts as Json[] | undefined)?.map((m) =>
    Object.fromEntries(Object.entries(m).filter(([, v]) => v !== false && v !== undefined && v !== '')),
  );
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: {} },
    NetworkMode: 'default',
    PortBindings: null,
    AutoRemove: false,
    VolumeDriver: '',
    VolumesFrom: null,
    CapAdd: null,
    CapDrop: null,
    Dns: null,
    DnsOptions: null,
    DnsSearch: null,
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: 'private',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    ShmSize: 67108864,
    Runtime: 'runc',
    Memory: 0,
    NanoCpus: 0,
    MemoryReservation: 0,
    PidsLimit: null,
    Ulimits: null,
    ...Object.fromEntries(Object.entries(asked ?? {}).filter(([, v]) => v !== undefined)),
    RestartPolicy: { Name: '', MaximumRetryCount: 0, ...((asked?.RestartPolicy as Json | undefined) ?? {}) },
    ...(mounts ? { Mounts: mounts } : {}),
  };
}
