/**
 * The logs of a stack's containers (GET /api/v1/stacks/:stack/logs, `berth logs`; docs/api.md,
 * "Logs"), the decisions and the formatting: what a request asks (since, tail), the replica's
 * prefix (`web.2@h1`), the lines cut from Docker's stream and their timestamps, the newest lines
 * that fit the byte bound, the order lines are given in, and their text. Pure: no Docker, no HTTP.
 */
import { parseSince } from '../audit/format.ts';
import { EngineError } from './errors.ts';

/** What a logs request asks. */
export interface LogQuery {
  /** one service (or job, or hook) of the stack */
  service?: string;
  /** one host of the engine config */
  host?: string;
  /** lines at or after this time: how long ago (10m, 1h, 7d) or an RFC 3339 / ISO time */
  since?: string;
  /** the last lines of each replica (default LOG_TAIL.default, at most LOG_TAIL.max) */
  tail?: number;
  /** keep the answer open and send the lines as they are written */
  follow?: boolean;
  /** each line with the time Docker stamped on it (RFC 3339, nanoseconds) */
  timestamps?: boolean;
}

/** Lines per replica: when `tail` is not given, and the most it may be. */
export const LOG_TAIL = { default: 200, max: 10_000 } as const;

/** A longer line (no newline in this many bytes) is cut there: the rest comes as the next line. */
export const MAX_LINE_BYTES = 64 * 1024;

/** One container whose lines an answer holds: a service's replica, or a job's or hook's last run. */
export interface LogReplica {
  service: string;
  slot: number;
  host: string;
  /** the container's id, 12 characters */
  container: string;
  /** Docker's state: running, exited, ... */
  state: string;
  /** the job's kind (once, schedule, pre-sync, post-sync) for a job's or hook's container */
  job?: string;
  /** created with a TTY: its output is one stream, stdout */
  tty: boolean;
}

/** A line a container wrote. `time` only when timestamps were asked for. */
export interface LogLine {
  service: string;
  slot: number;
  host: string;
  stream: 'stdout' | 'stderr';
  time?: string;
  text: string;
}

/**
 * What berth says among the lines: `truncated` (the byte bound left older lines out),
 * `host-unreachable` (a host did not answer: its replicas are missing), `replica-unreadable` (one
 * container's logs could not be read: removed meanwhile, a log driver Docker cannot read back).
 */
export type LogNoticeCode = 'truncated' | 'host-unreachable' | 'replica-unreadable';

export interface LogNotice {
  notice: LogNoticeCode;
  message: string;
  host?: string;
}

export type LogRecord = LogLine | LogNotice;

export const isNotice = (r: LogRecord): r is LogNotice => 'notice' in r;

/** A request's values, checked: `since` as Docker takes it (seconds since the epoch, with a fraction). */
export interface LogRequest {
  since?: string;
  tail: number;
  follow: boolean;
  timestamps: boolean;
}

/** Checks what a request asks; throws invalid-request naming the parameter. */
export function logRequest(q: LogQuery, now: Date = new Date()): LogRequest {
  const tail = q.tail ?? LOG_TAIL.default;
  if (!Number.isInteger(tail) || tail < 0 || tail > LOG_TAIL.max) {
    throw new EngineError(`tail: ${String(q.tail)} is not a whole number from 0 to ${LOG_TAIL.max}`, 'invalid-request');
  }
  let since: string | undefined;
  if (q.since !== undefined) {
    try {
      since = dockerSince(q.since, now);
    } catch (err) {
      throw new EngineError(`since: ${(err as Error).message}`, 'invalid-request');
    }
  }
  return { tail, since, follow: Boolean(q.follow), timestamps: Boolean(q.timestamps) };
}

const RFC3339_FRACTION = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{1,9})(Z|[+-]\d\d:\d\d)$/i;

/**
 * `since` as Docker's logs take it: `seconds.nanoseconds` since the epoch. A duration is that long
 * before `now` (berth's clock); an RFC 3339 time keeps its nanoseconds (a time copied from a
 * line's timestamp means that line); other ISO times as the audit's --since takes them.
 */
export function dockerSince(value: string, now: Date = new Date()): string {
  const m = RFC3339_FRACTION.exec(value.trim());
  if (m) {
    const ms = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`);
    if (!Number.isNaN(ms)) return `${Math.floor(ms / 1000)}.${m[2]!.padEnd(9, '0')}`;
  }
  const ms = parseSince(value, now).getTime();
  return `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1_000_000).padStart(9, '0')}`;
}

/** The larger of two Docker `since` values (either may be absent). */
export function laterSince(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return sinceKey(a) >= sinceKey(b) ? a : b;
}

const sinceKey = (s: string) => {
  const [sec = '0', frac = ''] = s.split('.');
  return BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9) || '0');
};

/**
 * Where a job's last run begins, as a Docker `since`: a second before it last started. A scheduled
 * job's container is started again at each run and keeps the lines of the runs before; Docker
 * stamps a line when it reads it, so a run's first lines may carry a time a little before the
 * container's StartedAt. Undefined for a container that never started.
 */
export function lastRunSince(startedAt: string | undefined): string | undefined {
  const ms = Date.parse(startedAt ?? '');
  if (Number.isNaN(ms) || ms <= 0) return undefined;
  const from = ms - 1000;
  return `${Math.floor(from / 1000)}.${String((from % 1000) * 1_000_000).padStart(9, '0')}`;
}

/** `web.2@h1`: the service, the replica's slot and the host. */
export function replicaPrefix(r: Pick<LogReplica, 'service' | 'slot' | 'host'>): string {
  return `${r.service}.${r.slot}@${r.host}`;
}

/** Replicas in the order answers list them: by service, slot, host. */
export function byReplica(a: Pick<LogReplica, 'service' | 'slot' | 'host'>, b: Pick<LogReplica, 'service' | 'slot' | 'host'>): number {
  return a.service.localeCompare(b.service) || a.slot - b.slot || a.host.localeCompare(b.host);
}

/** A line as Docker gives it with timestamps: the time, and the text after it. */
export interface Stamped {
  time: string;
  /** milliseconds since the epoch, with the sub-millisecond part as a fraction: what lines are ordered by */
  at: number;
  text: string;
}

/** Docker cuts a line longer than this (bytes) into messages of this size, each stamped again with the line's time. */
export const DOCKER_PARTIAL = 16 * 1024;

/** The longest timestamp Docker writes: `2024-05-01T10:00:00.123456789+02:00`. */
const STAMP_MAX = 35;

/**
 * Cuts a container's log stream, as Docker's logs give it with timestamps, into lines: each line's
 * time, and its text (UTF-8, the newline and a carriage return before it dropped). Docker stores a
 * line longer than DOCKER_PARTIAL bytes as several messages and gives each with the line's
 * timestamp again (`TIME aaa...TIME aaa\n`): those are joined back into one line. A line longer
 * than `maxBytes` is given in pieces of that size, each with the line's time, so that a container
 * that never writes a newline cannot make berth hold its whole output.
 */
export class DockerLines {
  readonly #line: LineBuffer;
  #buf: Buffer = Buffer.alloc(0);
  /** a line has begun: its stamp was read */
  #inLine = false;
  #stamp = '';
  /** `${stamp} `: what begins each further message of a long line */
  #again: Buffer = Buffer.alloc(0);
  #at = 0;
  /** the bytes of the current message's text */
  #msgBytes = 0;

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.#line = new LineBuffer(maxBytes);
  }

  push(chunk: Buffer): Stamped[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: Stamped[] = [];
    while (this.#buf.length > 0) {
      const buf = this.#buf;
      if (!this.#inLine) {
        const head = buf.subarray(0, STAMP_MAX + 1);
        const space = head.indexOf(0x20);
        const newline = head.indexOf(0x0a);
        const unstamped = newline >= 0 && (space < 0 || newline < space);
        if (space < 0 && !unstamped && buf.length <= STAMP_MAX) break; // the stamp is not all here yet
        const stamp = space < 0 || unstamped ? '' : buf.subarray(0, space).toString('latin1');
        const at = stampTime(stamp);
        this.#inLine = true;
        this.#msgBytes = 0;
        this.#stamp = at === undefined ? '' : stamp;
        this.#at = at ?? 0;
        this.#again = Buffer.from(`${this.#stamp} `, 'latin1');
        if (at !== undefined) this.#buf = buf.subarray(space + 1);
        continue;
      }
      if (this.#stamp && this.#msgBytes === DOCKER_PARTIAL) {
        const n = Math.min(buf.length, this.#again.length);
        if (buf.subarray(0, n).equals(this.#again.subarray(0, n))) {
          if (n < this.#again.length) break; // the next message's stamp is not all here yet
          this.#buf = buf.subarray(n);
          this.#msgBytes = 0;
          continue;
        }
        this.#msgBytes = 0; // a line of exactly that length: what follows is its own
      }
      const window = this.#stamp ? buf.subarray(0, DOCKER_PARTIAL - this.#msgBytes) : buf;
      const nl = window.indexOf(0x0a);
      const take = nl >= 0 ? nl : window.length;
      this.#add(buf.subarray(0, take), out);
      this.#msgBytes += take;
      this.#buf = buf.subarray(nl >= 0 ? take + 1 : take);
      if (nl >= 0) {
        out.push(this.#take());
        this.#inLine = false;
      }
    }
    return out;
  }

  /** The last line, when the stream ended without a newline. */
  end(): Stamped[] {
    if (!this.#inLine && this.#buf.length > 0) {
      this.#add(this.#buf, []);
      this.#inLine = true;
    }
    this.#buf = Buffer.alloc(0);
    if (!this.#inLine) return [];
    this.#inLine = false;
    return [this.#take()];
  }

  #add(part: Buffer, lines: Stamped[]): void {
    for (const text of this.#line.add(part)) lines.push(this.#stamped(text));
  }

  #take(): Stamped {
    return this.#stamped(this.#line.take());
  }

  #stamped(text: string): Stamped {
    return { time: this.#stamp, at: this.#at, text };
  }
}

/** A Docker timestamp's time (ms since the epoch, the sub-millisecond part as a fraction), or undefined when it is none. */
function stampTime(stamp: string): number | undefined {
  const m = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{1,9}))?(?:Z|[+-]\d\d:\d\d)$/.exec(stamp);
  const ms = m ? Date.parse(stamp) : NaN;
  if (!m || Number.isNaN(ms)) return undefined;
  return Math.floor(ms) + Number((m[1] ?? '').padEnd(9, '0').slice(3)) / 1e6;
}

/**
 * Cuts a byte stream into lines (UTF-8, the newline and a carriage return before it dropped). A
 * line longer than `maxBytes` is given in pieces of that size, so that a container that never
 * writes a newline cannot make berth hold its whole output.
 */
export class LineSplitter {
  readonly #line: LineBuffer;

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.#line = new LineBuffer(maxBytes);
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl < 0) break;
      lines.push(...this.#line.add(chunk.subarray(from, nl)), this.#line.take());
      from = nl + 1;
    }
    if (from < chunk.length) lines.push(...this.#line.add(chunk.subarray(from)));
    return lines;
  }

  /** The last line, when the stream ended without a newline. */
  end(): string[] {
    return this.#line.size > 0 ? [this.#line.take()] : [];
  }
}

/**
 * One line's bytes as they come (UTF-8, a carriage return at its end dropped), given out in pieces
 * of at most `max` bytes once it grows past that: what a line may hold in memory is bounded.
 */
class LineBuffer {
  readonly #max: number;
  #parts: Buffer[] = [];
  #bytes = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** the bytes held */
  get size(): number {
    return this.#bytes;
  }

  /** Adds `part`; returns the full pieces it made. */
  add(part: Buffer): string[] {
    const full: string[] = [];
    while (this.#bytes + part.length > this.#max) {
      const room = this.#max - this.#bytes;
      this.#parts.push(part.subarray(0, room));
      this.#bytes += room;
      full.push(this.take());
      part = part.subarray(room);
    }
    if (part.length > 0) {
      this.#parts.push(part);
      this.#bytes += part.length;
    }
    return full;
  }

  /** The line held, as text; holds nothing after. */
  take(): string {
    const text = Buffer.concat(this.#parts).toString('utf8');
    this.#parts = [];
    this.#bytes = 0;
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  }
}

/** A line as berth holds it before it answers: its replica (an index), its stream, its time. */
export interface HeldLine extends Stamped {
  replica: number;
  stream: 'stdout' | 'stderr';
  /** the order it was read in: ties of `at` keep it */
  seq: number;
}

/** What a held line counts against the byte bound: its text and the newline after it. */
export const lineBytes = (l: Pick<HeldLine, 'text'>) => Buffer.byteLength(l.text) + 1;

/**
 * The newest lines that fit in `maxBytes`, over several sources (a replica's stdout, its stderr),
 * each read oldest first: past the bound, the oldest line of all (by time) goes. So the answer is
 * the end of the merged output, whatever the replicas wrote.
 */
export class NewestLines {
  readonly #max: number;
  readonly #queues = new Map<string, { lines: HeldLine[]; head: number }>();
  #bytes = 0;
  #seq = 0;
  /** whether a line was left out for the bound */
  truncated = false;
  /** the time of the newest line read per replica (kept or not), for where a follow goes on */
  readonly lastTime = new Map<number, { at: number; time: string }>();

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  add(replica: number, stream: HeldLine['stream'], line: Stamped): void {
    const key = `${replica}/${stream}`;
    let q = this.#queues.get(key);
    if (!q) this.#queues.set(key, (q = { lines: [], head: 0 }));
    q.lines.push({ ...line, replica, stream, seq: this.#seq++ });
    this.#bytes += lineBytes(line);
    const last = this.lastTime.get(replica);
    if (line.time && (!last || line.at >= last.at)) this.lastTime.set(replica, { at: line.at, time: line.time });
    while (this.#bytes > this.#max) this.#dropOldest();
  }

  #dropOldest(): void {
    let oldest: { lines: HeldLine[]; head: number } | undefined;
    for (const q of this.#queues.values()) {
      const l = q.lines[q.head];
      if (l && (!oldest || earlier(l, oldest.lines[oldest.head]!))) oldest = q;
    }
    if (!oldest) return;
    this.#bytes -= lineBytes(oldest.lines[oldest.head]!);
    oldest.lines[oldest.head++] = undefined as unknown as HeldLine; // let it go
    this.truncated = true;
    if (oldest.head > 1024 && oldest.head * 2 > oldest.lines.length) {
      oldest.lines = oldest.lines.slice(oldest.head);
      oldest.head = 0;
    }
  }

  /** The lines kept, in time order (`time`) or replica after replica, each in time order (`replica`). */
  lines(order: 'time' | 'replica'): HeldLine[] {
    const all = [...this.#queues.values()].flatMap((q) => q.lines.slice(q.head));
    return all.sort(order === 'time' ? (a, b) => (earlier(a, b) ? -1 : 1) : (a, b) => a.replica - b.replica || (earlier(a, b) ? -1 : 1));
  }
}

const earlier = (a: HeldLine, b: HeldLine) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/**
 * Orders the lines of a followed stack: each line is held `windowMs` after it arrived, and those
 * whose time is up are given in time order. Lines from several hosts arriving within the window
 * come out in the order Docker stamped them (the hosts' clocks decide); a line later than that
 * comes out when it comes.
 */
export class Reorder {
  readonly #windowMs: number;
  #held: Array<{ line: HeldLine; arrived: number }> = [];

  constructor(windowMs = 250) {
    this.#windowMs = windowMs;
  }

  get size(): number {
    return this.#held.length;
  }

  push(line: HeldLine, arrived: number): void {
    this.#held.push({ line, arrived });
  }

  /** The lines held at least the window by `now`, in time order; all of them with `all`. */
  take(now: number, all = false): HeldLine[] {
    const due = all ? this.#held : this.#held.filter((h) => now - h.arrived >= this.#windowMs);
    if (due.length === 0) return [];
    this.#held = all ? [] : this.#held.filter((h) => now - h.arrived < this.#windowMs);
    return due.map((h) => h.line).sort((a, b) => (earlier(a, b) ? -1 : 1));
  }
}

/** `web.2@h1   | text` (the prefix padded to `width`), with the time first in the text when asked. */
export function formatLine(line: LogLine, width = 0): string {
  const prefix = replicaPrefix(line).padEnd(width);
  return `${prefix} | ${line.time ? `${line.time} ` : ''}${line.text}`;
}

/** A notice as a text answer's line: set apart from the replicas' lines, which all carry a `svc.N@host` prefix. */
export function formatNotice(n: LogNotice): string {
  return `-- berth: ${n.message}`;
}

/** The width the prefixes are padded to. */
export function prefixWidth(replicas: ReadonlyArray<Pick<LogReplica, 'service' | 'slot' | 'host'>>): number {
  return replicas.reduce((w, r) => Math.max(w, replicaPrefix(r).length), 0);
}
