/**
 * Observe: what berth manages on a host, read back from container, network and volume labels.
 * One list call per kind per host; the labels (LABEL, src/model.ts) are the truth about what runs,
 * the database only keeps history.
 */
import type Dockerode from 'dockerode';
import { LABEL, reservedOf } from '../model.ts';

export interface LiveContainer {
  id: string;
  host: string;
  name: string;
  repo: string;
  stack: string;
  service: string;
  slot: number;
  specHash: string;
  commit: string;
  /** Docker's state: created, running, restarting, exited, paused, dead, removing */
  state: string;
  /** healthy | unhealthy | starting | undefined (no health check) */
  health?: string;
  /** how it last exited, when it is exited (read from the list call's status text) */
  exitCode?: number;
  /** a job's kind (JobSpec['kind']); absent for a service's container */
  job?: string;
  image: string;
  /** the image's id (`sha256:...`), which tells two builds under one tag apart */
  imageId?: string;
  /** the registry's digest of its image, when berth pinned it (`sha256:...`) */
  digest?: string;
  view?: string;
  /** what differs from Git although its labels say it matches (set when berth inspected it for drift) */
  handChanges?: string[];
  /** its readable view with the live values (set with handChanges) */
  liveView?: string;
  /** when it was created, seconds since the epoch */
  created: number;
  /** what it reserves on its host (deploy.resources.reservations), for placing other replicas */
  reserved: { cpus: number; memoryBytes: number };
}

export interface LiveHost {
  host: string;
  containers: LiveContainer[];
  /** berth-managed networks and volumes present on the host */
  networks: LiveObject[];
  volumes: LiveObject[];
}

export interface LiveObject {
  name: string;
  repo: string;
  stack: string;
  /** a network's `berth.network-config` (its ipam and enable_ipv6 as berth made it; absent: none) */
  config?: string;
}

const managed = { label: [`${LABEL.managed}=true`] };

type Filters = { label: string[] };

/** Lists everything berth manages on one host (three list calls, whatever the number of containers). */
export async function observeHost(host: string, docker: Dockerode, { abortSignal }: { abortSignal?: AbortSignal } = {}): Promise<LiveHost> {
  const [containers, objects] = await Promise.all([listContainers(host, docker, managed, abortSignal), listObjects(host, docker, managed, abortSignal)]);
  return { containers, ...objects };
}

/**
 * Lists one stack's containers on a host, and with `objects` its networks and volumes (one or three
 * list calls, each answer the size of that stack, not of the host): what a pass changed, seen again
 * without the rest.
 */
export async function observeStack(host: string, docker: Dockerode, stack: string, { objects }: { objects: boolean }): Promise<StackOnHost> {
  const filters = { label: [...managed.label, `${LABEL.stack}=${stack}`] };
  const [containers, listed] = await Promise.all([listContainers(host, docker, filters), objects ? listObjects(host, docker, filters) : undefined]);
  return { containers, ...(listed ?? { host }) };
}

/** Lists a host's managed networks and volumes only (two calls): its containers are known otherwise. */
export function observeObjects(host: string, docker: Dockerode): Promise<Pick<LiveHost, 'host' | 'networks' | 'volumes'>> {
  return listObjects(host, docker, managed);
}

/** One stack's share of a host as listed: its networks and volumes only when they were listed too. */
export type StackOnHost = Pick<LiveHost, 'host' | 'containers'> & Partial<Pick<LiveHost, 'networks' | 'volumes'>>;

async function listContainers(host: string, docker: Dockerode, filters: Filters, abortSignal?: AbortSignal): Promise<LiveContainer[]> {
  return (await docker.listContainers({ all: true, filters, abortSignal })).map((c) => toLive(host, c));
}

async function listObjects(
  host: string,
  docker: Dockerode,
  filters: Filters,
  abortSignal?: AbortSignal,
): Promise<Pick<LiveHost, 'host' | 'networks' | 'volumes'>> {
  const [networks, volumes] = await Promise.all([docker.listNetworks({ filters, abortSignal }), docker.listVolumes({ filters, abortSignal })]);
  return { host, networks: networks.map((n) => liveObject(n.Name, n.Labels)), volumes: (volumes.Volumes ?? []).map((v) => liveObject(v.Name, v.Labels)) };
}

function liveObject(name: string, labels: Record<string, string> | null | undefined): LiveObject {
  const config = labels?.[LABEL.networkConfig];
  return { name, repo: labels?.[LABEL.repo] ?? '', stack: labels?.[LABEL.stack] ?? '', ...(config ? { config } : {}) };
}

function toLive(host: string, c: Dockerode.ContainerInfo): LiveContainer {
  const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1]?.replace('health: ', '');
  const exited = /^Exited \((-?\d+)\)/.exec(c.Status);
  return liveFromLabels(host, {
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    labels: c.Labels,
    state: c.State,
    health,
    exitCode: exited ? Number(exited[1]) : undefined,
    image: c.Image,
    imageId: c.ImageID,
    created: c.Created,
  });
}

/** What a container is to berth, from its labels and what Docker says of its state (a list call's entry, or an event's). */
export function liveFromLabels(
  host: string,
  c: {
    id: string;
    name: string;
    labels: Record<string, string>;
    state: string;
    health?: string;
    exitCode?: number;
    image: string;
    imageId?: string;
    created: number;
  },
): LiveContainer {
  const l = c.labels;
  return {
    id: c.id,
    host,
    name: c.name,
    repo: l[LABEL.repo] ?? '',
    stack: l[LABEL.stack] ?? '',
    service: l[LABEL.service] ?? '',
    slot: Number(l[LABEL.slot] ?? 0),
    specHash: l[LABEL.specHash] ?? '',
    commit: l[LABEL.commit] ?? '',
    state: c.state,
    health: c.health,
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    ...(l[LABEL.job] ? { job: l[LABEL.job] } : {}),
    image: c.image,
    ...(c.imageId ? { imageId: c.imageId } : {}),
    ...(l[LABEL.digest] ? { digest: l[LABEL.digest] } : {}),
    view: l[LABEL.view],
    created: c.created,
    reserved: reservedOf(l),
  };
}
