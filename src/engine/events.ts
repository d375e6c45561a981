/**
 * A sync run's progress as Engine.events tells it ('sync'): the event stream of the API
 * (`GET /api/v1/events`) passes it on.
 */
import type { AuditRow } from '../audit/log.ts';

/** A sync run's progress: started, one event per audit row it writes (`step`), finished. */
export interface SyncEvent {
  /** the sync run's id (GET /api/v1/syncs/:id) */
  id: number;
  repo?: string;
  stack: string;
  phase: 'started' | 'step' | 'finished';
  /** with `finished` */
  outcome?: 'succeeded' | 'failed';
  /** with `step`: the audit row written */
  step?: AuditRow;
}
