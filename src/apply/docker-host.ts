/**
 * The Docker edge: turns plan steps into dockerode calls on one host, and nothing else.
 * Every call here either reads or is one of the plan's mutations; idempotent where Docker allows
 * (a container already gone is fine to remove), so a plan interrupted midway can be re-run.
 */
import { posix } from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { extract, pack } from 'tar-stream';
import { imageRepository } from '../render/build.ts';
import { Registries, registryOf, type Credential } from './registries.ts';
import {
  LABEL,
  networkConfig,
  ownerLabels,
  Sealed,
  type BuildRequest,
  type ContainerSpec,
  type FileDelivery,
  type IpamSpec,
  type NetworkSpec,
  type PullPolicy,
  type VolumeSpec,
} from '../model.ts';
import type { CreateOptions, HostOps } from './host-ops.ts';
import { redact } from './job.ts';
import { logText, readLogTail } from '../observe/container-logs.ts';

/** How many builds of a service a host keeps (the newest). */
export const BUILDS_KEPT = 3;

/** A Docker API error with the daemon's message, without the request details dockerode adds. */
/**
 * berth's labels that a container may go without: a container gets the labels of its image too,
 * and an image (built from a repo's Dockerfile, or pulled) could carry them, so each is set, empty
 * when it says nothing, and berth reads an empty one as absent.
 */
/** How many containers' written files a host keeps in memory to mask their output. */
const WRITTEN_KEPT = 2000;

const UNSET_LABELS: Record<string, string> = Object.fromEntries(
  [LABEL.job, LABEL.files, LABEL.reserveCpus, LABEL.reserveMemory, LABEL.digest].map((k) => [k, '']),
);

export class DockerError extends Error {
  readonly statusCode?: number;
  /** the daemon's own words, without what berth says around them */
  readonly said: string;
  /** `after`: said after the daemon's message (where it happened, which credentials). */
  constructor(what: string, err: unknown, after?: string) {
    const e = err as { statusCode?: number; json?: { message?: string } | null; reason?: string; message?: string };
    const said = e.json?.message ?? streamCause(e.message) ?? e.reason ?? e.message ?? String(err);
    super(`${what}: ${said}${after ? ` ${after}` : ''}`);
    this.statusCode = e.statusCode;
    this.said = said;
  }
}

const status = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** What a failed pull or digest look says after the daemon's words: the registry, and whose credentials went (or that none did). */
function registryNote(image: string, credential: Credential | undefined): string {
  const whose = credential ? `credentials from ${credential.source}` : 'no credentials for it in the engine config (registries:)';
  return `(registry ${registryOf(image)}, ${whose})`;
}

/**
 * The daemon's words of a failed streaming request (a pull, a build): docker-modem parses no JSON
 * for those and puts the daemon's answer in its message, `(HTTP code 500) server error - <answer> `;
 * without this, a registry's "unauthorized" or "manifest unknown" read as "server error".
 */
function streamCause(message: string | undefined): string | undefined {
  return /^\(HTTP code \d+\) [^-]* - ([\s\S]*?)\s*$/.exec(message ?? '')?.[1] || undefined;
}

/** The executor uses a host through HostOps only (host-ops.ts): a recording fake stands in for it in tests. */
export class DockerHost implements HostOps {
  readonly name: string;
  readonly docker: Dockerode;
  private readonly registries: Registries;
  private readonly log: Logger;
  /** images made present (or being made present), by pull policy and name */
  private readonly images = new Map<string, Promise<boolean>>();
  private readonly imageEnvs = new Map<string, Promise<string[]>>();
  /** containers berth itself created, stopped, removed or renamed lately, and the events that caused */
  private readonly own = new Map<string, { until: number; actions: Set<string> }>();
  /** names of containers berth is creating, and until when their create event is its own */
  private readonly creating = new Map<string, number>();
  /** what waits for a container's next event (changed()), by container id */
  private readonly waiters = new Map<string, Set<() => void>>();

  /** throws when this engine may no longer change hosts (src/engine/cluster.ts, fencing) */
  private readonly fence: (step: string, host: string) => void;

  /**
   * `registries`: the credentials pulls send (none: anonymous pulls). `fence`: called before each
   * step that changes the host, to refuse it (by throwing) to an engine that no longer leads.
   */
  constructor(
    name: string,
    docker: Dockerode,
    log: Logger,
    registries: Registries = Registries.none(),
    fence: (step: string, host: string) => void = () => undefined,
  ) {
    this.name = name;
    this.docker = docker;
    this.log = log.child({ host: name });
    this.registries = registries;
    this.fence = fence;
  }

  /**
   * True when the event is one of berth's own doing: an action it took on that container in the
   * last 10 s. A `create` is known by the container's name too: its event can arrive before the
   * create call's answer gives the id.
   */
  isOwn(id: string, action: string, name?: string): boolean {
    if (action === 'create' && name !== undefined) {
      const at = this.creating.get(name);
      if (at !== undefined && at >= Date.now()) return true;
    }
    const mine = this.own.get(id);
    if (!mine) return false;
    if (mine.until < Date.now()) {
      this.own.delete(id);
      return false;
    }
    return mine.actions.has(action);
  }

  /**
   * A container's event, as the host's event stream told it (when berth follows the hosts' events:
   * src/engine/drift.ts): ends every changed() wait on that container at once.
   */
  noteEvent(id: string): void {
    const waiting = this.waiters.get(id);
    if (!waiting) return;
    this.waiters.delete(id);
    for (const wake of waiting) wake();
  }

  /**
   * Resolves on the container's next event (noteEvent), or after `ms`, whichever comes first: a
   * readiness wait (src/apply/health.ts) sees a health check's verdict as Docker announces it,
   * with its poll as the fallback when no event comes (berth not following the events).
   */
  changed(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiting = this.waiters.get(id);
      if (!waiting) this.waiters.set(id, (waiting = new Set()));
      const set = waiting;
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  /** Notes the events berth's next call on a container causes, so that they are not taken for drift. */
  private mark(id: string, actions: string[]): void {
    const mine = this.own.get(id);
    const until = Date.now() + 10_000;
    if (mine && mine.until >= Date.now()) {
      actions.forEach((a) => mine.actions.add(a));
      mine.until = until;
    } else this.own.set(id, { until, actions: new Set(actions) });
  }

  /** The environment an image sets (cached by image), to tell it from environment set by hand. */
  imageEnv(image: string): Promise<string[]> {
    let p = this.imageEnvs.get(image);
    if (!p) {
      p = this.docker
        .getImage(image)
        .inspect()
        .then(
          (i) => i.Config?.Env ?? [],
          () => [],
        );
      this.imageEnvs.set(image, p);
    }
    return p;
  }

  /**
   * Gets the container's image onto the host as its pull policy says: `missing` pulls when absent,
   * `always` pulls (once per sync wave: concurrent asks share one pull), `never` only checks, and a
   * service with `build:` is built here from the commit's tree unless an image of that build
   * (tagged with its hash) is here already. `platform` (os/arch[/variant]), when given, must match
   * what the host has, or is pulled. Called before any old container is touched. True when this
   * call built the image: its caller reports the build (a call that shares another's gets false).
   */
  prepare(spec: ContainerSpec): Promise<boolean> {
    const image = spec.create.Image ?? '';
    const policy = spec.pull ?? 'missing';
    const platform = spec.create.platform;
    const key = `${policy} ${image}${platform ? `@${platform}` : ''}`;
    const shared = this.images.get(key);
    if (shared) return shared.then(() => false);
    const p = this.getImage(image, policy, spec.build, platform);
    // only a present image is remembered; `always` pulls again next time
    p.then(
      () => policy === 'always' && this.images.delete(key),
      () => this.images.delete(key),
    );
    this.images.set(key, p);
    return p;
  }

  /** Whether it built the image. */
  private async getImage(image: string, policy: PullPolicy, build: BuildRequest | undefined, platform?: string): Promise<boolean> {
    if (build && policy === 'build') {
      if (await this.localImage(image)) return false;
      await this.build(build);
      return true;
    }
    if (policy === 'always') {
      try {
        await this.pull(image, platform);
        return false;
      } catch (err) {
        if (!build) throw err;
        this.log.warn({ image, err: (err as Error).message }, 'pull failed: building instead');
        await this.build(build);
        return true;
      }
    }
    const found = await this.localImage(image);
    if (found && (!platform || isFor(found, platform))) return false;
    if (policy === 'never') throw new Error(`image ${image}${platform ? ` for ${platform}` : ''} is not on host ${this.name}, and pull_policy is never`);
    if (build) {
      await this.build(build); // missing, with build: build what is not there
      return true;
    }
    const has = found ? ` (it has ${image} for ${platformOf(found)})` : '';
    await this.pull(image, platform, `pull ${image}${platform ? ` for ${platform}` : ''} on ${this.name}${has}`);
    return false;
  }

  /**
   * The registry's digest of `image` now (`sha256:...`), asked through this host's daemon (Docker's
   * distribution inspect, with the credentials of the image's registry), as `docker service create`
   * pins its images. An image this host has but never pulled (built or loaded here: it has no
   * RepoDigests) is the host's own: undefined, and no registry is asked (`registryImage`: the
   * caller knows it is a registry's, and the host's images are not looked at). A registry that
   * refuses or does not answer within `timeoutMs` throws, saying why as a pull would.
   */
  async registryDigest(image: string, { registryImage = false, timeoutMs = 30_000 } = {}): Promise<string | undefined> {
    if (!registryImage) {
      const local = await this.localImage(image);
      if (local && !local.RepoDigests?.length) return undefined;
    }
    const credential = await this.registries.credentialFor(image);
    this.log.debug({ image, registry: registryOf(image), credentials: credential?.source ?? 'none' }, 'asking the registry for the digest');
    const asked = this.docker.getImage(image).distribution(credential ? { authconfig: credential.authconfig() } : {});
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      return (await Promise.race([asked, late])).Descriptor.digest;
    } catch (err) {
      throw new DockerError(`resolve ${image} on ${this.name}`, err, registryNote(image, credential));
    } finally {
      clearTimeout(timer);
      asked.catch(() => undefined); // past the timeout, its failure is nobody's
    }
  }

  private async localImage(image: string): Promise<Dockerode.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(image).inspect();
    } catch (err) {
      if (status(err) !== 404) throw new DockerError(`inspect image ${image} on ${this.name}`, err);
      return undefined;
    }
  }

  /**
   * Pulls the image with the credentials `registries:` gives for its registry. A failure says the
   * registry's own reason, the registry, and whose credentials were sent (or that none were).
   */
  private async pull(image: string, platform?: string, failure = `pull ${image} on ${this.name}`): Promise<void> {
    const credential = await this.registries.credentialFor(image).catch((err: unknown) => {
      throw new Error(`${failure}: no credentials for registry ${registryOf(image)}: ${(err as Error).message}`);
    });
    this.log.info({ image, platform, registry: registryOf(image), credentials: credential?.source ?? 'none' }, 'pulling image');
    try {
      const stream = await this.docker.pull(image, { ...(platform ? { platform } : {}), ...(credential ? { authconfig: credential.authconfig() } : {}) });
      await new Promise<void>((resolve, reject) => this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
    } catch (err) {
      throw new DockerError(failure, err, registryNote(image, credential));
    }
    const pulled = platform ? await this.localImage(image) : undefined;
    if (platform && pulled && !isFor(pulled, platform)) {
      throw new Error(`image ${image} pulled on ${this.name} is for ${platformOf(pulled)}, not ${platform}`);
    }
  }

  /**
   * Builds a service's image from its context (a tar of the commit's files sent to the daemon),
   * tagged with the build's hash and the service's `image:` and `tags:`. The daemon's output goes to
   * the log line by line; its error fails the build with the daemon's words.
   */
  async build(b: BuildRequest): Promise<void> {
    this.fence(`build ${b.image}`, this.name);
    const log = this.log.child({ stack: b.stack, service: b.service });
    const started = Date.now();
    const names = [...new Set([b.image, ...b.spec.tags].filter((n) => n && n !== b.ref))];
    // A name is only a label of this stack's own build: one that names an image berth did not build
    // for this stack (pulled, another stack's, made by hand) is never moved, so nothing is built.
    for (const name of names) {
      const existing = await this.localImage(name);
      const labels = existing?.Config?.Labels ?? {};
      if (!existing || (labels[LABEL.managed] === 'true' && labels[LABEL.stack] === b.stack)) continue;
      const owner = labels[LABEL.managed] === 'true' ? `berth's build for stack ${labels[LABEL.stack] ?? '?'}` : 'an image berth did not build';
      throw new Error(
        `build ${b.service} on ${this.name}: the tag ${name} names ${owner}: a build does not retag it (give the service an image: name of its own)`,
      );
    }
    log.info({ image: b.ref, files: b.context.length }, 'building image');
    const tar = pack();
    for (const f of b.context) {
      if (f.mode === 0o120000) tar.entry({ name: f.path, type: 'symlink', linkname: new TextDecoder().decode(f.content) });
      else tar.entry({ name: f.path, mode: f.mode & 0o777 }, Buffer.from(f.content));
    }
    tar.finalize();
    const s = b.spec;
    const options: Dockerode.ImageBuildOptions = {
      t: b.ref,
      dockerfile: s.dockerfile,
      buildargs: s.args,
      target: s.target,
      labels: { ...s.labels, [LABEL.buildHash]: s.hash, [LABEL.managed]: 'true', [LABEL.stack]: b.stack, [LABEL.service]: b.service },
      nocache: s.noCache,
      pull: s.pull || undefined,
      networkmode: s.network,
      shmsize: s.shmSizeBytes,
      extrahosts: s.extraHosts.length ? s.extraHosts.join(',') : undefined,
      cachefrom: s.cacheFrom.length ? JSON.stringify(s.cacheFrom) : undefined,
      rm: true,
      forcerm: true,
    };
    let failure: string | undefined;
    try {
      // the daemon takes an empty query value as a value ("bad format for add-host"): unset ones are left out
      const query = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Dockerode.ImageBuildOptions;
      const stream = await this.docker.buildImage(tar as unknown as NodeJS.ReadableStream, query);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { stream?: string; error?: string; errorDetail?: { message?: string } }) => {
            if (event.error) failure = event.errorDetail?.message ?? event.error;
            for (const line of (event.stream ?? '').split('\n')) if (line.trim()) log.info({ build: line.trim() }, 'build output');
          },
        ),
      );
    } catch (err) {
      throw new DockerError(`build ${b.service} on ${this.name}`, err);
    }
    if (failure !== undefined) throw new Error(`build ${b.service} on ${this.name}: ${failure.trim()}`);
    for (const name of names) {
      const { repo, tag } = splitRef(name);
      await this.docker.getImage(b.ref).tag({ repo, tag });
    }
    log.info({ image: b.ref, ms: Date.now() - started }, 'image built');
    await this.pruneBuilds(b.stack, b.service).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'cannot remove older builds'));
  }

  /**
   * Removes the service's builds on this host beyond the newest BUILDS_KEPT (a rollback to one of
   * those needs no build; an older commit's is built again). An image a container still uses stays.
   */
  async pruneBuilds(stack: string, service: string): Promise<void> {
    this.fence(`prune the builds of ${stack}/${service}`, this.name);
    const label = [`${LABEL.managed}=true`, `${LABEL.stack}=${stack}`, `${LABEL.service}=${service}`];
    const builds = (await this.docker.listImages({ filters: { label } })).sort((a, b) => b.Created - a.Created);
    for (const image of builds.slice(BUILDS_KEPT)) {
      const refs = (image.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      try {
        // by name, each of them (an image with several names cannot be removed by id without force), or by id when it has none
        for (const ref of refs.length ? refs : [image.Id]) await this.docker.getImage(ref).remove();
        this.log.info({ stack, service, image: refs[0] ?? image.Id.slice(7, 19) }, 'older build removed');
      } catch (err) {
        if (status(err) !== 409) throw err; // 409: a container uses it
      }
    }
  }

  /**
   * Creates a stack network. With `fixedSubnet` (a start-first service joins it) the network gets a
   * subnet of its own, configured: Docker lets a container connect with a given address only on
   * such a network, and that is how a replica gains or gives up the service's name without losing
   * its address and open connections (reconnect). The subnet is one Docker picked as free, beside
   * its other networks and the host's routes: an internal network is made first to learn it (the
   * cheapest kind to make and remove), then removed. That costs the daemon ~160 ms more per
   * network, and the bridge otherwise ~300 ms (~6 s over a cold deploy of 20 stacks), so a network
   * no start-first service joins is made in one step, its subnet left to Docker.
   */
  async createNetwork(spec: NetworkSpec, repo: string, stack: string, { fixedSubnet = false }: { fixedSubnet?: boolean } = {}): Promise<string> {
    this.fence(`create network ${spec.name}`, this.name);
    const driver = spec.driver ?? 'bridge';
    const config = networkConfig(spec);
    const options = {
      Name: spec.name,
      Driver: driver,
      CheckDuplicate: true,
      Labels: { ...spec.labels, ...ownerLabels(repo, stack), [LABEL.composeNetwork]: spec.key, ...(config ? { [LABEL.networkConfig]: config } : {}) },
      ...(spec.enableIpv6 !== undefined ? { EnableIPv6: spec.enableIpv6 } : {}),
      ...(spec.ipam ? { IPAM: ipamOptions(spec.ipam) } : {}),
    };
    try {
      // a network whose ipam gives a subnet has one configured already
      const configured = spec.ipam?.config.some((c) => c.subnet !== undefined) ?? false;
      if (!fixedSubnet || driver !== 'bridge' || configured) return (await this.docker.createNetwork(options)).id;
      const probe = await this.docker.createNetwork({ ...options, Name: `${spec.name}-subnet`, Internal: true });
      const ipam = (await probe.inspect()).IPAM as { Config?: Array<{ Subnet?: string; Gateway?: string }> } | undefined;
      await probe.remove();
      const picked = ipam?.Config?.filter((c) => c.Subnet) ?? [];
      return (await this.docker.createNetwork(picked.length ? { ...options, IPAM: { Driver: 'default', Config: picked } } : options)).id;
    } catch (err) {
      throw new DockerError(`create network ${spec.name} on ${this.name}`, err);
    }
  }

  async createVolume(spec: VolumeSpec, repo: string, stack: string): Promise<void> {
    this.fence(`create volume ${spec.name}`, this.name);
    try {
      await this.docker.createVolume({
        Name: spec.name,
        Driver: spec.driver ?? 'local',
        Labels: { ...spec.labels, ...ownerLabels(repo, stack), [LABEL.composeVolume]: spec.key },
      });
    } catch (err) {
      throw new DockerError(`create volume ${spec.name} on ${this.name}`, err);
    }
  }

  async removeNetwork(name: string): Promise<void> {
    this.fence(`remove network ${name}`, this.name);
    try {
      await this.docker.getNetwork(name).remove();
    } catch (err) {
      if (status(err) !== 404) throw new DockerError(`remove network ${name} on ${this.name}`, err);
    }
  }

  /**
   * Creates the container under `name`, connects it to its networks and starts it; returns its id.
   * With `aliases: false` it joins its networks under its own name only, so that it gets no traffic
   * sent to the service's name until `joinService()` (start-first updates).
   */
  async createAndStart(spec: ContainerSpec, opts: CreateOptions = {}): Promise<string> {
    const id = await this.create(spec, opts);
    await this.start(id, opts.name ?? spec.name);
    return id;
  }

  /**
   * Creates the container (see createAndStart) with its files written in, without starting it: a
   * scheduled job's, started on its schedule.
   */
  async create(spec: ContainerSpec, { name = spec.name, aliases = true, prepared = false }: CreateOptions = {}): Promise<string> {
    this.fence(`create container ${name}`, this.name);
    if (!prepared) await this.prepare(spec);
    const [first, ...others] = spec.networks;
    const endpoint = (n: ContainerSpec['networks'][number]) => ({ Aliases: aliases ? n.aliases : [], ...endpointAddresses(n) });
    let container: Dockerode.Container;
    for (const [n, until] of this.creating) if (until < Date.now()) this.creating.delete(n);
    this.creating.set(name, Date.now() + 10_000);
    try {
      container = await this.docker.createContainer({
        ...spec.create,
        // the labels berth reads back, set (empty when they say nothing) over any its image carries
        Labels: { ...UNSET_LABELS, ...spec.create.Labels },
        name,
        NetworkingConfig: first ? { EndpointsConfig: { [first.network]: endpoint(first) } } : spec.create.NetworkingConfig,
      });
    } catch (err) {
      throw new DockerError(`create container ${name} on ${this.name}`, err);
    }
    this.mark(container.id, ['create']);
    try {
      for (const n of others) {
        await this.docker.getNetwork(n.network).connect({ Container: container.id, EndpointConfig: endpoint(n) });
      }
      if (spec.files?.length) {
        await container.putArchive(filesTar(spec.files), { path: '/' });
        this.#remember(container.id, spec.files);
      }
    } catch (err) {
      throw new DockerError(`connect container ${name} (${container.id.slice(0, 12)}) or write its files on ${this.name}`, err);
    }
    return container.id;
  }

  /** Starts a container (again: a stopped one runs anew with the same config); `name` is for the error. */
  async start(id: string, name = id.slice(0, 12)): Promise<void> {
    this.fence(`start container ${name}`, this.name);
    this.mark(id, ['start']);
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      // 304: already running
      if (status(err) !== 304) throw new DockerError(`start container ${name} (${id.slice(0, 12)}) on ${this.name}`, err);
    }
  }

  /** Stops a container (its stop signal, then SIGKILL after its stop timeout) and keeps it; one already stopped is fine. */
  async stop(id: string): Promise<void> {
    this.fence(`stop container ${id.slice(0, 12)}`, this.name);
    this.mark(id, ['kill', 'die', 'stop']);
    try {
      await this.docker.getContainer(id).stop();
    } catch (err) {
      if (status(err) !== 304 && status(err) !== 404) throw new DockerError(`stop container ${id.slice(0, 12)} on ${this.name}`, err);
    }
  }

  /** Gives a container started with `aliases: false` its service aliases (Docker adds aliases only on connect). */
  async joinService(id: string, spec: ContainerSpec): Promise<void> {
    this.fence(`connect container ${spec.name}`, this.name);
    for (const n of spec.networks) await this.reconnect(id, n.network, n.aliases);
  }

  /**
   * Takes the service's names off a container, so that no new request is sent to it; open
   * connections carry on. A container on the host's, no, or another container's network has no
   * names of its own to give up.
   */
  async drain(id: string): Promise<void> {
    this.fence(`drain container ${id.slice(0, 12)}`, this.name);
    const info = await this.inspect(id);
    const mode = info?.HostConfig.NetworkMode ?? '';
    if (['host', 'none', 'bridge', 'default'].includes(mode) || mode.startsWith('container:')) return;
    for (const network of Object.keys(info?.NetworkSettings.Networks ?? {})) await this.reconnect(id, network, []);
  }

  /**
   * Reconnects a container to a network with other aliases, keeping its address (and so its MAC
   * and its TCP connections, after a pause of a few milliseconds) where the network allows it.
   */
  private async reconnect(id: string, network: string, aliases: string[]): Promise<void> {
    const info = await this.inspect(id);
    const ip = info?.NetworkSettings.Networks[network]?.IPAddress;
    const net = this.docker.getNetwork(network);
    try {
      await net.disconnect({ Container: id, Force: true });
      try {
        await net.connect({ Container: id, EndpointConfig: { ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}), Aliases: aliases } });
      } catch (err) {
        // A network whose subnet Docker chose alone (one berth made before a start-first service
        // joined it, or one made outside berth) takes no address from the caller.
        if (!ip || !/user configured subnets/.test(String((err as Error).message))) throw err;
        this.log.warn(
          { network, container: id.slice(0, 12) },
          'the network has no configured subnet: the container reconnects with a new address, and its open connections drop',
        );
        await net.connect({ Container: id, EndpointConfig: { Aliases: aliases } });
      }
    } catch (err) {
      throw new DockerError(`reconnect ${id.slice(0, 12)} to ${network} on ${this.name}`, err);
    }
  }

  async rename(id: string, name: string): Promise<void> {
    this.fence(`rename container ${id.slice(0, 12)} to ${name}`, this.name);
    this.mark(id, ['rename']);
    try {
      await this.docker.getContainer(id).rename({ name });
    } catch (err) {
      throw new DockerError(`rename ${id.slice(0, 12)} to ${name} on ${this.name}`, err);
    }
  }

  /** The container's inspect data, or undefined when it is gone. */
  async inspect(id: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(id).inspect();
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw new DockerError(`inspect ${id.slice(0, 12)} on ${this.name}`, err);
    }
  }

  /**
   * The files berth wrote into a container (its `berth.files` label), read back from it: what a
   * rollback must write into the container that puts it back. A file that is gone is skipped.
   */
  async readFiles(info: Dockerode.ContainerInspectInfo): Promise<FileDelivery[]> {
    const targets = JSON.parse(info.Config.Labels?.[LABEL.files] || '[]') as string[];
    const out: FileDelivery[] = [];
    for (const target of targets) {
      let archive: NodeJS.ReadableStream;
      try {
        archive = await this.docker.getContainer(info.Id).getArchive({ path: target });
      } catch (err) {
        if (status(err) === 404) continue;
        throw new DockerError(`read ${target} from ${info.Id.slice(0, 12)} on ${this.name}`, err);
      }
      const entries = extract();
      archive.pipe(entries);
      for await (const entry of entries) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        const h = entry.header;
        if (h.type === 'file') {
          const path = posix.join(posix.dirname(target), h.name);
          out.push({ target: path, mode: (h.mode ?? 0o444) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, content: new Sealed(Buffer.concat(chunks)) });
        }
      }
    }
    return out;
  }

  /**
   * The last lines of a container's output (from `since`, Docker's `seconds.nanoseconds`), for the
   * audit of a failed replica or job, with its secrets masked (mask): '' when it has none, or they
   * cannot be read.
   */
  async tail(id: string, env: readonly string[], lines = 5, since?: string): Promise<string> {
    try {
      const text = (await readLogTail(this.docker.getContainer(id), { lines, since })).join('\n').trim();
      return text ? this.mask(id, env, text) : '';
    } catch {
      return '';
    }
  }

  /**
   * `text` (a container's output, its health check's) with its secrets masked (redact in job.ts):
   * the values of its secret-looking environment (`env`, as the caller inspected it) and the
   * contents of the files berth wrote into it in this process.
   */
  mask(id: string, env: readonly string[], text: string): string {
    return redact(text, env, this.#written.get(id) ?? []);
  }

  /** The contents berth wrote into containers (by id), to mask in their output: the newest WRITTEN_KEPT containers' only. */
  readonly #written = new Map<string, string[]>();

  #remember(id: string, files: readonly FileDelivery[]): void {
    const contents = files.map((f) => Buffer.from(f.content.bytes()).toString('utf8').trim()).filter((c) => c.length >= 6 && c.length <= 4096);
    if (!contents.length) return;
    this.#written.set(id, contents);
    if (this.#written.size > WRITTEN_KEPT) this.#written.delete(this.#written.keys().next().value!);
  }

  /** The time Docker stamped on the container's last line of output (RFC 3339); undefined when it has none. */
  async lastOutputTime(id: string): Promise<string | undefined> {
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: 1, timestamps: true })) as unknown as Buffer;
      return /^(\S+)\s/.exec(logText(buf))?.[1];
    } catch {
      return undefined;
    }
  }

  /** Stops (honouring the container's own stop timeout and signal) and removes; a container already gone is fine. */
  async stopAndRemove(id: string): Promise<void> {
    this.fence(`remove container ${id.slice(0, 12)}`, this.name);
    this.mark(id, ['kill', 'die', 'stop']);
    try {
      await this.docker.getContainer(id).stop();
    } catch (err) {
      // 304: already stopped; 404: already gone
      if (status(err) === 404) return;
      if (status(err) !== 304) throw new DockerError(`stop container ${id.slice(0, 12)} on ${this.name}`, err);
    }
    await this.remove(id);
  }

  /** Removes a container (a running one is killed); one already gone, or being removed, is fine. */
  async remove(id: string): Promise<void> {
    this.fence(`remove container ${id.slice(0, 12)}`, this.name);
    this.mark(id, ['kill', 'die', 'destroy']);
    try {
      await this.docker.getContainer(id).remove({ v: false, force: true });
    } catch (err) {
      if (status(err) !== 404 && status(err) !== 409) throw new DockerError(`remove container ${id.slice(0, 12)} on ${this.name}`, err);
    }
  }
}

/** The files as a tar whose paths are relative to `/` (parent folders are made by Docker). */
function filesTar(files: FileDelivery[]): NodeJS.ReadableStream {
  const tar = pack();
  for (const f of files) {
    tar.entry({ name: f.target.replace(/^\/+/, ''), mode: f.mode, uid: f.uid, gid: f.gid }, Buffer.from(f.content.bytes()));
  }
  tar.finalize();
  return tar as unknown as NodeJS.ReadableStream;
}

/** `registry:5000/app:1.2` -> { repo: 'registry:5000/app', tag: '1.2' } (tag `latest` when none). */
function splitRef(name: string): { repo: string; tag: string } {
  const repo = imageRepository(name);
  return { repo, tag: name.length > repo.length ? name.slice(repo.length + 1) : 'latest' };
}

/**
 * A spec that recreates a live container as it was (its image by id, so a moved tag does not
 * matter), with the files berth had written into it (read back with readFiles before it went).
 */
export function specFromInspect(i: Dockerode.ContainerInspectInfo, files: FileDelivery[] = []): ContainerSpec {
  const c = i.Config;
  const shortId = i.Id.slice(0, 12);
  return {
    name: i.Name.replace(/^\//, ''),
    files,
    create: {
      Image: i.Image,
      Cmd: c.Cmd,
      Entrypoint: c.Entrypoint,
      Env: c.Env,
      Labels: c.Labels,
      User: c.User,
      // a hostname Docker made up (the container's short id) is not carried over
      Hostname: c.Hostname === shortId ? undefined : c.Hostname,
      Domainname: c.Domainname || undefined,
      WorkingDir: c.WorkingDir,
      ExposedPorts: c.ExposedPorts,
      Healthcheck: c.Healthcheck,
      StopSignal: (c as { StopSignal?: string }).StopSignal,
      StopTimeout: (c as { StopTimeout?: number }).StopTimeout,
      Tty: c.Tty,
      OpenStdin: c.OpenStdin,
      HostConfig: i.HostConfig,
    },
    networks: Object.entries(i.NetworkSettings.Networks).map(([network, n]) => {
      // the addresses it was given (not those Docker picked), as it was created with them
      const given = (n as { IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null }).IPAMConfig;
      return {
        network,
        aliases: ((n.Aliases as string[] | null) ?? []).filter((a) => a !== shortId && a !== i.Id),
        ...(given?.IPv4Address ? { ipv4Address: given.IPv4Address } : {}),
        ...(given?.IPv6Address ? { ipv6Address: given.IPv6Address } : {}),
        ...(given?.LinkLocalIPs?.length ? { linkLocalIps: given.LinkLocalIPs } : {}),
      };
    }),
  };
}

/** A network's `ipam:` as Docker's IPAM block. */
function ipamOptions(ipam: IpamSpec): Dockerode.NetworkCreateOptions['IPAM'] {
  return {
    Driver: ipam.driver ?? 'default',
    Config: ipam.config.map((c) => ({
      ...(c.subnet !== undefined ? { Subnet: c.subnet } : {}),
      ...(c.ipRange !== undefined ? { IPRange: c.ipRange } : {}),
      ...(c.gateway !== undefined ? { Gateway: c.gateway } : {}),
      ...(c.auxAddresses !== undefined ? { AuxiliaryAddresses: c.auxAddresses } : {}),
    })),
    ...(ipam.options !== undefined ? { Options: ipam.options } : {}),
  };
}

/** Docker's IPAMConfig of an endpoint for a container's fixed addresses on one network (nothing when it has none). */
function endpointAddresses(n: ContainerSpec['networks'][number]): { IPAMConfig?: Record<string, unknown> } {
  if (n.ipv4Address === undefined && n.ipv6Address === undefined && !n.linkLocalIps?.length) return {};
  return {
    IPAMConfig: {
      ...(n.ipv4Address !== undefined ? { IPv4Address: n.ipv4Address } : {}),
      ...(n.ipv6Address !== undefined ? { IPv6Address: n.ipv6Address } : {}),
      ...(n.linkLocalIps?.length ? { LinkLocalIPs: n.linkLocalIps } : {}),
    },
  };
}

/** An image's platform as os/arch[/variant] ("linux/arm64/v8"). */
function platformOf(i: Dockerode.ImageInspectInfo): string {
  const variant = (i as { Variant?: string }).Variant;
  return [i.Os, i.Architecture, variant].filter(Boolean).join('/');
}

/** Whether an image is for `platform` (os[/arch[/variant]]): each part given must match. */
function isFor(i: Dockerode.ImageInspectInfo, platform: string): boolean {
  const have = platformOf(i).split('/');
  return platform.split('/').every((part, n) => have[n] === part);
}
