/**
 * Among several engines on one PostgreSQL (docs/how-it-works.md, "Running two engines"), what each
 * engine's clients see live includes what the others do: the leader runs the syncs, and an event
 * stream (the dashboard, `berth sync --wait` through a follower) may be open on any engine. Each
 * engine notifies the others (NOTIFY on one channel) of every audit row it appends, by id, and of
 * its syncs' events (started, progress, finished); each re-emits what the others sent on its own
 * Engine.events, marked with the sending engine's id (`from`), so that what counts this process's
 * own work (the metrics) leaves it out.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AuditLog, AuditRow } from '../audit/log.ts';
import type { PostgresDb } from '../audit/pg.ts';
import type { EngineEvents } from './engine.ts';
import type { SyncEvent } from './events.ts';

const CHANNEL = 'berth_events';
/** NOTIFY takes at most 8,000 bytes: a bigger event (none is, in practice) is not relayed. */
const MAX_PAYLOAD = 7900;

type Message = { from: string; audit: number } | { from: string; sync: SyncEvent };

/** Starts relaying; `onRow` hears each row another engine appended (after it is re-emitted). Returns a function that stops it. */
export function relayEvents(
  db: PostgresDb,
  self: string,
  audit: AuditLog,
  events: EventEmitter<EngineEvents>,
  log: Logger,
  onRow: (row: AuditRow) => void = () => undefined,
): () => void {
  const send = (m: Message) => {
    const payload = JSON.stringify(m);
    if (payload.length > MAX_PAYLOAD) return;
    try {
      db.notify(CHANNEL, payload);
    } catch (err) {
      log.debug({ err }, 'could not tell the other engines of an event'); // live views only: the rows are in the database
    }
  };
  const offAppend = audit.onAppend((row) => send({ from: self, audit: row.id }));
  const onSync = (e: SyncEvent, from?: string) => {
    if (!from && e.phase !== 'step') send({ from: self, sync: e }); // steps travel as their rows
  };
  events.on('sync', onSync);
  const stopListening = db.listen(CHANNEL, (payload) => {
    let m: Message;
    try {
      m = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (m.from === self) return;
    if ('sync' in m) {
      events.emit('sync', m.sync, m.from);
      return;
    }
    let row: AuditRow | undefined;
    try {
      row = audit.get(m.audit);
    } catch (err) {
      log.debug({ err }, 'could not read a row another engine appended');
    }
    if (!row) return;
    events.emit('audit', row, m.from);
    if (row.syncId !== undefined && row.stack) events.emit('sync', { id: row.syncId, repo: row.repo, stack: row.stack, phase: 'step', step: row }, m.from);
    onRow(row);
  });
  return () => {
    offAppend();
    events.off('sync', onSync);
    stopListening();
  };
}
