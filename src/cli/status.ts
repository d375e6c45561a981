/** `berth status` as a table: one row per stack, then why, for those that are not fine. */
import type { StackStats } from '../engine/ops.ts';
import type { StackState } from '../engine/status.ts';
import { formatBytes } from './hosts.ts';
import { digestIn, shortDigest, withoutDigest } from '../schedule/pin.ts';
import { ago, table } from './table.ts';
import { printable } from './text.ts';

const OUTCOME = { ok: 'ok', running: 'running', failed: 'failed', paused: 'paused', rolledback: 'rolled back' } as const;

/** `STACK REPO SYNC HEALTH COMMIT REPLICAS LAST SYNC`, then the reasons, indented under their stack's name. */
export function formatStatusTable(states: StackState[], now = Date.now()): string {
  if (states.length === 0) return 'no stacks';
  const rows = states.map((s) => {
    const replicas = s.replicas.filter((r) => !r.extra);
    const up = replicas.filter((r) => r.state === 'running').length;
    const notes = [s.condition, s.held ? 'held' : undefined].filter(Boolean).join(', ');
    const last = s.lastSync ? `${OUTCOME[s.lastSync.outcome]} ${ago(s.lastSync.at, now)}` : 'never';
    return [s.name, s.repo, s.sync, s.health, s.commit?.slice(0, 7) ?? '-', `${up}/${replicas.length} running`, last, notes];
  });
  const reasons = states.filter((s) => s.reason).map((s) => printable(`${s.name}: ${s.reason!.split('\n').join('\n  ')}`));
  return [table(['STACK', 'REPO', 'SYNC', 'HEALTH', 'COMMIT', 'REPLICAS', 'LAST SYNC', 'NOTE'], rows), ...(reasons.length ? ['', ...reasons] : [])].join('\n');
}

/**
 * One stack's replicas (`berth status --stack S`): `SERVICE REPLICA HOST STATE HEALTH IMAGE
 * CONTAINER`, the image as the container was created from it, with the digest it was pinned to
 * shortened (docs/how-it-works.md, "Images").
 */
export function formatReplicasTable(state: StackState): string {
  const rows = state.replicas.map((r) => [
    r.service,
    `#${r.slot}${r.extra ? ' (not in Git)' : ''}`,
    r.host,
    r.state,
    r.health ?? '-',
    imageOf(r.image),
    r.container?.slice(0, 12) ?? '-',
  ]);
  return table(['SERVICE', 'REPLICA', 'HOST', 'STATE', 'HEALTH', 'IMAGE', 'CONTAINER'], rows);
}

/** The image as a replica was created from it, a pinned digest shortened; `-` for none. */
function imageOf(image: string | undefined): string {
  const digest = image && digestIn(image);
  return digest ? `${withoutDigest(image)}@${shortDigest(digest)}` : image || '-';
}

/**
 * One sample of each replica's resource use (`berth status --stats`), as `docker stats` shows a
 * container's: `SERVICE REPLICA HOST CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS`; a
 * replica without a sample says why in NOTE.
 */
export function formatStatsTable(stats: StackStats): string {
  const rows = stats.replicas.map((r) => {
    const where = [r.service, `#${r.slot}`, r.host];
    if (!('sample' in r)) return [...where, '-', '-', '-', '-', '-', '-', printable(r.error)];
    const s = r.sample;
    return [
      ...where,
      `${s.cpuPercent.toFixed(2)}%`,
      `${formatBytes(s.memoryBytes)} / ${formatBytes(s.memoryLimitBytes)}`,
      `${s.memoryPercent.toFixed(2)}%`,
      `${formatBytes(s.networkRxBytes)} / ${formatBytes(s.networkTxBytes)}`,
      `${formatBytes(s.blockReadBytes)} / ${formatBytes(s.blockWriteBytes)}`,
      s.pids === undefined ? '-' : String(s.pids),
      '',
    ];
  });
  return table(['SERVICE', 'REPLICA', 'HOST', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS', 'NOTE'], rows);
}
