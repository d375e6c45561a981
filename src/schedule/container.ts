/**
 * The container a placed replica should be: Docker's create options, a readable view of them for
 * diffs, and the spec hash that decides whether a live container still matches (a hash of all that
 * shapes the container and nothing that does not; steps 3 and 5 of docs/how-it-works.md).
 * Pure: no Docker, no I/O.
 */
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { stringify } from 'yaml';
import { LABEL, ownerLabels, Sealed, type ContainerSpec, type HealthcheckSpec, type JobSpec, type RenderedStack, type ServiceSpec } from '../model.ts';
import { builtImageRef } from '../render/build.ts';

export interface DesiredContainer extends ContainerSpec {
  host: string;
  stack: string;
  service: string;
  slot: number;
  /** the container's name on the host: `<stack>-<service>-<slot>`, as Compose names them */
  name: string;
  specHash: string;
  /** what changed is shown from this, never from raw values (secret-looking env values are masked) */
  view: string;
  /** set for a job's container */
  job?: JobSpec;
  /** `x-berth.watch-image`: its tag is resolved again at every pass (docs/how-it-works.md, "Images") */
  watchImage?: true;
  /** set by a pass when no registry answered for its image: it runs by its tag, as the host has it */
  unpinned?: true;
}

/** Env keys whose values never appear in a diff, a log or an audit row: shown as a hash instead. */
export const SECRET_KEY = /pass(word)?|secret|token|api_?key|private_?key|credential|auth/i;

/** A URL with a password in it (`scheme://user:password@host`): a secret whatever its variable's name. */
export const CREDENTIAL_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i;

/**
 * The environment as views, diffs and logs show it: a value is masked (its hash shown instead) when
 * its name looks secret, when it is a URL with a password, or when it is the content of one of the
 * service's secrets (`secretHashes`: their sha256, as FileSpec.hash; a trailing newline aside).
 */
export function maskEnv(env: Record<string, string>, secretHashes: ReadonlySet<string> = new Set()): Record<string, string> {
  const secret = (k: string, v: string) =>
    SECRET_KEY.test(k) ||
    CREDENTIAL_URL.test(v) ||
    (secretHashes.size > 0 && v.length >= 4 && (secretHashes.has(sha256(v)) || secretHashes.has(sha256(`${v}\n`))));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, secret(k, v) ? `<masked sha256:${sha256(v).slice(0, 12)}>` : v]));
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Stable JSON: object keys sorted, so equal specs hash equally. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export function networkName(stack: RenderedStack, key: string): string {
  return stack.networks.find((n) => n.key === key)?.name ?? `${stack.name}_${key}`;
}

export function volumeName(stack: RenderedStack, key: string): string {
  return stack.volumes.find((v) => v.key === key)?.name ?? `${stack.name}_${key}`;
}

/** The labels that identify a berth container; `commit` is left out of the spec hash. */
export function identityLabels(repo: string, stack: string, service: string, slot: number): Record<string, string> {
  return {
    ...ownerLabels(repo, stack),
    [LABEL.service]: service,
    [LABEL.slot]: String(slot),
    [LABEL.composeService]: service,
    [LABEL.composeNumber]: String(slot),
    [LABEL.composeOneoff]: 'False',
  };
}

/** For `network_mode: service:NAME`: the replica of NAME on the same host whose network the container joins. */
export interface NetworkPeer {
  name: string;
  specHash: string;
}

/**
 * Builds the container for replica `slot` of `svc`. The spec hash covers everything that
 * shapes the container (env values included, as a hash) and nothing that does not (the commit);
 * with a network peer, the peer's spec hash too, so that the container is recreated with it.
 */
export function desiredContainer(
  repo: string,
  stack: RenderedStack,
  svc: ServiceSpec,
  slot: number,
  host: string,
  commitSha: string,
  peer?: NetworkPeer,
): DesiredContainer {
  const { shape, networks, view, specHash, files } = serviceShape(stack, svc, peer);
  const userLabels = svc.labels;
  const labels = {
    ...userLabels,
    ...identityLabels(repo, stack.name, svc.name, slot),
    [LABEL.specHash]: specHash,
    [LABEL.commit]: commitSha,
    [LABEL.view]: view,
    ...(files.length ? { [LABEL.files]: JSON.stringify(files.map((f) => f.target)) } : {}),
    ...reservationLabels(svc),
    ...(svc.job ? { [LABEL.job]: svc.job.kind } : {}),
  };
  const build = svc.build;
  return {
    host,
    stack: stack.name,
    service: svc.name,
    slot,
    name: svc.containerName ?? `${stack.name}-${svc.name}-${slot}`,
    specHash,
    view,
    create: { ...shape, Labels: labels },
    networks,
    pull: svc.pullPolicy,
    build: build && {
      stack: stack.name,
      service: svc.name,
      ref: builtImageRef(svc.image, build.hash),
      image: svc.image,
      spec: build,
      context: stack.contexts.get(svc.name) ?? [],
    },
    files: svc.files.map((f) => ({
      target: f.target,
      mode: f.mode,
      uid: f.uid,
      gid: f.gid,
      content: new Sealed(stack.contents.get(f.hash) ?? new Uint8Array()),
    })),
    ...(svc.job ? { job: svc.job } : {}),
    ...(svc.watchImage ? { watchImage: true as const } : {}),
  };
}

/** What every replica of a service shares, worked out once per service (and network peer) of a render. */
interface ServiceShape {
  shape: Dockerode.ContainerCreateOptions;
  networks: DesiredContainer['networks'];
  view: string;
  specHash: string;
  files: Array<Omit<ServiceSpec['files'][number], 'kind' | 'source'>>;
}

/** Per rendered service: a pass over a thousand replicas builds each service's shape, view and hash once. */
const shapes = new WeakMap<ServiceSpec, Map<string, ServiceShape>>();

function serviceShape(stack: RenderedStack, svc: ServiceSpec, peer?: NetworkPeer): ServiceShape {
  const key = peer ? `${peer.name} ${peer.specHash}` : '';
  const known = shapes.get(svc)?.get(key);
  if (known) return known;
  const ports = svc.ports.map((p) => ({ ...p, key: `${p.target}/${p.protocol}` }));
  const exposed = Object.fromEntries(ports.map((p) => [p.key, {}]));
  const bindings: Record<string, Array<{ HostIp?: string; HostPort?: string }>> = {};
  // Every `ports:` entry is published, as in Compose; without a host port, on one Docker picks.
  for (const p of ports) (bindings[p.key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: p.published ?? '' });
  const mounts = svc.volumes.map((m) => ({
    Type: m.type,
    Source: m.type === 'volume' && m.source ? volumeName(stack, m.source) : (m.source ?? ''),
    Target: m.target,
    ReadOnly: m.readOnly,
  }));
  // a fixed address only when set, so that a spec without one hashes as before
  const networks = svc.networks.map((n) => ({
    network: networkName(stack, n.key),
    aliases: [...new Set([svc.name, ...n.aliases])],
    ...(n.ipv4Address !== undefined ? { ipv4Address: n.ipv4Address } : {}),
    ...(n.ipv6Address !== undefined ? { ipv6Address: n.ipv6Address } : {}),
    ...(n.linkLocalIps?.length ? { linkLocalIps: n.linkLocalIps } : {}),
  }));
  const [firstNet] = networks;
  const restart = parseRestart(svc.restart);
  const hc = svc.healthcheck;
  const env = Object.entries(svc.environment).map(([k, v]) => `${k}=${v}`);
  const extras = svc.extras;
  const exposedAll = { ...(ports.length ? exposed : {}), ...(extras?.config.ExposedPorts as object | undefined) };

  const shape: Dockerode.ContainerCreateOptions = {
    Image: serviceImage(svc),
    Cmd: svc.command,
    Entrypoint: svc.entrypoint,
    Env: env,
    User: svc.user,
    WorkingDir: svc.workingDir,
    ...extras?.config,
    ExposedPorts: Object.keys(exposedAll).length ? exposedAll : undefined,
    StopSignal: svc.stopSignal,
    StopTimeout: svc.stopGracePeriodSeconds,
    Healthcheck:
      hc &&
      ({
        Test: hc.test,
        Interval: hc.intervalNs,
        Timeout: hc.timeoutNs,
        StartPeriod: hc.startPeriodNs,
        StartInterval: hc.startIntervalNs,
        Retries: hc.retries,
      } as Dockerode.ContainerCreateOptions['Healthcheck']),
    HostConfig: {
      ...(extras?.hostConfig as Dockerode.HostConfig | undefined),
      PortBindings: Object.keys(bindings).length ? bindings : undefined,
      Mounts: mounts.length ? mounts : undefined,
      RestartPolicy: restart,
      NetworkMode: svc.networkMode === undefined ? firstNet?.network : networkMode(svc.networkMode, peer),
      NanoCpus: svc.limits.cpus !== undefined ? Math.round(svc.limits.cpus * 1e9) : undefined,
      Memory: svc.limits.memoryBytes,
      PidsLimit: svc.limits.pids,
      MemoryReservation: svc.reservations.memoryBytes,
    },
  };
  if (extras?.platform) shape.platform = extras.platform;
  const view = serviceView(stack, svc, peer);
  // files by their hash (a rotated secret rolls the service), the build by its hash, a fixed name as such, a job's kind,
  // the peer's spec for network_mode service:NAME (recreated with it)
  const files = svc.files.map(({ target, mode, uid, gid, hash }) => ({ target, mode, uid, gid, hash }));
  // (each only when set, so that adding a field never changes the hash of a spec that does not use it)
  const userLabels = svc.labels;
  const specHash = sha256(
    canonical({
      shape,
      userLabels,
      networks,
      files: files.length ? files : undefined,
      build: svc.build?.hash,
      name: svc.containerName,
      job: svc.job?.kind,
      peer: peer?.specHash,
    }),
  ).slice(0, 16);
  const made = { shape, networks, view, specHash, files };
  if (!shapes.has(svc)) shapes.set(svc, new Map());
  shapes.get(svc)!.set(key, made);
  return made;
}

/** The image a service's containers run: what berth builds (named by the build's hash), or `image:` as written. */
export function serviceImage(svc: ServiceSpec): string {
  return svc.build && svc.pullPolicy === 'build' ? builtImageRef(svc.image, svc.build.hash) : svc.image;
}

/** What a replica reserves, on the container (read back by reservedOf), so that placing other stacks can count it. */
function reservationLabels(svc: ServiceSpec): Record<string, string> {
  const { cpus, memoryBytes } = svc.reservations;
  return {
    ...(cpus !== undefined ? { [LABEL.reserveCpus]: String(cpus) } : {}),
    ...(memoryBytes !== undefined ? { [LABEL.reserveMemory]: String(memoryBytes) } : {}),
  };
}

/** Docker's NetworkMode for a `network_mode`: `service:NAME` becomes the container of NAME's replica on the host. */
function networkMode(mode: string, peer: NetworkPeer | undefined): string {
  if (!mode.startsWith('service:')) return mode;
  if (!peer) throw new Error(`network_mode: ${mode} needs the replica of ${mode.slice(8)} on the same host`);
  return `container:${peer.name}`;
}

function parseRestart(policy: string): { Name: string; MaximumRetryCount?: number } {
  const [name, count] = policy.split(':');
  if (name === 'on-failure') return { Name: name, MaximumRetryCount: count ? Number(count) : 0 };
  return { Name: name === 'no' ? '' : (name ?? '') };
}

/**
 * A readable YAML view of a service, the text that diffs are made of, written as Compose writes
 * it (durations as `2s`, sizes as `512M`, ports and volumes in the short syntax, defaults left
 * out). Secret-looking env values masked. With a network peer, `network_mode` names the peer's
 * container and spec, so that a replacement caused by the peer shows in the diff. Only read by
 * people: not part of the spec hash.
 */
export function serviceView(stack: RenderedStack, svc: ServiceSpec, peer?: NetworkPeer): string {
  const view = {
    image: svc.image,
    command: svc.command,
    entrypoint: svc.entrypoint,
    environment: Object.keys(svc.environment).length
      ? maskEnv(svc.environment, new Set(svc.files.filter((f) => f.kind === 'secret').map((f) => f.hash)))
      : undefined,
    ports: svc.ports.length
      ? svc.ports.map(
          (p) => `${p.hostIp ? `${p.hostIp}:` : ''}${p.published ? `${p.published}:` : ''}${p.target}${p.protocol === 'tcp' ? '' : `/${p.protocol}`}`,
        )
      : undefined,
    volumes: svc.volumes.length ? svc.volumes.map((m) => volumeView(stack, m)) : undefined,
    networks: svc.networks.map((n) => networkView(stack, n)),
    labels: Object.keys(svc.labels).length ? svc.labels : undefined,
    healthcheck: svc.healthcheck && healthcheckView(svc.healthcheck),
    restart: svc.restart === 'no' || svc.restart === '' ? undefined : svc.restart,
    user: svc.user,
    working_dir: svc.workingDir,
    stop_signal: svc.stopSignal,
    stop_grace_period: svc.stopGracePeriodSeconds === undefined ? undefined : durationView(svc.stopGracePeriodSeconds * 1e9),
    container_name: svc.containerName,
    build: svc.build && { context: svc.build.context || '.', hash: svc.build.hash.slice(0, 12), pull_policy: svc.pullPolicy },
    pull_policy: svc.build ? undefined : svc.pullPolicy === 'missing' ? undefined : svc.pullPolicy,
    // what a file holds is shown by a short hash of it: a rotation shows, the content never does
    files: svc.files.length
      ? svc.files.map(
          (f) => `${f.target}: ${f.kind} ${f.source} sha256:${f.hash.slice(0, 12)} mode ${f.mode.toString(8).padStart(4, '0')} uid ${f.uid} gid ${f.gid}`,
        )
      : undefined,
    job: svc.job && (svc.job.schedule ? `schedule ${svc.job.schedule}` : svc.job.kind),
    network_mode: peer ? `${svc.networkMode} (the network of ${peer.name}, spec ${peer.specHash})` : svc.networkMode,
    ...svc.extras?.view,
    resources: resourcesView(svc),
  };
  return stringify(JSON.parse(JSON.stringify(view)), { sortMapEntries: false });
}

/** A network joined, by its name on the host, with its fixed addresses: `shop_back (ipv4_address 10.5.0.10)`. */
function networkView(stack: RenderedStack, n: ServiceSpec['networks'][number]): string {
  const fixed = [
    n.ipv4Address !== undefined ? `ipv4_address ${n.ipv4Address}` : '',
    n.ipv6Address !== undefined ? `ipv6_address ${n.ipv6Address}` : '',
    n.linkLocalIps?.length ? `link_local_ips ${n.linkLocalIps.join(' ')}` : '',
  ].filter(Boolean);
  return fixed.length ? `${networkName(stack, n.key)} (${fixed.join(', ')})` : networkName(stack, n.key);
}

/** A mount in Compose's short syntax (`data:/var/lib/x:ro`, `/srv/x:/x`); other kinds as `TYPE:TARGET`. */
function volumeView(stack: RenderedStack, m: ServiceSpec['volumes'][number]): string {
  const ro = m.readOnly ? ':ro' : '';
  if (m.type === 'volume' && m.source) return `${volumeName(stack, m.source)}:${m.target}${ro}`;
  if (m.type === 'bind') return `${m.source ?? ''}:${m.target}${ro}`;
  return `${m.type}:${m.target}${ro}`;
}

/** A health check as Compose writes it: `test` as given to Docker, durations as `2s`, `disable: true` for NONE. */
function healthcheckView(hc: HealthcheckSpec) {
  if (hc.test[0] === 'NONE') return { disable: true };
  const d = (ns: number | undefined) => (ns === undefined ? undefined : durationView(ns));
  return {
    test: hc.test.length ? hc.test : undefined,
    interval: d(hc.intervalNs),
    timeout: d(hc.timeoutNs),
    start_period: d(hc.startPeriodNs),
    start_interval: d(hc.startIntervalNs),
    retries: hc.retries,
  };
}

/** Nanoseconds as a Compose duration: `1m30s`, `2s`, `500ms`. */
export function durationView(ns: number): string {
  const units: Array<[string, number]> = [
    ['h', 3600e9],
    ['m', 60e9],
    ['s', 1e9],
    ['ms', 1e6],
    ['us', 1e3],
    ['ns', 1],
  ];
  let rest = Math.round(ns);
  let out = '';
  for (const [unit, size] of units) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}

/** Bytes as a Compose size: `512M`, `1G`, `1536K`, else the number of bytes. */
export function bytesView(bytes: number): string | number {
  for (const [unit, size] of [
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return bytes;
}

/** `deploy.resources` (also set by cpus, mem_limit, pids_limit, mem_reservation) as Compose writes it; undefined when none. */
function resourcesView(svc: ServiceSpec) {
  const side = (r: ServiceSpec['limits']) =>
    Object.keys(r).length ? { cpus: r.cpus, memory: r.memoryBytes === undefined ? undefined : bytesView(r.memoryBytes), pids: r.pids } : undefined;
  const limits = side(svc.limits);
  const reservations = side(svc.reservations);
  return limits || reservations ? { limits, reservations } : undefined;
}
