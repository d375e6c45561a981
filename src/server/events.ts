/**
 * `GET /api/v1/events`: the engine's events as server-sent events (text/event-stream), for the
 * dashboard and for scripts. `event: audit` (every new audit row), `event: sync` (a sync run's
 * phases), `event: stack` (a stack's status after a pass over its repo), `event: notification` (a
 * notification delivery, each time it changes: src/audit/notifications.ts). A comment line every
 * `heartbeatMs` keeps proxies from closing an idle stream.
 *
 * One set of engine listeners serves every open stream, and only while one is open: with nobody
 * listening, the engine does not work out stack states for it.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { AuditRow } from '../audit/log.ts';
import type { NotificationRecord } from '../audit/notifications.ts';
import type { Engine } from '../engine/engine.ts';
import type { SyncEvent } from '../engine/events.ts';
import type { StackState } from '../engine/status.ts';

/** A client that reads slower than berth writes is dropped past this many unsent bytes (EventSource reconnects). */
const MAX_BUFFERED = 4 * 1024 * 1024;

/** One SSE message; the data is one line of JSON (JSON.stringify escapes newlines). */
export function sseMessage(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export interface EventStreamOptions {
  /** how often a comment line is sent (ms) */
  heartbeatMs: number;
  /** turns a stack state into what the stream sends (the API adds commitInfo) */
  stackView: (state: StackState) => unknown;
  log: FastifyBaseLogger;
  /** how many streams one client address may hold open at once (limits.eventStreams) */
  perClient: number;
}

/** The open event streams of one server, fed from one engine. */
export class EventStreams {
  readonly #engine: Engine;
  readonly #opts: EventStreamOptions;
  readonly #open = new Set<ServerResponse>();
  /** the open streams of each client address */
  readonly #byClient = new Map<string, number>();
  #heartbeat?: NodeJS.Timeout;

  readonly #onAudit = (row: AuditRow) => this.#broadcast('audit', row);
  readonly #onSync = (e: SyncEvent) => this.#broadcast('sync', e);
  readonly #onStack = (s: StackState) => this.#broadcast('stack', this.#opts.stackView(s));
  readonly #onNotification = (n: NotificationRecord) => this.#broadcast('notification', n);

  constructor(engine: Engine, opts: EventStreamOptions) {
    this.#engine = engine;
    this.#opts = opts;
  }

  /** How many streams are open. */
  get size(): number {
    return this.#open.size;
  }

  /** How many streams `client` (an address) holds open. */
  openFrom(client: string): number {
    return this.#byClient.get(client) ?? 0;
  }

  /**
   * Takes over the reply and keeps it open as an event stream until the client leaves or close()
   * is called; false, the reply untouched, when `client` (its address) holds `perClient` open already.
   */
  serve(reply: FastifyReply, client: string): boolean {
    if (this.openFrom(client) >= this.#opts.perClient) return false;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
    });
    res.write(': berth events\nretry: 3000\n\n');
    this.#byClient.set(client, this.openFrom(client) + 1);
    res.on('close', () => {
      this.#remove(res);
      const left = this.openFrom(client) - 1;
      if (left > 0) this.#byClient.set(client, left);
      else this.#byClient.delete(client);
    });
    this.#open.add(res);
    if (this.#open.size === 1) this.#subscribe();
    return true;
  }

  /** Ends every open stream (before the server closes, which would otherwise wait for them). */
  close(): void {
    for (const res of this.#open) res.end();
    for (const res of [...this.#open]) this.#remove(res);
  }

  #remove(res: ServerResponse): void {
    if (!this.#open.delete(res)) return;
    if (this.#open.size === 0) this.#unsubscribe();
  }

  #subscribe(): void {
    const events = this.#engine.events;
    events.on('audit', this.#onAudit);
    events.on('sync', this.#onSync);
    events.on('stack', this.#onStack);
    events.on('notification', this.#onNotification);
    this.#heartbeat = setInterval(() => this.#write(': keep-alive\n\n'), this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  #unsubscribe(): void {
    const events = this.#engine.events;
    events.off('audit', this.#onAudit);
    events.off('sync', this.#onSync);
    events.off('stack', this.#onStack);
    events.off('notification', this.#onNotification);
    clearInterval(this.#heartbeat);
  }

  /** Runs inside the engine's work (an audit append): never throws. */
  #broadcast(event: string, data: unknown): void {
    try {
      this.#write(sseMessage(event, data));
    } catch (err) {
      this.#opts.log.warn({ event, err: (err as Error).message }, 'cannot send an event to the event streams');
    }
  }

  #write(text: string): void {
    for (const res of this.#open) {
      if (res.writableLength > MAX_BUFFERED) {
        this.#opts.log.warn('an event stream client reads too slowly: its stream is closed (it may reconnect)');
        res.destroy();
        this.#remove(res);
        continue;
      }
      res.write(text);
    }
  }
}
