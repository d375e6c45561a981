/**
 * The data that flows between berth's modules (DESIGN §1):
 * source -> Snapshot -> render -> RenderedStack -> schedule -> DesiredReplica
 * -> observe (LiveContainer) -> diff -> Plan -> apply -> audit.
 *
 * Pure modules (render, schedule, diff) take and return only these shapes.
 */

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
}

/** A problem in the input, located as `file:line:col: message` (line, col 1-based; 0 when unknown). */
export interface SourceError {
  file: string;
  line: number;
  col: number;
  message: string;
}

export type HostSelector =
  | { kind: 'all' }
  | { kind: 'labels'; labels: Record<string, string> }
  | { kind: 'names'; names: string[] };

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
}

export interface ServiceNetwork {
  /** the network's key in the stack's `networks:` ("default" for the implicit one) */
  key: string;
  aliases: string[];
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
  /** `deploy.mode`: replicated (default) or global (one replica per eligible host) */
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
  /**
   * `network_mode`: 'host', 'none', 'bridge', 'container:NAME' or 'service:NAME' (the network of
   * NAME's replica on the same host). When set, the service joins none of the stack's networks.
   */
  networkMode?: string;
  /** the Compose long tail passed through to Docker (src/render/passthrough.ts); absent when none is set */
  extras?: DockerExtras;
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
  /** `privileged: true`, capabilities that open the host (ALL, SYS_ADMIN, ...), `devices`, `device_cgroup_rules`, unconfined `security_opt` */
  privileged: boolean;
  /** `network_mode: host` */
  hostNetwork: boolean;
  /** `pid`, `ipc`, `uts`, `userns_mode`, `cgroup` set to `host` */
  hostNamespaces: boolean;
  /** absolute host path prefixes bind mounts may use */
  bindMounts: string[];
}

/** Inputs to render besides the snapshot. */
export interface RenderOptions {
  /** what the repo may ask of the hosts; default: nothing beyond an ordinary container */
  policy?: RepoPolicy;
}

export interface NetworkSpec {
  key: string;
  /** the network's name on the host: `<stack>_<key>` unless `name:` or external */
  name: string;
  external: boolean;
  driver?: string;
  labels: Record<string, string>;
}

export interface VolumeSpec {
  key: string;
  /** the volume's name on the host: `<stack>_<key>` unless `name:` or external */
  name: string;
  external: boolean;
  driver?: string;
  labels: Record<string, string>;
}

export interface RenderedStack extends StackDef {
  /** in start order: a service comes after everything it depends on */
  services: ServiceSpec[];
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
}

export type StackRender =
  | { def: StackDef; ok: true; stack: RenderedStack }
  | { def: StackDef; ok: false; errors: SourceError[] };

/** What render makes of one snapshot. `errors` are repo-wide (berth.yaml): when present, no stack is known. */
export interface RenderResult {
  errors: SourceError[];
  stacks: StackRender[];
}

/** Labels berth puts on everything it creates (DESIGN §4). */
export const LABEL = {
  managed: 'berth.managed',
  stack: 'berth.stack',
  service: 'berth.service',
  slot: 'berth.slot',
  specHash: 'berth.spec-hash',
  commit: 'berth.commit',
  repo: 'berth.repo',
  composeProject: 'com.docker.compose.project',
  composeService: 'com.docker.compose.service',
  composeNumber: 'com.docker.compose.container-number',
  composeOneoff: 'com.docker.compose.oneoff',
  composeNetwork: 'com.docker.compose.network',
  composeVolume: 'com.docker.compose.volume',
} as const;
