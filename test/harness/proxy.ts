// Fronts for a test daemon's unix socket: one that can be made to stop answering, one that counts requests.
import { rmSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A TCP front for a daemon's unix socket that can stop answering: `stop()` closes it (connections
 * are refused), `hang()` accepts connections but never answers, `resume()` forwards again, on the same port.
 */
export async function proxyTo(socketPath: string) {
  const open = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async (mode: 'forward' | 'hang') => {
    server = createServer((client) => {
      open.add(client);
      client.on('close', () => open.delete(client));
      client.on('error', () => client.destroy());
      if (mode === 'hang') return;
      const upstream = netConnect(socketPath);
      open.add(upstream);
      upstream.on('close', () => open.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of open) socket.destroy();
    if (s) await new Promise((resolve) => s.close(resolve));
  };
  await listen('forward');
  return {
    port,
    stop,
    resume: async () => {
      await stop();
      await listen('forward');
    },
    hang: async () => {
      await stop();
      await listen('hang');
    },
  };
}

/**
 * An HTTP proxy on a unix socket in front of a daemon's unix socket that counts requests by
 * `METHOD /path` (the API version prefix dropped, container ids folded to `{id}`).
 */
export async function countingProxy(upstreamSocket: string, socketPath: string) {
  const counts = new Map<string, number>();
  const front = await httpFront(upstreamSocket, socketPath, (req) => {
    const path = (req.url ?? '/')
      .split('?')[0]
      .replace(/^\/v[\d.]+/, '')
      .replace(/\/[0-9a-f]{64}\b/g, '/{id}');
    const key = `${req.method} ${path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  return {
    socketPath,
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
    close: front.close,
  };
}

/**
 * An HTTP front on a unix socket that passes every request on to `upstreamSocket` as it is:
 * `onRequest` sees each request first, and may return what sees the upstream's answer before it is
 * passed back.
 */
async function httpFront(upstreamSocket: string, socketPath: string, onRequest: (req: IncomingMessage) => ((upRes: IncomingMessage) => void) | void) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server: HttpServer = createHttpServer((req, res) => {
    const onAnswer = onRequest(req);
    const up = request({ socketPath: upstreamSocket, path: req.url, method: req.method, headers: req.headers, agent }, (upRes) => {
      onAnswer?.(upRes);
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** One request a recordingProxy passed on. */
export interface RecordedCall {
  method: string;
  /** the path as sent, with its query, the API version prefix dropped */
  url: string;
  status: number;
  /** the request's JSON body, when it had one */
  body?: unknown;
  /** the answer's JSON body, when it was JSON and not streamed (events, logs and pulls are not kept) */
  answer?: unknown;
}

/**
 * An HTTP proxy on a unix socket in front of a Docker API's unix socket (a daemon's, or a
 * simulated host's) that records every request in order, with its JSON body and answer: what
 * berth asked of the host, to be compared between two hosts.
 */
export async function recordingProxy(upstreamSocket: string, socketPath: string) {
  const calls: RecordedCall[] = [];
  const front = await httpFront(upstreamSocket, socketPath, (req) => {
    const url = (req.url ?? '/').replace(/^\/v[\d.]+\//, '/');
    const call: RecordedCall = { method: req.method ?? 'GET', url, status: 0 };
    calls.push(call);
    const sent: Buffer[] = [];
    req.on('data', (c: Buffer) => sent.push(c));
    req.on('end', () => {
      if (sent.length && /json/.test(String(req.headers['content-type']))) {
        try {
          call.body = JSON.parse(Buffer.concat(sent).toString());
        } catch {
          // not JSON after all: only its being there matters
        }
      }
    });
    return (upRes) => {
      call.status = upRes.statusCode ?? 0;
      const streamed = /^\/(events|containers\/[^/]+\/(logs|attach|stats)|images\/create)\b/.test(url);
      const json = /json/.test(String(upRes.headers['content-type']));
      if (json && !streamed) {
        const got: Buffer[] = [];
        upRes.on('data', (c: Buffer) => got.push(c));
        upRes.on('end', () => {
          try {
            call.answer = JSON.parse(Buffer.concat(got).toString());
          } catch {
            // an empty or cut answer: nothing to keep
          }
        });
      }
    };
  });
  return { socketPath, calls, reset: () => calls.splice(0), close: front.close };
}
