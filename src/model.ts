/**
 * The shapes source and render hand on (docs/how-it-works.md, steps 1 and 2): a repo's files at a
 * commit (Snapshot, CommitInfo); its stacks as listed (StackDef) and as rendered from their
 * Compose files (RenderedStack with its ServiceSpecs, NetworkSpecs and VolumeSpecs; RenderResult,
 * with SourceErrors); what render takes from the engine config (RenderOptions, RepoPolicy); secret
 * bytes (Sealed); a container to create (ContainerSpec, with its BuildRequest and FileDeliveries),
 * which schedule makes and apply creates; and the labels berth puts on what it creates (LABEL),
 * with what they say read back (ownerLabels, reservedOf). The later steps keep their own:
 * DesiredContainer in src/schedule/container.ts, LiveContainer in src/observe/live.ts, StackPlan
 * in src/diff/plan.ts.
 */
import type Dockerode from 'dockerode';

/** A commit as berth knows it: every sync and audit row is keyed to one. */
export interface CommitInfo {
  sha: string;
  author: string;
  email: string;
  message: string;
  /** seconds since the epoch (author time) */
  time: number;
}

/**
 * The files of one repo at one commit, under the repo's configured `path`.
 * Keys are POSIX paths relative to that folder ("shop/compose.yaml").
 */
export interface Snapshot {
  repo: string;
  commit: CommitInfo;
  files: Map<string, Uint8Array>;
  /** Git's mode of the files that are not plain files (0o100755 executables, 0o120000 symlinks, whose content is the link's target) */
  modes?: Map<string, number>;
  /** files present at the commit but not read, being over a limit: a render that needs one is refused (docs/config.md, "Limits") */
  unread?: Map<string, UnreadFile>;
}

/**
 * How much one commit may ask of the engine (the engine config's `limits:`, docs/config.md
 * "Limits"): what is over one is refused, located, naming the key, before it is held in memory
 * where that can be known beforehand. Sizes are bytes.
 */
export interface InputLimits {
  /** `deploy.replicas` of one service */
  replicas: number;
  /** containers of one stack: replicas, and a global service once per host it goes to */
  stackContainers: number;
  /** containers of all the stacks of one repo */
  repoContainers: number;
  /** one file under the repo's `path:` (never read when over) */
  blobSize: number;
  /** the files read from one commit, together */
  snapshotSize: number;
  /** what one fetch receives from the remote, and any one object in it (isomorphic-git holds a fetched pack in memory) */
  fetchSize: number;
  /** one Compose file (or berth.yaml) */
  yamlSize: number;
  /** the nodes YAML aliases may expand to in one Compose file (the yaml package's maxAliasCount) */
  yamlAliases: number;
  /** the files of one service's build context, together */
  buildContext: number;
}

const MiB = 1 << 20;

export const INPUT_LIMITS: InputLimits = {
  replicas: 100,
  stackContainers: 500,
  repoContainers: 2000,
  blobSize: 10 * MiB,
  snapshotSize: 100 * MiB,
  fetchSize: 100 * MiB,
  yamlSize: 1 * MiB,
  yamlAliases: 10_000,
  buildContext: 200 * MiB,
};

/** A file under the repo's `path:` that a snapshot did not read: its size, and the limit it is over. */
export interface UnreadFile {
  size: number;
  limit: 'blobSize' | 'snapshotSize';
}

/** A problem in the input, located as `file:line:col: message` (line, col 1-based; 0 when unknown). */
export interface SourceError {
  file: string;
  line: number;
  col: number;
  message: string;
}

export type HostSelector = { kind: 'all' } | { kind: 'labels'; labels: Record<string, string> } | { kind: 'names'; names: string[] };

export interface SyncPolicy {
  auto: boolean;
  prune: boolean;
  selfHeal: boolean;
}

/** A stack as listed by berth.yaml or found by folder discovery, before its Compose files are read. */
export interface StackDef {
  name: string;
  /** Compose files, relative to the snapshot root, merged in order. */
  composeFiles: string[];
  hosts: HostSelector;
  sync: SyncPolicy;
  /** Compose profiles active for the stack (berth.yaml `profiles:`); absent or empty: none */
  profiles?: string[];
}

export interface PortSpec {
  /** container port */
  target: number;
  /** host port or range ("8080", "8000-8010"); absent: published on a port Docker picks (as Compose does) */
  published?: string;
  hostIp?: string;
  protocol: 'tcp' | 'udp' | 'sctp';
}

export interface MountSpec {
  type: 'volume' | 'bind' | 'tmpfs';
  /** volume key in the stack (type volume), absolute host path (type bind); absent for anonymous volumes and tmpfs */
  source?: string;
  target: string;
  readOnly: boolean;
  /**
   * A bind mount of a path relative to the compose file: the snapshot-relative path it names. Remote
   * hosts have no checkout, so such a mount becomes files copied into the container (FileSpec).
   */
  repoPath?: string;
}

/** `build:`, resolved against the snapshot: what berth builds on each host that runs the service. */
export interface BuildSpec {
  /** the context folder, snapshot-relative ('' for the root) */
  context: string;
  /** the Dockerfile's path inside the context */
  dockerfile: string;
  /** `dockerfile_inline`: the Dockerfile's text, sent in the context as `dockerfile` */
  inline?: string;
  args: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  noCache: boolean;
  /** always try to pull the base images */
  pull: boolean;
  network?: string;
  shmSizeBytes?: number;
  extraHosts: string[];
  cacheFrom: string[];
  /** `tags:` extra names for the built image */
  tags: string[];
  /** sha256 over the context's files (after .dockerignore) and every option above: the built image's tag */
  hash: string;
}

/** One file of a build context, as it goes into the tar sent to the daemon. */
export interface ContextFile {
  path: string;
  content: Uint8Array;
  mode: number;
}

/** `pull_policy`: when the image is pulled (or built). */
export type PullPolicy = 'always' | 'missing' | 'never' | 'build';

/**
 * A file berth writes into the container before it starts: a secret, a config, or a file of the repo
 * bind-mounted by a relative path. The content itself lives in RenderedStack.contents, by hash, so
 * that nothing that prints or serialises a spec can show it.
 */
export interface FileSpec {
  kind: 'secret' | 'config' | 'file';
  /** the secret's or config's key in the stack, or the file's snapshot-relative path */
  source: string;
  /** absolute path in the container */
  target: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of the content (hex) */
  hash: string;
}

export interface ServiceNetwork {
  /** the network's key in the stack's `networks:` ("default" for the implicit one) */
  key: string;
  aliases: string[];
  /** `ipv4_address`: the container's fixed address there (one replica only) */
  ipv4Address?: string;
  /** `ipv6_address` */
  ipv6Address?: string;
  /** `link_local_ips` */
  linkLocalIps?: string[];
}

export interface HealthcheckSpec {
  /** Docker's form: ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"] */
  test: string[];
  /** nanoseconds, as the Docker API wants them */
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  /** `start_interval`: between checks during the start period */
  startIntervalNs?: number;
  retries?: number;
}

export interface DependsOn {
  service: string;
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
}

/** `deploy.update_config` / `deploy.rollback_config`, with Compose's (Swarm's) defaults applied. */
export interface UpdateConfig {
  /** replicas updated at once; 0 means all at once (default 1) */
  parallelism: number;
  /** pause between batches, ms (default 0) */
  delayMs: number;
  /** default 'pause' */
  failureAction: 'pause' | 'rollback' | 'continue';
  /** how long an updated replica must stay running (and healthy) to count as updated, ms (default 0) */
  monitorMs: number;
  /** the fraction of replicas that may fail before failure_action applies (default 0) */
  maxFailureRatio: number;
  /** default 'stop-first' */
  order: 'stop-first' | 'start-first';
}

/** One `deploy.placement.constraints` entry: `node.hostname == web-1`, `node.labels.zone != a`. */
export interface PlacementConstraint {
  /** 'node.hostname' | 'node.id' (both the host's name in berth's config) | 'node.labels.<key>' */
  field: string;
  op: '==' | '!=';
  value: string;
}

export interface Placement {
  constraints: PlacementConstraint[];
  /** at most this many replicas of the service on one host; absent: no cap */
  maxReplicasPerNode?: number;
  /** `spread: node.labels.<key>` preferences, in order */
  spread: string[];
}

/** `deploy.resources.reservations` / `.limits`: CPUs as a fraction of cores, memory in bytes. */
export interface Resources {
  cpus?: number;
  memoryBytes?: number;
  /** limits only */
  pids?: number;
}

/** One service of a stack, fully rendered: interpolated, merged, env_file read, defaults applied. */
export interface ServiceSpec {
  name: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  /** env_file entries first, then `environment:`; keys sorted */
  environment: Record<string, string>;
  ports: PortSpec[];
  volumes: MountSpec[];
  networks: ServiceNetwork[];
  labels: Record<string, string>;
  healthcheck?: HealthcheckSpec;
  restart: string;
  user?: string;
  workingDir?: string;
  stopGracePeriodSeconds?: number;
  stopSignal?: string;
  /** `deploy.mode`: replicated (default) or global (one replica per eligible host); a `*-job` mode is placed as its plain mode, with `job` set */
  mode: 'replicated' | 'global';
  /** `deploy.replicas` (default 1); 0 for global services */
  replicas: number;
  placement: Placement;
  reservations: Resources;
  limits: Resources;
  update: UpdateConfig;
  /** `deploy.rollback_config`; Compose's defaults, not update_config's */
  rollback: UpdateConfig;
  dependsOn: DependsOn[];
  /** `container_name`: the container's fixed name (one replica, or one per host for global services) */
  containerName?: string;
  build?: BuildSpec;
  /** `pull_policy` (default `missing`; `build` when the service has `build:` and no `image:`) */
  pullPolicy: PullPolicy;
  /** secrets, configs and repo files delivered into the container, sorted by target */
  files: FileSpec[];
  /** set when the service runs to completion instead of serving (`deploy.mode: *-job`, `x-berth.schedule`, `x-berth.hook`) */
  job?: JobSpec;
  /** `x-berth.watch-image: true`: its image's tag is resolved again at every pass, and a moved digest rolls it out */
  watchImage?: boolean;
  /**
   * `network_mode`: 'host', 'none', 'bridge', 'container:NAME' or 'service:NAME' (the network of
   * NAME's replica on the same host). When set, the service joins none of the stack's networks.
   */
  networkMode?: string;
  /** the Compose long tail passed through to Docker (src/render/passthrough.ts); absent when none is set */
  extras?: DockerExtras;
}

/**
 * A service whose containers run to completion. once: at each change of its spec
 * (`replicated-job` / `global-job`); schedule: on its cron schedule; pre-sync / post-sync: before /
 * after the stack's services are updated, at each sync that changes something.
 */
export interface JobSpec {
  kind: 'once' | 'schedule' | 'pre-sync' | 'post-sync';
  /** the cron expression (kind schedule) */
  schedule?: string;
  /** how long one run may take before it is stopped and counted as failed, ms (`x-berth.timeout`, default 10 min) */
  timeoutMs: number;
}

/** Docker create options set by Compose keys beyond berth's own fields, in the Docker API's shape. */
export interface DockerExtras {
  /** container Config fields: Hostname, Domainname, Tty, OpenStdin, ExposedPorts, MacAddress */
  config: Record<string, unknown>;
  /** HostConfig fields: CapAdd, Sysctls, Ulimits, LogConfig, Tmpfs, ... */
  hostConfig: Record<string, unknown>;
  /** `platform`: createContainer's query option (os/arch[/variant]) */
  platform?: string;
  /** the same settings by their Compose names, for the readable view */
  view: Record<string, unknown>;
}

/**
 * What a repo's Compose files may ask of the hosts beyond an ordinary container (the repo's
 * `policy:` in berth's config). The default allows none of it.
 */
export interface RepoPolicy {
  /**
   * `privileged: true`; and what a privileged container has anyway: every capability, device and
   * `security_opt` (so it also allows what `capabilities`, `devices` and `securityOpt` do)
   */
  privileged: boolean;
  /** `network_mode: host`, `build.network: host` */
  hostNetwork: boolean;
  /** `pid`, `ipc`, `uts`, `userns_mode`, `cgroup` set to `host` */
  hostNamespaces: boolean;
  /** absolute host path prefixes bind mounts may use */
  bindMounts: string[];
  /** containers (names, or `prefix*`) whose namespaces `network_mode`, `pid` or `ipc` may join as `container:NAME` */
  joinContainers?: string[];
  /** networks outside the repo's own stacks (names, or `prefix*`) an explicit `name:` or `external: true` may reach */
  externalNetworks?: string[];
  /** the same for volumes */
  externalVolumes?: string[];
  /** capabilities `cap_add` may add beyond Docker's default set (names as Docker has them, `ALL` for every one) */
  capabilities?: string[];
  /** `security_opt` entries beyond `no-new-privileges` and AppArmor profiles (as written, `:` or `=`; or `prefix*`) */
  securityOpt?: string[];
  /** `devices`, `device_cgroup_rules` and `gpus` */
  devices?: boolean;
  /** `cgroup_parent` */
  cgroupParent?: boolean;
  /** `oom_score_adj` below 0, `oom_kill_disable: true` */
  oom?: boolean;
  /** the OCI runtimes `runtime:` may name */
  runtimes?: string[];
  /** sysctls (names, or `prefix*`) beyond the safe set that a container's own namespaces keep to themselves */
  sysctls?: string[];
  /** log drivers `logging.driver` may name beyond `json-file` and `local` */
  logDrivers?: string[];
  /** `annotations` */
  annotations?: boolean;
}

export interface NetworkSpec {
  key: string;
  /** the network's name on the host: `<stack>_<key>` unless `name:` or external */
  name: string;
  external: boolean;
  /** a name of its own (`name:` or external): `repo`, one of the repo's stacks' (`<stack>_...`); `policy`, one the repo's policy lists */
  reach?: 'repo' | 'policy';
  driver?: string;
  labels: Record<string, string>;
  /** `ipam:` as written (Docker's IPAM block when the network is created) */
  ipam?: IpamSpec;
  /** `enable_ipv6` */
  enableIpv6?: boolean;
}

/** A network's `ipam:`: the IPAM driver, its address pools and options. */
export interface IpamSpec {
  driver?: string;
  config: Array<{ subnet?: string; ipRange?: string; gateway?: string; auxAddresses?: Record<string, string> }>;
  options?: Record<string, string>;
}

/**
 * What of a network's configuration berth keeps on it (the `berth.network-config` label), to see
 * a change: `ipam` and `enable_ipv6`, as stable JSON; undefined for a network with neither (Docker
 * picks its subnet), which is how networks made before the label exist too.
 */
export function networkConfig(spec: Pick<NetworkSpec, 'ipam' | 'enableIpv6'>): string | undefined {
  if (spec.ipam === undefined && spec.enableIpv6 === undefined) return undefined;
  const ipam = spec.ipam && {
    ...(spec.ipam.driver !== undefined ? { driver: spec.ipam.driver } : {}),
    config: spec.ipam.config.map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined))),
    ...(spec.ipam.options !== undefined ? { options: spec.ipam.options } : {}),
  };
  return JSON.stringify({ ...(ipam ? { ipam } : {}), ...(spec.enableIpv6 !== undefined ? { enable_ipv6: spec.enableIpv6 } : {}) });
}

export interface VolumeSpec {
  key: string;
  /** the volume's name on the host: `<stack>_<key>` unless `name:` or external */
  name: string;
  external: boolean;
  /** as NetworkSpec's */
  reach?: 'repo' | 'policy';
  driver?: string;
  labels: Record<string, string>;
}

export interface RenderedStack extends StackDef {
  /** in start order: a service comes after everything it depends on */
  services: ServiceSpec[];
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
  /** the content of every FileSpec, by hash; a Map, so that JSON of a stack never holds it */
  contents: Map<string, Uint8Array>;
  /** the build context of each service with `build:`, by service name (after .dockerignore) */
  contexts: Map<string, ContextFile[]>;
}

/**
 * What render needs from outside the snapshot (the repo's settings in the engine config). Render
 * stays pure: the engine passes the policy, and functions for the secrets.
 * `environment` answers a secret's or config's `environment:` source from the engine's own
 * environment; `external` reads a secret or config marked `external: true` from the engine's
 * secrets folder (undefined: not there). Absent (offline validation): such sources are not checked.
 */
export interface RenderOptions {
  /** what the repo may ask of the hosts; default: nothing beyond an ordinary container */
  policy?: RepoPolicy;
  /** how much one commit may ask of the engine; default INPUT_LIMITS */
  limits?: Partial<InputLimits>;
  /** the configured hosts: a global service counts one container on each its stack and constraints pick (default: one in all) */
  hosts?: { name: string; labels: Record<string, string> }[];
  environment?: (name: string) => string | undefined;
  external?: (name: string) => Uint8Array | undefined;
}

export type StackRender = { def: StackDef; ok: true; stack: RenderedStack } | { def: StackDef; ok: false; errors: SourceError[] };

/** What render makes of one snapshot. `errors` are repo-wide (berth.yaml): when present, no stack is known. */
export interface RenderResult {
  errors: SourceError[];
  stacks: StackRender[];
}

/**
 * Bytes that must never be printed: a secret's or config's content on its way into a container.
 * JSON and loggers see an empty object; only `bytes()` gives the content.
 */
export class Sealed {
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  bytes(): Uint8Array {
    return this.#bytes;
  }
  toJSON(): string {
    return '<sealed>';
  }
}

/** Labels berth puts on everything it creates (docs/how-it-works.md, "On the hosts"). */
export const LABEL = {
  managed: 'berth.managed',
  stack: 'berth.stack',
  service: 'berth.service',
  slot: 'berth.slot',
  specHash: 'berth.spec-hash',
  commit: 'berth.commit',
  repo: 'berth.repo',
  /** on job containers: their JobSpec kind */
  job: 'berth.job',
  /**
   * the service's readable view, riding along on each container so that the diff of a change is
   * made from the hosts (the truth) without re-reading old commits
   */
  view: 'berth.view',
  /** what a replica reserves (`deploy.resources.reservations`), so that placing other stacks can count it */
  reserveCpus: 'berth.reserve.cpus',
  reserveMemory: 'berth.reserve.memory',
  composeProject: 'com.docker.compose.project',
  composeService: 'com.docker.compose.service',
  composeNumber: 'com.docker.compose.container-number',
  composeOneoff: 'com.docker.compose.oneoff',
  composeNetwork: 'com.docker.compose.network',
  composeVolume: 'com.docker.compose.volume',
  /** the targets of the files berth wrote into the container (JSON list), so that a rollback can copy them back */
  files: 'berth.files',
  /** on an image berth built: the build's hash */
  buildHash: 'berth.build-hash',
  /** the registry's digest of the image a container was created from (`sha256:...`), when it was pinned */
  digest: 'berth.image-digest',
  /** on a network with `ipam` or `enable_ipv6`: them, as networkConfig() writes them, so that a change is seen */
  networkConfig: 'berth.network-config',
} as const;

/** The labels that make a container, network or volume berth's, and its repo's and stack's (Compose's project too). */
export function ownerLabels(repo: string, stack: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.repo]: repo, [LABEL.stack]: stack, [LABEL.composeProject]: stack };
}

/** What a berth container's labels say it reserves (nothing when unlabelled). */
export function reservedOf(labels: Record<string, string> | undefined): { cpus: number; memoryBytes: number } {
  return { cpus: Number(labels?.[LABEL.reserveCpus] ?? 0), memoryBytes: Number(labels?.[LABEL.reserveMemory] ?? 0) };
}

/**
 * A container to create: Docker's options plus the networks it joins, each with the aliases it
 * answers to there. Made from a desired replica, or from a live container (to put it back).
 */
export interface ContainerSpec {
  name: string;
  create: Dockerode.ContainerCreateOptions;
  /** each with its fixed addresses there, when it has some (Docker's endpoint IPAMConfig) */
  networks: Array<{ network: string; aliases: string[]; ipv4Address?: string; ipv6Address?: string; linkLocalIps?: string[] }>;
  /** how the image gets onto the host (default `missing`) */
  pull?: PullPolicy;
  /** how to build the image, for a service with `build:` */
  build?: BuildRequest;
  /** written into the container after it is created and before it starts */
  files?: FileDelivery[];
}

/** A build to run on a host: the image's name for this build, the service's own name for it, and the context. */
export interface BuildRequest {
  stack: string;
  service: string;
  /** `<repository>:berth-<hash>`: the name the containers use */
  ref: string;
  /** `image:` as written (or `<stack>-<service>`), tagged too */
  image: string;
  spec: BuildSpec;
  context: ContextFile[];
}

/** A file to write into a container; the content is sealed so that nothing prints it. */
export interface FileDelivery {
  target: string;
  mode: number;
  uid: number;
  gid: number;
  content: Sealed;
}
