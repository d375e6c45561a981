/**
 * Follows a host's Docker event stream for berth-managed containers, and subscribes again when the
 * stream or the host drops (from the time of the last event seen, so nothing is missed).
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { LABEL } from '../model.ts';

export interface ContainerEvent {
  host: string;
  /** Docker's action: create, start, die, stop, kill, destroy, rename, ... */
  action: string;
  id: string;
  repo: string;
  stack: string;
  /** seconds since the epoch, with nanoseconds */
  time: number;
  exitCode?: number;
  /** a job's kind, when the container is a job's */
  job?: string;
  /** the container's name (its new one after a rename) */
  name?: string;
  image?: string;
  /** the container's labels (Docker sends them with every event) */
  labels?: Record<string, string>;
  /** health_status: healthy, unhealthy or starting */
  health?: string;
}

/** The actions followed: those that can mean drift, and health_status (which never does) for what is known of the containers. */
const ACTIONS = ['create', 'start', 'die', 'stop', 'kill', 'destroy', 'rename', 'update', 'pause', 'unpause', 'oom', 'health_status'];

/** Docker's event attributes that are not labels. */
const NOT_LABELS = new Set(['name', 'image', 'exitCode', 'oldName', 'signal', 'execDuration']);

/**
 * Starts following `docker`'s events of berth-managed containers (`log`: the host's logger, with
 * `host` bound); returns a function that stops it. `onFollowing` hears when the stream is up (the
 * daemon has the subscription: every later event comes through it) and when it is down.
 */
export function watchEvents(
  host: string,
  docker: Dockerode,
  onEvent: (e: ContainerEvent) => void,
  log: Logger,
  onFollowing: (up: boolean) => void = () => {},
): () => void {
  const filters = { type: ['container'], label: [`${LABEL.managed}=true`], event: ACTIONS };
  return follow(docker, filters, log, onFollowing, (line) => {
    const e = parse(host, line);
    if (e) onEvent(e);
    return e?.time;
  });
}

/**
 * Starts following the creation and removal of the host's networks and volumes, berth's or not
 * (Docker's events of them carry no labels to tell), as a second stream; `onChange` hears each.
 */
export function watchObjects(host: string, docker: Dockerode, onChange: () => void, log: Logger, onFollowing: (up: boolean) => void): () => void {
  const filters = { type: ['network', 'volume'], event: ['create', 'destroy', 'prune'] };
  return follow(docker, filters, log.child({ stream: 'networks and volumes' }), onFollowing, (line) => {
    onChange();
    return timeOf(line);
  });
}

/**
 * One event stream, subscribed again when it or the host drops, from the time of the last event
 * seen; `onLine` takes each line and says that event's time (seconds) when it has one.
 */
function follow(
  docker: Dockerode,
  filters: Record<string, string[]>,
  log: Logger,
  onFollowing: (up: boolean) => void,
  onLine: (line: string) => number | undefined,
): () => void {
  let stopped = false;
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  let since = Math.floor(Date.now() / 1000);
  let delay = 1000;
  let timer: NodeJS.Timeout | undefined;
  const again = () => {
    if (stopped) return;
    timer = setTimeout(subscribe, delay);
    timer.unref();
    delay = Math.min(delay * 2, 30_000);
  };
  const subscribe = async () => {
    if (stopped) return;
    try {
      stream = (await docker.getEvents({ since, filters } as unknown as Parameters<Dockerode['getEvents']>[0])) as NodeJS.ReadableStream & {
        destroy?: () => void;
      };
    } catch (err) {
      log.warn({ err: (err as Error).message }, "cannot follow the host's events; trying again");
      again();
      return;
    }
    delay = 1000;
    if (stopped) return void stream.destroy?.();
    onFollowing(true);
    let buffer = '';
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const time = onLine(line);
        if (time !== undefined) since = Math.floor(time);
      }
    });
    const current = stream;
    let done = false;
    const ended = () => {
      if (done) return;
      done = true;
      if (stream === current) stream = undefined;
      onFollowing(false);
      if (!stopped) log.warn("the host's event stream ended; subscribing again");
      again();
    };
    // A dropped connection ends the stream with 'end', 'close' or 'error', depending on how it went.
    current.once('end', ended);
    current.once('close', ended);
    current.once('error', () => {
      current.destroy?.();
      ended();
    });
  };
  void subscribe();
  return () => {
    stopped = true;
    clearTimeout(timer);
    stream?.destroy?.();
    onFollowing(false);
  };
}

function parse(host: string, line: string): ContainerEvent | undefined {
  try {
    const raw = JSON.parse(line) as {
      Action?: string;
      id?: string;
      timeNano?: number;
      time?: number;
      Actor?: { ID?: string; Attributes?: Record<string, string> };
    };
    const attrs = raw.Actor?.Attributes ?? {};
    const [action, detail] = (raw.Action ?? '').split(':').map((s) => s.trim());
    if (!ACTIONS.includes(action)) return undefined;
    return {
      ...(attrs.name ? { name: attrs.name } : {}),
      ...(attrs.image ? { image: attrs.image } : {}),
      labels: Object.fromEntries(Object.entries(attrs).filter(([k]) => !NOT_LABELS.has(k))),
      ...(action === 'health_status' && detail ? { health: detail } : {}),
      host,
      action,
      id: raw.Actor?.ID ?? raw.id ?? '',
      repo: attrs[LABEL.repo] ?? '',
      stack: attrs[LABEL.stack] ?? '',
      time: raw.timeNano ? raw.timeNano / 1e9 : (raw.time ?? Date.now() / 1000),
      exitCode: attrs.exitCode !== undefined ? Number(attrs.exitCode) : undefined,
      ...(attrs[LABEL.job] ? { job: attrs[LABEL.job] } : {}),
    };
  } catch {
    return undefined;
  }
}

/** An event's time in seconds (with nanoseconds), when its line has one. */
function timeOf(line: string): number | undefined {
  try {
    const raw = JSON.parse(line) as { timeNano?: number; time?: number };
    return raw.timeNano ? raw.timeNano / 1e9 : raw.time;
  } catch {
    return undefined;
  }
}
