// Talking to berth's API: the token (kept in this browser), JSON requests, the event stream.
/* global localStorage, location, fetch, EventSource, setTimeout, URL, TextDecoderStream */

const TOKEN_KEY = 'berth.token';

/** The API token this browser keeps ('' when none). */
export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) ?? '',
  set: (t) => localStorage.setItem(TOKEN_KEY, t.trim()),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

/** An answer other than 2xx: status, the API's own message and its code (docs/api.md, "Errors"). */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls /api/v1{path}; params with empty values are left out; body is sent as JSON.
 * Resolves to the parsed answer, rejects with ApiError (status 0: berth did not answer).
 */
export async function api(path, { method = 'GET', params, body } = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  const headers = { accept: 'application/json' };
  if (token.get()) headers.authorization = `Bearer ${token.get()}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'berth does not answer: is it running, and is this machine on its network?');
  }
  const data = await res.json().catch(() => undefined);
  if (!res.ok) {
    const retry = res.headers.get('retry-after');
    const fallback = res.status === 429 ? `too many requests: try again in ${retry ?? 'a few'} s` : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, data?.error ?? fallback, data?.code);
  }
  return data;
}

/**
 * Listens to /api/v1/events (the token goes in the query: EventSource cannot send headers).
 * onEvent(type, data) for audit, stack, sync and notification events; onState('live' | 'reconnecting' | 'offline', reopened).
 * A stream the server closed is opened again after 5 s. Returns a function that stops listening.
 */
export function listen(onEvent, onState) {
  let es;
  let stopped = false;
  let wasOpen = false;
  const open = () => {
    const t = token.get();
    es = new EventSource(`/api/v1/events${t ? `?token=${encodeURIComponent(t)}` : ''}`);
    for (const type of ['audit', 'stack', 'sync', 'notification']) {
      es.addEventListener(type, (e) => {
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        onEvent(type, data);
      });
    }
    es.onopen = () => {
      onState('live', wasOpen);
      wasOpen = true;
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        onState('offline', false);
        if (!stopped) setTimeout(() => !stopped && open(), 5000);
      } else onState('reconnecting', false);
    };
  };
  open();
  return () => {
    stopped = true;
    es.close();
  };
}

/**
 * Reads a JSON-lines answer of /api/v1{path} as it comes (GET /stacks/:name/logs), calling onRecord
 * with each parsed line; resolves when the answer ends, rejects with ApiError when berth refuses.
 * `signal` stops it (a page left, another service chosen): then it resolves.
 */
export async function streamLines(path, { params, signal, onRecord }) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  const headers = { accept: 'application/x-ndjson' };
  if (token.get()) headers.authorization = `Bearer ${token.get()}`;
  let res;
  try {
    res = await fetch(url, { headers, signal });
  } catch {
    if (signal?.aborted) return;
    throw new ApiError(0, 'berth does not answer: is it running, and is this machine on its network?');
  }
  if (!res.ok) {
    const data = await res.json().catch(() => undefined);
    throw new ApiError(res.status, data?.error ?? `${res.status} ${res.statusText}`, data?.code);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += value;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line) onRecord(JSON.parse(line));
      }
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw new ApiError(0, `the logs stopped: ${err.message}`);
  }
}
