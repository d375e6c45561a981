/**
 * The HTTP API under /api/v1 (docs/api.md): the stacks and their status, the hosts, the
 * sync history, the audit log, the webhook deliveries, the event stream; and the actions sync,
 * rollback, pause and resume. JSON in and out; every error is `{ error }` with a message a person
 * can act on (a bad field is named). Reading needs a viewer token, acting an operator one
 * (src/server/auth.ts); every action is audited as `api.action` with the token's name.
 */
import { Ajv, type ErrorObject } from 'ajv';
import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditFilter, AuditRow } from '../audit/log.ts';
import { DeliveryStore, type DeliveryOutcome } from '../audit/deliveries.ts';
import { parseSince } from '../audit/format.ts';
import { EngineError, type Engine, type RepoPass, type StackOutcome } from '../engine/engine.ts';
import type { StackState } from '../engine/status.ts';
import { countManagedContainers, explainError, type HostStatus } from '../observe/hosts.ts';
import { observeHost, type LiveContainer } from '../observe/live.ts';
import { SourceError } from '../source/git.ts';
import { allows, bearerToken, LOCAL_ADMIN, Tokens, type Principal, type Role } from './auth.ts';
import { EventStreams } from './events.ts';

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
  /** how often the event stream sends a comment line (ms); default 15 s */
  heartbeatMs?: number;
}

/** A stack's status with the applied commit's author and message, when known. */
export type StackView = StackState & { commitInfo?: { sha: string; author: string; message: string } };

/** One berth-managed container on a host, as GET /api/v1/hosts/:name lists it. */
export type HostContainer = Pick<LiveContainer, 'id' | 'name' | 'stack' | 'service' | 'slot' | 'state' | 'health' | 'job' | 'image' | 'imageId' | 'commit'>;

/** A host's status with its berth-managed containers (none when it does not answer). */
export type HostView = HostStatus & { containers: HostContainer[]; observedAt?: string };

/** The `{ stack, status, errors?, syncId? }` of a sync or rollback the client waited for. */
export interface ActionOutcome {
  stack: string;
  status: StackOutcome['status'];
  errors?: string[];
  syncId?: number;
  /** a rollback's target */
  commit?: { sha: string; author: string; message: string };
  /** the berth command's arguments a person runs next (StackOutcome.hint) */
  hint?: string[];
}

/** @fastify/rate-limit settings: `max` requests a minute per client address, then 429 with Retry-After and a message naming the config key. */
export function rateLimits(max: number, key: string, what = 'requests'): RateLimitPluginOptions {
  return {
    max,
    timeWindow: 60_000,
    errorResponseBuilder: (_req, ctx) =>
      Object.assign(new Error(`too many ${what} from this address: at most ${ctx.max} a minute (${key} in the engine config); retry in ${ctx.after}`), { statusCode: ctx.statusCode }),
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
const HOST_PARAMS = { type: 'object', required: ['name'], properties: { name: { ...NAME, description: 'a host name, as GET /api/v1/hosts lists them' } } } as const;
const WAIT = { type: 'boolean', description: 'true: answer once it ended, with its outcome; false (default): answer 202 at once' } as const;

type Page = { limit?: number; cursor?: number };

/** The /api/v1 routes, as an encapsulated fastify plugin; reads the token files when registered (ConfigError on a bad one). */
export const api: FastifyPluginAsync<ApiOptions> = async (app, { engine, heartbeatMs = 15_000 }) => {
  const tokens = Tokens.load(engine.config.auth);
  const log = engine.log.child({ component: 'api' }); // not app.log's child: that one is bound to component: 'http' already
  const deliveries = new DeliveryStore(engine.db);
  const streams = new EventStreams(engine, { heartbeatMs, stackView: (s) => withCommitInfo(engine, s), log });
  if (tokens.open) {
    log.warn('no API token is configured (auth.tokens): every API request is treated as the admin "local"; berth serves on loopback only');
  }

  await app.register(rateLimit, rateLimits(engine.config.limits.api, 'limits.api'));

  // Query strings and paths are text: numbers are coerced there. Bodies are JSON: taken as sent ({ commit: 42 } is an error).
  const coercing = new Ajv({ coerceTypes: true, verbose: true });
  const strict = new Ajv({ verbose: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) return reply.code(400).send({ error: validationMessage(err.validation as ErrorObject[], err.validationContext) });
    if (err instanceof EngineError) return reply.code(409).send({ error: err.message });
    if (err instanceof SourceError) return reply.code(502).send({ error: `berth cannot read the repo: ${err.message}` });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    log.error({ route: req.routeOptions.url, err: err.message }, 'API request failed');
    return reply.code(500).send({ error: `berth could not answer: ${err.message}` });
  });
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (req, reply) =>
    reply.code(404).send({ error: `no API route ${req.method} ${req.url.split('?')[0]}: docs/api.md lists them` }),
  );
  // Open event streams would keep app.close() waiting: they end first.
  app.addHook('preClose', async () => streams.close());

  // Every route names the role it needs; the token is checked before the body or the query is validated.
  app.addHook('preValidation', async (req, reply) => {
    // a route without a role is admin-only; an unknown route's 404 is for any token
    const needed = req.routeOptions.config.role ?? (req.is404 ? 'viewer' : 'admin');
    const principal = tokens.open ? LOCAL_ADMIN : identify(req);
    if (typeof principal === 'string') {
      reply.code(401).header('www-authenticate', 'Bearer').send({ error: principal });
      return reply;
    }
    if (!allows(principal.role, needed)) {
      reply.code(403).send({ error: `the token ${principal.name} is a ${principal.role} token: ${req.method} ${req.routeOptions.url} needs ${needed} or higher` });
      return reply;
    }
    req.principal = principal;
    if (req.method === 'POST' && (req.body === undefined || req.body === null)) req.body = {};
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

  app.get('/stacks', { config: viewer, schema: { querystring: query({}) } }, async () => ({
    stacks: (await engine.status()).map((s) => withCommitInfo(engine, s)),
  }));

  app.get<{ Params: { name: string } }>('/stacks/:name', { config: viewer, schema: { params: STACK_PARAMS } }, async (req, reply) => {
    const state = (await engine.status(req.params.name)).find((s) => s.name === req.params.name);
    return state ? withCommitInfo(engine, state) : unknownStack(reply, req.params.name);
  });

  app.get('/hosts', { config: viewer, schema: { querystring: query({}) } }, async () => {
    const known = engine.monitor.status();
    const statuses = known.length === engine.hosts.size ? known : await engine.monitor.check();
    const hosts = await Promise.all(
      statuses.map(async (s): Promise<HostStatus & { containers?: number; observedAt?: string }> => {
        const docker = engine.hosts.get(s.name)?.docker;
        if (s.state !== 'up' || !docker) return s;
        // under berth serve, from what it last saw of the host: a read asks nothing of it
        const seen = engine.following ? engine.world.host(s.name) : undefined;
        if (seen) return { ...s, containers: seen.containers.length, observedAt: engine.world.seenAt(s.name) };
        return { ...s, containers: await countManagedContainers(docker, engine.config.hostCheck.timeoutMs).catch(() => undefined) };
      }),
    );
    return { hosts };
  });

  app.get<{ Params: { name: string } }>('/hosts/:name', { config: viewer, schema: { params: HOST_PARAMS } }, async (req, reply) => {
    const { name } = req.params;
    const docker = engine.hosts.get(name)?.docker;
    if (!docker) return reply.code(404).send({ error: `there is no host named ${name} in the engine config: GET /api/v1/hosts lists them` });
    const known = engine.monitor.status().find((s) => s.name === name);
    const status = known ?? (await engine.monitor.check()).find((s) => s.name === name)!;
    // a host that does not answer is not asked: its last status says why
    if (status.state !== 'up') return { ...status, containers: [] } satisfies HostView;
    const seen = engine.following ? engine.world.host(name) : undefined;
    if (seen) return { ...status, containers: seen.containers.map(containerView).sort(byPlace), observedAt: engine.world.seenAt(name) } satisfies HostView;
    const { timeoutMs } = engine.config.hostCheck;
    try {
      const live = await observeHost(name, docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
      return { ...status, containers: live.containers.map(containerView).sort(byPlace) } satisfies HostView;
    } catch (err) {
      return { ...status, containers: [], error: `berth could not list its containers: ${explainError(err, timeoutMs)}` } satisfies HostView;
    }
  });

  app.get<{ Querystring: { stack?: string; commit?: string } & Page }>('/syncs', {
    config: viewer,
    schema: { querystring: query({ stack: NAME, commit: COMMIT, ...PAGE }) },
  }, async (req) => {
    const { rows, nextCursor } = engine.syncs.list(req.query);
    return { syncs: rows, nextCursor };
  });

  app.get<{ Params: { id: number } }>('/syncs/:id', {
    config: viewer,
    schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1, description: 'a sync id, as GET /api/v1/syncs lists them' } } } },
  }, async (req, reply) => {
    const sync = engine.syncs.get(req.params.id);
    if (!sync) return reply.code(404).send({ error: `there is no sync ${req.params.id}: GET /api/v1/syncs lists them` });
    const steps: AuditRow[] = [];
    let cursor: number | undefined;
    do {
      const page = engine.audit.query({ syncId: sync.id, limit: 1000, cursor });
      steps.push(...page.rows);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return { ...sync, steps: steps.reverse() };
  });

  app.get<{ Querystring: { stack?: string; host?: string; commit?: string; kind?: string; since?: string; until?: string } & Page }>('/audit', {
    config: viewer,
    schema: { querystring: query({ stack: NAME, host: NAME, commit: COMMIT, kind: NAME, since: TIME, until: TIME, ...PAGE }) },
  }, async (req, reply) => {
    const { since, until, ...rest } = req.query;
    const filter: AuditFilter = { ...rest };
    for (const [key, value] of [['since', since], ['until', until]] as const) {
      if (value === undefined) continue;
      try {
        filter[key] = parseSince(value);
      } catch (err) {
        return reply.code(400).send({ error: `query parameter ${key}: ${(err as Error).message}` });
      }
    }
    const { rows, nextCursor } = engine.audit.query(filter);
    return { rows, nextCursor };
  });

  app.get<{ Querystring: { provider?: string; repo?: string; outcome?: DeliveryOutcome } & Page }>('/deliveries', {
    config: viewer,
    schema: { querystring: query({ provider: NAME, repo: NAME, outcome: { enum: ['accepted', 'rejected', 'ignored'] }, ...PAGE }) },
  }, async (req) => {
    const { rows, nextCursor } = deliveries.query(req.query);
    return { deliveries: rows, nextCursor };
  });

  app.get('/events', {
    config: { ...viewer, queryToken: true },
    schema: { querystring: query({ token: { type: 'string' } }) },
  }, (_req, reply) => {
    streams.serve(reply);
  });

  // Actions: the stack must be one a repo defines; each is audited (api.action) before it is done.
  const action = (req: FastifyRequest, repo: string | undefined, stack: string, message: string) =>
    engine.audit.append({ kind: 'api.action', repo, stack, trigger: 'manual', actor: req.principal!.name, outcome: 'info', message: `${message}, asked by ${req.principal!.name} through the API` });
  const failed = (req: FastifyRequest, stack: string, what: string, err: unknown) => {
    log.error({ stack, actor: req.principal!.name, err: (err as Error).message }, `${what} failed`);
    engine.audit.append({ kind: 'api.action', stack, trigger: 'manual', actor: req.principal!.name, outcome: 'error', message: `${what} failed: ${(err as Error).message}` });
  };

  app.post<{ Params: { name: string }; Body: { wait?: boolean } }>('/stacks/:name/sync', {
    config: operator,
    bodyLimit: 64 * 1024,
    schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: { wait: WAIT } } },
  }, async (req, reply) => {
    const { name } = req.params;
    const repo = await engine.stackRepo(name);
    if (!repo) return unknownStack(reply, name);
    action(req, repo, name, `sync of ${name}`);
    const actor = req.principal!.name;
    // waiting, the sync ends once the replicas it changed run and are healthy: converged
    const running = engine.syncRepo(repo, { trigger: 'manual', actor, stack: name, waitHealthy: req.body.wait }).then((pass) => outcomeOf(pass, name));
    if (req.body.wait) return { outcome: await running };
    running.catch((err: unknown) => failed(req, name, `the sync of ${name}`, err));
    return reply.code(202).send({ accepted: true, stack: name });
  });

  app.post<{ Params: { name: string }; Body: { commit?: string; wait?: boolean } }>('/stacks/:name/rollback', {
    config: operator,
    bodyLimit: 64 * 1024,
    schema: {
      params: STACK_PARAMS,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { commit: { ...COMMIT, description: `the commit to roll back to, ${COMMIT.description} (default: the one before the commit applied)` }, wait: WAIT },
      },
    },
  }, async (req, reply) => {
    const { name } = req.params;
    const { commit, wait } = req.body;
    const repo = await engine.stackRepo(name);
    if (!repo) return unknownStack(reply, name);
    action(req, repo, name, `rollback of ${name} to ${commit ?? 'the commit before the one applied'}`);
    const running = engine.rollback(name, { to: commit, actor: req.principal!.name }).then((o): ActionOutcome => ({
      ...outcomeView(o),
      commit: { sha: o.commit.sha, author: o.commit.author, message: o.commit.message },
    }));
    if (!wait) {
      running.catch((err: unknown) => failed(req, name, `the rollback of ${name}`, err));
      return reply.code(202).send({ accepted: true, stack: name });
    }
    try {
      return { outcome: await running };
    } catch (err) {
      if (!(err instanceof EngineError || err instanceof SourceError)) throw err;
      return reply.code(409).send({ error: `cannot roll back ${name}: ${err.message}` });
    }
  });

  app.post<{ Params: { name: string } }>('/stacks/:name/pause', {
    config: operator,
    bodyLimit: 64 * 1024,
    schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: {} } },
  }, async (req, reply) => {
    const { name } = req.params;
    const repo = await engine.stackRepo(name);
    if (!repo) return unknownStack(reply, name);
    action(req, repo, name, `pause of ${name}`);
    await engine.pause(name, req.principal!.name);
    return { stack: name, paused: true };
  });

  app.post<{ Params: { name: string } }>('/stacks/:name/resume', {
    config: operator,
    bodyLimit: 64 * 1024,
    schema: { params: STACK_PARAMS, body: { type: 'object', additionalProperties: false, properties: {} } },
  }, async (req, reply) => {
    const { name } = req.params;
    const hold = engine.holds.get(name);
    if (!hold) {
      if (!(await engine.stackRepo(name))) return unknownStack(reply, name);
      return reply.code(409).send({ error: `${name} is not paused or held: there is nothing to resume` });
    }
    action(req, hold.repo, name, `resume of ${name} (held since ${hold.since} by ${hold.actor}: ${hold.reason})`);
    if (!(await engine.resume(name, req.principal!.name))) return reply.code(409).send({ error: `${name} is not paused or held: there is nothing to resume` });
    return { stack: name, paused: false };
  });

};

/** What a client is told of a container: where it belongs and how it runs, not its full spec view. */
function containerView(c: LiveContainer): HostContainer {
  return {
    id: c.id, name: c.name, stack: c.stack, service: c.service, slot: c.slot, state: c.state, image: c.image, commit: c.commit,
    ...(c.health ? { health: c.health } : {}), ...(c.job ? { job: c.job } : {}), ...(c.imageId ? { imageId: c.imageId } : {}),
  };
}

const byPlace = (a: HostContainer, b: HostContainer) => a.stack.localeCompare(b.stack) || a.service.localeCompare(b.service) || a.slot - b.slot;

function unknownStack(reply: FastifyReply, name: string) {
  return reply.code(404).send({ error: `no repo defines a stack named ${name}: GET /api/v1/stacks lists them` });
}

/** What a client that waited is told of a stack's sync. */
function outcomeView(o: StackOutcome): ActionOutcome {
  return { stack: o.stack, status: o.status, ...(o.errors ? { errors: o.errors } : {}), ...(o.syncId !== undefined ? { syncId: o.syncId } : {}), ...(o.hint ? { hint: o.hint } : {}) };
}

/** The stack's outcome in a pass; a pass that failed as a whole (repo unreadable, berth.yaml broken) fails it too. */
function outcomeOf(pass: RepoPass, stack: string): ActionOutcome {
  const found = pass.stacks.find((s) => s.stack === stack);
  if (found) return outcomeView(found);
  return { stack, status: pass.commit && pass.error ? 'invalid' : 'failed', errors: [pass.error ?? `the pass over ${pass.repo} did not reach ${stack}`] };
}

/** Commits are immutable: their author and message, once read from the audit log, by SHA (the newest 1,000). */
const commitInfos = new Map<string, { sha: string; author: string; message: string }>();

/** The state with the applied commit's author and message, from the audit rows of that commit. */
export function withCommitInfo(engine: Engine, state: StackState): StackView {
  if (!state.commit) return state;
  let info = commitInfos.get(state.commit);
  if (!info) {
    const row = engine.audit.query({ commit: state.commit, limit: 1 }).rows[0];
    if (row?.commitSha !== state.commit) return state;
    info = { sha: state.commit, author: row.commitAuthor ?? '', message: row.commitMessage ?? '' };
    commitInfos.set(state.commit, info);
    if (commitInfos.size > 1000) commitInfos.delete(commitInfos.keys().next().value!);
  }
  return { ...state, commitInfo: info };
}

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
