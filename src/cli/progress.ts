/**
 * `berth sync --wait` and `berth rollback --wait` as they run: a line per replica step
 * (`  app: web.1@h1 started 5d6e7f8`), and on a terminal a line per service (`  app/web 3/4
 * updated`) kept at the bottom and redrawn in place; with --json one JSON object per step instead
 * (the command prints its result object after them). Fed the sync events of the operations
 * (Operations.follow): an engine in this process, or a berth's event stream through BERTH_URL.
 */
import type { Evidence } from '../apply/evidence.ts';
import type { SyncEvent } from '../engine/events.ts';
import type { Operations } from '../engine/ops.ts';
import { progressLine, stepLine, type ServiceProgress } from '../engine/progress.ts';
import { printable } from './text.ts';

/** Where the progress goes: stdout, or a fake in tests. */
export interface Terminal {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** JSON lines instead of text */
  json?: boolean;
  /** only these stacks' syncs (a server runs others too); default every sync */
  stacks?: readonly string[];
}

/** How long, once the command has its answer, the events of its syncs still in flight are waited for. */
const SETTLE_MS = 2000;

/** Clears the `n` lines above the cursor (the region drawn last): cursor up to their start, erase to the screen's end. */
const erase = (n: number) => (n > 0 ? `\x1b[${n}F\x1b[J` : '');

/** Prints the rollouts of the syncs it is fed (handle), as the module's comment says. */
export class ProgressPrinter {
  readonly #out: Terminal;
  readonly #json: boolean;
  readonly #stacks?: ReadonlySet<string>;
  /** the syncs seen starting (only those are printed), and whether each has finished */
  readonly #syncs = new Map<number, { stack: string; finished: boolean }>();
  /** per running sync, its services' counts: the region's lines */
  readonly #counts = new Map<number, ServiceProgress[]>();
  /** how many lines the region has on the screen now */
  #drawn = 0;
  #settled?: () => void;

  constructor(out: Terminal, { json = false, stacks }: ProgressOptions = {}) {
    this.#out = out;
    this.#json = json;
    this.#stacks = stacks ? new Set(stacks) : undefined;
  }

  /** Whether the per-service lines are drawn (text on a terminal). */
  get live(): boolean {
    return !this.#json && this.#out.isTTY === true;
  }

  handle(e: SyncEvent): void {
    if (this.#stacks && !this.#stacks.has(e.stack)) return;
    if (e.phase === 'started') this.#syncs.set(e.id, { stack: e.stack, finished: false });
    const sync = this.#syncs.get(e.id);
    if (!sync) return; // one that began before the command: not its own
    if (e.phase === 'progress') {
      if (e.services) this.#counts.set(e.id, e.services);
      if (e.replica) this.#print(e, e.replica);
      else this.#redraw();
    } else if (e.phase === 'finished') {
      sync.finished = true;
      this.#counts.delete(e.id);
      this.#redraw();
      if ([...this.#syncs.values()].every((s) => s.finished)) this.#settled?.();
    }
  }

  /**
   * Ends the progress: waits (up to SETTLE_MS) for the end of the syncs seen starting whose events
   * are still on their way, then clears the per-service lines.
   */
  async end(): Promise<void> {
    if ([...this.#syncs.values()].some((s) => !s.finished)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SETTLE_MS);
        this.#settled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#counts.clear();
    this.#redraw();
  }

  #print(e: SyncEvent, step: NonNullable<SyncEvent['replica']>): void {
    if (this.#json) {
      this.#out.write(`${JSON.stringify({ type: 'step', syncId: e.id, stack: e.stack, ...step })}\n`);
      return;
    }
    const line = printable(`  ${e.stack}: ${stepLine(step)}`, { oneLine: true });
    if (!this.live) {
      this.#out.write(`${line}\n`);
      return;
    }
    this.#out.write(`${erase(this.#drawn)}${this.#fit(line)}\n${this.#region()}`);
  }

  #redraw(): void {
    if (!this.live) return;
    this.#out.write(`${erase(this.#drawn)}${this.#region()}`);
  }

  /** The per-service lines (and how many there are now), to write after the cursor. */
  #region(): string {
    const lines = [...this.#counts].flatMap(([id, services]) => {
      const stack = this.#syncs.get(id)?.stack ?? '';
      return services.map((p) => this.#fit(printable(`  ${stack}/${progressLine(p)}`, { oneLine: true })));
    });
    this.#drawn = lines.length;
    return lines.map((l) => `${l}\n`).join('');
  }

  /** A line no wider than the terminal: one that wraps would take two lines, and erase() count one. */
  #fit(line: string): string {
    const width = this.#out.columns ?? 0;
    return width > 1 && line.length >= width ? `${line.slice(0, width - 2)}…` : line;
  }
}

/** Follows `ops`' sync events into a ProgressPrinter on `out`; `end()` it once the command has its answer. */
export async function followProgress(ops: Operations, out: Terminal, opts: ProgressOptions = {}): Promise<{ live: boolean; end: () => Promise<void> }> {
  const printer = new ProgressPrinter(out, opts);
  const stop = await ops.follow((e) => printer.handle(e));
  return {
    live: printer.live,
    end: async () => {
      await printer.end();
      stop();
    },
  };
}

/**
 * A failure's evidence as `berth sync --wait` prints it under the error: the container, how it
 * ended, its health check's last results and its last lines of output (at most `logLines`).
 */
export function evidenceLines(e: Evidence, logLines = 10): string[] {
  const how = [e.exitCode === undefined ? '' : `exit code ${e.exitCode}`, e.oomKilled ? 'OOM-killed (its memory limit)' : ''].filter(Boolean).join(', ');
  const out = [`evidence of ${e.container}${e.id ? ` (${e.id})` : ''} on ${e.host}${how ? `: ${how}` : ''}`];
  if (e.error) out.push(`  the daemon said: ${e.error.split('\n')[0]}`);
  // the last three results, the same one said once
  const said: Array<{ line: string; times: number }> = [];
  for (const h of e.health.slice(-3)) {
    const first = h.output
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim();
    const line = `  health check: exit ${h.exitCode}${first ? `: ${first}` : ''}`;
    if (said.at(-1)?.line === line) said.at(-1)!.times++;
    else said.push({ line, times: 1 });
  }
  out.push(...said.map((s) => (s.times > 1 ? `${s.line} (${s.times} times)` : s.line)));
  const logs = e.logs.slice(-logLines);
  if (logs.length) {
    const more = e.logs.length > logs.length ? ` (last ${logs.length} of ${e.logs.length})` : '';
    out.push(`  last output${more}:`, ...logs.map((l) => `    ${l}`));
  }
  if (e.truncated) out.push('  (cut to fit: the audit row holds what was kept)');
  return out;
}
