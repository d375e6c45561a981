/**
 * One resource sample of a container, read on demand (GET /api/v1/stacks/:stack/stats, `berth
 * status --stats`; docs/api.md): CPU, memory, network and block I/O, worked out from Docker's stats
 * answer the way the docker CLI's `docker stats` works them out. Nothing polls: each read asks each
 * running replica's host once.
 */
import type Dockerode from 'dockerode';

/** A container's resource use at one moment. */
export interface ResourceSample {
  /** CPU used since Docker's previous sample, in % of one CPU (200 = two CPUs busy), as `docker stats` shows it */
  cpuPercent: number;
  /** memory in use without the page cache that can be reclaimed, bytes */
  memoryBytes: number;
  /** the container's memory limit (the host's memory when it has none), bytes */
  memoryLimitBytes: number;
  /** memoryBytes of memoryLimitBytes, % */
  memoryPercent: number;
  /** received and sent over every network of the container, bytes */
  networkRxBytes: number;
  networkTxBytes: number;
  /** read from and written to block devices, bytes */
  blockReadBytes: number;
  blockWriteBytes: number;
  /** processes (threads) in the container */
  pids?: number;
}

/** The part of Docker's stats answer (GET /containers/{id}/stats?stream=false) that the sample reads. */
export interface DockerStats {
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op?: string; value?: number }> | null };
  pids_stats?: { current?: number };
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** Docker's stats answer as a sample (pure). */
export function sampleOf(s: DockerStats): ResourceSample {
  const memoryBytes = memoryInUse(s.memory_stats);
  const memoryLimitBytes = s.memory_stats?.limit ?? 0;
  let networkRxBytes = 0;
  let networkTxBytes = 0;
  for (const n of Object.values(s.networks ?? {})) {
    networkRxBytes += n.rx_bytes ?? 0;
    networkTxBytes += n.tx_bytes ?? 0;
  }
  let blockReadBytes = 0;
  let blockWriteBytes = 0;
  // cgroup v1 says Read/Write, v2 read/write
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op?.toLowerCase();
    if (op === 'read') blockReadBytes += e.value ?? 0;
    else if (op === 'write') blockWriteBytes += e.value ?? 0;
  }
  return {
    cpuPercent: round(cpuPercent(s.cpu_stats, s.precpu_stats)),
    memoryBytes,
    memoryLimitBytes,
    memoryPercent: memoryLimitBytes > 0 ? round((memoryBytes / memoryLimitBytes) * 100) : 0,
    networkRxBytes,
    networkTxBytes,
    blockReadBytes,
    blockWriteBytes,
    ...(s.pids_stats?.current !== undefined ? { pids: s.pids_stats.current } : {}),
  };
}

/** The container's CPU time over the host's between the two samples, times the CPUs it may use. */
function cpuPercent(now: CpuStats | undefined, before: CpuStats | undefined): number {
  const cpu = (now?.cpu_usage?.total_usage ?? 0) - (before?.cpu_usage?.total_usage ?? 0);
  const system = (now?.system_cpu_usage ?? 0) - (before?.system_cpu_usage ?? 0);
  const cpus = now?.online_cpus || now?.cpu_usage?.percpu_usage?.length || 1;
  return cpu > 0 && system > 0 ? (cpu / system) * cpus * 100 : 0;
}

/** Usage less the inactive page cache (cgroup v1: total_inactive_file; v2: inactive_file), as the docker CLI counts it. */
function memoryInUse(m: DockerStats['memory_stats']): number {
  const usage = m?.usage ?? 0;
  const inactive = m?.stats?.total_inactive_file ?? m?.stats?.inactive_file;
  return inactive !== undefined && inactive < usage ? usage - inactive : usage;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** One sample of the container: Docker takes two readings about a second apart for the CPU figure. */
export async function sampleContainer(docker: Dockerode, id: string, timeoutMs: number): Promise<ResourceSample> {
  // dockerode passes abortSignal on to the request; its type declarations do not say so
  const stats = (await docker.getContainer(id).stats({ stream: false, abortSignal: AbortSignal.timeout(timeoutMs) } as { stream: false })) as DockerStats;
  return sampleOf(stats);
}
