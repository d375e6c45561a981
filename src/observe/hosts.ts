/**
 * Watching the hosts: whether each registered Docker host answers, what it is (Docker version,
 * CPUs, memory), and for how long it has not answered. A host that stops answering is
 * `unreachable` from the first failed check and `lost` once that lasted the grace period
 * (docs/how-it-works.md, "Hosts that stop answering"); it is `up` again as soon as it answers.
 */
import type Dockerode from 'dockerode';
import type { HostCheckConfig, HostConfig } from '../config.ts';
import { LABEL } from '../model.ts';

export type HostState = 'up' | 'unreachable' | 'lost';

export interface HostStatus {
  name: string;
  /** the endpoint, with any password in it masked */
  endpoint: string;
  labels: Record<string, string>;
  state: HostState;
  /** ISO time of the last state change */
  since: string;
  /** Docker's version, API version, CPUs and memory: as last seen (kept while the host does not answer) */
  version?: string;
  apiVersion?: string;
  cpus?: number;
  memoryBytes?: number;
  /** why the host is unreachable (never a secret) */
  error?: string;
}

/** What the monitor needs of a host: a DockerHost (src/apply/docker-host.ts) fits. */
export interface MonitoredHost {
  name: string;
  docker: Dockerode;
}

export interface HostMonitorConfig extends HostCheckConfig {
  /** the hosts' config entries: where the endpoint and labels of a status come from */
  hosts?: readonly HostConfig[];
}

/** What one probe of a host found: its facts when it answered, else why not. */
export type Probe = { ok: true; version: string; apiVersion: string; cpus: number; memoryBytes: number } | { ok: false; error: string };

/** Checks every host in parallel, now (`check`) or every intervalMs (`start`), and keeps their last status. */
export class HostMonitor {
  private readonly hosts: ReadonlyMap<string, MonitoredHost>;
  private readonly config: HostMonitorConfig;
  private readonly onChange?: (before: HostStatus | undefined, after: HostStatus) => void;
  private readonly statuses = new Map<string, HostStatus>();
  private running?: Promise<HostStatus[]>;
  private timer?: NodeJS.Timeout;
  /** the periodic loop that runs, if any (a start() after a stop() must not revive the old one) */
  private loop?: object;

  /** onChange is called for every change of a host's state (and for its first status); it must not throw. */
  constructor(hosts: ReadonlyMap<string, MonitoredHost>, config: HostMonitorConfig, onChange?: (before: HostStatus | undefined, after: HostStatus) => void) {
    this.hosts = hosts;
    this.config = config;
    this.onChange = onChange;
  }

  /** Probes every host (each bounded by timeoutMs) and updates their states; a call during a check shares it. */
  check(): Promise<HostStatus[]> {
    this.running ??= this.checkAll().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Checks now and then every intervalMs after the previous check ended, until stop(); the timer does not keep the process alive. */
  start(): void {
    if (this.loop) return;
    const loop = (this.loop = {});
    const tick = () => {
      void this.check()
        .catch(() => undefined) // only a throwing onChange gets here
        .finally(() => {
          if (this.loop === loop) this.timer = setTimeout(tick, this.config.intervalMs).unref();
        });
    };
    tick();
  }

  stop(): void {
    this.loop = undefined;
    clearTimeout(this.timer);
  }

  /** The last known status of every host checked so far, in config order. */
  status(): HostStatus[] {
    return [...this.hosts.keys()].flatMap((name) => this.statuses.get(name) ?? []);
  }

  private async checkAll(): Promise<HostStatus[]> {
    const hosts = [...this.hosts.values()];
    const probes = await Promise.all(hosts.map((h) => probeHost(h.docker, this.config.timeoutMs)));
    const now = Date.now();
    const changes: Array<[HostStatus | undefined, HostStatus]> = [];
    hosts.forEach((h, i) => {
      const before = this.statuses.get(h.name);
      const after = nextStatus(before, this.describe(h.name), probes[i], now, this.config.graceMs);
      this.statuses.set(h.name, after);
      if (before?.state !== after.state) changes.push([before, after]);
    });
    for (const [before, after] of changes) this.onChange?.(before, after);
    return this.status();
  }

  private describe(name: string): Pick<HostStatus, 'name' | 'endpoint' | 'labels'> {
    const config = this.config.hosts?.find((h) => h.name === name);
    return { name, endpoint: config ? displayEndpoint(config.endpoint) : '', labels: config?.labels ?? {} };
  }
}

/**
 * The state machine of one host, pure: its status after a probe at `now` (ms). Answering makes it
 * `up`; not answering makes it `unreachable`, and `lost` once unreachable for graceMs.
 */
export function nextStatus(
  before: HostStatus | undefined,
  host: Pick<HostStatus, 'name' | 'endpoint' | 'labels'>,
  probe: Probe,
  now: number,
  graceMs: number,
): HostStatus {
  const at = new Date(now).toISOString();
  if (probe.ok) {
    const { version, apiVersion, cpus, memoryBytes } = probe;
    return { ...host, state: 'up', since: before?.state === 'up' ? before.since : at, version, apiVersion, cpus, memoryBytes };
  }
  const seen = { version: before?.version, apiVersion: before?.apiVersion, cpus: before?.cpus, memoryBytes: before?.memoryBytes };
  const down = (state: HostState, since: string): HostStatus => ({ ...host, state, since, ...seen, error: probe.error });
  if (!before || before.state === 'up') return down('unreachable', at);
  if (before.state === 'unreachable' && now - Date.parse(before.since) >= graceMs) return down('lost', at);
  return down(before.state, before.since);
}

/** Asks a host for _ping, then info and version; all of it within timeoutMs. Never throws. */
export async function probeHost(docker: Dockerode, timeoutMs: number): Promise<Probe> {
  // dockerode takes an abortSignal on these calls; its type declarations do not say so
  const d = docker as unknown as {
    ping(o: { abortSignal: AbortSignal }): Promise<unknown>;
    info(o: { abortSignal: AbortSignal }): Promise<{ NCPU: number; MemTotal: number; ServerVersion: string }>;
    version(o: { abortSignal: AbortSignal }): Promise<{ ApiVersion: string }>;
  };
  const abortSignal = AbortSignal.timeout(timeoutMs);
  try {
    await pingPastStaleConnections(() => d.ping({ abortSignal }));
    const [info, version] = await Promise.all([d.info({ abortSignal }), d.version({ abortSignal })]);
    return { ok: true, version: info.ServerVersion, apiVersion: version.ApiVersion, cpus: info.NCPU, memoryBytes: info.MemTotal };
  } catch (err) {
    return { ok: false, error: explainError(err, timeoutMs) };
  }
}

/**
 * Pings; a kept-alive connection that the other side has just closed fails at once with a reset,
 * so a reset is tried again (each try drops one such connection), a few times at most.
 */
async function pingPastStaleConnections(ping: () => Promise<unknown>, tries = 4): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await ping();
      return;
    } catch (err) {
      if (i >= tries || !isReset(err)) throw err;
    }
  }
}

/** How many berth-managed containers (running or not) a host has: one filtered list call, within timeoutMs. */
export async function countManagedContainers(docker: Dockerode, timeoutMs: number): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] }, abortSignal: AbortSignal.timeout(timeoutMs) });
  return list.length;
}

const isReset = (err: unknown) => {
  const e = err as { code?: string; message?: string };
  return e.code === 'ECONNRESET' || e.message === 'socket hang up';
};

const CLIENT_CERT_ALERT = /alert (bad certificate|unsupported certificate|certificate (required|unknown|expired|revoked)|unknown ca|access denied)/i;
const SERVER_CERT_CODES = /^(UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|ERR_TLS_CERT_)/;

/** A connection or API error as one line a person can act on (it holds no secrets: paths and addresses at most). */
export function explainError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; reason?: string; message?: string; statusCode?: number; address?: string; port?: number };
  const code = e.code ?? '';
  const message = (e.message ?? String(err)).trim();
  const where = e.address ? ` at ${e.address}${e.port ? `:${e.port}` : ''}` : '';
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  if (e.statusCode) {
    const detail = message.replace(/^\(HTTP code \d+\) [\w ]+ - /, '').trim();
    if (/HTTP request to an HTTPS server/i.test(detail)) return 'the host speaks TLS: give it tls: { ca, cert, key } in the config';
    return `the endpoint answered HTTP ${e.statusCode}${detail ? `: ${detail}` : ''}${e.statusCode === 404 ? ' (is it a Docker API?)' : ''}`;
  }
  if (code.startsWith('ERR_SSL_')) {
    const reason = e.reason ?? message.split('\n')[0];
    if (CLIENT_CERT_ALERT.test(reason)) {
      return `TLS handshake failed (${reason}): the host did not accept berth's client certificate; tls.cert and tls.key must be signed by the CA the daemon trusts (its --tlscacert)`;
    }
    return `TLS handshake failed (${reason})`;
  }
  if (SERVER_CERT_CODES.test(code)) {
    return `TLS: the host's certificate is not trusted (${code}: ${message.split(';')[0]}); tls.ca must be the CA that signed the daemon's certificate, for this address`;
  }
  if (code === 'ECONNREFUSED') return `connection refused${where}: nothing listens there (is dockerd running, and listening on that port?)`;
  if (code === 'ENOENT') return `no Docker socket${where || ` (${message})`}`;
  if (code === 'EACCES') return `permission denied${where || ` (${message})`}: berth's user may not use this Docker socket`;
  if (isReset(err)) return `the connection was closed without an answer${where} (${message})`;
  return message;
}

/** The endpoint for display: a password in it (https://user:pass@h) is masked. */
function displayEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (!url.password) return endpoint;
    url.password = '***';
    return url.toString();
  } catch {
    return endpoint;
  }
}
