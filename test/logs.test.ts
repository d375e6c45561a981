// A stack's logs across two real hosts (GET /api/v1/stacks/:name/logs, `berth logs`, the
// dashboard's Logs tab): the replicas' stdout and stderr merged with their service.slot@host
// prefixes, the filters (service, host, tail, since, timestamps), a TTY service, a follow that gets
// the lines written after it started and gives its place back when the client goes, the byte
// bound, secrets masked, jobs' and hooks' last runs, the error codes; the CLI locally and through
// BERTH_URL printing the same.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import type { LogLine, LogNotice, LogReplica } from '../src/engine/log-lines.ts';
import type { Engine } from '../src/engine/engine.ts';
import { auditRows, runCli, serveEngine, testEngine, testHosts, writeConfig } from './harness/berth.ts';
import { execIn, removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

const VIEWER = 'viewer-token-logs-5c1d9e7a3b';
/** distinctive values, so that any copy of them is found */
const SECRET_FILE = 'file-secret-4e7b-9a1c-db';
const SECRET_ENV = 'tok-env-8d2f-6b3a';
const SECRET_URL_PASSWORD = 'urlpw-2c9e-7f1d';
const BYTES = 64 * 1024;

const compose = `services:
  web:
    image: ${IMAGES.base}
    environment:
      API_TOKEN: "${SECRET_ENV}"
      DB_URL: "postgres://app:${SECRET_URL_PASSWORD}@db:5432/app"
    secrets: [db_password]
    deploy:
      replicas: 2
      placement: { max_replicas_per_node: 1 }
    command:
      - sh
      - -c
      - |
        trap 'exit 0' TERM
        # a moment between the lines: Docker stamps each stream's lines as it reads them
        echo "out-$$(hostname) one"; sleep 0.1
        echo "err-$$(hostname) two" >&2; sleep 0.1
        echo "out-$$(hostname) three"; sleep 0.1
        echo "secret file: $$(cat /run/secrets/db_password)"; sleep 0.1
        echo "token $$API_TOKEN url $$DB_URL"
        while true; do
          if [ -f /go ]; then rm /go; echo "after-follow-$$(hostname)"; fi
          sleep 0.2
        done
  console:
    image: ${IMAGES.base}
    tty: true
    command:
      - sh
      - -c
      - |
        trap 'exit 0' TERM
        echo tty-line-1
        echo tty-line-2
        head -c 40000 /dev/zero | tr '\\0' L; echo
        while true; do sleep 1; done
  big:
    image: ${IMAGES.base}
    command:
      - sh
      - -c
      - |
        trap 'exit 0' TERM
        pad=$$(head -c 990 /dev/zero | tr '\\0' x)
        i=0
        while [ $$i -lt 300 ]; do printf 'big-%04d-%s\\n' $$i $$pad; i=$$((i+1)); done
        while true; do sleep 1; done
  chatty:
    image: ${IMAGES.base}
    command:
      - sh
      - -c
      - |
        trap 'exit 0' TERM
        awk 'BEGIN { for (i = 0; i < 6000; i++) printf "c-%04d\\n", i }'
        while true; do sleep 1; done
  quiet:
    image: ${IMAGES.base}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo unseen; while true; do sleep 1; done"]
    logging: { driver: none }
  migrate:
    image: ${IMAGES.base}
    command: ["sh", "-c", "echo job-ran-$$(hostname); head -c 20000 /dev/zero | tr '\\\\0' J; echo"]
    deploy: { mode: replicated-job }
  notify:
    image: ${IMAGES.base}
    command: ["sh", "-c", "echo hook-ran-$$(hostname)"]
    x-berth: { hook: post-sync }
  cron:
    image: ${IMAGES.base}
    command: ["sh", "-c", "echo run-at-$$(cut -d' ' -f1 /proc/uptime)"]
    x-berth: { schedule: "*/3 * * * * *" }
secrets:
  db_password:
    file: ./db_password.txt
`;

interface Answer {
  status: number;
  replicas: LogReplica[];
  lines: LogLine[];
  notices: LogNotice[];
  text: string;
}

let git: GitServer;
let repo: RemoteRepo;
let cfg: ReturnType<typeof writeConfig>;
let engine: Engine;
let app: FastifyInstance;
let base: string;
let stopSchedules: () => void;
const stack = uniqueName('logs').replaceAll('-', '');
const dockers = inject('dockers')
  .slice(0, 2)
  .map((d) => new Dockerode({ socketPath: d.socketPath }));
const hostDocker = (host: string) => dockers[Number(host.slice(1)) - 1]!;

/** GET the stack's logs with the viewer token (JSON lines unless `accept` says otherwise). */
const request = (
  params: Record<string, string> = {},
  { accept = 'application/x-ndjson', signal, name = stack } = {} as { accept?: string; signal?: AbortSignal; name?: string },
) => fetch(`${base}/api/v1/stacks/${name}/logs?${new URLSearchParams(params)}`, { headers: { authorization: `Bearer ${VIEWER}`, accept }, signal });

/** A whole (not followed) answer, read. */
async function logs(params: Record<string, string> = {}, opts: { accept?: string; name?: string } = {}): Promise<Answer> {
  const res = await request(params, opts);
  const text = await res.text();
  if (!res.ok || opts.accept) return { status: res.status, replicas: [], lines: [], notices: [], text };
  const [head, ...rest] = text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    status: res.status,
    replicas: (head as { replicas: LogReplica[] }).replicas,
    lines: rest.filter((r) => !('notice' in r)) as unknown as LogLine[],
    notices: rest.filter((r) => 'notice' in r) as unknown as LogNotice[],
    text,
  };
}

const prefix = (r: { service: string; slot: number; host: string }) => `${r.service}.${r.slot}@${r.host}`;
const textsOf = (a: Answer, r: LogReplica) => a.lines.filter((l) => prefix(l) === prefix(r)).map((l) => l.text);
const webReplicas = (a: Answer) => a.replicas.filter((r) => r.service === 'web');

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.createRepo(uniqueName('logsrepo'));
  cfg = writeConfig([{ name: repo.name, url: repo.url, settings: { policy: { logDrivers: ['none'] } } }], {
    hosts: testHosts().slice(0, 2),
    auth: { tokens: [{ name: 'eve', role: 'viewer', tokenFile: 'eve.token' }] },
    limits: { logFollowers: 1, logBytes: BYTES },
  });
  writeFileSync(join(cfg.dir, 'eve.token'), `${VIEWER}\n`);
  engine = testEngine(cfg.file);
  stopSchedules = engine.startSchedules();
  await repo.commit({ [`${stack}/compose.yaml`]: compose, [`${stack}/db_password.txt`]: `${SECRET_FILE}\n` });
  const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
  expect(pass.stacks[0]?.status, pass.stacks[0]?.errors?.join('\n')).toBe('synced');
  ({ app, base } = await serveEngine(engine));
  // every container has written what it writes at start
  await waitFor(async () => (await logs({ service: 'big', tail: '1' })).lines[0]?.text.startsWith('big-0299') || undefined, { what: 'big to print' });
  await waitFor(async () => (await logs({ service: 'web' })).lines.filter((l) => l.text.startsWith('token')).length === 2 || undefined, {
    what: 'both web replicas to print',
  });
});

afterAll(async () => {
  stopSchedules?.();
  await app?.close();
  await engine?.drain();
  engine?.close();
  await Promise.all(dockers.map((d) => removeContainers(d, { 'berth.stack': stack })));
  cfg?.cleanup();
  await git?.close();
});

describe('the merged logs of a stack on two hosts', () => {
  it("each replica's stdout and stderr, prefixed service.slot@host, replica after replica", async () => {
    const a = await logs({ service: 'web' });
    expect(a.status).toBe(200);
    const web = webReplicas(a);
    expect(web.map((r) => r.host).sort()).toEqual(['d1', 'd2']);
    expect(web.map((r) => r.slot).sort()).toEqual([1, 2]);
    for (const r of web) {
      // the container's hostname is its short id: each line is the replica's own
      expect(textsOf(a, r).slice(0, 3)).toEqual([`out-${r.container} one`, `err-${r.container} two`, `out-${r.container} three`]);
      const streams = a.lines.filter((l) => prefix(l) === prefix(r)).map((l) => l.stream);
      expect(streams.slice(0, 3)).toEqual(['stdout', 'stderr', 'stdout']);
      // a replica's container really is on the host its prefix names
      expect((await hostDocker(r.host).getContainer(r.container).inspect()).Config.Labels['berth.slot']).toBe(String(r.slot));
    }
    // without timestamps: replica after replica, in the order of the replicas
    const order = a.lines.map(prefix).filter((p, i, all) => all.indexOf(p) === i);
    expect(order).toEqual(web.map(prefix));
    expect(a.lines.every((l) => l.time === undefined)).toBe(true);

    // as text: the same lines, each `web.N@dX | ...`
    const plain = await request({ service: 'web' }, { accept: 'text/plain' });
    expect(plain.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const text = await plain.text();
    for (const r of web) expect(text).toContain(`${prefix(r)} | out-${r.container} one\n`);
    expect(text.split('\n').filter(Boolean).length).toBe(a.lines.length);
  });

  it('with timestamps: every line stamped, all replicas in time order', async () => {
    const a = await logs({ service: 'web', timestamps: 'true' });
    expect(a.lines.length).toBeGreaterThanOrEqual(10);
    for (const l of a.lines) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    const times = a.lines.map((l) => Date.parse(l.time!) * 1e6 + Number(l.time!.slice(23, 29) || 0));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    // both hosts' lines are there, interleaved by time
    expect(new Set(a.lines.map((l) => l.host))).toEqual(new Set(['d1', 'd2']));
  });

  it('the filters: service, host, tail, since', async () => {
    const all = await logs();
    expect(new Set(all.replicas.map((r) => r.service))).toEqual(new Set(['web', 'console', 'big', 'chatty', 'quiet', 'migrate', 'notify', 'cron']));

    const onD2 = await logs({ host: 'd2' });
    expect(onD2.replicas.length).toBeGreaterThan(0);
    expect(onD2.replicas.every((r) => r.host === 'd2')).toBe(true);
    expect(onD2.lines.every((l) => l.host === 'd2')).toBe(true);
    expect(onD2.replicas.length).toBeLessThan(all.replicas.length);

    const last = await logs({ service: 'web', tail: '1' });
    for (const r of webReplicas(last)) expect(textsOf(last, r)).toEqual([expect.stringMatching(/^token /)]);
    expect((await logs({ service: 'web', tail: '0' })).lines).toEqual([]);

    // since: an RFC 3339 time with nanoseconds (a line's own timestamp) keeps that line and what came after
    const stamped = await logs({ service: 'web', timestamps: 'true' });
    const r = webReplicas(stamped)[0]!;
    const own = stamped.lines.filter((l) => prefix(l) === prefix(r));
    const from = own[2]!; // out-... three
    const since = await logs({ service: 'web', host: r.host, since: from.time!, timestamps: 'true' });
    expect(since.lines[0]).toEqual(from);
    expect(since.lines.map((l) => l.text)).not.toContain(own[1]!.text);
    expect((await logs({ service: 'web', since: '1h' })).lines.length).toBe((await logs({ service: 'web' })).lines.length);
    expect((await logs({ service: 'web', since: '2099-01-01T00:00:00Z' })).lines).toEqual([]);
  });

  it("a TTY service's lines come through (one raw stream, no carriage returns; a long line whole)", async () => {
    const a = await logs({ service: 'console' });
    expect(a.replicas).toEqual([expect.objectContaining({ service: 'console', slot: 1, tty: true })]);
    expect(a.lines.map((l) => [l.text, l.stream])).toEqual([
      ['tty-line-1', 'stdout'],
      ['tty-line-2', 'stdout'],
      ['L'.repeat(40_000), 'stdout'],
    ]);
  });

  it('a secret value a container prints is masked: a secrets: file, a secret-looking env value, a URL with a password', async () => {
    for (const accept of ['application/x-ndjson', 'text/plain']) {
      const res = await request({ service: 'web' }, { accept });
      const body = await res.text();
      expect(body).toContain('secret file: <masked>');
      expect(body).toContain('token <masked> url <masked>');
      for (const value of [SECRET_FILE, SECRET_ENV, SECRET_URL_PASSWORD]) expect(body).not.toContain(value);
    }
    // the container did print them
    const web = webReplicas(await logs({ service: 'web' }))[0]!;
    const raw = await hostDocker(web.host).getContainer(web.container).logs({ stdout: true, stderr: true });
    expect(String(raw)).toContain(SECRET_FILE);
    expect(String(raw)).toContain(SECRET_ENV);
  });

  it('a large output is cut to the newest lines within limits.logBytes, and says so', async () => {
    const a = await logs({ service: 'big', tail: '300' });
    const texts = a.lines.map((l) => l.text);
    expect(texts.at(-1)).toMatch(/^big-0299-x+$/);
    expect(texts.length).toBeLessThan(300);
    expect(texts.length).toBeGreaterThan(50);
    expect(texts[0]).not.toMatch(/^big-0000-/);
    expect(texts.reduce((n, t) => n + Buffer.byteLength(t) + 1, 0)).toBeLessThanOrEqual(BYTES);
    expect(a.notices).toEqual([{ notice: 'truncated', message: expect.stringMatching(/newest 65536 bytes \(limits\.logBytes in the engine config\)/) }]);
    // consecutive: the newest lines, none left out in between
    const numbers = texts.map((t) => Number(t.slice(4, 8)));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    const text = (await logs({ service: 'big', tail: '300' }, { accept: 'text/plain' })).text;
    expect(text).toMatch(/\n-- berth: the lines were cut to the newest 65536 bytes/);
    // under the bound, nothing is cut
    expect((await logs({ service: 'big', tail: '20' })).notices).toEqual([]);
  });

  it('a container whose lines Docker cannot read back (log driver none) is said so; the others still come', async () => {
    const a = await logs({ service: 'quiet' });
    expect(a.status).toBe(200);
    expect(a.replicas).toEqual([expect.objectContaining({ service: 'quiet', slot: 1 })]);
    expect(a.lines).toEqual([]);
    expect(a.notices).toEqual([
      {
        notice: 'replica-unreadable',
        host: a.replicas[0]!.host,
        message: expect.stringMatching(new RegExp(`^quiet\\.1@${a.replicas[0]!.host}: cannot read its logs: .*does not support reading`)),
      },
    ]);
    const all = await logs({ host: a.replicas[0]!.host });
    expect(all.notices.map((n) => n.notice)).toContain('replica-unreadable');
    expect(all.lines.length).toBeGreaterThan(0);
  });

  it("jobs and hooks: their last run's lines, by service name", async () => {
    const job = await logs({ service: 'migrate' });
    expect(job.replicas).toEqual([expect.objectContaining({ service: 'migrate', slot: 1, job: 'once', state: 'exited' })]);
    // a line longer than Docker's 16 KiB messages comes whole
    expect(job.lines.map((l) => l.text)).toEqual([`job-ran-${job.replicas[0]!.container}`, 'J'.repeat(20_000)]);
    const hook = await logs({ service: 'notify' });
    expect(hook.replicas).toEqual([expect.objectContaining({ service: 'notify', job: 'post-sync' })]);
    expect(hook.lines.map((l) => l.text)).toEqual([`hook-ran-${hook.replicas[0]!.container}`]);

    // a scheduled job runs again in the same container: only its last run's lines
    await waitFor(() => auditRows(engine, stack, ['job.succeeded']).filter((r) => r.service === 'cron').length >= 2 || undefined, {
      what: 'two runs of the scheduled job',
      timeoutMs: 60_000,
    });
    const cron = await logs({ service: 'cron' });
    expect(cron.replicas).toEqual([expect.objectContaining({ service: 'cron', job: 'schedule' })]);
    const c = cron.replicas[0]!;
    const every = String(await hostDocker(c.host).getContainer(c.container).logs({ stdout: true, stderr: true })).match(/run-at-[\d.]+/g) ?? [];
    expect(every.length).toBeGreaterThanOrEqual(2);
    expect(cron.lines.map((l) => l.text)).toHaveLength(1);
    expect(every).toContain(cron.lines[0]!.text);
    expect(cron.lines[0]!.text).not.toBe(every[0]);
  });

  it('refusals: unknown stack, service, host; a bad since or tail', async () => {
    const refused = async (params: Record<string, string>, name?: string) => {
      const a = await logs(params, { name });
      return { status: a.status, ...(JSON.parse(a.text) as { error: string; code: string }) };
    };
    expect(await refused({}, 'nosuchstack')).toEqual({
      status: 404,
      code: 'unknown-stack',
      error: expect.stringMatching(/no repo defines a stack named nosuchstack/),
    });
    expect(await refused({ service: 'nope' })).toEqual({
      status: 404,
      code: 'unknown-service',
      error: expect.stringMatching(
        new RegExp(`stack ${stack} has no service, job or hook named nope \\(it has big, chatty, console, cron, migrate, notify, quiet, web\\)`),
      ),
    });
    expect(await refused({ host: 'd9' })).toEqual({ status: 404, code: 'unknown-host', error: expect.stringMatching(/no host named d9/) });
    expect(await refused({ since: 'yesterday' })).toEqual({
      status: 400,
      code: 'invalid-request',
      error: expect.stringMatching(/^query parameter since: invalid time/),
    });
    expect(await refused({ tail: '10001' })).toEqual({
      status: 400,
      code: 'invalid-request',
      error: expect.stringMatching(/^query parameter tail must be <= 10000/),
    });
    expect(await refused({ colour: 'red' })).toMatchObject({ status: 400, code: 'invalid-request' });
    // no token: like every read
    const anonymous = await fetch(`${base}/api/v1/stacks/${stack}/logs`);
    expect(anonymous.status).toBe(401);
  });
});

/** Reads a followed answer's JSON lines as they come. */
function follower(res: Response) {
  const reader = res.body!.getReader();
  const records: Array<Record<string, unknown>> = [];
  let buffered = '';
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      buffered += Buffer.from(value).toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line) records.push(JSON.parse(line) as Record<string, unknown>); // an empty line keeps a quiet follow alive
      }
    }
    ended = true;
  })();
  return { records, ended: () => ended, done: pump };
}

describe('following the logs', () => {
  it('gets the lines written after it started; one follow at most (limits.logFollowers: 1), its place given back when the client goes', async () => {
    const abort = new AbortController();
    const res = await request({ service: 'web', tail: '2', follow: 'true' }, { signal: abort.signal });
    // a failed check must not leave the one place taken for the tests after it
    onTestFinished(() => abort.abort());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const f = follower(res);
    const replicas = await waitFor(() => (f.records[0]?.replicas as LogReplica[] | undefined) ?? undefined, { what: 'the replicas' });
    expect(replicas.map((r) => r.host).sort()).toEqual(['d1', 'd2']);
    await waitFor(() => f.records.length >= 5 || undefined, { what: 'the last two lines of each replica' });
    expect(f.records.slice(1, 5).every((r) => String(r.text).startsWith('secret file') || String(r.text).startsWith('token'))).toBe(true);

    // a second follow while this one is open: refused
    const second = await request({ follow: 'true' });
    expect(second.status).toBe(429);
    expect(await second.json()).toEqual({
      code: 'too-many-followers',
      error: expect.stringMatching(/at most 1 at once \(limits\.logFollowers in the engine config\)/),
    });
    // a read that does not follow is not counted
    expect((await logs({ service: 'web', tail: '1' })).status).toBe(200);

    // lines written now, on both hosts, come through the open answer
    for (const r of replicas) await execIn(hostDocker(r.host).getContainer(r.container), ['touch', '/go']);
    const after = await waitFor(
      () => {
        const got = f.records.filter((x) => String(x.text).startsWith('after-follow-'));
        return got.length === 2 ? got : undefined;
      },
      { what: 'the lines written after the follow started' },
    );
    expect(after.map((x) => `${prefix(x as unknown as LogLine)} ${String(x.text)}`).sort()).toEqual(
      replicas.map((r) => `${prefix(r)} after-follow-${r.container}`).sort(),
    );
    expect(f.ended()).toBe(false);

    // the client goes: the server closes the Docker streams and gives the place back
    abort.abort();
    await f.done;
    const next = await waitFor(
      async () => {
        const ac = new AbortController();
        const r = await request({ service: 'console', follow: 'true' }, { signal: ac.signal });
        if (r.status === 429) {
          await r.body?.cancel();
          return undefined;
        }
        return { r, ac };
      },
      { what: 'a follow to be taken again' },
    );
    expect(next.r.status).toBe(200);
    onTestFinished(() => next.ac.abort());
    const g = follower(next.r);
    await waitFor(() => g.records.some((x) => x.text === 'tty-line-2') || undefined, { what: 'the console lines' });
    next.ac.abort();
    await g.done;
    await waitFor(
      async () => {
        const r = await request({ service: 'console', follow: 'true', tail: '0' }, { signal: AbortSignal.timeout(10_000) });
        const ok = r.status === 200;
        await r.body?.cancel();
        return ok || undefined;
      },
      { what: 'the place given back again' },
    );
  });
});

describe('berth logs', () => {
  const cli = (args: string[], env: Record<string, string>) => runCli(['logs', stack, ...args], { env });
  const remote = () => ({ BERTH_URL: base, BERTH_TOKEN: VIEWER, BERTH_CONFIG: '/nonexistent/berth.config.yaml' });
  const local = () => ({ BERTH_CONFIG: cfg.file });

  it('prints the same lines locally and through BERTH_URL, without colour when not on a terminal', async () => {
    for (const args of [['web'], ['web', '--timestamps', '--tail', '3'], ['web', '--host', 'd1', '--since', '1h']]) {
      const [viaApi, inProcess] = await Promise.all([cli(args, remote()), cli(args, local())]);
      expect(viaApi.code, viaApi.stderr).toBe(0);
      expect(inProcess.code, inProcess.stderr).toBe(0);
      expect(viaApi.stdout).toBe(inProcess.stdout);
      expect(viaApi.stdout).not.toContain('\x1b[');
      expect(viaApi.stdout).not.toContain(SECRET_FILE);
    }
    const printed = (await cli(['web'], remote())).stdout;
    const api = await logs({ service: 'web' });
    const width = Math.max(...api.replicas.map((r) => prefix(r).length));
    expect(printed).toBe(api.lines.map((l) => `${prefix(l).padEnd(width)} | ${l.text}\n`).join(''));
  });

  it('--follow prints the lines written after it started until Ctrl-C, then exits 0 and gives its place back', async () => {
    const web = webReplicas(await logs({ service: 'web' }));
    for (const env of [remote(), local()]) {
      const run = cli(['web', '--follow', '--tail', '1'], env);
      try {
        let out = '';
        run.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        const printed = (r: LogReplica) => out.split('\n').filter((l) => l.endsWith(` | after-follow-${r.container}`)).length;
        await waitFor(() => out.split('\n').filter((l) => l.includes(' | ')).length === 2 || undefined, { what: 'the last line of each replica' });
        const before = web.map(printed);
        for (const r of web) await execIn(hostDocker(r.host).getContainer(r.container), ['touch', '/go']);
        await waitFor(() => web.every((r, i) => printed(r) === before[i]! + 1) || undefined, { what: 'the lines written after it started' });
      } finally {
        run.child.kill('SIGINT');
      }
      const done = await run;
      expect(done.code, done.stderr).toBe(0);
      expect(done.signal).toBeNull();
    }
    // its place among the followers is free again
    const next = await request({ service: 'console', follow: 'true', tail: '0' });
    expect(next.status).toBe(200);
    await next.body?.cancel();
  });

  it('a host that does not answer is said so on stderr, and the lines of the others come', async () => {
    const other = writeConfig([{ name: repo.name, url: repo.url }], {
      hosts: [...testHosts().slice(0, 2), { name: 'gone', endpoint: 'unix:///nonexistent/docker.sock' }],
    });
    try {
      const [withGone, usual] = await Promise.all([cli(['web'], { BERTH_CONFIG: other.file }), cli(['web'], local())]);
      expect(withGone.code, withGone.stderr).toBe(0);
      expect(withGone.stderr).toMatch(/^berth: host gone: cannot list the stack's containers: no Docker socket at \/nonexistent\/docker\.sock$/m);
      expect(withGone.stdout).toBe(usual.stdout);
      expect(usual.stdout).toMatch(/ \| out-\w+ one\n/);
    } finally {
      other.cleanup();
    }
  });

  it('says why it refuses: an unknown stack or service exits 1, locally and through BERTH_URL', async () => {
    for (const env of [remote(), local()]) {
      const unknown = await runCli(['logs', 'nosuchstack'], { env });
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/berth: no repo defines a stack named nosuchstack/);
      const service = await cli(['nope'], env);
      expect(service.code).toBe(1);
      expect(service.stderr).toMatch(/has no service, job or hook named nope/);
      const tail = await cli(['--tail', 'many'], env);
      expect(tail.code).toBe(1);
      expect(tail.stderr).toMatch(/--tail: 'many' is not a whole number/);
    }
  });
});

const CHROMIUM = '/usr/bin/chromium';
/** Without Chromium the dashboard's part is skipped, except under CI, where it must run (and fail clearly). */
const noChromium = !existsSync(CHROMIUM) && !process.env.CI;
if (noChromium)
  console.warn(`logs.test.ts: the dashboard's Logs tab SKIPPED: ${CHROMIUM} is missing; run scripts/setup.sh as root to install Debian's chromium.`);

describe.skipIf(noChromium)("the dashboard's Logs tab in Chromium", () => {
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const requested: string[] = [];
  /** the text of every log line on the page */
  const shown = () => page.locator('#logs .log-line').allInnerTexts();

  beforeAll(async () => {
    profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
      colorScheme: 'light',
    });
    context.on('weberror', (e) => pageErrors.push(e.error().message));
    context.on('request', (r) => requested.push(r.url()));
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${base}/#/stacks/${stack}`);
    await page.getByLabel('API token').fill(VIEWER);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('nav.tabs').waitFor();
  });

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("opens the stack's Logs tab and shows a service's lines, prefixed and coloured per replica", async () => {
    await page.getByRole('link', { name: 'Logs', exact: true }).click();
    await page.locator('#logs-service').waitFor();
    await page.selectOption('#logs-service', 'web');
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/stacks/${stack}?tab=logs&service=web`);
    const web = webReplicas(await logs({ service: 'web' }));
    await expect.poll(async () => (await shown()).filter((t) => / \| out-\w+ one$/.test(t)).length, { timeout: 15_000 }).toBe(2);
    const lines = await shown();
    for (const r of web) expect(lines).toContain(`${prefix(r).padEnd(Math.max(...web.map((x) => prefix(x).length)))} | out-${r.container} one`);
    expect(lines.join('\n')).toContain('secret file: <masked>');
    expect(lines.join('\n')).not.toContain(SECRET_FILE);
    // stderr lines are set apart; each replica's prefix has a colour of its own
    expect(await page.locator('#logs .log-stderr').count()).toBe(2);
    const colours = await page
      .locator('#logs .log-prefix')
      .evaluateAll((els) => [
        ...new Set(els.map((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(e).color)),
      ]);
    expect(colours).toHaveLength(2);
    await page.screenshot({ path: join(cfg.dir, 'logs-tab.png'), fullPage: true });
    expect(requested.every((u) => u.startsWith(base))).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('keeps the last 5,000 lines of many, drawn in batches', async () => {
    await page.selectOption('#logs-service', 'chatty');
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/stacks/${stack}?tab=logs&service=chatty`);
    // the page drawn anew for chatty (the last 200 lines), before its tail is changed
    await expect.poll(() => page.locator('#logs-status').textContent(), { timeout: 15_000 }).toMatch(/^200 line\(s\)/);
    await page.selectOption('#logs-tail', '10000');
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/stacks/${stack}?tab=logs&service=chatty&tail=10000`);
    await expect.poll(() => page.locator('#logs-status').textContent(), { timeout: 15_000 }).toMatch(/^6,000 line\(s\) \(the last 5,000 kept\)/);
    expect(await page.locator('#logs .log-line').count()).toBe(5000);
    const lines = await shown();
    expect(lines[0]).toMatch(/ \| c-1000$/);
    expect(lines.at(-1)).toMatch(/ \| c-5999$/);
    expect(pageErrors).toEqual([]);
  });

  it('follows: lines written later appear; leaving the tab ends the follow on the server', async () => {
    await page.goto(`${base}/#/stacks/${stack}?tab=logs&service=web`);
    // web's page is drawn (a hash change draws it anew) before its Follow is checked
    await expect.poll(async () => (await shown()).some((t) => / \| out-\w+ one$/.test(t)), { timeout: 15_000 }).toBe(true);
    await page.locator('#logs-follow').check();
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/stacks/${stack}?tab=logs&service=web&follow=1`);
    await expect.poll(() => page.locator('#logs-status').textContent(), { timeout: 15_000 }).toMatch(/following$/);
    const before = (await shown()).filter((t) => t.includes('after-follow-')).length;
    const web = webReplicas(await logs({ service: 'web' }));
    for (const r of web) await execIn(hostDocker(r.host).getContainer(r.container), ['touch', '/go']);
    await expect.poll(async () => (await shown()).filter((t) => t.includes('after-follow-')).length, { timeout: 15_000 }).toBe(before + 2);
    await page.screenshot({ path: join(cfg.dir, 'logs-follow.png'), fullPage: true });
    // the page's follow holds the one place: a follow of the API is refused until the page leaves the tab
    const refused = await request({ follow: 'true' });
    expect(refused.status).toBe(429);
    await refused.body?.cancel();
    await page.getByRole('link', { name: 'Overview', exact: true }).last().click();
    await waitFor(
      async () => {
        const r = await request({ service: 'console', follow: 'true', tail: '0' }, { signal: AbortSignal.timeout(10_000) });
        await r.body?.cancel();
        return r.status === 200 || undefined;
      },
      { what: 'the follow to end once the page left the tab' },
    );
    expect(pageErrors).toEqual([]);
  });
});
