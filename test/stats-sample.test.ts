// A stack's resource use as berth reports it, from Docker's stats answers as plain data: the
// figures `docker stats` shows for the same answer (cgroup v1 and v2 shapes), and the table of
// `berth status --stats`.
import { describe, expect, it } from 'vitest';
import { sampleOf, type DockerStats } from '../src/observe/stats.ts';
import { formatStatsTable } from '../src/cli/status.ts';

const MiB = 2 ** 20;

describe('sampleOf', () => {
  it('works out CPU as the container share of the host CPU time between two readings, times the CPUs online (cgroup v2)', () => {
    const v2: DockerStats = {
      cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 18_000_000_000, online_cpus: 2 },
      memory_stats: { usage: 50 * MiB, limit: 64 * MiB, stats: { inactive_file: 10 * MiB } },
      networks: { eth0: { rx_bytes: 1000, tx_bytes: 200 }, eth1: { rx_bytes: 24, tx_bytes: 0 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'read', value: 4096 },
          { op: 'write', value: 8192 },
          { op: 'read', value: 4096 },
        ],
      },
      pids_stats: { current: 3 },
    };
    // 1e9 of 2e9 ns of the whole host, 2 CPUs: one CPU busy = 100 %
    expect(sampleOf(v2)).toEqual({
      cpuPercent: 100,
      memoryBytes: 40 * MiB,
      memoryLimitBytes: 64 * MiB,
      memoryPercent: 62.5,
      networkRxBytes: 1024,
      networkTxBytes: 200,
      blockReadBytes: 8192,
      blockWriteBytes: 8192,
      pids: 3,
    });
  });

  it('reads cgroup v1: the CPUs from percpu_usage, the page cache from total_inactive_file, Read/Write in capitals', () => {
    const v1: DockerStats = {
      cpu_stats: { cpu_usage: { total_usage: 500, percpu_usage: [1, 2, 3, 4] }, system_cpu_usage: 2000 },
      precpu_stats: { cpu_usage: { total_usage: 0 }, system_cpu_usage: 0 },
      memory_stats: { usage: 100, limit: 1000, stats: { total_inactive_file: 40, cache: 60 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'Read', value: 7 },
          { op: 'Write', value: 9 },
          { op: 'Total', value: 16 },
        ],
      },
    };
    const s = sampleOf(v1);
    expect([s.cpuPercent, s.memoryBytes, s.memoryPercent, s.blockReadBytes, s.blockWriteBytes, s.pids]).toEqual([100, 60, 6, 7, 9, undefined]);
  });

  it('says 0 % rather than a made-up figure when Docker has no earlier reading (a container just started) or nothing moved', () => {
    const first: DockerStats = { cpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000, online_cpus: 2 }, memory_stats: {} };
    expect(sampleOf({ ...first, precpu_stats: {} }).cpuPercent).toBeGreaterThan(0);
    expect(sampleOf({ ...first, precpu_stats: first.cpu_stats }).cpuPercent).toBe(0);
    expect(sampleOf({}).memoryPercent).toBe(0);
    // a page cache larger than the usage (a race between the two counters) leaves the usage as it is
    expect(sampleOf({ memory_stats: { usage: 10, limit: 100, stats: { inactive_file: 20 } } }).memoryBytes).toBe(10);
  });
});

describe('formatStatsTable', () => {
  it("shows each replica's figures as docker stats does, and why one has none", () => {
    const text = formatStatsTable({
      stack: 'shop',
      sampledAt: '2026-12-03T08:00:00.000Z',
      replicas: [
        {
          service: 'web',
          slot: 1,
          host: 'h1',
          container: 'abc',
          sample: {
            cpuPercent: 12.5,
            memoryBytes: 3 * MiB,
            memoryLimitBytes: 64 * MiB,
            memoryPercent: 4.69,
            networkRxBytes: 1536,
            networkTxBytes: 0,
            blockReadBytes: 0,
            blockWriteBytes: 4096,
            pids: 2,
          },
        },
        { service: 'web', slot: 2, host: 'h2', error: 'not running (exited)' },
      ],
    });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^SERVICE +REPLICA +HOST +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS +NOTE$/);
    expect(lines[1]).toMatch(/^web +#1 +h1 +12\.50% +3\.0MiB \/ 64\.0MiB +4\.69% +1\.5KiB \/ 0B +0B \/ 4\.0KiB +2/);
    expect(lines[2]).toMatch(/^web +#2 +h2 +- +- +- +- +- +- +not running \(exited\)$/);
  });
});
