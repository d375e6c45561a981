/** `berth hosts`: one check of every configured host, as a table or JSON. */
import type { BerthConfig } from '../config.ts';
import { connect } from '../observe/docker.ts';
import { countManagedContainers, HostMonitor, type HostStatus } from '../observe/hosts.ts';
import { table } from './table.ts';

/** A host's status with how many berth-managed containers it has (absent when it could not be counted). */
export interface HostReport extends HostStatus {
  containers?: number;
}

/** Connects to every host of the config, checks them all once in parallel and counts the managed containers of those up. */
export async function checkHosts(config: BerthConfig): Promise<HostReport[]> {
  const hosts = new Map(config.hosts.map((h) => [h.name, { name: h.name, docker: connect(h) }]));
  const statuses = await new HostMonitor(hosts, { ...config.hostCheck, hosts: config.hosts }).check();
  return Promise.all(statuses.map(async (s): Promise<HostReport> => {
    if (s.state !== 'up') return s;
    const containers = await countManagedContainers(hosts.get(s.name)!.docker, config.hostCheck.timeoutMs).catch(() => undefined);
    return { ...s, containers };
  }));
}

/** The table `NAME ENDPOINT STATE VERSION CPUS MEMORY CONTAINERS LABELS`, then a line per host that did not answer, saying why. */
export function formatHostsTable(reports: HostReport[]): string {
  const header = ['NAME', 'ENDPOINT', 'STATE', 'VERSION', 'CPUS', 'MEMORY', 'CONTAINERS', 'LABELS'];
  const rows = reports.map((r) => [
    r.name,
    r.endpoint,
    r.state,
    r.version ?? '-',
    r.cpus?.toString() ?? '-',
    r.memoryBytes === undefined ? '-' : formatBytes(r.memoryBytes),
    r.state !== 'up' ? '-' : (r.containers?.toString() ?? '?'),
    Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
  ]);
  const errors = reports.filter((r) => r.error).map((r) => `${r.name}: ${r.state}: ${r.error}`);
  return [table(header, rows), ...(errors.length > 0 ? ['', ...errors] : [])].join('\n');
}

/** 1536 -> "1.5KiB", 8 GiB -> "8.0GiB" (no space: one cell of a table). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n}B` : `${n.toFixed(1)}${units[u]}`;
}
