/**
 * What a follower is asked to do, handed to the leader (docs/how-it-works.md, "Running two
 * engines"): a webhook's pass, or an API action (a sync, a rollback, a pause, a resume). The
 * follower writes it to the `handoffs` table; the leader takes each once (a row moves from
 * `queued` to `taken` in one statement, under the row's lock), carries it out as it would its own,
 * and writes the answer back, which the follower gives its caller: the same answer the leader
 * would have given, `wait` included.
 *
 * A leader that stops with a hand-over taken: the next leader queues its passes again (a pass is
 * idempotent: it converges), and answers its actions `leader-lost` rather than running them twice
 * (a second rollback "to the commit before" would go one commit further).
 */
import type { Logger } from 'pino';
import type { Db } from '../audit/db.ts';
import { EngineError, type EngineErrorCode } from './errors.ts';
import type { PassOptions } from './pass.ts';

/** The actions of Operations a follower hands over, by method name. */
export type HandedAction = 'syncStack' | 'syncAll' | 'rollback' | 'pause' | 'resume';

export type HandoffRequest =
  { kind: 'pass'; repo: string; opts: Pick<PassOptions, 'trigger' | 'actor'> } | { kind: 'action'; action: HandedAction; args: unknown[] };

/** The leader's answer: what the action returned (JSON), or how it was refused. */
export type HandoffAnswer = { ok: unknown } | { error: { message: string; code?: string } };

export class Handoffs {
  readonly #db: Db;
  readonly #self: string;

  constructor(db: Db, self: string) {
    this.#db = db;
    this.#self = self;
  }

  /** Queues a request for the leader; returns its id. */
  submit(request: HandoffRequest): number {
    const row = this.#db
      .prepare(`INSERT INTO handoffs (time, engine, kind, request, state) VALUES (?, ?, ?, ?, 'queued') RETURNING id`)
      .get(new Date().toISOString(), this.#self, request.kind, JSON.stringify(request)) as { id: number };
    return row.id;
  }

  /** The oldest queued request, now taken by this engine in `term`; undefined when none waits. */
  take(term: number): { id: number; request: HandoffRequest } | undefined {
    const row = this.#db
      .prepare(
        `UPDATE handoffs SET state = 'taken', takenBy = ?, term = ?
         WHERE id = (SELECT id FROM handoffs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, request`,
      )
      .get(this.#self, term) as { id: number; request: string } | undefined;
    return row && { id: row.id, request: JSON.parse(row.request) as HandoffRequest };
  }

  finish(id: number, answer: HandoffAnswer): void {
    this.#db.prepare(`UPDATE handoffs SET state = 'done', answer = ?, finishedAt = ? WHERE id = ?`).run(JSON.stringify(answer), new Date().toISOString(), id);
  }

  /** The answer to a request, once the leader gave it. */
  answer(id: number): HandoffAnswer | undefined {
    const row = this.#db.prepare(`SELECT answer FROM handoffs WHERE id = ? AND state = 'done'`).get(id) as { answer: string } | undefined;
    return row && (JSON.parse(row.answer) as HandoffAnswer);
  }

  /**
   * What leaders of earlier terms took and did not finish: passes are queued again, actions
   * answered `leader-lost`. Returns how many of each.
   */
  recover(term: number): { requeued: number; lost: number } {
    return this.#db.write(() => {
      const requeued = this.#db
        .prepare(`UPDATE handoffs SET state = 'queued', takenBy = NULL, term = NULL WHERE state = 'taken' AND term < ? AND kind = 'pass'`)
        .run(term);
      const message =
        'the leader that took this action stopped before it answered; the sync history says how far it got, and a sync or resume may be asked again';
      const lost = this.#db
        .prepare(`UPDATE handoffs SET state = 'done', answer = ?, finishedAt = ? WHERE state = 'taken' AND term < ? AND kind = 'action'`)
        .run(JSON.stringify({ error: { message, code: 'leader-lost' } }), new Date().toISOString(), term);
      return { requeued: Number(requeued.changes), lost: Number(lost.changes) };
    });
  }
}

/** Waits for the leader's answer (polling every `everyMs`), and gives it as the leader would have: a value, or the error it threw. */
export async function awaitAnswer(
  handoffs: Handoffs,
  id: number,
  { everyMs = 200, signal }: { everyMs?: number; signal?: AbortSignal } = {},
): Promise<unknown> {
  for (;;) {
    const answer = handoffs.answer(id);
    if (answer) {
      if ('ok' in answer) return answer.ok;
      throw answer.error.code ? new EngineError(answer.error.message, answer.error.code as EngineErrorCode) : new Error(answer.error.message);
    }
    signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The answer of an action that ran (or threw). */
export function answerOf(outcome: { value: unknown } | { error: unknown }): HandoffAnswer {
  if ('value' in outcome) return { ok: outcome.value ?? null };
  const err = outcome.error as Error & { code?: unknown };
  return { error: { message: err.message, ...(err instanceof EngineError ? { code: err.code } : {}) } };
}

/**
 * The leader's side: every `everyMs` while `leading()`, takes each queued request and carries it
 * out with `run`, then writes its answer. Returns a function that stops it.
 */
export function serveHandoffs(
  handoffs: Handoffs,
  o: { leading: () => number; run: (request: HandoffRequest) => Promise<unknown>; log: Logger; everyMs?: number },
): () => void {
  let busy = false;
  const tick = () => {
    const term = o.leading();
    if (busy || term === 0) return;
    busy = true;
    try {
      for (let h = handoffs.take(term); h; h = handoffs.take(term)) {
        const { id, request } = h;
        o.log.info(
          { handoff: id, kind: request.kind, ...(request.kind === 'pass' ? { repo: request.repo } : { action: request.action }) },
          'carrying out what a follower was asked',
        );
        void o
          .run(request)
          .then(
            (value) => handoffs.finish(id, answerOf({ value })),
            (error: unknown) => handoffs.finish(id, answerOf({ error })),
          )
          .catch((err: unknown) => o.log.error({ err, handoff: id }, 'could not write the answer to a hand-over'));
      }
    } catch (err) {
      o.log.warn({ err }, 'could not read the hand-over queue');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, o.everyMs ?? 250);
  timer.unref();
  return () => clearInterval(timer);
}
