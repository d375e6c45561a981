/**
 * A stack's logs across its hosts, like `docker compose logs` for the fleet (docs/api.md, "Logs"):
 * the stack's containers on each host (its services' replicas, its jobs' and hooks' last runs),
 * their lines read with Docker's timestamps, masked (secrets), merged, bounded (limits.logBytes of
 * lines per answer; limits.logFollowers followed at once) and, with `follow`, streamed as they are
 * written. The decisions are in log-lines.ts; the Docker calls in src/observe/logs.ts.
 */
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { envSecrets, justAfter, masking, secretPieces } from '../apply/job.ts';
import type { RenderedStack } from '../model.ts';
import { inspectForLogs, listStackContainers, openLogs, readSmallFiles, type LogContainer, type LogSource } from '../observe/logs.ts';
import { explainError } from '../observe/hosts.ts';
import type { Engine } from './engine.ts';
import { EngineError } from './errors.ts';
import { mapLimit } from './limit.ts';
import {
  byReplica,
  laterSince,
  lastRunSince,
  DockerLines,
  logRequest,
  NewestLines,
  Reorder,
  replicaPrefix,
  type HeldLine,
  type LogQuery,
  type LogRecord,
  type LogReplica,
  type LogRequest,
  type Stamped,
} from './log-lines.ts';

/** An answer: the containers it reads, and their lines (an object-mode stream of LogRecords; destroying it stops the reading). */
export interface LogStream {
  replicas: LogReplica[];
  records: Readable;
}

/** A secret file bigger than this is not read back to be masked (a key or a password is far smaller). */
const SECRET_FILE_MAX = 64 * 1024;

/** How long the lines a request reads before it answers may take, per container. */
const BACKLOG_TIMEOUT_MS = 60_000;

/** How often followed lines held for ordering are looked at (Reorder's window is 250 ms). */
const FLUSH_MS = 100;

/** Where the secrets' files go when a service does not say (Compose's default target). */
const SECRETS_DIR = '/run/secrets/';

/** One container a request reads. */
interface Source {
  replica: LogReplica;
  index: number;
  docker: Dockerode;
  container: LogContainer;
  mask: (text: string) => string;
}

/**
 * The logs of one engine's stacks. One per server (the API) or CLI command: it counts the followed
 * answers open, and ends them with close().
 */
export class StackLogs {
  readonly #engine: Engine;
  readonly #log: Logger;
  readonly #open = new Set<Readable>();
  #followers = 0;

  constructor(engine: Engine) {
    this.#engine = engine;
    this.#log = engine.log.child({ component: 'logs' });
  }

  /** Ends every open answer (before a server closes, which would otherwise wait for them). */
  close(): void {
    for (const r of [...this.#open]) r.destroy();
  }

  /**
   * Opens the stack's logs. Throws unknown-stack, unknown-host, unknown-service, invalid-request
   * (tail, since) and, past limits.logFollowers followed answers, too-many-followers.
   */
  async open(stack: string, q: LogQuery): Promise<LogStream> {
    const req = logRequest(q);
    const { limits } = this.#engine.config;
    if (req.follow && this.#followers >= limits.logFollowers) {
      this.#log.warn({ stack, max: limits.logFollowers }, 'log follow refused: too many open');
      throw new EngineError(
        `too many followed logs open: at most ${limits.logFollowers} at once (limits.logFollowers in the engine config); close one (a dashboard tab, a berth logs --follow) first`,
        'too-many-followers',
      );
    }
    // the place is taken now: requests arriving meanwhile count it
    if (req.follow) this.#followers++;
    let released = !req.follow;
    const release = () => {
      if (!released) this.#followers--;
      released = true;
    };
    try {
      const { sources, notices } = await this.#sources(stack, q);
      const replicas = sources.map((s) => s.replica);
      const records = this.#stream(stack, sources, notices, req, release);
      this.#log.debug({ stack, service: q.service, host: q.host, replicas: replicas.length, follow: req.follow }, 'logs opened');
      return { replicas, records };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The containers to read, each with its masking; and the hosts that could not be asked. */
  async #sources(stack: string, q: LogQuery): Promise<{ sources: Source[]; notices: LogRecord[] }> {
    const engine = this.#engine;
    const repo = await engine.stackRepo(stack);
    if (!repo) throw new EngineError(`no repo defines a stack named ${stack}: GET /api/v1/stacks lists them`, 'unknown-stack');
    if (q.host !== undefined && !engine.hosts.has(q.host)) {
      throw new EngineError(`there is no host named ${q.host} in the engine config: GET /api/v1/hosts lists them`, 'unknown-host');
    }
    const render = engine.world.head(repo)?.rendered.stacks.find((s) => s.def.name === stack);
    const rendered = render?.ok ? render.stack : undefined;
    const declared = new Set(rendered?.services.map((s) => s.name) ?? []);

    const notices: LogRecord[] = [];
    const down = engine.fleet.down();
    const timeoutMs = engine.config.hostCheck.timeoutMs;
    const names = q.host !== undefined ? [q.host] : [...engine.hosts.keys()];
    const found = await Promise.all(
      names.map(async (host) => {
        if (down.has(host)) {
          notices.push({ notice: 'host-unreachable', host, message: `host ${host} does not answer: its containers' lines are missing` });
          return [];
        }
        // under berth serve, a host where berth saw none of the stack's containers is not asked
        const seen = engine.following ? engine.world.host(host) : undefined;
        if (seen && !seen.containers.some((c) => c.stack === stack && c.repo === repo)) return [];
        const docker = engine.hosts.get(host)!.docker;
        try {
          const listed = await listStackContainers(docker, { repo, stack, service: q.service }, AbortSignal.timeout(timeoutMs));
          const inspected = await mapLimit(listed, 8, (c) => inspectForLogs(docker, c.Id, AbortSignal.timeout(timeoutMs)));
          return inspected.filter((c): c is LogContainer => c !== undefined).map((container) => ({ host, docker, container }));
        } catch (err) {
          const why = explainError(err, timeoutMs);
          this.#log.warn({ stack, host, err: why }, "cannot list the stack's containers for its logs");
          notices.push({ notice: 'host-unreachable', host, message: `host ${host}: cannot list the stack's containers: ${why}` });
          return [];
        }
      }),
    );
    const containers = found.flat();
    if (q.service !== undefined && !declared.has(q.service) && containers.length === 0) {
      const known = [...declared].sort().join(', ');
      throw new EngineError(`stack ${stack} has no service, job or hook named ${q.service}${known ? ` (it has ${known})` : ''}`, 'unknown-service');
    }

    const secrets = stackSecrets(rendered);
    const sources = await mapLimit(containers, 8, async ({ host, docker, container: c }) => {
      const targets = c.files.filter((t) => t.startsWith(SECRETS_DIR) || secrets.targets.has(t));
      const written = targets.length ? await readSmallFiles(docker, c.id, targets, SECRET_FILE_MAX, AbortSignal.timeout(timeoutMs)) : [];
      const replica: LogReplica = {
        service: c.service,
        slot: c.slot,
        host,
        container: c.id.slice(0, 12),
        state: c.state,
        ...(c.job ? { job: c.job } : {}),
        tty: c.tty,
      };
      return { replica, index: 0, docker, container: c, mask: masking(secretPieces([...envSecrets(c.env), ...secrets.contents, ...written])) };
    });
    sources.sort((a, b) => byReplica(a.replica, b.replica));
    sources.forEach((s, i) => (s.index = i));
    return { sources, notices };
  }

  /** The records of an answer: the lines asked for, merged; with `follow`, then the new ones as they come. */
  #stream(stack: string, sources: Source[], notices: LogRecord[], req: LogRequest, release: () => void): Readable {
    const abort = new AbortController();
    const live: LogSource[] = [];
    let timer: NodeJS.Timeout | undefined;
    let paused = false;
    const log = this.#log;
    const open = this.#open;
    const records = new Readable({
      objectMode: true,
      highWaterMark: 1024,
      read() {
        if (!paused) return;
        paused = false;
        for (const s of live) s.resume();
      },
      destroy(err, done) {
        abort.abort();
        clearInterval(timer);
        for (const s of live) s.close();
        open.delete(records);
        if (req.follow) log.info({ stack }, 'log follow ended');
        release();
        done(err);
      },
    });
    open.add(records);
    const send = (r: LogRecord) => {
      if (records.destroyed) return;
      if (!records.push(r) && !paused) {
        paused = true;
        for (const s of live) s.pause();
      }
    };
    /** a followed container's stream, opened: paused at once while the reader is behind */
    const following = (src: LogSource) => {
      live.push(src);
      if (paused) src.pause();
    };
    /** the containers whose lines could not be read: said once */
    const failed = new Set<number>();
    const cannotRead = (s: Source, err: unknown) => {
      if (abort.signal.aborted || failed.has(s.index)) return;
      failed.add(s.index);
      send(unreadable(s, err));
    };
    const lineOf = (l: HeldLine): LogRecord => {
      const r = sources[l.replica]!.replica;
      return { service: r.service, slot: r.slot, host: r.host, stream: l.stream, ...(req.timestamps && l.time ? { time: l.time } : {}), text: l.text };
    };

    const run = async () => {
      for (const n of notices) send(n);
      const maxBytes = this.#engine.config.limits.logBytes;
      const backlog = new NewestLines(maxBytes);
      if (req.tail > 0) {
        await Promise.all(sources.map((s) => this.#readBacklog(s, req, backlog, abort.signal, cannotRead)));
      }
      if (records.destroyed) return;
      for (const l of backlog.lines(req.timestamps || req.follow ? 'time' : 'replica')) send(lineOf(l));
      if (backlog.truncated) {
        send({
          notice: 'truncated',
          message: `the lines were cut to the newest ${maxBytes} bytes (limits.logBytes in the engine config): ask for fewer (tail), a later since, or one service or host`,
        });
      }
      if (!req.follow) return records.push(null);
      log.info({ stack, replicas: sources.length }, 'log follow started');
      const reorder = new Reorder();
      let seq = 0;
      const flush = (all = false) => {
        for (const l of reorder.take(Date.now(), all)) send(lineOf(l));
      };
      timer = setInterval(flush, FLUSH_MS);
      await Promise.all(
        sources.map(async (s) => {
          if (failed.has(s.index)) return;
          // from just after the last line read above (the tail again, in case more came meanwhile), else from `since`
          const last = backlog.lastTime.get(s.index)?.time;
          const since = last !== undefined ? justAfter(last) : laterSince(req.since, s.container.job ? lastRunSince(s.container.startedAt) : undefined);
          await this.#read(s, { follow: true, tail: req.tail, since }, abort.signal, following, (stream, line) => {
            reorder.push({ ...line, replica: s.index, stream, seq: seq++ }, Date.now());
          }).catch((err: unknown) => cannotRead(s, err));
        }),
      );
      clearInterval(timer);
      if (records.destroyed) return;
      flush(true);
      records.push(null); // every container's stream ended: they all stopped
    };
    run().catch((err: unknown) => {
      log.error({ stack, err: (err as Error).message }, 'reading logs failed');
      records.destroy(err as Error);
    });
    return records;
  }

  /** A container's lines before the answer (tail, since; a job's last run only) into `into`. */
  async #readBacklog(s: Source, req: LogRequest, into: NewestLines, signal: AbortSignal, cannotRead: (s: Source, err: unknown) => void): Promise<void> {
    const since = laterSince(req.since, s.container.job ? lastRunSince(s.container.startedAt) : undefined);
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(BACKLOG_TIMEOUT_MS)]);
    try {
      await this.#read(
        s,
        { follow: false, tail: req.tail, since },
        bounded,
        () => undefined,
        (stream, line) => into.add(s.index, stream, line),
      );
    } catch (err) {
      return cannotRead(s, err);
    }
    if (bounded.aborted) cannotRead(s, new Error(`its lines took over ${BACKLOG_TIMEOUT_MS / 1000} s to read: cut there`));
  }

  /** Reads one container's log stream to its end, each line (masked, its timestamp split off) to `onLine`. */
  async #read(
    s: Source,
    opts: { follow: boolean; tail: number; since?: string },
    signal: AbortSignal,
    opened: (src: LogSource) => void,
    onLine: (stream: 'stdout' | 'stderr', line: Stamped) => void,
  ): Promise<void> {
    const src = await openLogs(s.docker, s.container.id, { ...opts, tty: s.container.tty, signal });
    if (signal.aborted) return src.close();
    opened(src);
    const consume = async (stream: Readable, name: 'stdout' | 'stderr') => {
      const lines = new DockerLines();
      const each = (line: Stamped) => onLine(name, { ...line, text: s.mask(line.text) });
      for await (const chunk of stream) for (const line of lines.push(chunk as Buffer)) each(line);
      for (const line of lines.end()) each(line);
    };
    await Promise.all([consume(src.stdout, 'stdout'), src.stderr ? consume(src.stderr, 'stderr') : undefined]);
  }
}

/** The contents of the stack's secrets as rendered at the branch head, and where they go in its containers. */
function stackSecrets(stack: RenderedStack | undefined): { contents: string[]; targets: Set<string> } {
  const contents: string[] = [];
  const targets = new Set<string>();
  for (const svc of stack?.services ?? []) {
    for (const f of svc.files) {
      if (f.kind !== 'secret') continue;
      targets.add(f.target);
      const bytes = stack!.contents.get(f.hash);
      if (bytes && bytes.length <= SECRET_FILE_MAX) contents.push(Buffer.from(bytes).toString('utf8'));
    }
  }
  return { contents, targets };
}

/** The notice for a container whose lines could not be read. */
function unreadable(s: Source, err: unknown): LogRecord {
  const e = err as { json?: { message?: string } | null; message?: string };
  const why = e.json?.message ?? e.message ?? String(err);
  return { notice: 'replica-unreadable', host: s.replica.host, message: `${replicaPrefix(s.replica)}: cannot read its logs: ${why}` };
}
