/**
 * What berth tells people: the notification events, derived from the audit rows as they are
 * appended (docs/notifications.md, "Events"). A pure mapping: an audit row, and the sync record it
 * belongs to when it belongs to one, in; an event or nothing out.
 */
import type { Evidence } from '../apply/evidence.ts';
import type { AuditRow, Trigger } from '../audit/log.ts';
import type { SyncRecord } from '../audit/syncs.ts';

/** Every event a target may ask for, in the order docs/notifications.md lists them. */
export const EVENT_NAMES = [
  // berth starts applying a commit to a stack (a commit status's `pending`)
  'sync.started',
  // every step of a stack's sync is done
  'sync.succeeded',
  // a stack's sync failed, its files do not render, it cannot be placed, or berth stopped in the middle of it
  'sync.failed',
  // a rollout failed and stopped there (failure_action: pause)
  'rollout.paused',
  // a rollout failed and was rolled back (failure_action: rollback)
  'rollout.rolledback',
  // a change made by hand is found
  'drift.detected',
  // a change made by hand is undone (selfHeal)
  'drift.corrected',
  // a host has not answered for hostCheck.gracePeriod
  'host.lost',
  // a host that did not answer answers again
  'host.up',
  // a pre-sync or post-sync hook failed
  'hook.failed',
  // a job (replicated-job, global-job, a scheduled one) failed
  'job.failed',
] as const;

export type EventName = (typeof EVENT_NAMES)[number];

/** The events about a commit applied to a stack: what a commit status can say. */
export const COMMIT_EVENTS: readonly EventName[] = ['sync.started', 'sync.succeeded', 'sync.failed', 'rollout.paused', 'rollout.rolledback'];

/** What a target gets when its config names no events: every one but `sync.started` (statuses: COMMIT_EVENTS). */
export const DEFAULT_EVENTS: readonly EventName[] = EVENT_NAMES.filter((e) => e !== 'sync.started');

/**
 * How things stand after the event: `pending` (a sync runs), `success` or `failure`; `error` when
 * berth itself was interrupted rather than the commit failing (a commit status's `error`).
 */
export type EventOutcome = 'pending' | 'success' | 'failure' | 'error';

/** One thing berth did or saw, as every target is told of it. No field ever holds a secret: they come from audit rows. */
export interface NotificationEvent {
  event: EventName;
  outcome: EventOutcome;
  repo?: string;
  stack?: string;
  service?: string;
  host?: string;
  commit?: { sha: string; author?: string; message?: string };
  /** why, for a failure: the audit row's message */
  reason?: string;
  /** what the failing container showed, when a replica's failure ended the sync (masked, bounded: src/apply/evidence.ts) */
  evidence?: Evidence;
  /** the sync run it belongs to (GET /api/v1/syncs/:id, the dashboard's #/syncs/ID) */
  syncId?: number;
  trigger?: Trigger;
  /** ISO 8601, of the audit row */
  time: string;
  /** the audit row it comes from */
  auditId: number;
}

/** What eventOf reads of the sync record a row belongs to. */
export type SyncContext = Pick<SyncRecord, 'commitSha' | 'result' | 'plan' | 'evidence'>;

/** Which audit rows may make an event: the caller looks up the sync record of these only. */
export const EVENT_KINDS: ReadonlySet<AuditRow['kind']> = new Set([
  'sync.started',
  'sync.succeeded',
  'sync.failed',
  'manifest.invalid',
  'drift.detected',
  'drift.corrected',
  'host.lost',
  'host.up',
  'job.failed',
]);

/**
 * The event an audit row makes, if any. `sync` is the record of the sync the row belongs to
 * (row.syncId), when it has one: it says how a failed sync ended (a rollout paused or rolled back
 * is its own event, not sync.failed) and which services of it were hooks.
 *
 * A sync berth runs to put back a change made by hand (trigger `drift`) makes no sync.started or
 * sync.succeeded: drift.detected and drift.corrected say it, and the commit's status was settled by
 * its own sync. Its failure is a sync.failed all the same. A stack whose files do not render at a
 * commit (manifest.invalid) is a failed sync of it: nothing of the commit was applied.
 */
export function eventOf(row: AuditRow, sync?: SyncContext): NotificationEvent | undefined {
  const base = baseOf(row, sync);
  switch (row.kind) {
    case 'sync.started':
      return row.trigger === 'drift' ? undefined : { ...base, event: 'sync.started', outcome: 'pending' };
    case 'sync.succeeded':
      return row.trigger === 'drift' ? undefined : { ...base, event: 'sync.succeeded', outcome: 'success' };
    case 'sync.failed': {
      const event = sync?.result === 'paused' ? 'rollout.paused' : sync?.result === 'rolledback' ? 'rollout.rolledback' : 'sync.failed';
      // a sync left running by a berth that stopped, settled by the next one: the row names no commit of its own
      const interrupted = event === 'sync.failed' && row.syncId !== undefined && row.commitSha === undefined && sync !== undefined;
      return { ...base, event, outcome: interrupted ? 'error' : 'failure', ...reason(row), ...(sync?.evidence ? { evidence: sync.evidence } : {}) };
    }
    case 'manifest.invalid':
      return { ...base, event: 'sync.failed', outcome: 'failure', ...reason(row) };
    case 'drift.detected':
      return { ...base, event: 'drift.detected', outcome: 'failure', ...reason(row) };
    case 'drift.corrected':
      return { ...base, event: 'drift.corrected', outcome: 'success' };
    case 'host.lost':
      return { ...base, event: 'host.lost', outcome: 'failure', ...reason(row) };
    case 'host.up':
      return { ...base, event: 'host.up', outcome: 'success' };
    case 'job.failed':
      return { ...base, event: isHook(row, sync) ? 'hook.failed' : 'job.failed', outcome: 'failure', ...reason(row) };
    default:
      return undefined;
  }
}

/** The fields every event takes from its row (absent ones left out). */
function baseOf(row: AuditRow, sync: SyncContext | undefined): Omit<NotificationEvent, 'event' | 'outcome'> {
  const sha = row.commitSha ?? (sync?.commitSha || undefined);
  const commit = sha
    ? {
        sha,
        ...(row.commitSha && row.commitAuthor ? { author: row.commitAuthor } : {}),
        ...(row.commitSha && row.commitMessage ? { message: row.commitMessage } : {}),
      }
    : undefined;
  return {
    ...(row.repo ? { repo: row.repo } : {}),
    ...(row.stack ? { stack: row.stack } : {}),
    ...(row.service ? { service: row.service } : {}),
    ...(row.host ? { host: row.host } : {}),
    ...(commit ? { commit } : {}),
    ...(row.syncId !== undefined ? { syncId: row.syncId } : {}),
    ...(row.trigger ? { trigger: row.trigger } : {}),
    time: row.time,
    auditId: row.id,
  };
}

const reason = (row: AuditRow) => (row.message ? { reason: row.message } : {});

/** Whether a failed job's service is one of its sync's hooks (the plan kept with the sync lists them). */
function isHook(row: AuditRow, sync: SyncContext | undefined): boolean {
  const hooks = (sync?.plan as { hooks?: Array<{ service?: string }> } | undefined)?.hooks;
  return Array.isArray(hooks) && hooks.some((h) => h.service === row.service);
}
