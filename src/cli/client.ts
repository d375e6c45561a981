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

/** A berth server's API: paths relative to /api/v1. */
export interface ApiClient {
  readonly url: string;
  get<T>(path: string, query?: Query): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** A GET whose answer is read as it comes (`accept` its type); `signal` aborts it, also while it is read. */
  stream(path: string, query: Query, accept: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
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

  /** The server's answer; throws when it cannot be reached. */
  async function request(method: string, path: string, { query = {}, body, accept = 'application/json', signal }: RequestOptions = {}): Promise<Response> {
    const target = new URL(`api/v1${path}`, base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) target.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(
        `cannot reach berth at ${where}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`berth serve\` running there? BERTH_URL says where)`,
        2,
      );
    }
  }

  async function call<T>(method: string, path: string, query: Query = {}, body?: unknown): Promise<T> {
    const res = await request(method, path, { query, body });
    return answer<T>(res, await res.text());
  }

  /** The parsed answer, or the ApiError of a refusal. */
  function answer<T>(res: Response, text: string): T {
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok && parsed !== undefined) return parsed as T;
    const said = parsed as { error?: unknown; code?: unknown } | undefined;
    const message =
      typeof said?.error === 'string' ? said.error : `${where} answered HTTP ${res.status} ${res.statusText}${res.ok ? ' without JSON' : ''}: is it berth?`;
    const code = typeof said?.code === 'string' ? (said.code as ApiErrorCode) : undefined;
    if (res.status === 401) throw new ApiError(`${message}${token ? '' : ' (BERTH_TOKEN is not set)'}`, 2, 401, code);
    if (res.status === 403 || res.status >= 500 || res.ok) throw new ApiError(message, 2, res.status, code);
    throw new ApiError(message, 1, res.status, code);
  }

  return {
    url: where,
    get: (path, query) => call('GET', path, query),
    post: (path, body = {}) => call('POST', path, {}, body),
    stream: async (path, query, accept, signal) => {
      const res = await request('GET', path, { query, accept, signal });
      if (res.ok && res.body) return res.body;
      return answer(res, await res.text());
    },
  };
}

interface RequestOptions {
  query?: Query;
  body?: unknown;
  accept?: string;
  signal?: AbortSignal;
}

/** The client BERTH_URL and BERTH_TOKEN describe, or undefined when BERTH_URL is not set (the CLI then acts locally). */
export function apiFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient | undefined {
  const url = env.BERTH_URL?.trim();
  return url ? apiClient(url, env.BERTH_TOKEN?.trim() || undefined) : undefined;
}
