/**
 * One HTTP request of a notification, and what its answer means for the delivery: delivered,
 * tried again later (network errors, timeouts, 5xx, 429, with `Retry-After` honoured) or failed at
 * once (any other 4xx, a redirect). `send` is the only I/O (fetch, built into Node); the rest is
 * pure, tested with plain data.
 */

/** A request as the payload builders make it; `url` and the headers may hold secrets, and are never logged. */
export interface HttpRequest {
  /** POST, or (a comment berth edits) PATCH or PUT, as the forge's API documents it */
  method: 'POST' | 'PATCH' | 'PUT';
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What came of one attempt. `error` never holds the URL's path or a header: see send(). */
export interface HttpAnswer {
  /** the HTTP status, when the server answered */
  status?: number;
  /** the Retry-After header, as sent */
  retryAfter?: string;
  /** the start of the answer's body (one line), for a status other than 2xx */
  body?: string;
  /** why there was no answer: timeout, connection refused ... */
  error?: string;
  /** a 2xx answer's JSON body, when asked for (send's `json`): what a created comment's id is read from */
  json?: unknown;
}

/** The default wait before each retry: 1 s, 5 s, 30 s, 2 min, 10 min; then the delivery has failed. */
export const RETRY_DELAYS_MS: readonly number[] = [1_000, 5_000, 30_000, 120_000, 600_000];

/** A Retry-After longer than this is not waited for: the delivery waits this long. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/** What to do after an attempt. */
export type Verdict =
  | { next: 'delivered'; status: number }
  | { next: 'retry'; delayMs: number; status?: number; error: string }
  | { next: 'failed'; status?: number; error: string };

/**
 * The verdict on attempt number `attempt` (1 for the first) given its answer. Network errors,
 * timeouts, 5xx and 429 are tried again after `delays[attempt - 1]` (or as long as `Retry-After`
 * asks, if longer), until the delays run out; any other answer that is not 2xx fails at once.
 */
export function judge(answer: HttpAnswer, attempt: number, delays: readonly number[], now: number): Verdict {
  const { status } = answer;
  if (status !== undefined && status >= 200 && status < 300) return { next: 'delivered', status };
  const error = describe(answer);
  const retryable = status === undefined || status >= 500 || status === 429;
  const delay = delays[attempt - 1];
  if (!retryable || delay === undefined) return { next: 'failed', ...(status !== undefined ? { status } : {}), error };
  const asked = answer.retryAfter === undefined ? undefined : retryAfterMs(answer.retryAfter, now);
  const delayMs = Math.max(delay, Math.min(asked ?? 0, MAX_RETRY_AFTER_MS));
  return { next: 'retry', delayMs, ...(status !== undefined ? { status } : {}), error };
}

/** `Retry-After` in milliseconds from `now`: delay-seconds or an HTTP date; undefined when it is neither. */
export function retryAfterMs(value: string, now: number): number | undefined {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** An attempt's outcome in words: `HTTP 503: <the answer's first line>`, or why there was none. */
function describe(a: HttpAnswer): string {
  if (a.status === undefined) return a.error ?? 'no answer';
  const redirect = a.status >= 300 && a.status < 400 ? ' (a redirect: berth does not follow them; give the final URL)' : '';
  return `HTTP ${a.status}${redirect}${a.body ? `: ${a.body}` : ''}`;
}

/**
 * Sends one request, bounded by `timeoutMs` and by `signal` (berth stopping). Never throws.
 * Messages name no URL (only the error's code or kind), and `secrets` (the token, the URL's path)
 * are blanked out of the answer's body should a server echo them.
 */
export async function send(
  req: HttpRequest,
  { timeoutMs, signal, secrets = [], json = false }: { timeoutMs: number; signal?: AbortSignal; secrets?: string[]; json?: boolean },
): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const ok = res.status >= 200 && res.status < 300;
    if (ok && json) return { status: res.status, json: await jsonOf(res) };
    const text = ok ? (await res.body?.cancel(), '') : await res.text().catch(() => '');
    const body = scrub(oneLine(text), secrets);
    const retryAfter = res.headers.get('retry-after') ?? undefined;
    return { status: res.status, ...(retryAfter !== undefined ? { retryAfter } : {}), ...(body ? { body } : {}) };
  } catch (err) {
    if (timeout.aborted) return { error: `no answer within ${seconds(timeoutMs)}` };
    if (signal?.aborted) return { error: 'berth stopped before the answer' };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { error: cause?.code ? `cannot connect (${cause.code})` : `the request failed (${(err as Error).name})` };
  }
}

/** The answer's JSON, read up to 1 MiB (a forge's comment is far less); undefined when it is not JSON or longer. */
async function jsonOf(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => '');
  if (text.length > 1 << 20) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

const oneLine = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
};

/** `text` with every secret (of 4 characters or more) replaced by `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}
