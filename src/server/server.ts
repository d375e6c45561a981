/**
 * The HTTP surface of `berth serve` (fastify): liveness, readiness, the webhooks, the API under
 * /api/v1, the metrics and the dashboard, each an encapsulated plugin registered here.
 */
import type { IncomingMessage } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import { api, rateLimits } from './api.ts';
import { webhooks } from './webhooks.ts';

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

/** `host:port` as in the config's `listen`. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i) || '127.0.0.1', port: Number(listen.slice(i + 1)) };
}
