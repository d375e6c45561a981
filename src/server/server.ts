/**
 * The HTTP surface of `berth serve` (fastify): liveness, readiness, the webhooks, the API under
 * /api/v1, the metrics and the dashboard, each an encapsulated plugin registered here; in front
 * of them all, the Host names berth answers to (src/server/browsers.ts).
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import { api, rateLimits } from './api.ts';
import { clip, HostNames } from './browsers.ts';
import { webhooks } from './webhooks.ts';

export { parseListen } from './auth.ts';

export interface ServerState {
  /** true once the database is open and the first pass over every repo is done */
  ready: () => boolean;
  /** the engine the webhooks hand their pushes to */
  engine: Engine;
  /** how often the API's event stream sends a comment line (ms); default 15 s */
  heartbeatMs?: number;
}

/** Request URLs as logged: a `token` query parameter (the event stream's) is blanked. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/**
 * The server's logger: requests are logged without their headers (no Authorization, no cookie,
 * no webhook signature) and with the `token` query parameter blanked, even at debug level.
 */
function httpLogger(log: Logger): FastifyBaseLogger {
  return log.child(
    { component: 'http' },
    {
      serializers: {
        req: (req: IncomingMessage & { ip?: string }) => ({ method: req.method, url: redactUrl(req.url ?? ''), remoteAddress: req.ip }),
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
    },
  ) as FastifyBaseLogger;
}

export function buildServer(state: ServerState, log: Logger): FastifyInstance {
  const app = Fastify({ loggerInstance: httpLogger(log), logController: new LogController({ disableRequestLogging: true }) });
  // DNS rebinding: a page whose name was made to resolve to berth's address sends its own name as the Host
  const names = new HostNames(state.engine.config);
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url ?? '';
    // probes ask by IP; forges send the public name, held to the names only once the operator gave them
    if (route === '/healthz' || route === '/readyz' || (route.startsWith('/webhooks/') && !names.configured)) return;
    // fastify's inject() in this process: no connection, nothing a browser can send
    if (!(req.socket instanceof Socket)) return;
    if (names.allows(req.headers.host, { port: req.socket.localPort ?? 0, address: req.socket.localAddress })) return;
    req.log.debug({ host: clip(req.headers.host ?? '') }, 'request for a host name berth does not answer to refused');
    const host = req.headers.host === undefined ? 'no Host header' : `the host name "${clip(req.headers.host)}" (the Host header)`;
    return reply.code(403).send({
      error: `berth does not answer to ${host}: if berth is reached under that name, add it to allowedHosts, or set publicUrl, in the engine config (docs/config.md, "The API and browsers")`,
      code: 'host-not-allowed',
    });
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (state.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting' });
  });
  // The webhooks, limited per client address (limits.webhooks a minute).
  void app.register(async (scope) => {
    await scope.register(rateLimit, rateLimits(state.engine.config.limits.webhooks, 'limits.webhooks', 'deliveries'));
    await scope.register(webhooks, { engine: state.engine });
  });
  // The API: /api/v1 (src/server/api.ts), with its tokens, its rate limit and its event stream.
  void app.register(api, { prefix: '/api/v1', engine: state.engine, heartbeatMs: state.heartbeatMs });
  // The dashboard at / (src/dashboard/, served by src/server/dashboard.ts) and GET /metrics (src/server/metrics.ts):
  void app.register(import('./dashboard.ts'));
  void app.register(import('./metrics.ts'), { engine: state.engine });
  return app;
}
