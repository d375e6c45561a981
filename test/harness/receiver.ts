/**
 * A recording HTTP receiver on loopback, standing in for what berth notifies: a webhook endpoint,
 * Slack, Discord, Teams, and each forge's commit status API. It records every request (method,
 * path as sent, headers, body) and answers as a test tells it: `fail` the next requests with a
 * status (429 with a Retry-After too), `hold` them without ever answering, or go `down` (nothing
 * listens on its port) and come back `up` on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './docker.ts';

export interface ReceivedRequest {
  method: string;
  /** the path and query as sent (percent-encoding kept) */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** the status it was answered with; undefined while held (or never answered) */
  status?: number;
}

export interface Receiver {
  /** http://127.0.0.1:PORT */
  url: string;
  /** every request, in the order they arrived */
  requests: ReceivedRequest[];
  /**
   * the next `n` requests are answered `status` (with these headers: { 'retry-after': '1' }); with
   * `echo`, the answer's body repeats the request's path, headers and body (as a careless server
   * might); with `match`, the next `n` of those it matches only
   */
  fail(n: number, status: number, headers?: Record<string, string>, opts?: { echo?: boolean; match?: (r: ReceivedRequest) => boolean }): void;
  /** while on, requests are never answered: they are held until hold(false) answers them, or close() */
  hold(on: boolean): void;
  /** requests held now (arrived, not answered) */
  holding(): number;
  /** stops listening (its port refuses connections) */
  down(): Promise<void>;
  /** listens again, on the same port */
  up(): Promise<void>;
  /** waits until `n` requests (matching `match`) arrived; returns them */
  waitForRequests(n: number, match?: (r: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/**
 * Starts a receiver; every request it does not fail or hold is answered `okStatus` (default 200)
 * with `{}`, or with what `respond` makes of the request (a forge's created comment: `{ "id": 12 }`).
 */
export async function startReceiver(okStatus = 200, respond?: (r: ReceivedRequest) => unknown): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const failures: Array<{ status: number; headers: Record<string, string>; echo: boolean; match?: (r: ReceivedRequest) => boolean }> = [];
  const held: Array<{ req: ReceivedRequest; res: ServerResponse; gone: boolean }> = [];
  let holdOn = false;
  let port = 0;
  const answer = (r: ReceivedRequest, res: ServerResponse, status: number, headers: Record<string, string> = {}, echo = false) => {
    r.status = status;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    const h = r.headers;
    const said = `${h.authorization ?? ''} ${h['private-token'] ?? ''} ${h['x-berth-signature'] ?? ''}`;
    const message = echo ? `you sent ${r.method} ${r.path} with ${said}: ${r.body}` : `the receiver was told to answer ${status}`;
    res.end(status < 300 ? JSON.stringify(respond?.(r) ?? {}) : JSON.stringify({ message }));
  };
  const handler = (req: import('node:http').IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(r);
      if (holdOn) {
        const h = { req: r, res, gone: false };
        res.on('close', () => (h.gone = true)); // the client gave up, or the receiver closed it
        held.push(h);
        return;
      }
      const at = failures.findIndex((x) => !x.match || x.match(r));
      const f = at < 0 ? undefined : failures.splice(at, 1)[0];
      if (f) answer(r, res, f.status, f.headers, f.echo);
      else answer(r, res, okStatus);
    });
  };
  let server: Server = createServer(handler);
  const listen = (s: Server, p: number) => new Promise<void>((resolve, reject) => s.once('error', reject).listen(p, '127.0.0.1', () => resolve()));
  await listen(server, 0);
  port = (server.address() as AddressInfo).port;
  const stop = async () => {
    for (const h of held.splice(0)) h.res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail: (n, status, headers = {}, opts = {}) => {
      for (let i = 0; i < n; i++) failures.push({ status, headers, echo: opts.echo ?? false, match: opts.match });
    },
    hold: (on) => {
      holdOn = on;
      if (!on) for (const h of held.splice(0)) if (!h.gone) answer(h.req, h.res, okStatus);
    },
    holding: () => held.filter((h) => !h.gone).length,
    down: stop,
    up: async () => {
      server = createServer(handler);
      await listen(server, port);
    },
    waitForRequests: (n, match = () => true, timeoutMs = 30_000) =>
      waitFor(
        () => {
          const found = requests.filter(match);
          return found.length >= n ? found : undefined;
        },
        { what: `${n} request(s) at the receiver (${requests.length} so far: ${requests.map((r) => r.path).join(', ')})`, timeoutMs },
      ),
    close: stop,
  };
}
