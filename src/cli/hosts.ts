/** `berth hosts`: the hosts' statuses (src/engine/ops.ts) as a table. */
import type { HostSummary } from '../engine/ops.ts';
import { table } from './table.ts';
import { printable } from './text.ts';

/** The table `NAME ENDPOINT STATE VERSION CPUS MEMORY CONTAINERS LABELS`, then a line per host that did not answer, saying why. */
export function formatHostsTable(reports: HostSummary[]): string {
  const header = ['NAME', 'ENDPOINT', 'STATE', 'VERSION', 'CPUS', 'MEMORY', 'CONTAINERS', 'LABELS'];
  const rows = reports.map((r) => [
    r.name,
    r.endpoint,
    r.state,
    r.version ?? '-',
    r.cpus?.toString() ?? '-',
    r.memoryBytes === undefined ? '-' : formatBytes(r.memoryBytes),
    r.state !== 'up' ? '-' : (r.containers?.toString() ?? '?'),
    Object.entries(r.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
  ]);
  const errors = reports.filter((r) => r.error).map((r) => printable(`${r.name}: ${r.state}: ${r.error}`));
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
