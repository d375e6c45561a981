/**
 * The CLI's way to a running berth: with BERTH_URL set, `sync`, `rollback`, `pause`,
 * `resume`, `status`, `hosts`, `audit` and `logs` call its API (docs/api.md) with BERTH_TOKEN instead of
 * acting on the hosts and the database themselves (src/cli/remote.ts).
 */
import type { ApiErrorCode } from '../engine/ops.ts';

/**
 * A request the server refused or could not be made. `exitCode`: 1 for a refusal of what was asked
 * (400, 404, 409, 429: the thing asked failed), 2 when berth could not do its job (server
 * unreachable, 401/403: the token, 5xx).
 */
export class ApiError extends Error {
  readonly status?: number;
  readonly exitCode: 1 | 2;
  /** the server's code for the refusal (docs/api.md, "Errors"), when it said one */
  readonly code?: ApiErrorCode;
  constructor(message: string, exitCode: 1 | 2, status?: number, code?: ApiErrorCode) {
    super(message);
    this.exitCode = exitCode;
    this.status = status;
    this.code = code;
  }
}

export type Query = Record<string, string | number | undefined>;

/** One message of an event stream (text/event-stream): its event name and its data. */
export interface StreamMessage {
  event: string;
  data: string;
}

/** A berth server's API: paths relative to /api/v1. */
export interface ApiClient {
  readonly url: string;
  get<T>(path: string, query?: Query): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /**
   * Opens an event stream (GET, server-sent events) and calls `onMessage` with each message until
   * the returned function is called or the server ends it; resolves once the server answered.
   */
  stream(path: string, onMessage: (m: StreamMessage) => void): Promise<() => void>;
  /** A GET whose answer is read as it comes (`accept` its type); `signal` aborts it, also while it is read. */
  read(path: string, query: Query, accept: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
}

/**
 * Splits event-stream text into its messages (a blank line ends one; `event:` names it, `data:`
 * lines are its data; comments and other fields are skipped) and the text of the unfinished one.
 */
export function parseEventStream(text: string): { messages: StreamMessage[]; rest: string } {
  const blocks = text.replaceAll('\r\n', '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  const messages: StreamMessage[] = [];
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue; // a comment (the keep-alive)
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) messages.push({ event, data: data.join('\n') });
  }
  return { messages, rest };
}

/** A client of the berth at `url` (http or https), sending `token` as a bearer token when given. */
export function apiClient(url: string, token?: string): ApiClient {
  let base: URL;
  try {
    base = new URL(url.endsWith('/') ? url : `${url}/`);
  } catch {
    throw new ApiError(`BERTH_URL is not a URL: "${url}" (for example http://127.0.0.1:8080)`, 2);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new ApiError(`BERTH_URL must be an http:// or https:// URL, not ${base.protocol}`, 2);
  const where = base.origin + base.pathname.replace(/\/$/, '');

  async function call<T>(method: string, path: string, query: Query = {}, body?: unknown): Promise<T> {
    const target = new URL(`api/v1${path}`, base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) target.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(
        `cannot reach berth at ${where}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`berth serve\` running there? BERTH_URL says where)`,
        2,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok && parsed !== undefined) return parsed as T;
    throw refused(res, parsed);
  }

  /** The ApiError of an answer that is not what was asked for: the server's message and code when it said them. */
  function refused(res: Response, parsed: unknown): ApiError {
    const said = parsed as { error?: unknown; code?: unknown } | undefined;
    const message =
      typeof said?.error === 'string' ? said.error : `${where} answered HTTP ${res.status} ${res.statusText}${res.ok ? ' without JSON' : ''}: is it berth?`;
    const code = typeof said?.code === 'string' ? (said.code as ApiErrorCode) : undefined;
    if (res.status === 401) return new ApiError(`${message}${token ? '' : ' (BERTH_TOKEN is not set)'}`, 2, 401, code);
    if (res.status === 403 || res.status >= 500 || res.ok) return new ApiError(message, 2, res.status, code);
    return new ApiError(message, 1, res.status, code);
  }

  /** A GET whose answer is read as it comes: its body, or the server's refusal as an ApiError. */
  async function open(target: URL, accept: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const headers: Record<string, string> = { accept };
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(target, { headers, signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(
        `cannot reach berth at ${where}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`berth serve\` running there? BERTH_URL says where)`,
        2,
      );
    }
    if (res.ok && res.body) return res.body;
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    throw refused(res, parsed);
  }

  async function stream(path: string, onMessage: (m: StreamMessage) => void): Promise<() => void> {
    const aborted = new AbortController();
    const body = await open(new URL(`api/v1${path}`, base), 'text/event-stream', aborted.signal);
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of body) {
        const { messages, rest } = parseEventStream(buffer + decoder.decode(chunk, { stream: true }));
        buffer = rest;
        for (const m of messages) onMessage(m);
      }
    })().catch(() => undefined); // ended by the caller (an abort) or by the server: nothing more comes
    return () => aborted.abort();
  }

  async function read(path: string, query: Query, accept: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const target = new URL(`api/v1${path}`, base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) target.searchParams.set(k, String(v));
    return open(target, accept, signal);
  }

  return {
    url: where,
    get: (path, query) => call('GET', path, query),
    post: (path, body = {}) => call('POST', path, {}, body),
    stream,
    read,
  };
}

/** The client BERTH_URL and BERTH_TOKEN describe, or undefined when BERTH_URL is not set (the CLI then acts locally). */
export function apiFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient | undefined {
  const url = env.BERTH_URL?.trim();
  return url ? apiClient(url, env.BERTH_TOKEN?.trim() || undefined) : undefined;
}
