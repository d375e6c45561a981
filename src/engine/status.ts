/**
 * A stack's status (docs/how-it-works.md, "Status"): whether the hosts match Git (sync), how its
 * replicas are (health), and how its last rollout ended. Pure: made from a dry-run plan, the sync
 * history and the holds.
 */
import type { Hold } from '../audit/holds.ts';
import type { SyncRecord } from '../audit/syncs.ts';
import { settled } from '../diff/plan.ts';
import type { JobSpec } from '../model.ts';
import type { StackOutcome } from './outcome.ts';

export type SyncState = 'Synced' | 'OutOfSync' | 'Unknown';
export type Health = 'Healthy' | 'Progressing' | 'Degraded' | 'Missing' | 'Unknown';

export interface ReplicaStatus {
  service: string;
  slot: number;
  host: string;
  /** absent when the replica is missing */
  container?: string;
  /** Docker's state, or 'missing' */
  state: string;
  health?: string;
  /** a job's kind (its containers run to completion) */
  job?: JobSpec['kind'];
  /** how a job's container exited */
  exitCode?: number;
  commit?: string;
  /** the image the container was created from, as given to Docker (`name:tag@sha256:...` when pinned) */
  image?: string;
  /** the registry digest its image was pinned to, when it was (docs/how-it-works.md, "Images") */
  digest?: string;
  /** true for a container that Git no longer wants (it goes at the next sync) */
  extra?: boolean;
}

export interface StackState {
  name: string;
  repo: string;
  sync: SyncState;
  health: Health;
  /** the commit of the last sync that succeeded */
  commit?: string;
  /** how the last rollout ended when it did not succeed */
  condition?: 'RolledBack' | 'Paused' | 'Failed' | 'Invalid';
  /** why sync, health or condition are what they are */
  reason?: string;
  held?: Hold;
  /** how the stack's last sync (a rollout, when it changed containers) went, whatever it was */
  lastSync?: LastSync;
  /**
   * Under berth serve: the oldest of its hosts' last sightings (a list of the host, or an event of
   * it), ISO 8601; what it says of the replicas is as of then. Absent from a status worked out by
   * listing the hosts now.
   */
  observedAt?: string;
  replicas: ReplicaStatus[];
}

export interface LastSync {
  id: number;
  /** ok, or how it did not succeed (failed, paused, rolledback), or running now */
  outcome: 'ok' | 'running' | 'failed' | 'paused' | 'rolledback';
  commit: string;
  /** when it ended (ISO 8601), or began when it runs */
  at: string;
}

/** The last sync as a StackState says it. */
export function lastSyncOf(s: SyncRecord): LastSync {
  const outcome = s.outcome === 'succeeded' ? 'ok' : s.outcome === 'running' ? 'running' : (s.result ?? 'failed');
  return { id: s.id, outcome, commit: s.commitSha, at: s.finishedAt ?? s.startedAt };
}

export interface StatusInput {
  repo: string;
  outcome: StackOutcome;
  latest?: SyncRecord;
  lastSucceeded?: SyncRecord;
  hold?: Hold;
  /** hosts that do not answer now */
  unreachable: Set<string>;
}

export function stackState({ repo, outcome, latest, lastSucceeded, hold, unreachable }: StatusInput): StackState {
  const unseen: ReplicaStatus[] = (outcome.unseen ?? []).map((r) => ({ ...r, state: 'unknown' }));
  const replicas: ReplicaStatus[] = [
    ...unseen,
    ...(outcome.plan?.actions ?? []).map((a) =>
      a.kind === 'create'
        ? { service: a.service, slot: a.slot, host: a.host, state: 'missing' }
        : {
            service: a.service,
            slot: a.slot,
            host: a.host,
            container: a.live.id,
            state: a.live.state,
            health: a.live.health,
            commit: a.live.commit,
            image: a.live.image,
            ...(a.live.digest ? { digest: a.live.digest } : {}),
            ...(a.live.job ? { job: a.live.job as JobSpec['kind'], exitCode: a.live.exitCode } : {}),
            ...(a.kind === 'remove' ? { extra: true } : {}),
          },
    ),
  ];
  const state: StackState = {
    name: outcome.stack,
    repo,
    sync: 'Synced',
    health: 'Healthy',
    commit: lastSucceeded?.commitSha,
    held: hold,
    ...(latest ? { lastSync: lastSyncOf(latest) } : {}),
    replicas,
  };
  const wanted = replicas.filter((r) => !r.extra);
  const dark = [...new Set(replicas.map((r) => r.host).filter((h) => unreachable.has(h)))];

  if (outcome.status === 'invalid') {
    Object.assign(state, { sync: 'Unknown', condition: 'Invalid', reason: outcome.errors?.join('\n') });
  } else if (outcome.status === 'failed' && !outcome.plan) {
    Object.assign(state, { sync: 'Unknown', condition: 'Failed', reason: outcome.errors?.join('\n') });
  } else if (dark.length) {
    Object.assign(state, { sync: 'Unknown', reason: `host(s) not answering: ${dark.join(', ')}` });
  } else if (outcome.status === 'planned' || outcome.status === 'paused') {
    state.sync = 'OutOfSync';
  }

  if (latest?.outcome === 'failed' && latest.result) {
    const condition = ({ rolledback: 'RolledBack', paused: 'Paused', failed: 'Failed' } as const)[latest.result];
    state.condition ??= condition;
    state.reason ??= latest.error;
  }
  if (hold && !state.reason) state.reason = `held${hold.commitSha ? ` at ${hold.commitSha.slice(0, 7)}` : ''} by ${hold.actor} (${hold.reason})`;

  // a job's container that ran to success (or runs, or waits for its schedule) is as healthy as a running one
  const ok = (r: ReplicaStatus) => (r.job ? settled(r, { kind: r.job }) && !r.exitCode : r.state === 'running' && r.health !== 'unhealthy');
  const down = wanted.filter((r) => r.state !== 'unknown' && !ok(r));
  if (latest?.outcome === 'running') state.health = 'Progressing';
  else if (dark.length || !outcome.plan)
    state.health = 'Unknown'; // nothing seen, nothing to say
  else if (wanted.length > 0 && wanted.every((r) => r.state === 'missing')) state.health = 'Missing';
  else if (down.length) state.health = 'Degraded';
  else if (wanted.some((r) => r.health === 'starting')) state.health = 'Progressing';
  if (down.length && !state.reason) {
    state.reason = down
      .map(
        (r) =>
          `${r.service}#${r.slot} on ${r.host}: ${r.state}${r.job && r.exitCode !== undefined ? ` (exit code ${r.exitCode})` : ''}${r.health ? `, ${r.health}` : ''}`,
      )
      .join('; ');
  }
  return state;
}
