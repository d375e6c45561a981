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
}

export interface PortSpec {
  /** container port */
  target: number;
  /** host port or range ("8080", "8000-8010"); absent: not published */
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
  retries?: number;
}

export interface DependsOn {
  service: string;
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
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
  replicas: number;
  dependsOn: DependsOn[];
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
