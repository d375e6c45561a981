/**
 * What the executor (execute.ts, with health.ts and job.ts) needs of a host, and nothing more:
 * DockerHost (docker-host.ts) is the real one; a recording fake stands in for it in tests
 * (test/execute-fake.test.ts), so that a rollout's operations can be checked as data, without Docker.
 * Each method is documented on DockerHost.
 */
import type Dockerode from 'dockerode';
import type { ContainerSpec, FileDelivery, NetworkSpec, VolumeSpec } from '../model.ts';

export interface HostOps {
  /**
   * gets the container's image onto the host (pull or build), before any old container is touched;
   * true when this call built it (the caller reports the build)
   */
  prepare(spec: ContainerSpec): Promise<boolean>;
  createNetwork(spec: NetworkSpec, repo: string, stack: string, opts?: { fixedSubnet?: boolean }): Promise<string>;
  createVolume(spec: VolumeSpec, repo: string, stack: string): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  /** creates, connects and starts a container; its id */
  createAndStart(spec: ContainerSpec, opts?: CreateOptions): Promise<string>;
  /** creates a container (files written in) without starting it; its id */
  create(spec: ContainerSpec, opts?: CreateOptions): Promise<string>;
  /** `name` is for the error */
  start(id: string, name?: string): Promise<void>;
  stop(id: string): Promise<void>;
  /** gives a container created with `aliases: false` its service aliases */
  joinService(id: string, spec: ContainerSpec): Promise<void>;
  /** takes the service's names off a container */
  drain(id: string): Promise<void>;
  rename(id: string, name: string): Promise<void>;
  /** undefined when the container is gone */
  inspect(id: string): Promise<Dockerode.ContainerInspectInfo | undefined>;
  /** resolves on the container's next event from the host, or after `ms` (a host that tells no events: after `ms`) */
  changed?(id: string, ms: number): Promise<void>;
  /** the files berth wrote into the container, read back from it */
  readFiles(info: Dockerode.ContainerInspectInfo): Promise<FileDelivery[]>;
  /** the last lines of a container's output, secrets masked (`env`: the container's, as inspected) */
  tail(id: string, env: readonly string[], lines?: number, since?: string): Promise<string>;
  /** `text` (a container's output, its health check's) with the container's secrets masked, as `tail` masks them */
  mask(id: string, env: readonly string[], text: string): string;
  stopAndRemove(id: string): Promise<void>;
  remove(id: string): Promise<void>;
}

/** How to create a container: under another name, without its service aliases, or with its image readied already (`prepare`). */
export interface CreateOptions {
  name?: string;
  aliases?: boolean;
  /** the caller ran prepare() for this image in this sync: no second pull for `pull_policy: always` */
  prepared?: boolean;
}
