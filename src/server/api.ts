/**
 * The HTTP API under /api/v1 (docs/api.md): the stacks and their status, the hosts, the
 * sync history, the audit log, the webhook deliveries, the notifications sent, the event stream,
 * the plan of a ref (which changes nothing); and the actions sync,
 * rollback, pause and resume, each the same operation the CLI runs (src/engine/ops.ts). JSON in
 * and out; every error is `{ error, code }`: a message a person can act on (a bad field is named)
 * and a stable code a program can branch on (docs/api.md, "Errors"). Reading needs a viewer
 * token, acting an operator one (src/server/auth.ts); every action is audited as `api.action` with
 * the token's name. An action another site's page asks for, and a body that is not JSON, are
 * refused before the token is looked at (src/server/browsers.ts); one client address may hold
 * limits.eventStreams event streams open, and all clients together limits.logFollowers followed logs.
 */
import { Ajv, type ErrorObject } from 'ajv';
import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { DeliveryFilter } from '../audit/deliveries.ts';
import { NOTIFICATION_OUTCOMES, type NotificationFilter } from '../audit/notifications.ts';
import type { SyncFilter } from '../audit/syncs.ts';
import { EngineError, type Engine } from '../engine/engine.ts';
import { LocalOps, type ApiErrorCode, type AuditQuery, type LogQuery } from '../engine/ops.ts';
import { LOG_TAIL } from '../engine/log-lines.ts';
import { SourceError } from '../source/git.ts';
import { allows, bearerToken, LOCAL_ADMIN, Tokens, type Principal, type Role } from './auth.ts';
import { clip, crossSite, hasBody, isJson } from './browsers.ts';
import { EventStreams } from './events.ts';
import { sendLogs, wantsNdjson } from './logs.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the least role a route needs */
    role?: Role;
    /** the token may come as `?token=` (EventSource cannot set headers) */
    queryToken?: boolean;
  }
  interface FastifyRequest {
    /** who asked: set on every /api/v1 route once the token is checked */
    principal?: Principal;
  }
}

export interface ApiOptions {
  engine: Engine;
  /** how often the event stream sends a comment line, and a followed logs answer in JSON lines an empty line (ms); default 15 s */
  heartbeatMs?: number;
}

/** @fastify/rate-limit settings: `max` requests a minute per client address, then 429 with Retry-After and a message naming the config key. */
export function rateLimits(max: number, key: string, what = 'requests'): RateLimitPluginOptions {
  return {
    max,
    timeWindow: 60_000,
    errorResponseBuilder: (_req, ctx) =>
      Object.assign(new Error(`too many ${what} from this address: at most ${ctx.max} a minute (${key} in the engine config); retry in ${ctx.after}`), {
        statusCode: ctx.statusCode,
      }),
  };
}

// Schemas: each field says what it takes (`description`), which the 400 message repeats.
const NAME = { type: 'string', minLength: 1, maxLength: 200 } as const;
const COMMIT = { type: 'string', pattern: '^[0-9a-fA-F]{4,64}$', description: 'a full commit SHA or a prefix of at least 4 hex characters' } as const;
const TIME = { type: 'string', minLength: 1, description: 'an ISO time (2024-05-01T10:00:00Z) or how long ago (30m, 2h, 7d)' } as const;
const PAGE = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'a whole number from 1 to 1000 (default 100)' },
  cursor: { type: 'integer', minimum: 1, description: 'the nextCursor of the previous page' },
} as const;
const query = (properties: Record<string, object>) => ({ type: 'object', additionalProperties: false, properties }) as const;
const STACK_PARAMS = { type: 'object', required: ['name'], properties: { name: NAME } } as const;
const HOST_PARAMS = {
  type: 'object',
  required: ['name'],
  properties: { name: { ...NAME, description: 'a host name, as GET /api/v1/hosts lists them' } },
} as const;
const WAIT = { type: 'boolean', description: 'true: answer once it ended, with its outcome; false (default): answer 202 at once' } as const;

/** The HTTP status of every code the API answers with (docs/api.md, "Errors", lists the same). */
export const ERROR_STATUS: Record<ApiErrorCode, number> = {
  'invalid-request': 400,
  unauthenticated: 401,
  forbidden: 403,
  'cross-site': 403,
  'host-not-allowed': 403,
  'unknown-stack': 404,
  'unknown-host': 404,
  'unknown-service': 404,
  'unknown-sync': 404,
  'unknown-repo': 404,
  'unknown-ref': 404,
  'no-such-route': 404,
  'not-held': 409,
  'nothing-to-roll-back': 409,
  'rollback-target-invalid': 409,
  'data-dir-owned': 409,
  'too-large': 413,
  'unsupported-media-type': 415,
  'rate-limited': 429,
  'too-many-streams': 429,
  'too-many-followers': 429,
  internal: 500,
  'repo-unreadable': 502,
  'leader-lost': 503,
  'no-leader': 503,
};

/** The code of an HTTP error that no operation refused (validation, the token, limits). */
const CODE_OF_STATUS: Record<number, ApiErrorCode> = {
  400: 'invalid-request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'no-such-route',
  413: 'too-large',
  415: 'unsupported-media-type',
  429: 'rate-limited',
};

/** The methods of requests that change something: refused when another site's page sends them. */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** An error answer: the message and its code. */
const refusal = (error: string, code: ApiErrorCode) => ({ error, code });

/** The /api/v1 routes, as an encapsulated fastify plugin; reads the token files when registered (ConfigError on a bad one). */
export const api: FastifyPluginAsync<ApiOptions> = async (app, { engine, heartbeatMs = 15_000 }) => {
  const tokens = Tokens.load(engine.config.auth);
  const log = engine.log.child({ component: 'api' }); // not app.log's child: that one is bound to component: 'http' already
  const ops = new LocalOps(engine, {
    asked: ({ repo, stack, actor, message }) =>
      engine.audit.append({
        kind: 'api.action',
        repo,
        stack,
        trigger: 'manual',
        actor,
        outcome: 'info',
        message: `${message}, asked by ${actor} through the API`,
      }),
    failed: ({ stack, actor, what, err }) => {
      log.error({ stack, actor, err: (err as Error).message }, `${what} failed`);
      engine.audit.append({ kind: 'api.action', stack, trigger: 'manual', actor, outcome: 'error', message: `${what} failed: ${(err as Error).message}` });
    },
  });
  const streams = new EventStreams(engine, { heartbeatMs, stackView: (s) => ops.withCommitInfo(s), log, perClient: engine.config.limits.eventStreams });
  if (tokens.open) {
    log.warn('no API token is configured (auth.tokens): every API request is treated as the admin "local"; berth serves on loopback only');
  }

  await app.register(rateLimit, rateLimits(engine.config.limits.api, 'limits.api'));

  // Query strings and paths are text: numbers are coerced there. Bodies are JSON: taken as sent ({ commit: 42 } is an error).
  const coercing = new Ajv({ coerceTypes: true, verbose: true });
  const strict = new Ajv({ verbose: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) return reply.code(400).send(refusal(validationMessage(err.validation as ErrorObject[], err.validationContext), 'invalid-request'));
    if (err instanceof EngineError) return reply.code(ERROR_STATUS[err.code]).send(refusal(err.message, err.code));
    if (err instanceof SourceError) return reply.code(502).send(refusal(`berth cannot read the repo: ${err.message}`, 'repo-unreadable'));
    if (err.statusCode && err.statusCode < 500)
      return reply.code(err.statusCode).send(refusal(err.message, CODE_OF_STATUS[err.statusCode] ?? 'invalid-request'));
    log.error({ route: req.routeOptions.url, err: err.message }, 'API request failed');
    return reply.code(500).send(refusal(`berth could not answer: ${err.message}`, 'internal'));
  });
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (req, reply) =>
    reply.code(404).send(refusal(`no API route ${req.method} ${req.url.split('?')[0]}: docs/api.md lists them`, 'no-such-route')),
  );
  // Open event streams and followed logs would keep app.close() waiting: they end first.
  app.addHook('preClose', async () => {
    streams.close();
    ops.closeLogs();
  });

  // Before the token and the body: an action another site's page asks for is refused whoever's
  // browser sends it, and a body that is not JSON is not read (docs/api.md, "Browsers").
  const publicOrigin = engine.config.publicUrl === undefined ? undefined : new URL(engine.config.publicUrl).origin;
  app.addHook('onRequest', async (req, reply) => {
    if (!STATE_CHANGING.has(req.method)) return;
    const why = crossSite(req.headers, publicOrigin);
    if (why !== undefined) {
      log.warn({ ip: req.ip, route: req.routeOptions.url ?? req.url.split('?')[0] }, 'cross-site API request refused');
      const proxy = publicOrigin ? '' : '; behind a proxy, set publicUrl in the engine config to the address browsers use';
      reply
        .code(ERROR_STATUS['cross-site'])
        .send(
          refusal(
            `${why} refused: berth takes actions from its own pages and from clients that are no browser (the CLI, curl) only${proxy} (docs/api.md, "Browsers")`,
            'cross-site',
          ),
        );
      return reply;
    }
    if (req.method !== 'DELETE' && hasBody(req.headers) && !isJson(req.headers['content-type'])) {
      const sent = req.headers['content-type'] === undefined ? 'none' : clip(req.headers['content-type']);
      reply
        .code(ERROR_STATUS['unsupported-media-type'])
        .send(refusal(`the body must be JSON: send Content-Type: application/json (the request's Content-Type: ${sent})`, 'unsupported-media-type'));
      return reply;
    }
  });

  // Every route names the role it needs; the token is checked before the body or the query is validated.
  app.addHook('preValidation', async (req, reply) => {
    // a route without a role is admin-only; an unknown route's 404 is for any token
    const needed = req.routeOptions.config.role ?? (req.is404 ? 'viewer' : 'admin');
    const principal = tokens.open ? LOCAL_ADMIN : identify(req);
    if (typeof principal === 'string') {
      reply.code(401).header('www-authenticate', 'Bearer').send(refusal(principal, 'unauthenticated'));
      return reply;
    }
    if (!allows(principal.role, needed)) {
      reply
        .code(403)
        .send(
          refusal(`the token ${principal.name} is a ${principal.role} token: ${req.method} ${req.routeOptions.url} needs ${needed} or higher`, 'forbidden'),
        );
      return reply;
    }
    req.principal = principal;
    // a POST without a body (curl -X POST) is one with {}, whatever Content-Type it names (text/plain parses to '')
    if (req.method === 'POST' && (req.body === undefined || req.body === null || !hasBody(req.headers))) req.body = {};
  });

  /** The token's principal, or why there is none. */
  function identify(req: FastifyRequest): Principal | string {
    let token = bearerToken(req.headers.authorization);
    if (token === null) return 'the Authorization header is not "Bearer <token>"';
    if (token === undefined && req.routeOptions.config.queryToken) token = (req.query as { token?: string }).token || undefined;
    if (token === undefined) return 'no API token: send the header Authorization: Bearer <token> (the berth CLI sends $BERTH_TOKEN)';
    const principal = tokens.identify(token);
    if (principal) return principal;
    log.warn({ ip: req.ip, route: req.routeOptions.url }, 'API request with an unknown token refused');
    return 'unknown API token: use one of the tokens in the engine config (auth.tokens)';
  }

  const viewer = { role: 'viewer' } as const;
  const operator = { role: 'operator' } as const;

  app.get('/me', { config: viewer }, async (req) => req.principal);

  app.get('/stacks', { config: viewer, schema: { querystring: query({}) } }, async (_req, reply) =>
    reply.type('application/json; charset=utf-8').send(await ops.stacksJson()),
  );

  app.get<{ Params: { name: string } }>('/stacks/:name', { config: viewer, schema: { params: STACK_PARAMS } }, async (req) => ops.stack(req.params.name));

  // one sample per replica, asked of the hosts now: the one read that calls Docker, and only when asked
  app.get<{ Params: { name: string } }>('/stacks/:name/stats', { config: viewer, schema: { params: STACK_PARAMS } }, async (req) => ops.stats(req.params.name));

  app.get<{ Params: { name: string }; Querystring: LogQuery }>(
    '/stacks/:name/logs',
    {
      config: viewer,
      schema: {
        params: STACK_PARAMS,
        querystring: query({
          service: { ...NAME, description: 'a service, job or hook of the stack, as its Compose file names it' },
          host: { ...NAME, description: 'a host name, as GET /api/v1/hosts lists them' },
          since: { ...TIME, description: 'an RFC 3339 or ISO time (2024-05-01T10:00:00Z) or how long ago (10m, 1h, 7d)' },
          tail: {
            type: 'integer',
            minimum: 0,
            maximum: LOG_TAIL.max,
            description: `the last lines of each container, a whole number from 0 to ${LOG_TAIL.max} (default ${LOG_TAIL.default})`,
          },
          follow: { type: 'boolean', description: 'true: keep the answer open and send the lines as they are written' },
          timestamps: { type: 'boolean', description: 'true: each line with the time Docker stamped on it' },
        }),
      },
    },
    async (req, reply) => {
      let stream;
      try {
        stream = await ops.logs(req.params.name, req.query);
      } catch (err) {
        // a time that is neither ISO nor how long ago, a tail out of range: named as the query parameter it came in
        if (err instanceof EngineError && err.code === 'invalid-request') throw new EngineError(`query parameter ${err.message}`, err.code);
        throw err;
      }
      if (req.raw.socket.destroyed) {
        stream.records.destroy(); // the client went while the containers were looked up
        return reply;
      }
      sendLogs(reply, stream, { ndjson: wantsNdjson(req.headers.accept), log, keepAliveMs: heartbeatMs });
    },
  );

  app.get('/hosts', { config: viewer, schema: { querystring: query({}) } }, async () => ({ hosts: await ops.hosts() }));

  app.get('/cluster', { config: viewer, schema: { querystring: query({}) } }, async () => ops.cluster());

  app.get<{ Params: { name: string } }>('/hosts/:name', { config: viewer, schema: { params: HOST_PARAMS } }, async (req) => ops.host(req.params.name));

  app.get<{ Querystring: SyncFilter }>(
    '/syncs',
    {
      config: viewer,
      schema: { querystring: query({ stack: NAME, commit: COMMIT, ...PAGE }) },
    },
    async (req) => {
      const { rows, nextCursor } = await ops.syncs(req.query);
      return { syncs: rows, nextCursor };
    },
  );

  app.get<{ Params: { id: number } }>(
    '/syncs/:id',
    {
      config: viewer,
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'integer', minimum: 1, description: 'a sync id, as GET /api/v1/syncs lists them' } },
        },
      },
    },
    async (req) => ops.sync(req.params.id),
  );

  app.get<{ Querystring: AuditQuery }>(
    '/audit',
    {
      config: viewer,
      schema: { querystring: query({ stack: NAME, host: NAME, commit: COMMIT, kind: NAME, since: TIME, until: TIME, ...PAGE }) },
    },
    async (req) => {
      try {
        const { rows, nextCursor } = await ops.audit(req.query);
        return { rows, nextCursor };
      } catch (err) {
        // a time that is neither ISO nor how long ago: named as the query parameter it came in
        if (err instanceof EngineError && err.code === 'invalid-request') throw new EngineError(`query parameter ${err.message}`, err.code);
        throw err;
      }
    },
  );

  app.get<{ Querystring: DeliveryFilter }>(
    '/deliveries',
    {
      config: viewer,
      schema: { querystring: query({ provider: NAME, repo: NAME, outcome: { enum: ['accepted', 'rejected', 'ignored'] }, ...PAGE }) },
    },
    async (req) => {
      const { rows, nextCursor } = await ops.deliveries(req.query);
      return { deliveries: rows, nextCursor };
    },
  );

  app.get<{ Querystring: NotificationFilter }>(
    '/notifications',
    {
      config: viewer,
      schema: { querystring: query({ target: NAME, outcome: { enum: NOTIFICATION_OUTCOMES }, ...PAGE }) },
    },
    async (req) => {
      const { rows, nextCursor } = engine.notifier.query(req.query);
      return { notifications: rows, nextCursor };
    },
  );

  app.get(
    '/events',
    {
      config: { ...viewer, queryToken: true },
      schema: { querystring: query({ token: { type: 'string' } }) },
    },
    (req, reply) => {
      if (streams.serve(reply, req.ip)) return;
      const max = engine.config.limits.eventStreams;
      log.warn({ ip: req.ip, max }, 'event stream refused: too many open from this address');
      void reply
        .code(ERROR_STATUS['too-many-streams'])
        .send(
          refusal(
            `too many event streams open from this address: at most ${max} at once (limits.eventStreams in the engine config); close one (a dashboard tab) first`,
            'too-many-streams',
          ),
        );
    },
  );

  // A plan changes nothing: a viewer may ask for it (a POST for its body, not because it acts).
  app.post<{ Params: { repo: string }; Body: { ref: string } }>(
    '/repos/:repo/plan',
    {
      config: viewer,
      bodyLimit: 64 * 1024,
      schema: {
        params: {
          type: 'object',
          required: ['repo'],
          properties: { repo: { ...NAME, description: "a repo's name in the engine config" } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ref'],
          properties: {
            ref: {
              type: 'string',
              minLength: 1,
              maxLength: 250,
              description: 'a branch, a ref (refs/pull/7/head) or a commit SHA (a prefix of 4 or more hex characters)',
            },
          },
        },
      },
    },
    async (req) => ops.plan(req.params.repo, req.body.ref),
  );

  // Actions: the stack must be one a repo defines; each is audited (api.action) before it is done (ops' asked hook).
  const actor = (req: FastifyRequest) => req.principal!.name;

  app.post<{ Params: { name: string }; Body: { wait?: boolean } }>(
    '/stacks/:name/sync',
    {
      config: operator,
      bodyLimit: 64 * 1024,
      schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: { wait: WAIT } } },
    },
    async (req, reply) => {
      const outcome = await ops.syncStack(req.params.name, { actor: actor(req), wait: Boolean(req.body.wait) });
      return outcome ? { outcome } : reply.code(202).send({ accepted: true, stack: req.params.name });
    },
  );

  app.post<{ Params: { name: string }; Body: { commit?: string; wait?: boolean } }>(
    '/stacks/:name/rollback',
    {
      config: operator,
      bodyLimit: 64 * 1024,
      schema: {
        params: STACK_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            commit: { ...COMMIT, description: `the commit to roll back to, ${COMMIT.description} (default: the one before the commit applied)` },
            wait: WAIT,
          },
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params;
      try {
        const outcome = await ops.rollback(name, { to: req.body.commit, actor: actor(req), wait: Boolean(req.body.wait) });
        return outcome ? { outcome } : reply.code(202).send({ accepted: true, stack: name });
      } catch (err) {
        if (err instanceof SourceError) throw new EngineError(`cannot roll back ${name}: ${err.message}`, 'rollback-target-invalid');
        if (err instanceof EngineError && err.code !== 'unknown-stack') throw new EngineError(`cannot roll back ${name}: ${err.message}`, err.code);
        throw err;
      }
    },
  );

  app.post<{ Params: { name: string } }>(
    '/stacks/:name/pause',
    {
      config: operator,
      bodyLimit: 64 * 1024,
      schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: {} } },
    },
    async (req) => {
      await ops.pause(req.params.name, actor(req));
      return { stack: req.params.name, paused: true };
    },
  );

  app.post<{ Params: { name: string } }>(
    '/stacks/:name/resume',
    {
      config: operator,
      bodyLimit: 64 * 1024,
      schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: {} } },
    },
    async (req) => {
      await ops.resume(req.params.name, actor(req));
      return { stack: req.params.name, paused: false };
    },
  );
};

/** A 400 message naming the field: "body field commit must be string: the commit to roll back to, ...". */
export function validationMessage(errors: ErrorObject[], context: string | undefined): string {
  const e = errors[0];
  const part = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : 'body field';
  if (!e) return `invalid ${part}`;
  const field = e.instancePath.slice(1).replaceAll('/', '.');
  if (e.keyword === 'additionalProperties') {
    const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
    const unknown = String((e.params as { additionalProperty: string }).additionalProperty);
    return `unknown ${part} '${field ? `${field}.` : ''}${unknown}': ${known.length ? `use ${known.join(', ')}` : `this route takes none`}`;
  }
  if (e.keyword === 'required') return `${part} ${(e.params as { missingProperty: string }).missingProperty} is missing`;
  const hint = (e.parentSchema as { description?: string } | undefined)?.description;
  const what = field ? `${part} ${field}` : context === 'body' || context === undefined ? 'the body' : part;
  return `${what} ${e.message ?? 'is invalid'}${hint ? `: ${hint}` : ''}`;
}
