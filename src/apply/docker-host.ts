/**
 * The Docker edge: turns plan steps into dockerode calls on one host, and nothing else.
 * Every call here either reads or is one of the plan's mutations; idempotent where Docker allows
 * (a container already gone is fine to remove), so a plan interrupted midway can be re-run.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { LABEL, type NetworkSpec, type VolumeSpec } from '../model.ts';

/** A Docker API error with the daemon's message, without the request details dockerode adds. */
export class DockerError extends Error {
  readonly statusCode?: number;
  constructor(what: string, err: unknown) {
    const e = err as { statusCode?: number; json?: { message?: string }; reason?: string; message?: string };
    super(`${what}: ${e.json?.message ?? e.reason ?? e.message ?? String(err)}`);
    this.statusCode = e.statusCode;
  }
}

const status = (err: unknown) => (err as { statusCode?: number }).statusCode;

export class DockerHost {
  readonly name: string;
  readonly docker: Dockerode;
  private readonly log: Logger;
  private readonly images = new Map<string, Promise<void>>();
  private readonly imageEnvs = new Map<string, Promise<string[]>>();
  /** containers berth itself created, stopped, removed or renamed lately, and the events that caused */
  private readonly own = new Map<string, { until: number; actions: Set<string> }>();

  constructor(name: string, docker: Dockerode, log: Logger) {
    this.name = name;
    this.docker = docker;
    this.log = log.child({ host: name });
  }

  /** True when the event is one of berth's own doing: an action it took on that container in the last 10 s. */
  isOwn(id: string, action: string): boolean {
    const mine = this.own.get(id);
    if (!mine) return false;
    if (mine.until < Date.now()) {
      this.own.delete(id);
      return false;
    }
    return mine.actions.has(action);
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
        .then((i) => i.Config?.Env ?? [], () => []);
      this.imageEnvs.set(image, p);
    }
    return p;
  }

  /**
   * Makes sure the image is on the host (for `platform`, os/arch[/variant], when given), pulling it
   * when it is not; once per image and platform per DockerHost.
   */
  ensureImage(image: string, platform?: string): Promise<void> {
    const key = platform ? `${image}@${platform}` : image;
    let p = this.images.get(key);
    if (!p) {
      p = this.pullIfMissing(image, platform);
      p.catch(() => this.images.delete(key));
      this.images.set(key, p);
    }
    return p;
  }

  private async pullIfMissing(image: string, platform?: string): Promise<void> {
    const local = async () => {
      try {
        return await this.docker.getImage(image).inspect();
      } catch (err) {
        if (status(err) !== 404) throw new DockerError(`inspect image ${image} on ${this.name}`, err);
        return undefined;
      }
    };
    const found = await local();
    if (found && (!platform || isFor(found, platform))) return;
    const what = platform ? `${image} for ${platform}` : image;
    this.log.info({ image, platform }, 'pulling image');
    try {
      const stream = await this.docker.pull(image, platform ? { platform } : {});
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      const has = found ? ` (it has ${image} for ${platformOf(found)})` : '';
      throw new DockerError(`image ${what} is not on host ${this.name}${has} and could not be pulled`, err);
    }
    const pulled = await local();
    if (platform && pulled && !isFor(pulled, platform)) {
      throw new Error(`image ${image} pulled on ${this.name} is for ${platformOf(pulled)}, not ${platform}`);
    }
  }

  /**
   * Creates the stack network with a subnet of its own that Docker picked as free: a network with a
   * user-configured subnet lets a container be reconnected with the same address, which is how a
   * replica gains or loses the service's name without losing its open connections (start-first).
   */
  async createNetwork(spec: NetworkSpec, repo: string, stack: string): Promise<string> {
    const options = {
      Name: spec.name,
      Driver: spec.driver ?? 'bridge',
      CheckDuplicate: true,
      Labels: { ...spec.labels, ...ownerLabels(repo, stack), [LABEL.composeNetwork]: spec.key },
    };
    try {
      const probe = await this.docker.createNetwork(options);
      const ipam = (await probe.inspect()).IPAM as { Config?: Array<{ Subnet?: string; Gateway?: string }> } | undefined;
      const config = ipam?.Config?.filter((c) => c.Subnet) ?? [];
      if ((spec.driver ?? 'bridge') !== 'bridge' || config.length === 0) return probe.id;
      await probe.remove();
      const net = await this.docker.createNetwork({ ...options, IPAM: { Driver: 'default', Config: config } });
      return net.id;
    } catch (err) {
      throw new DockerError(`create network ${spec.name} on ${this.name}`, err);
    }
  }

  async createVolume(spec: VolumeSpec, repo: string, stack: string): Promise<void> {
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
  async createAndStart(spec: ContainerSpec, { name = spec.name, aliases = true }: { name?: string; aliases?: boolean } = {}): Promise<string> {
    await this.ensureImage(spec.create.Image ?? '', spec.create.platform);
    const [first, ...others] = spec.networks;
    const endpoint = (n: { aliases: string[] }) => ({ Aliases: aliases ? n.aliases : [] });
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({
        ...spec.create,
        name,
        NetworkingConfig: first ? { EndpointsConfig: { [first.network]: endpoint(first) } } : spec.create.NetworkingConfig,
      });
    } catch (err) {
      throw new DockerError(`create container ${name} on ${this.name}`, err);
    }
    this.mark(container.id, ['create', 'start']);
    try {
      for (const n of others) {
        await this.docker.getNetwork(n.network).connect({ Container: container.id, EndpointConfig: endpoint(n) });
      }
      await container.start();
    } catch (err) {
      throw new DockerError(`start container ${name} (${container.id.slice(0, 12)}) on ${this.name}`, err);
    }
    return container.id;
  }

  /** Gives a container started with `aliases: false` its service aliases (Docker adds aliases only on connect). */
  async joinService(id: string, spec: ContainerSpec): Promise<void> {
    for (const n of spec.networks) await this.reconnect(id, n.network, n.aliases);
  }

  /**
   * Takes the service's names off a container, so that no new request is sent to it; open
   * connections carry on. A container on the host's, no, or another container's network has no
   * names of its own to give up.
   */
  async drain(id: string): Promise<void> {
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
      const ipam = (await net.inspect()).IPAM as { Config?: Array<{ Subnet?: string }> } | undefined;
      const pinned = ip && ipam?.Config?.some((c) => c.Subnet) ? { IPAMConfig: { IPv4Address: ip } } : {};
      await net.disconnect({ Container: id, Force: true });
      await net.connect({ Container: id, EndpointConfig: { ...pinned, Aliases: aliases } });
    } catch (err) {
      throw new DockerError(`reconnect ${id.slice(0, 12)} to ${network} on ${this.name}`, err);
    }
  }

  async rename(id: string, name: string): Promise<void> {
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

  /** The last lines of a container's output, for the audit of a failed replica. */
  async tail(id: string, lines = 5): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines })) as unknown as Buffer;
      return demux(buf).trim();
    } catch {
      return '';
    }
  }

  /** Stops (honouring the container's own stop timeout and signal) and removes; a container already gone is fine. */
  async stopAndRemove(id: string): Promise<void> {
    this.mark(id, ['kill', 'die', 'stop', 'destroy']);
    const c = this.docker.getContainer(id);
    try {
      await c.stop();
    } catch (err) {
      // 304: already stopped; 404: already gone
      if (status(err) === 404) return;
      if (status(err) !== 304) throw new DockerError(`stop container ${id.slice(0, 12)} on ${this.name}`, err);
    }
    try {
      await c.remove({ v: false, force: true });
    } catch (err) {
      if (status(err) !== 404 && status(err) !== 409) throw new DockerError(`remove container ${id.slice(0, 12)} on ${this.name}`, err);
    }
  }
}

/**
 * A container to create: Docker's options plus the networks it joins, each with the aliases it
 * answers to there. Made from a desired replica, or from a live container (to put it back).
 */
export interface ContainerSpec {
  name: string;
  create: Dockerode.ContainerCreateOptions;
  networks: Array<{ network: string; aliases: string[] }>;
}

/** A spec that recreates a live container as it was (its image by id, so a moved tag does not matter). */
export function specFromInspect(i: Dockerode.ContainerInspectInfo): ContainerSpec {
  const c = i.Config;
  const shortId = i.Id.slice(0, 12);
  return {
    name: i.Name.replace(/^\//, ''),
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
    networks: Object.entries(i.NetworkSettings.Networks).map(([network, n]) => ({
      network,
      aliases: ((n.Aliases as string[] | null) ?? []).filter((a) => a !== shortId && a !== i.Id),
    })),
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

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
function demux(buf: Buffer): string {
  let out = '';
  for (let i = 0; i + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return out;
}

function ownerLabels(repo: string, stack: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.repo]: repo, [LABEL.stack]: stack, [LABEL.composeProject]: stack };
}
