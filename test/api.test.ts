// The HTTP API (docs/api.md): a real berth server in this process (buildServer + Engine) against
// the shared test daemon and a real git server, with a token of each role; the CLI through it as a
// child process (BERTH_URL, BERTH_TOKEN); the event stream read with fetch; rate limits; no
// token value in the logs or the database; and what keeps web pages from driving it (docs/api.md,
// "Browsers"): the Host names it answers to, cross-site actions, JSON bodies, event streams per
// client.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { buildServer, redactUrl } from '../src/server/server.ts';
import { bearerToken, checkListen, isLoopback, allows } from '../src/server/auth.ts';
import { ERROR_STATUS, validationMessage } from '../src/server/api.ts';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import type { AuditRow } from '../src/audit/log.ts';
import { capturedLogger, runCli, serveEngine, writeConfig } from './harness/berth.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';

const TOKENS = {
  viewer: 'viewer-tok-3f9a1c07e2b84d56a9c1',
  operator: 'operator-tok-8b2e4d6f0a1c3e5b7d9f',
  admin: 'admin-tok-1a2b3c4d5e6f7a8b9c0d1e2f',
} as const;
type RoleName = keyof typeof TOKENS;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked by the assertions
type Json = Record<string, any>;

interface SseEvent {
  event?: string;
  data?: unknown;
  comment?: string;
}

/**
 * A request as fetch will not send it (fetch sets Host itself): node:http, with the headers as
 * given; the answer's status and JSON.
 */
function rawRequest(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: (text ? JSON.parse(text) : undefined) as Json }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads an event stream with fetch: the events so far, and a way to leave. */
async function openEvents(url: string, headers: Record<string, string> = {}) {
  const ctrl = new AbortController();
  const res = await fetch(url, { headers, signal: ctrl.signal });
  const events: SseEvent[] = [];
  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const e: SseEvent = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) e.comment = line.slice(1).trim();
            else if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('data: ')) e.data = JSON.parse(line.slice(6));
          }
          events.push(e);
        }
      }
    } catch {
      // aborted by the test
    }
  })();
  return { res, events, ended, close: () => ctrl.abort() };
}

describe('auth, validation messages (pure)', () => {
  it.each([
    ['viewer', 'viewer', true],
    ['viewer', 'operator', false],
    ['operator', 'viewer', true],
    ['operator', 'operator', true],
    ['operator', 'admin', false],
    ['admin', 'operator', true],
  ] as const)('%s may do what needs %s: %s', (role, needed, ok) => {
    expect(allows(role, needed)).toBe(ok);
  });

  it.each([
    [undefined, undefined],
    ['Bearer abc', 'abc'],
    ['bearer  abc ', 'abc'],
    ['Basic abc', null],
    ['Bearer', null],
    ['Bearer a b', null],
  ])('reads the bearer token of %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['example.com', false],
  ])('loopback %s: %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });

  it('refuses a non-loopback listen without tokens, and allows it with one', () => {
    const config = { source: 'berth.config.yaml', listen: '0.0.0.0:8080', auth: { tokens: [] } };
    expect(() => checkListen(config)).toThrow(/listen is 0\.0\.0\.0:8080, but no API token is configured.*auth\.tokens/);
    expect(() => checkListen({ ...config, listen: '127.0.0.1:8080' })).not.toThrow();
    expect(() => checkListen({ ...config, auth: { tokens: [{ name: 'ci', role: 'operator' as const, tokenFile: '/x' }] } })).not.toThrow();
  });

  it('the Errors table of docs/api.md lists every code the API answers with, with its status', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'api.md'), 'utf8');
    const section = doc.split(/^## Errors$/m)[1]?.split(/^## /m)[0] ?? '';
    const listed = [...section.matchAll(/^\| `(\d{3})` \| `([^`]+)` \|/gm)].map((m) => [m[2]!, Number(m[1])] as const);
    expect(listed.length).toBe(new Set(listed.map(([code]) => code)).size); // each code once
    expect(Object.fromEntries(listed)).toEqual(ERROR_STATUS);
  });

  it('publicUrl, allowedHosts and limits.eventStreams in the engine config: checked, with their defaults', () => {
    const cfg = writeConfig([]);
    const load = (extra: string) => {
      writeFileSync(cfg.file, `${readFileSync(cfg.file, 'utf8')}${extra}\n`);
      return loadConfig(cfg.file);
    };
    const text = readFileSync(cfg.file, 'utf8');
    try {
      expect(loadConfig(cfg.file)).toMatchObject({ allowedHosts: [], limits: { eventStreams: 10 } });
      expect(loadConfig(cfg.file).publicUrl).toBeUndefined();
      expect(
        load('publicUrl: https://Berth.Example.com/\nallowedHosts: [Berth.LAN, "proxy.lan:3000", "[fd00::1]:8080"]\nlimits: { eventStreams: 3 }'),
      ).toMatchObject({
        publicUrl: 'https://berth.example.com',
        allowedHosts: ['berth.lan', 'proxy.lan:3000', '[fd00::1]:8080'],
        limits: { api: 300, webhooks: 60, eventStreams: 3 },
      });
      for (const [extra, message] of [
        ['publicUrl: berth.example.com', /publicUrl: 'berth\.example\.com' is not a URL/],
        ['publicUrl: ftp://berth.example.com', /must be an http:\/\/ or https:\/\/ URL/],
        ['publicUrl: https://u:p@berth.example.com', /must hold no user, password, query or fragment/],
        ['allowedHosts: ["https://berth.example.com"]', /allowedHosts\.0: must match pattern/],
        ['limits: { eventStreams: 0 }', /limits\.eventStreams: must be >= 1/],
      ] as const) {
        writeFileSync(cfg.file, text);
        expect(() => load(extra), extra).toThrow(ConfigError);
        writeFileSync(cfg.file, text);
        expect(() => load(extra), extra).toThrow(message);
      }
    } finally {
      cfg.cleanup();
    }
  });

  it('blanks the token of an event stream URL', () => {
    expect(redactUrl('/api/v1/events?token=s3cret&x=1')).toBe('/api/v1/events?token=[redacted]&x=1');
    expect(redactUrl('/api/v1/events?a=1&TOKEN=s3cret')).toBe('/api/v1/events?a=1&TOKEN=[redacted]');
    expect(redactUrl('/api/v1/stacks')).toBe('/api/v1/stacks');
  });

  it.each([
    [
      [
        {
          instancePath: '/commit',
          keyword: 'type',
          message: 'must be string',
          params: {},
          schemaPath: '',
          parentSchema: { type: 'string', description: 'a SHA' },
        },
      ],
      'body',
      'body field commit must be string: a SHA',
    ],
    [
      [{ instancePath: '/limit', keyword: 'type', message: 'must be integer', params: {}, schemaPath: '' }],
      'querystring',
      'query parameter limit must be integer',
    ],
    [
      [
        {
          instancePath: '',
          keyword: 'additionalProperties',
          message: '',
          params: { additionalProperty: 'comit' },
          schemaPath: '',
          parentSchema: { properties: { commit: {}, wait: {} } },
        },
      ],
      'body',
      "unknown body field 'comit': use commit, wait",
    ],
    [[{ instancePath: '', keyword: 'type', message: 'must be object', params: {}, schemaPath: '' }], 'body', 'the body must be object'],
  ])('400 message %#', (errors, context, message) => {
    expect(validationMessage(errors, context)).toBe(message);
  });
});

describe('the API on a running berth', () => {
  const docker = testDocker();
  const captured = capturedLogger();
  let git: GitServer;
  let repo: RemoteRepo;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let app: FastifyInstance;
  let base: string;
  let stackA: string;
  let stackB: string;
  let sha1: string;
  let sha2: string;
  let sha3: string;
  let rev = 0;

  const compose = (image: string) => `services:\n  web:\n    image: ${image}\n    environment:\n      REV: "${++rev}"\n`;
  const auth = (role: RoleName) => ({ authorization: `Bearer ${TOKENS[role]}` });
  async function call(method: string, path: string, opts: { role?: RoleName; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...(opts.role ? auth(opts.role) : {}), ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined || opts.raw !== undefined) {
      headers['content-type'] = 'application/json';
      body = opts.raw ?? JSON.stringify(opts.body);
    }
    const res = await fetch(`${base}${path}`, { method, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json };
  }
  const get = (path: string, role: RoleName = 'viewer') => call('GET', path, { role });
  const post = (path: string, body?: unknown, role: RoleName = 'operator') => call('POST', path, { role, body });
  const cli = (args: string[], token?: string) =>
    runCli(args, { env: { BERTH_URL: base, BERTH_TOKEN: token ?? '', BERTH_CONFIG: '/nonexistent/berth.config.yaml' } });

  beforeAll(async () => {
    git = await startGitServer();
    stackA = uniqueName('apia').replaceAll('-', '');
    stackB = uniqueName('apib').replaceAll('-', '');
    repo = await git.createRepo(uniqueName('apirepo'));
    sha1 = await repo.commit(
      { [`${stackA}/compose.yaml`]: compose(IMAGES.webV1), [`${stackB}/compose.yaml`]: compose(IMAGES.webV1) },
      { message: 'first', author: { name: 'Ada', email: 'ada@example.com' } },
    );
    cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      auth: { tokens: (Object.keys(TOKENS) as RoleName[]).map((role) => ({ name: `${role}-bot`, role, tokenFile: `${role}.token` })) },
    });
    for (const [role, token] of Object.entries(TOKENS)) writeFileSync(join(cfg.dir, `${role}.token`), `${token}\n`);
    engine = new Engine(loadConfig(cfg.file), captured.log);
    await engine.syncAll({ trigger: 'startup' });
    ({ app, base } = await serveEngine(engine, captured.log, { heartbeatMs: 100 }));
  });

  afterAll(async () => {
    await app?.close();
    await engine?.drain();
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stackA });
    await removeContainers(docker, { 'berth.stack': stackB });
    cfg?.cleanup();
    await git?.close();
  });

  it('401 without a token, with an unknown one, or with another scheme; the token names who asks', async () => {
    const none = await call('GET', '/api/v1/stacks');
    expect(none.status).toBe(401);
    expect(none.body.error).toMatch(/no API token.*Authorization: Bearer/);
    expect(none.body.code).toBe('unauthenticated');
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await call('GET', '/api/v1/stacks', { headers: { authorization: `Bearer ${TOKENS.admin}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatch(/unknown API token/);
    const basic = await call('GET', '/api/v1/me', { headers: { authorization: `Basic ${TOKENS.admin}` } });
    expect(basic.status).toBe(401);
    expect(basic.body.error).toMatch(/not "Bearer <token>"/);
    // a token in the query string counts for the event stream only
    expect((await call('GET', `/api/v1/me?token=${TOKENS.admin}`)).status).toBe(401);

    for (const role of ['viewer', 'operator', 'admin'] as const) {
      expect(await get('/api/v1/me', role)).toMatchObject({ status: 200, body: { name: `${role}-bot`, role } });
    }
  });

  it('403 for a viewer asking for an action; nothing is done or audited', async () => {
    const before = engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length;
    for (const action of ['sync', 'rollback', 'pause', 'resume']) {
      const res = await post(`/api/v1/stacks/${stackA}/${action}`, {}, 'viewer');
      expect(res.status, action).toBe(403);
      expect(res.body.error).toMatch(/viewer-bot is a viewer token.*needs operator/);
      expect(res.body.code).toBe('forbidden');
    }
    expect(engine.holds.get(repo.name, stackA)).toBeUndefined();
    expect(engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length).toBe(before);
  });

  it('health, readiness, metrics and the webhooks need no token', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const hook = await call('POST', '/webhooks/nosuchforge', { body: {} });
    expect(hook.status).toBe(404);
    expect(hook.body.error).toMatch(/unknown webhook provider/);
    const route = await get('/api/v1/nosuchroute');
    expect(route.status).toBe(404);
    expect(route.body.error).toMatch(/no API route GET \/api\/v1\/nosuchroute/);
    expect(route.body.code).toBe('no-such-route');
  });

  it('GET /stacks and /stacks/:name: the status, replicas and the applied commit; 404 for an unknown stack', async () => {
    // a container just created may still be starting its health check (Progressing)
    const list = await waitFor(
      async () => {
        const res = await get('/api/v1/stacks');
        return res.body.stacks?.every((s: { health: string }) => s.health === 'Healthy') && res;
      },
      { what: 'both stacks to be healthy' },
    );
    expect(list.status).toBe(200);
    const a = list.body.stacks.find((s: { name: string }) => s.name === stackA);
    expect(a).toMatchObject({
      name: stackA,
      repo: repo.name,
      sync: 'Synced',
      health: 'Healthy',
      commit: sha1,
      commitInfo: { sha: sha1, author: 'Ada', message: 'first' },
    });
    expect(a.replicas).toEqual([
      expect.objectContaining({ service: 'web', slot: 1, host: 'test', state: 'running', commit: sha1, container: expect.any(String) }),
    ]);
    expect(list.body.stacks.map((s: { name: string }) => s.name)).toContain(stackB);

    const one = await get(`/api/v1/stacks/${stackA}`);
    expect(one).toMatchObject({ status: 200, body: { name: stackA, sync: 'Synced', commitInfo: { sha: sha1 } } });
    const unknown = await get('/api/v1/stacks/nosuchstack');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: expect.stringMatching(/no repo defines a stack named nosuchstack/), code: 'unknown-stack' });
    const before = engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length;
    for (const action of ['sync', 'rollback', 'pause', 'resume']) {
      expect(await post(`/api/v1/stacks/nosuchstack/${action}`, {}), action).toMatchObject({ status: 404, body: { code: 'unknown-stack' } });
    }
    expect(engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length).toBe(before); // refused before it was asked
  });

  it('GET /hosts: each host with its state and its managed containers', async () => {
    const res = await get('/api/v1/hosts');
    expect(res.status).toBe(200);
    expect(res.body.hosts).toEqual([expect.objectContaining({ name: 'test', state: 'up', version: expect.any(String), containers: expect.any(Number) })]);
    expect(res.body.hosts[0].containers).toBeGreaterThanOrEqual(2);
  });

  it('400 naming the field for a bad body or query', async () => {
    const cases: Array<[Promise<{ status: number; body: Json }>, RegExp]> = [
      [post(`/api/v1/stacks/${stackA}/rollback`, { commit: 42 }), /body field commit must be string: the commit to roll back to/],
      [
        post(`/api/v1/stacks/${stackA}/rollback`, { commit: 'zzzz' }),
        /body field commit must match pattern.*a full commit SHA or a prefix of at least 4 hex characters/,
      ],
      [post(`/api/v1/stacks/${stackA}/sync`, { wait: 'yes' }), /body field wait must be boolean/],
      [post(`/api/v1/stacks/${stackA}/sync`, { wiat: true }), /unknown body field 'wiat': use wait/],
      [post(`/api/v1/stacks/${stackA}/sync`, [1]), /the body must be object/],
      [call('POST', `/api/v1/stacks/${stackA}/sync`, { role: 'operator', raw: '{"wait": tru' }), /JSON/],
      [get('/api/v1/audit?limit=abc'), /query parameter limit must be integer: a whole number from 1 to 1000/],
      [get('/api/v1/audit?limit=0'), /query parameter limit must be >= 1/],
      [get('/api/v1/audit?since=yesterday'), /query parameter since: invalid time "yesterday"/],
      [get('/api/v1/audit?stak=x'), /unknown query parameter 'stak': use stack, host, commit/],
      [get('/api/v1/syncs?commit=xyz'), /query parameter commit must match pattern/],
      [get('/api/v1/syncs/abc'), /path parameter id must be integer/],
      [get('/api/v1/deliveries?outcome=maybe'), /query parameter outcome must be equal to one of the allowed values/],
    ];
    for (const [res, message] of cases) {
      const { status, body } = await res;
      expect(status, String(message)).toBe(400);
      expect(body.error).toMatch(message);
      expect(body.code, String(message)).toBe('invalid-request');
    }
  });

  it('POST sync: 202 at once, or with wait the outcome; each audited as api.action by the token', async () => {
    const waited = await post(`/api/v1/stacks/${stackA}/sync`, { wait: true });
    expect(waited.status).toBe(200);
    expect(waited.body.outcome).toMatchObject({ stack: stackA, status: expect.stringMatching(/^(synced|unchanged)$/), syncId: expect.any(Number) });
    const sync = engine.syncs.get(waited.body.outcome.syncId)!;
    expect(sync).toMatchObject({ stack: stackA, trigger: 'manual', actor: 'operator-bot', outcome: 'succeeded' });

    const accepted = await call('POST', `/api/v1/stacks/${stackB}/sync`, { role: 'admin' }); // no body at all
    expect(accepted).toMatchObject({ status: 202, body: { accepted: true, stack: stackB } });
    await engine.drain();
    expect(engine.syncs.latest(repo.name, stackB)).toMatchObject({ trigger: 'manual', actor: 'admin-bot', outcome: 'succeeded' });

    const asked = engine.audit.query({ kind: 'api.action', limit: 10 }).rows;
    expect(asked.find((r) => r.stack === stackA)).toMatchObject({
      actor: 'operator-bot',
      repo: repo.name,
      trigger: 'manual',
      message: expect.stringMatching(new RegExp(`^sync of ${stackA}, asked by operator-bot through the API`)),
    });
    expect(asked.find((r) => r.stack === stackB)).toMatchObject({ actor: 'admin-bot', message: expect.stringMatching(/^sync of/) });
  });

  it('a sync asked for one stack while a pass of another stack waits gets a pass of its own', async () => {
    const running = engine.syncRepo(repo.name, { trigger: 'poll' });
    const waitingA = engine.syncRepo(repo.name, { trigger: 'manual', stack: stackA, actor: 'x' });
    const forB = engine.syncRepo(repo.name, { trigger: 'manual', stack: stackB, actor: 'x' });
    expect(forB).not.toBe(waitingA);
    // a poll joins neither (they do not cover every stack); a second ask for B joins B's
    expect(engine.passQueued(repo.name)).toBe(false);
    expect(engine.syncRepo(repo.name, { trigger: 'manual', stack: stackB, actor: 'y' })).toBe(forB);
    const [, a, b] = await Promise.all([running, waitingA, forB]);
    expect(a.stacks.map((s) => s.stack)).toEqual([stackA]);
    expect(b.stacks.map((s) => s.stack)).toEqual([stackB]);
  });

  it('pause and resume: 200 with the hold, 409 when there is nothing to resume', async () => {
    expect(await post(`/api/v1/stacks/${stackB}/pause`)).toMatchObject({ status: 200, body: { stack: stackB, paused: true } });
    expect(engine.holds.get(repo.name, stackB)).toMatchObject({ reason: 'pause', actor: 'operator-bot' });
    expect((await get(`/api/v1/stacks/${stackB}`)).body.held).toMatchObject({ reason: 'pause', actor: 'operator-bot' });
    expect(await post(`/api/v1/stacks/${stackB}/resume`, {})).toMatchObject({ status: 200, body: { stack: stackB, paused: false } });
    expect(engine.holds.get(repo.name, stackB)).toBeUndefined();
    const again = await post(`/api/v1/stacks/${stackB}/resume`);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/is not paused or held: there is nothing to resume/);
    expect(again.body.code).toBe('not-held');
    const kinds = engine.audit.query({ stack: stackB, limit: 5 }).rows.map((r) => [r.kind, r.actor]);
    expect(kinds).toContainEqual(['stack.paused', 'operator-bot']);
    expect(kinds).toContainEqual(['stack.resumed', 'operator-bot']);
  });

  it("an action another site's page asks for is refused (403 cross-site), whatever its token; the dashboard's own and the CLI's are not", async () => {
    const actions = () => engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length;
    const before = actions();
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null' }, // a sandboxed frame, a file:// page
      { origin: 'http://localhost:3000' }, // a page on another port of this machine
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: base },
    ];
    for (const headers of foreign) {
      const res = await call('POST', `/api/v1/stacks/${stackB}/pause`, { role: 'admin', body: {}, headers });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.body.code).toBe('cross-site');
      expect(res.body.error).toMatch(/refused: berth takes actions from its own pages and from clients that are no browser \(the CLI, curl\) only.*publicUrl/);
    }
    // refused before anything was asked or done
    expect(engine.holds.get(repo.name, stackB)).toBeUndefined();
    expect(actions()).toBe(before);
    // the dashboard's page sends its own origin; the CLI and curl send none
    const own = await call('POST', `/api/v1/stacks/${stackB}/pause`, {
      role: 'operator',
      body: {},
      headers: { origin: base, 'sec-fetch-site': 'same-origin' },
    });
    expect(own).toMatchObject({ status: 200, body: { paused: true } });
    expect((await post(`/api/v1/stacks/${stackB}/resume`)).status).toBe(200);
    // a read is no action: answered (without CORS headers, so another site's page cannot read it)
    const read = await fetch(`${base}/api/v1/me`, { headers: { ...auth('viewer'), origin: 'https://evil.example' } });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('415 for an API body that is not JSON (what an HTML form can send); a POST without a body needs no type', async () => {
    const before = engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length;
    for (const [type, body] of [
      ['text/plain', '{"wait": true}'],
      ['application/x-www-form-urlencoded', 'wait=true'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="wait"\r\n\r\ntrue\r\n--x--\r\n'],
    ]) {
      const res = await fetch(`${base}/api/v1/stacks/${stackB}/pause`, { method: 'POST', headers: { ...auth('operator'), 'content-type': type! }, body });
      expect(res.status, type).toBe(415);
      const answer = (await res.json()) as Json;
      expect(answer.code).toBe('unsupported-media-type');
      expect(answer.error).toMatch(/the body must be JSON: send Content-Type: application\/json \(the request's Content-Type: /);
    }
    expect(engine.holds.get(repo.name, stackB)).toBeUndefined();
    expect(engine.audit.query({ kind: 'api.action', limit: 1000 }).rows.length).toBe(before);
    // no body: no type needed (what `curl -X POST` sends)
    const bare = await fetch(`${base}/api/v1/stacks/${stackB}/pause`, { method: 'POST', headers: { ...auth('operator'), 'content-type': 'text/plain' } });
    expect(bare.status).toBe(200);
    expect((await post(`/api/v1/stacks/${stackB}/resume`, {})).status).toBe(200);
  });

  it('a Host berth does not answer to is refused (403 host-not-allowed) before the token is looked at; health and readiness are not held to it', async () => {
    const port = new URL(base).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      expect((await rawRequest(base, 'GET', '/api/v1/me', { host, ...auth('viewer') })).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, 'evil.example', `localhost:${Number(port) + 1}`]) {
      for (const path of ['/api/v1/me', '/metrics', '/', '/api/v1/nosuchroute']) {
        const res = await rawRequest(base, 'GET', path, { host, ...auth('viewer') });
        expect(res.status, `${host} ${path}`).toBe(403);
        expect(res.body.code).toBe('host-not-allowed');
        expect(res.body.error).toMatch(/berth does not answer to the host name "evil\.example.*|berth does not answer to the host name "localhost:\d+"/);
        expect(res.body.error).toMatch(/add it to allowedHosts, or set publicUrl, in the engine config/);
      }
      expect((await rawRequest(base, 'GET', '/healthz', { host })).status).toBe(200);
      expect((await rawRequest(base, 'GET', '/readyz', { host })).status).toBe(200);
      // the forges send the public name: without publicUrl or allowedHosts the webhooks are not held to a name
      const hook = await rawRequest(base, 'POST', '/webhooks/github', { host, 'content-type': 'application/json' }, '{}');
      expect(hook.status).toBe(400);
    }
    const long = await rawRequest(base, 'GET', '/api/v1/me', { host: `${'a'.repeat(200)}.example`, ...auth('viewer') });
    expect(long.body.error).toContain(`"${'a'.repeat(64)}…"`);
  });

  it('POST rollback: to the commit before the applied one with wait; 409 for a commit that does not exist', async () => {
    sha2 = await repo.commit({ [`${stackA}/compose.yaml`]: compose(IMAGES.webV2) }, { message: 'second' });
    const synced = await post(`/api/v1/stacks/${stackA}/sync`, { wait: true });
    expect(synced.body.outcome).toMatchObject({ stack: stackA, status: 'synced' });
    expect((await get(`/api/v1/stacks/${stackA}`)).body).toMatchObject({ commit: sha2, commitInfo: { message: 'second' } });

    const missing = await post(`/api/v1/stacks/${stackA}/rollback`, { commit: 'deadbeef', wait: true });
    expect(missing.status).toBe(409);
    expect(missing.body.error).toMatch(/cannot roll back .*deadbeef/);
    expect(missing.body.code).toBe('rollback-target-invalid');

    const back = await post(`/api/v1/stacks/${stackA}/rollback`, { wait: true });
    expect(back.status).toBe(200);
    expect(back.body.outcome).toMatchObject({ stack: stackA, status: 'synced', commit: { sha: sha1, message: 'first' } });
    const state = (await get(`/api/v1/stacks/${stackA}`)).body;
    expect(state).toMatchObject({ commit: sha1, held: { reason: 'rollback', commitSha: sha1, actor: 'operator-bot' } });
    expect(engine.audit.query({ kind: 'api.action', stack: stackA, limit: 1 }).rows[0]!.message).toMatch(
      /^rollback of .* to the commit before the one applied, asked by operator-bot/,
    );
    expect((await post(`/api/v1/stacks/${stackA}/resume`)).status).toBe(200);
  });

  it('GET /syncs with filters and cursor pages, and /syncs/:id with its steps oldest first', async () => {
    const all = (await get(`/api/v1/syncs?stack=${stackA}`)).body.syncs as Array<{ id: number; stack: string; commitSha: string }>;
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(all.every((s) => s.stack === stackA)).toBe(true);
    expect(all.map((s) => s.id)).toEqual([...all.map((s) => s.id)].sort((x, y) => y - x));

    const first = (await get(`/api/v1/syncs?stack=${stackA}&limit=2`)).body;
    expect(first.syncs.map((s: { id: number }) => s.id)).toEqual(all.slice(0, 2).map((s) => s.id));
    expect(first.nextCursor).toBe(all[1]!.id);
    const second = (await get(`/api/v1/syncs?stack=${stackA}&limit=2&cursor=${first.nextCursor}`)).body;
    expect(second.syncs.map((s: { id: number }) => s.id)).toEqual(all.slice(2, 4).map((s) => s.id));
    const last = (await get(`/api/v1/syncs?stack=${stackA}&limit=1000`)).body;
    expect(last.nextCursor).toBeUndefined();

    const byCommit = (await get(`/api/v1/syncs?commit=${sha2.slice(0, 7)}`)).body.syncs as Array<{ commitSha: string }>;
    expect(byCommit.length).toBeGreaterThan(0);
    expect(byCommit.every((s) => s.commitSha === sha2)).toBe(true);

    const replaced = all.find((s) => s.commitSha === sha2)!;
    const detail = await get(`/api/v1/syncs/${replaced.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ id: replaced.id, stack: stackA, commitSha: sha2, outcome: 'succeeded', diff: expect.any(String) });
    const steps = detail.body.steps as AuditRow[];
    expect(steps.every((r) => r.syncId === replaced.id)).toBe(true);
    expect(steps.map((r) => r.id)).toEqual([...steps.map((r) => r.id)].sort((x, y) => x - y));
    expect(steps[0]!.kind).toBe('sync.started');
    expect(steps.map((r) => r.kind)).toContain('container.replaced');
    expect(steps.at(-1)!.kind).toBe('sync.succeeded');

    const none = await get('/api/v1/syncs/99999999');
    expect(none.status).toBe(404);
    expect(none.body).toEqual({ error: expect.stringMatching(/there is no sync 99999999/), code: 'unknown-sync' });
  });

  it('GET /audit with filters and cursor pages', async () => {
    const byStack = (await get(`/api/v1/audit?stack=${stackA}&limit=1000`)).body.rows as AuditRow[];
    expect(byStack.length).toBeGreaterThan(5);
    expect(byStack.every((r) => r.stack === stackA)).toBe(true);

    const pages: AuditRow[] = [];
    let cursor: number | undefined;
    do {
      const page = (await get(`/api/v1/audit?stack=${stackA}&limit=3${cursor ? `&cursor=${cursor}` : ''}`)).body;
      expect(page.rows.length).toBeLessThanOrEqual(3);
      pages.push(...page.rows);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pages.map((r) => r.id)).toEqual(byStack.map((r) => r.id));

    const actions = (await get(`/api/v1/audit?kind=api.action&stack=${stackA}`)).body.rows as AuditRow[];
    expect(actions.length).toBeGreaterThanOrEqual(3);
    expect(actions.every((r) => r.kind === 'api.action' && r.stack === stackA)).toBe(true);
    const byCommit = (await get(`/api/v1/audit?commit=${sha2.slice(0, 8)}`)).body.rows as AuditRow[];
    expect(byCommit.length).toBeGreaterThan(0);
    expect(byCommit.every((r) => r.commitSha === sha2)).toBe(true);
    const byHost = (await get(`/api/v1/audit?host=test&stack=${stackA}`)).body.rows as AuditRow[];
    expect(byHost.length).toBeGreaterThan(0);
    expect(byHost.every((r) => r.host === 'test')).toBe(true);
    expect((await get(`/api/v1/audit?stack=${stackA}&since=1h`)).body.rows.length).toBe(Math.min(byStack.length, 100));
    expect((await get(`/api/v1/audit?stack=${stackA}&until=2000-01-01`)).body.rows).toEqual([]);
    const newest = byStack[0]!.time;
    expect((await get(`/api/v1/audit?stack=${stackA}&since=${encodeURIComponent(newest)}`)).body.rows.every((r: AuditRow) => r.time >= newest)).toBe(true);
  });

  it('GET /deliveries with filters and cursor pages', async () => {
    const store = new DeliveryStore(engine.db);
    const repoX = uniqueName('x');
    const ids = [
      store.record({ provider: 'github', repo: repoX, outcome: 'accepted', status: 202 }).id,
      store.record({ provider: 'gitlab', repo: repoX, outcome: 'rejected', reason: 'bad signature', status: 401 }).id,
      store.record({ provider: 'github', repo: repoX, outcome: 'ignored', reason: 'ping', status: 200 }).id,
    ];
    const all = (await get(`/api/v1/deliveries?repo=${repoX}`)).body.deliveries as Array<{ id: number; provider: string }>;
    expect(all.map((d) => d.id)).toEqual([...ids].reverse());
    const github = (await get(`/api/v1/deliveries?repo=${repoX}&provider=github`)).body.deliveries as Array<{ id: number }>;
    expect(github.map((d) => d.id)).toEqual([ids[2], ids[0]]);
    const rejected = (await get(`/api/v1/deliveries?repo=${repoX}&outcome=rejected`)).body.deliveries as Array<{ id: number; reason: string }>;
    expect(rejected).toEqual([expect.objectContaining({ id: ids[1], reason: 'bad signature' })]);
    const page = (await get(`/api/v1/deliveries?repo=${repoX}&limit=2`)).body;
    expect(page.deliveries.map((d: { id: number }) => d.id)).toEqual([ids[2], ids[1]]);
    const rest = (await get(`/api/v1/deliveries?repo=${repoX}&limit=2&cursor=${page.nextCursor}`)).body;
    expect(rest).toEqual({ deliveries: [expect.objectContaining({ id: ids[0] })] });
  });

  it('GET /events: audit, sync and stack events of a sync; a heartbeat; closed cleanly when the client leaves', async () => {
    expect((await call('GET', '/api/v1/events')).status).toBe(401);
    const listeners = () => (['audit', 'sync', 'stack'] as const).map((e) => engine.events.listenerCount(e));
    const before = listeners();
    const stream = await openEvents(`${base}/api/v1/events?token=${TOKENS.viewer}`);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => engine.events.listenerCount('stack') > before[2]!, { what: 'the stream to subscribe' });

    sha3 = await repo.commit({ [`${stackB}/compose.yaml`]: compose(IMAGES.webV2) }, { message: 'b v2' });
    expect((await post(`/api/v1/stacks/${stackB}/sync`, {})).status).toBe(202);
    const seen = (pred: (e: SseEvent) => boolean) => stream.events.find(pred);
    const asked = await waitFor(() => seen((e) => e.event === 'audit' && (e.data as AuditRow).kind === 'api.action' && (e.data as AuditRow).stack === stackB), {
      what: 'the api.action audit event',
    });
    expect(asked.data).toMatchObject({ actor: 'operator-bot', hash: expect.any(String) });
    const finished = await waitFor(
      () =>
        seen((e) => e.event === 'sync' && (e.data as { stack: string; phase: string }).stack === stackB && (e.data as { phase: string }).phase === 'finished'),
      { what: 'the sync finished event', timeoutMs: 60_000 },
    );
    const syncId = (finished.data as { id: number }).id;
    expect(finished.data).toMatchObject({ outcome: 'succeeded', repo: repo.name });
    expect(
      seen((e) => e.event === 'sync' && (e.data as { id: number; phase: string }).id === syncId && (e.data as { phase: string }).phase === 'started'),
    ).toBeDefined();
    const step = seen(
      (e) => e.event === 'sync' && (e.data as { phase: string }).phase === 'step' && (e.data as { step: AuditRow }).step.kind === 'container.replaced',
    );
    expect(step?.data).toMatchObject({ id: syncId, stack: stackB, step: { syncId, service: 'web' } });
    // the status after the pass: from the hosts as they are now (the new container, running v2); the
    // stream tells each change of the status, so those during the rollout come first
    const state = await waitFor(
      () =>
        seen((e) => e.event === 'stack' && (e.data as { name: string; commit?: string }).name === stackB && (e.data as { commit?: string }).commit === sha3),
      { what: 'the stack event' },
    );
    const b = state.data as {
      sync: string;
      health: string;
      commit: string;
      commitInfo: { message: string };
      replicas: Array<{ state: string; commit: string }>;
    };
    expect(b).toMatchObject({ sync: 'Synced', health: 'Healthy', commit: sha3, commitInfo: { message: 'b v2' } });
    expect(b.replicas).toEqual([expect.objectContaining({ state: 'running', commit: b.commit })]);
    await waitFor(() => stream.events.some((e) => e.comment === 'keep-alive'), { what: 'a heartbeat comment' });

    stream.close();
    await stream.ended;
    await waitFor(() => listeners().join() === before.join(), { what: 'the stream to unsubscribe' });
  });

  it('the CLI with BERTH_URL and BERTH_TOKEN: status, sync --wait, pause, resume, audit, hosts; refused tokens exit 2', async () => {
    const status = await cli(['status'], TOKENS.viewer);
    expect(status.code, status.stderr).toBe(0);
    // A was rolled back to the first commit and resumed, with no pass since: it runs the first commit, the head differs
    expect(status.stdout).toMatch(new RegExp(`^${stackA} +\\S+ +OutOfSync +Healthy +${sha1.slice(0, 7)} +1/1 running +ok `, 'm'));
    expect(status.stdout).toMatch(new RegExp(`^${stackB} +\\S+ +Synced +Healthy +${sha3.slice(0, 7)} +1/1 running +ok `, 'm'));
    const json = await cli(['status', '--stack', stackB, '--json'], TOKENS.viewer);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ name: stackB, commitInfo: expect.objectContaining({ message: 'b v2' }) })]);

    const sync = await cli(['sync', '--stack', stackA, '--wait'], TOKENS.operator);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(new RegExp(`${stackA}: synced \\(running and healthy, sync \\d+\\)`));
    expect(engine.syncs.lastSucceeded(repo.name, stackA)).toMatchObject({ commitSha: sha3, actor: 'operator-bot' });
    const background = await cli(['sync', '--stack', stackA], TOKENS.operator);
    expect(background.code, background.stderr).toBe(0);
    expect(background.stdout).toMatch(/sync started in the background/);

    expect(await cli(['pause', stackA], TOKENS.operator)).toMatchObject({ code: 0, stdout: `${stackA}: paused\n` });
    expect(engine.holds.get(repo.name, stackA)).toMatchObject({ actor: 'operator-bot' });
    expect(await cli(['resume', stackA], TOKENS.operator)).toMatchObject({ code: 0, stdout: `${stackA}: resumed\n` });
    const notHeld = await cli(['resume', stackA], TOKENS.operator);
    expect(notHeld.code).toBe(1);
    expect(notHeld.stderr).toMatch(/is not paused or held/);

    const audit = await cli(['audit', '--stack', stackA, '--json', '--limit', '5'], TOKENS.viewer);
    expect(audit.code, audit.stderr).toBe(0);
    const rows = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRow);
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.stack === stackA)).toBe(true);
    expect(rows.find((r) => r.kind === 'api.action')).toMatchObject({ actor: 'operator-bot', message: expect.stringMatching(/^resume of/) });

    const hosts = await cli(['hosts'], TOKENS.viewer);
    expect(hosts.code, hosts.stderr).toBe(0);
    expect(hosts.stdout).toMatch(/^test\s+unix:\/\/\S+\s+up\s/m);

    const refused = await cli(['sync', '--stack', stackA], TOKENS.viewer);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/viewer-bot is a viewer token.*needs operator/);
    const noToken = await cli(['status']);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no API token.*BERTH_TOKEN is not set/);
    const unknown = await cli(['status', '--stack', 'nosuchstack'], TOKENS.viewer);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no repo defines a stack named nosuchstack/);
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const down = await runCli(['status'], { env: { BERTH_URL: `http://127.0.0.1:${port}`, BERTH_TOKEN: TOKENS.viewer } });
    expect(down.code).toBe(2);
    expect(down.stderr).toContain(`cannot reach berth at http://127.0.0.1:${port}: ECONNREFUSED`);
    // no token in what the CLI printed either
    for (const r of [status, sync, refused, noToken, down]) for (const t of Object.values(TOKENS)) expect(r.stdout + r.stderr).not.toContain(t);
  });

  it('no token value in the logs or the database', async () => {
    await engine.drain();
    const logs = captured.text();
    expect(logs).toMatch(/unknown token refused/); // the logs were captured
    const files = ['berth.db', 'berth.db-wal'].map((f) => join(cfg.dataDir, f)).filter((f) => existsSync(f));
    const db = files.map((f) => readFileSync(f).toString('latin1')).join('');
    expect(db).toContain('operator-bot');
    for (const token of Object.values(TOKENS)) {
      expect(logs).not.toContain(token);
      expect(db).not.toContain(token);
    }
  });
});

describe('servers of other configs', () => {
  it('no token: only on loopback; every request is the admin "local", said in the log; the rate limits answer 429 with Retry-After', async () => {
    const cfg = writeConfig([], { limits: { api: 3, webhooks: 2 } });
    const captured = capturedLogger();
    const engine = new Engine(loadConfig(cfg.file), captured.log);
    const { app, base } = await serveEngine(engine, captured.log);
    try {
      expect(captured.text()).toMatch(/no API token is configured \(auth\.tokens\): every API request is treated as the admin \\"local\\"/);
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await fetch(`${base}/api/v1/me`));
      expect(answers.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
      expect(await answers[0]!.json()).toEqual({ name: 'local', role: 'admin' });
      const limited = answers[3]!;
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await limited.json()) as { error: string }).error).toMatch(
        /too many requests from this address: at most 3 a minute \(limits\.api in the engine config\)/,
      );
      // the webhooks have their own budget
      const hooks = [];
      for (let i = 0; i < 3; i++) hooks.push(await fetch(`${base}/webhooks/generic`, { method: 'POST', body: '{}' }));
      expect(hooks.map((r) => r.status)).toEqual([400, 400, 429]);
      expect(((await hooks[2]!.json()) as { error: string }).error).toMatch(/too many deliveries .*limits\.webhooks/);
      expect(hooks[2]!.headers.get('retry-after')).toBeTruthy();
      // health is not limited
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });

  it('no token, on loopback: only its loopback names are answered (DNS rebinding); cross-site actions and bodies that are not JSON are refused', async () => {
    const cfg = writeConfig([]);
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const { app, base } = await serveEngine(engine, pino({ level: 'silent' }));
    try {
      const port = new URL(base).port;
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
        expect(await rawRequest(base, 'GET', '/api/v1/me', { host }), host).toMatchObject({ status: 200, body: { name: 'local', role: 'admin' } });
      }
      // a page at http://rebound.example:PORT whose name now resolves to 127.0.0.1
      for (const path of ['/api/v1/me', '/api/v1/events', '/']) {
        expect(await rawRequest(base, 'GET', path, { host: `rebound.example:${port}` }), path).toMatchObject({
          status: 403,
          body: { code: 'host-not-allowed' },
        });
      }
      const action = await rawRequest(base, 'POST', '/api/v1/stacks/nosuchstack/pause', {
        host: `rebound.example:${port}`,
        origin: `http://rebound.example:${port}`,
      });
      expect(action).toMatchObject({ status: 403, body: { code: 'host-not-allowed' } });
      // another site's page, with 127.0.0.1 as the Host: refused before the operation (which would say unknown-stack)
      const forged = await fetch(`${base}/api/v1/stacks/nosuchstack/pause`, { method: 'POST', headers: { origin: 'https://evil.example' } });
      expect(forged.status).toBe(403);
      expect(((await forged.json()) as Json).code).toBe('cross-site');
      const form = await fetch(`${base}/api/v1/stacks/nosuchstack/pause`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
      expect(form.status).toBe(415);
      const own = await fetch(`${base}/api/v1/stacks/nosuchstack/pause`, { method: 'POST', headers: { origin: base, 'sec-fetch-site': 'same-origin' } });
      expect(own.status).toBe(404);
      expect(((await own.json()) as Json).code).toBe('unknown-stack');
      expect(engine.audit.query({ limit: 10 }).rows).toEqual([]);
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });

  it('publicUrl and allowedHosts: their names are answered, the webhooks are held to them, and the public origin may act', async () => {
    const cfg = writeConfig([], { publicUrl: 'https://berth.example.com', allowedHosts: ['berth.lan', 'proxy.lan:3000'] });
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const { app, base } = await serveEngine(engine, pino({ level: 'silent' }));
    try {
      const port = new URL(base).port;
      for (const host of ['berth.example.com', 'berth.example.com:443', 'berth.lan', 'berth.lan:9999', 'proxy.lan:3000', `localhost:${port}`]) {
        expect((await rawRequest(base, 'GET', '/api/v1/me', { host })).status, host).toBe(200);
      }
      for (const host of ['proxy.lan:3001', 'berth.example.com:8080', 'evil.example']) {
        expect((await rawRequest(base, 'GET', '/api/v1/me', { host })).status, host).toBe(403);
      }
      // the webhooks too, now that the names are the operator's
      const json = { 'content-type': 'application/json' };
      expect(await rawRequest(base, 'POST', '/webhooks/github', { ...json, host: 'evil.example' }, '{}')).toMatchObject({
        status: 403,
        body: { code: 'host-not-allowed' },
      });
      expect((await rawRequest(base, 'POST', '/webhooks/github', { ...json, host: 'berth.example.com' }, '{}')).status).toBe(400);
      // behind the TLS proxy the dashboard's page is https://berth.example.com, whatever Host the proxy passes on;
      // berth itself speaks http://, so https:// of another of its names is not its own origin
      const asked = (host: string, origin: string) =>
        rawRequest(base, 'POST', '/api/v1/stacks/nosuchstack/pause', { host, origin, 'sec-fetch-site': 'same-origin' });
      expect(await asked('berth.example.com', 'https://berth.example.com')).toMatchObject({ status: 404, body: { code: 'unknown-stack' } });
      expect(await asked(`127.0.0.1:${port}`, 'https://berth.example.com')).toMatchObject({ status: 404, body: { code: 'unknown-stack' } });
      expect(await asked('berth.lan', 'http://berth.lan')).toMatchObject({ status: 404, body: { code: 'unknown-stack' } });
      expect(await asked('berth.lan', 'https://berth.lan')).toMatchObject({ status: 403, body: { code: 'cross-site' } });
      expect(await asked('berth.example.com', 'https://evil.example')).toMatchObject({ status: 403, body: { code: 'cross-site' } });
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });

  it('listening on 0.0.0.0 with tokens and no names: any Host is taken (the token guards it)', async () => {
    const cfg = writeConfig([], { listen: '0.0.0.0:8080', auth: { tokens: [{ name: 'ci', role: 'viewer', tokenFile: 'ci.token' }] } });
    writeFileSync(join(cfg.dir, 'ci.token'), TOKENS.viewer);
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const { app, base } = await serveEngine(engine, pino({ level: 'silent' }));
    try {
      expect((await rawRequest(base, 'GET', '/api/v1/me', { host: 'anything.example:1' })).status).toBe(401);
      expect((await rawRequest(base, 'GET', '/api/v1/me', { host: 'anything.example:1', ...{ authorization: `Bearer ${TOKENS.viewer}` } })).status).toBe(200);
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });

  it('at most limits.eventStreams open event streams per client address: the next is 429 too-many-streams; one that ends frees its place', async () => {
    const cfg = writeConfig([], { limits: { eventStreams: 2 } });
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const { app, base } = await serveEngine(engine, pino({ level: 'silent' }));
    const open: Array<Awaited<ReturnType<typeof openEvents>>> = [];
    try {
      for (let i = 0; i < 2; i++) open.push(await openEvents(`${base}/api/v1/events`));
      expect(open.map((s) => s.res.status)).toEqual([200, 200]);
      const third = await fetch(`${base}/api/v1/events`);
      expect(third.status).toBe(429);
      const refused = (await third.json()) as Json;
      expect(refused.code).toBe('too-many-streams');
      expect(refused.error).toMatch(/too many event streams open from this address: at most 2 at once \(limits\.eventStreams in the engine config\)/);
      open.shift()!.close();
      const again = await waitFor(
        async () => {
          const s = await openEvents(`${base}/api/v1/events`);
          if (s.res.status === 200) return s;
          s.close();
          return undefined;
        },
        { what: 'the closed stream to free its place' },
      );
      open.push(again);
      expect((await fetch(`${base}/api/v1/events`)).status).toBe(429);
    } finally {
      for (const s of open) s.close();
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });

  it('an open event stream does not hold up app.close(): it ends', async () => {
    const cfg = writeConfig([]);
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const { app, base } = await serveEngine(engine, pino({ level: 'silent' }));
    try {
      const stream = await openEvents(`${base}/api/v1/events`);
      expect(stream.res.status).toBe(200);
      await waitFor(() => stream.events.some((e) => e.comment === 'berth events'), { what: 'the stream to open' });
      expect(engine.events.listenerCount('stack')).toBe(1);
      await app.close();
      await stream.ended; // the server ended it
      expect(engine.events.listenerCount('stack')).toBe(0);
    } finally {
      engine.close();
      cfg.cleanup();
    }
  });

  it('a token file that is missing or empty stops the server, naming the file', async () => {
    const cfg = writeConfig([], { auth: { tokens: [{ name: 'ci', role: 'operator', tokenFile: 'ci.token' }] } });
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    try {
      const file = join(cfg.dir, 'ci.token');
      await expect(buildServer({ ready: () => true, engine }, pino({ level: 'silent' })).ready()).rejects.toThrow(
        `cannot read the API token ci from ${file}: ENOENT`,
      );
      writeFileSync(file, '\n');
      await expect(buildServer({ ready: () => true, engine }, pino({ level: 'silent' })).ready()).rejects.toThrow(`the API token ci in ${file} is empty`);
    } finally {
      engine.close();
      cfg.cleanup();
    }
  });

  it('`berth serve` with no token refuses to listen on 0.0.0.0, saying why', async () => {
    const cfg = writeConfig([], { listen: '0.0.0.0:18080' });
    try {
      const serve = await runCli(['--config', cfg.file, 'serve']);
      expect(serve.code).toBe(2);
      expect(serve.stderr).toMatch(/listen is 0\.0\.0\.0:18080, but no API token is configured.*Add auth\.tokens.*or listen on 127\.0\.0\.1/);
    } finally {
      cfg.cleanup();
    }
  });

  it('a handler logging the request or its headers cannot print the token', async () => {
    const captured = capturedLogger();
    const cfg = writeConfig([]);
    const engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
    const app = buildServer({ ready: () => true, engine }, captured.log);
    app.get('/echo', async (req) => {
      req.log.info({ req, headers: req.headers }, 'a request');
      return {};
    });
    try {
      await app.inject({ url: `/echo?token=${TOKENS.admin}`, headers: { authorization: `Bearer ${TOKENS.operator}` } });
      const logs = captured.text();
      expect(logs).toMatch(/a request/);
      expect(logs).toMatch(/\/echo\?token=\[redacted\]/);
      expect(logs).not.toContain(TOKENS.admin);
      expect(logs).not.toContain(TOKENS.operator);
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });
});
