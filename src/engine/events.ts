/**
 * A sync run's progress as Engine.events tells it ('sync'): the event stream of the API
 * (`GET /api/v1/events`) passes it on.
 */
import type { AuditRow } from '../audit/log.ts';
import type { ReplicaStep, ServiceProgress } from './progress.ts';

/**
 * A sync run's progress: started; one `step` event per audit row it writes; `progress` as its
 * rollout changes replicas (the replica's step, when one, and every service's counts); finished.
 */
export interface SyncEvent {
  /** the sync run's id (GET /api/v1/syncs/:id) */
  id: number;
  repo?: string;
  stack: string;
  phase: 'started' | 'step' | 'progress' | 'finished';
  /** with `finished` */
  outcome?: 'succeeded' | 'failed';
  /** with `finished`: how a failed sync ended (failed, paused, rolledback) */
  result?: 'failed' | 'paused' | 'rolledback';
  /** with `step`: the audit row written */
  step?: AuditRow;
  /** with `progress`: the replica step that changed the counts, if one did */
  replica?: ReplicaStep;
  /** with `progress`, and with `finished` when the sync had a rollout: per service, the replicas it changes, updated and failed so far */
  services?: ServiceProgress[];
}
