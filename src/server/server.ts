/**
 * The HTTP surface of `berth serve` (fastify): liveness, readiness and the webhooks; the API,
 * metrics and the dashboard register here as plugins.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import { webhooks } from './webhooks.ts';

export interface ServerState {
  /** true once the database is open and the first pass over every repo is done */
  ready: () => boolean;
  /** the engine the webhooks hand their pushes to */
  engine: Engine;
}

export function buildServer(state: ServerState, log: Logger): FastifyInstance {
  const app = Fastify({ loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (state.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting' });
  });
  void app.register(webhooks, { engine: state.engine });
  return app;
}

/** `host:port` as in the config's `listen`. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i) || '127.0.0.1', port: Number(listen.slice(i + 1)) };
}
