/**
 * The Docker edge: turns plan steps into dockerode calls on one host, and nothing else.
 * Every call here either reads or is one of the plan's mutations; idempotent where Docker allows
 * (a container already gone is fine to remove), so a plan interrupted midway can be re-run.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { LABEL, type NetworkSpec, type VolumeSpec } from '../model.ts';
import type { DesiredContainer } from '../schedule/container.ts';

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

  constructor(name: string, docker: Dockerode, log: Logger) {
    this.name = name;
    this.docker = docker;
    this.log = log.child({ host: name });
  }

  /** Makes sure the image is on the host, pulling it when it is not; once per image per DockerHost. */
  ensureImage(image: string): Promise<void> {
    let p = this.images.get(image);
    if (!p) {
      p = this.pullIfMissing(image);
      p.catch(() => this.images.delete(image));
      this.images.set(image, p);
    }
    return p;
  }

  private async pullIfMissing(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (status(err) !== 404) throw new DockerError(`inspect image ${image} on ${this.name}`, err);
    }
    this.log.info({ image }, 'pulling image');
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new DockerError(`image ${image} is not on host ${this.name} and could not be pulled`, err);
    }
  }

  async createNetwork(spec: NetworkSpec, repo: string, stack: string): Promise<string> {
    try {
      const net = await this.docker.createNetwork({
        Name: spec.name,
        Driver: spec.driver ?? 'bridge',
        CheckDuplicate: true,
        Labels: { ...spec.labels, ...ownerLabels(repo, stack), [LABEL.composeNetwork]: spec.key },
      });
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

  /** Creates the container, connects its extra networks and starts it; returns its id. */
  async createAndStart(d: DesiredContainer, extraNetworks: Array<{ network: string; aliases: string[] }>): Promise<string> {
    await this.ensureImage(d.create.Image ?? '');
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({ ...d.create, name: d.name });
    } catch (err) {
      throw new DockerError(`create container ${d.name} on ${this.name}`, err);
    }
    try {
      for (const n of extraNetworks) {
        await this.docker.getNetwork(n.network).connect({ Container: container.id, EndpointConfig: { Aliases: n.aliases } });
      }
      await container.start();
    } catch (err) {
      throw new DockerError(`start container ${d.name} (${container.id.slice(0, 12)}) on ${this.name}`, err);
    }
    return container.id;
  }

  /** Stops (honouring the container's own stop timeout and signal) and removes; a container already gone is fine. */
  async stopAndRemove(id: string): Promise<void> {
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

function ownerLabels(repo: string, stack: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.repo]: repo, [LABEL.stack]: stack, [LABEL.composeProject]: stack };
}
