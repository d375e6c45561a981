/**
 * The Docker edge of a stack's logs (src/engine/logs.ts): the stack's containers on a host, what
 * of each the logs need (a TTY or not, its environment, when it last started, the files berth wrote
 * into it), the small secret files read back from it, and its log stream, demultiplexed with
 * docker-modem's demuxStream (a container with a TTY writes one raw stream).
 */
import { PassThrough, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { extract } from 'tar-stream';
import { LABEL } from '../model.ts';

/** A stack's container as its logs need it. */
export interface LogContainer {
  id: string;
  service: string;
  slot: number;
  /** a job's kind (`berth.job`), for a job's or hook's container */
  job?: string;
  state: string;
  tty: boolean;
  /** `KEY=value` entries, as inspected */
  env: string[];
  /** Docker's State.StartedAt (the zero time for a container never started) */
  startedAt?: string;
  /** the targets of the files berth wrote into it (`berth.files`) */
  files: string[];
}

/** The containers of `stack` (of `repo`; one service's with `service`) on a host, running or not. */
export async function listStackContainers(
  docker: Dockerode,
  where: { repo: string; stack: string; service?: string },
  signal?: AbortSignal,
): Promise<Dockerode.ContainerInfo[]> {
  const label = [`${LABEL.managed}=true`, `${LABEL.repo}=${where.repo}`, `${LABEL.stack}=${where.stack}`];
  if (where.service !== undefined) label.push(`${LABEL.service}=${where.service}`);
  return docker.listContainers({ all: true, filters: { label }, abortSignal: signal });
}

/** What the logs need of a container; undefined when it is gone. */
export async function inspectForLogs(docker: Dockerode, id: string, signal?: AbortSignal): Promise<LogContainer | undefined> {
  let info: Dockerode.ContainerInspectInfo;
  try {
    info = await docker.getContainer(id).inspect({ abortSignal: signal });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
  const labels = info.Config.Labels ?? {};
  let files: string[] = [];
  try {
    const parsed: unknown = JSON.parse(labels[LABEL.files] || '[]');
    if (Array.isArray(parsed)) files = parsed.filter((f): f is string => typeof f === 'string');
  } catch {
    files = [];
  }
  return {
    id: info.Id,
    service: labels[LABEL.service] ?? '',
    slot: Number(labels[LABEL.slot] ?? 0),
    ...(labels[LABEL.job] ? { job: labels[LABEL.job] } : {}),
    state: info.State.Status,
    tty: Boolean(info.Config.Tty),
    env: info.Config.Env ?? [],
    startedAt: info.State.StartedAt,
    files,
  };
}

/**
 * The contents (UTF-8) of the files at `targets` in a container, those of at most `maxBytes` only;
 * a file that is not there, or cannot be read, is left out. What berth wrote there (secrets) is
 * masked in the container's lines.
 */
export async function readSmallFiles(docker: Dockerode, id: string, targets: readonly string[], maxBytes: number, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for (const path of targets) {
    let archive: NodeJS.ReadableStream;
    try {
      archive = await docker.getContainer(id).getArchive({ path, abortSignal: signal } as { path: string });
    } catch {
      continue;
    }
    const entries = extract();
    (archive as Readable).on('error', (err: Error) => entries.destroy(err));
    archive.pipe(entries);
    try {
      for await (const entry of entries) {
        const chunks: Buffer[] = [];
        const small = entry.header.type === 'file' && (entry.header.size ?? 0) <= maxBytes;
        for await (const chunk of entry) if (small) chunks.push(chunk as Buffer);
        if (small) out.push(Buffer.concat(chunks).toString('utf8'));
      }
    } catch {
      // a file it could not read is not masked: it was not read either
    }
  }
  return out;
}

/** A container's log stream, its lines with Docker's timestamps: stdout and stderr apart, or one raw stream with a TTY. */
export interface LogSource {
  stdout: Readable;
  /** absent with a TTY */
  stderr?: Readable;
  /** pauses and resumes the reading from Docker (backpressure) */
  pause(): void;
  resume(): void;
  /** stops reading and closes the connection */
  close(): void;
}

export interface LogStreamOptions {
  follow: boolean;
  /** the last lines; 'all' for every line (after `since`) */
  tail: number | 'all';
  /** Docker's `since`: seconds since the epoch, with a fraction */
  since?: string;
  tty: boolean;
  signal?: AbortSignal;
}

/**
 * Opens the container's logs (`GET /containers/{id}/logs`, with timestamps) as a stream, also when
 * not following (dockerode's logs() reads those whole into memory). Rejects with Docker's error.
 */
export async function openLogs(docker: Dockerode, id: string, opts: LogStreamOptions): Promise<LogSource> {
  const res = await new Promise<Readable>((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${id}/logs?`,
        method: 'GET',
        isStream: true,
        abortSignal: opts.signal,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
        options: {
          stdout: true,
          stderr: true,
          timestamps: true,
          follow: opts.follow,
          tail: String(opts.tail),
          ...(opts.since === undefined ? {} : { since: opts.since }),
        },
      },
      (err, data) => (err ? reject(err) : resolve(data as Readable)),
    );
  });
  const stdout = new PassThrough();
  const stderr = opts.tty ? undefined : new PassThrough();
  const finish = () => {
    stdout.end();
    stderr?.end();
  };
  res.on('end', finish);
  res.on('error', finish); // aborted: what was read is all there is
  res.on('close', finish);
  // docker-modem aborts the request; the response, already streaming, is ended here
  opts.signal?.addEventListener('abort', () => res.destroy(), { once: true });
  if (stderr) docker.modem.demuxStream(res, stdout, stderr);
  else res.on('data', (chunk: Buffer) => stdout.write(chunk));
  return {
    stdout,
    stderr,
    pause: () => res.pause(),
    resume: () => res.resume(),
    close: () => {
      res.destroy();
      finish();
    },
  };
}
