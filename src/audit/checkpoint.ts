/**
 * The engine's checkpoints (docs/how-it-works.md, "The audit log"): with an `auditKeyFile`, the
 * engine signs the chain's head and appends the checkpoint to the log itself as an
 * `audit.checkpoint` row (its `message` is the checkpoint's JSON, anchor.ts), and to the
 * `auditAnchorFile` when there is one, one JSON line each. A checkpoint is due once rows were
 * added after the last one, and there are `everyRows` of them or the last is `everyMs` old; and
 * when the engine closes (a clean shutdown, the end of a CLI command).
 */
import { appendFileSync, closeSync, openSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../config.ts';
import { parseCheckpoint, type AuditSigner, type Checkpoint } from './anchor.ts';
import type { AuditLog, AuditRow } from './log.ts';

export interface CheckpointRule {
  /** a checkpoint once this many rows were added after the last one */
  everyRows: number;
  /** a checkpoint once the last one is this old (ms) and rows were added since */
  everyMs: number;
}

/** The default: every 100 rows, or every 10 minutes when rows were added. */
export const CHECKPOINT_RULE: CheckpointRule = { everyRows: 100, everyMs: 600_000 };

/**
 * Whether a checkpoint is due: rows were added after the last checkpoint's row (or, with none,
 * the log has rows), and either `rule.everyRows` of them or the last checkpoint (with none: the
 * checkpointer's start, `since`) is at least `rule.everyMs` old. Times in ms.
 */
export function checkpointDue(s: { headId?: number; last?: { id: number; time: number }; since: number; now: number; rule: CheckpointRule }): boolean {
  const added = (s.headId ?? 0) - (s.last?.id ?? 0);
  if (added <= 0) return false;
  return added >= s.rule.everyRows || s.now - (s.last?.time ?? s.since) >= s.rule.everyMs;
}

/** Whether berth can append to `file` (made if missing): a missing folder or no permission stops berth at start. */
export function checkAnchorFile(file: string): void {
  try {
    closeSync(openSync(file, 'a', 0o644));
  } catch (err) {
    throw new ConfigError(`cannot write the audit anchor file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export interface CheckpointerOptions {
  log: Logger;
  /** where each checkpoint is also appended as a JSON line (checked with checkAnchorFile() first) */
  anchorFile?: string;
  rule?: CheckpointRule;
  /** the clock the rule is read with and checkpoints are dated by */
  now?: () => Date;
  /** how often the rule is looked at (ms); default a minute, or everyMs when shorter */
  tickMs?: number;
}

/** Signs checkpoints of one AuditLog, as the rule says (start()) and when asked (checkpoint()). */
export class Checkpointer {
  readonly #audit: AuditLog;
  readonly #signer: AuditSigner;
  readonly #log: Logger;
  readonly #anchorFile?: string;
  readonly #rule: CheckpointRule;
  readonly #now: () => Date;
  readonly #tickMs: number;
  readonly #since: number;
  /** rows this instance appended since its last look at the rule */
  #added = 0;
  #timer?: NodeJS.Timeout;
  #stopListening?: () => void;
  #pending?: NodeJS.Immediate;

  constructor(audit: AuditLog, signer: AuditSigner, opts: CheckpointerOptions) {
    this.#audit = audit;
    this.#signer = signer;
    this.#log = opts.log;
    this.#anchorFile = opts.anchorFile;
    this.#rule = opts.rule ?? CHECKPOINT_RULE;
    this.#now = opts.now ?? (() => new Date());
    this.#tickMs = opts.tickMs ?? Math.min(60_000, this.#rule.everyMs);
    this.#since = this.#now().getTime();
  }

  /**
   * Looks at the rule every tickMs (rows other processes add are seen then) and after every
   * `everyRows` rows this AuditLog appends. stop() or close() ends it.
   */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.due(), this.#tickMs);
    this.#timer.unref();
    this.#stopListening = this.#audit.onAppend((row) => {
      if (row.kind === 'audit.checkpoint' || ++this.#added < this.#rule.everyRows || this.#pending) return;
      // not from inside the append that triggered it: its other listeners have not seen that row yet
      this.#pending = setImmediate(() => {
        this.#pending = undefined;
        this.due();
      });
    });
  }

  /** Stops looking at the rule. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stopListening?.();
    this.#stopListening = undefined;
    if (this.#pending) clearImmediate(this.#pending);
    this.#pending = undefined;
  }

  /** Stops, then signs the rows added since the last checkpoint (a clean shutdown's checkpoint). */
  close(): AuditRow | undefined {
    this.stop();
    return this.checkpoint();
  }

  /** A checkpoint when the rule says one is due; returns its row. */
  due(): AuditRow | undefined {
    this.#added = 0;
    try {
      const head = this.#audit.query({ limit: 1 }).rows[0];
      const last = this.#audit.query({ kind: 'audit.checkpoint', limit: 1 }).rows[0];
      const due = checkpointDue({
        headId: head?.id,
        // the time it was signed at (the clock checkpoints are dated by), else the row's
        last: last && { id: last.id, time: Date.parse(parseCheckpoint(last.message)?.time ?? last.time) },
        since: this.#since,
        now: this.#now().getTime(),
        rule: this.#rule,
      });
      return due ? this.checkpoint() : undefined;
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'cannot look at the audit log for a checkpoint');
      return undefined;
    }
  }

  /**
   * Signs the chain's head and appends the checkpoint, unless the head is a checkpoint already
   * (nothing added since); then appends it to the anchor file. Errors are logged, not thrown: the
   * rows stay in the log, and the next checkpoint covers them.
   */
  checkpoint(): AuditRow | undefined {
    let signed: Checkpoint | undefined;
    let row: AuditRow | undefined;
    try {
      row = this.#audit.appendAfter((head) => {
        if (!head || head.kind === 'audit.checkpoint') return undefined;
        signed = this.#signer.checkpoint(head, this.#now());
        return { kind: 'audit.checkpoint', outcome: 'info', actor: 'berth', message: JSON.stringify(signed) };
      });
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'cannot append an audit checkpoint');
      return undefined;
    }
    if (!row || !signed) return undefined;
    this.#log.debug({ row: signed.row, keyId: signed.keyId }, 'audit log checkpoint signed');
    if (this.#anchorFile) {
      try {
        appendFileSync(this.#anchorFile, `${JSON.stringify(signed)}\n`, { mode: 0o644 });
      } catch (err) {
        this.#log.error(
          { file: this.#anchorFile, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
          'cannot append the checkpoint to the audit anchor file',
        );
      }
    }
    return row;
  }
}
