// GET /metrics (docs/api.md, "Metrics"): a strict parser of the Prometheus text format (checked
// against bad input first), the counters fed from audit rows over a real database, then an
// in-process berth server against the shared test daemon and a real git server, whose counters
// move as it syncs, takes webhooks, corrects drift and rolls back. And /readyz.
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/audit/db.ts';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import { AuditLog, type AuditInput } from '../src/audit/log.ts';
import { SyncStore } from '../src/audit/syncs.ts';
import type { Engine, EngineEvents } from '../src/engine/engine.ts';
import type { HostStatus } from '../src/observe/hosts.ts';
import { berthMetrics } from '../src/server/metrics.ts';
import { buildServer } from '../src/server/server.ts';
import { testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, testDocker, uniqueName } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

// ---- a strict parser of the Prometheus text format, version 0.0.4 ----

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  type: string;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// as Go's strconv.ParseFloat reads them, which Prometheus uses (prom-client writes NaN as Nan)
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

const toNumber = (s: string) => (/inf/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : Number(s));

/** `{a="1",b="x\"y"}` (from its `{`) -> the labels and where the text after them starts. */
function parseLabels(line: string, at: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    const name = line.slice(i, eq);
    if (eq < 0 || !LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`bad label name '${name}' in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`label ${name}'s value is not quoted in: ${line}`);
    let value = '';
    for (i = eq + 2; line[i] !== '"'; i++) {
      if (i >= line.length) throw new Error(`unterminated label value in: ${line}`);
      if (line[i] !== '\\') value += line[i];
      else {
        const escaped = { '\\': '\\', '"': '"', n: '\n' }[line[++i] ?? ''];
        if (escaped === undefined) throw new Error(`bad escape \\${line[i]} in: ${line}`);
        value += escaped;
      }
    }
    labels[name] = value;
    i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`expected , or } after label ${name} in: ${line}`);
  }
}

/** Checks each histogram series: buckets by ascending le, cumulative, a +Inf bucket equal to _count, a _sum. */
function checkHistogram(name: string, f: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const one = series.get(key) ?? { buckets: [] };
    series.set(key, one);
    if (s.name === `${name}_bucket`) {
      if (le === undefined || !FLOAT.test(le)) throw new Error(`${name}_bucket without a valid le`);
      one.buckets.push([toNumber(le), s.value]);
    } else if (s.name === `${name}_sum`) one.sum = s.value;
    else one.count = s.value;
  }
  for (const [key, { buckets, sum, count }] of series) {
    const inf = buckets.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${name}${key}: the last bucket is not le="+Inf"`);
    if (inf[1] !== count || sum === undefined) throw new Error(`${name}${key}: +Inf bucket ${inf[1]}, _count ${count}, _sum ${sum}`);
    buckets.forEach(([le, n], i) => {
      if (i > 0 && (le <= buckets[i - 1]![0] || n < buckets[i - 1]![1])) throw new Error(`${name}${key}: buckets not ascending and cumulative at le=${le}`);
    });
  }
}

/** Parses the whole exposition, throwing on anything the format does not allow; families by name. */
function parseMetrics(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the text does not end with a line feed');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: string | undefined;
  const family = (name: string) => {
    const f = families.get(name) ?? { type: '', samples: [] };
    families.set(name, f);
    return f;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, what, name, rest] = meta as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      const f = family(name);
      if (f.samples.length) throw new Error(`${what} of ${name} after its samples`);
      if (what === 'HELP') {
        if (f.help !== undefined) throw new Error(`HELP of ${name} twice`);
        if (!/^(?:[^\\]|\\[\\n])*$/.test(rest)) throw new Error(`bad escape in: ${line}`);
        f.help = rest.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
      } else {
        if (f.type) throw new Error(`TYPE of ${name} twice`);
        if (!TYPES.has(rest)) throw new Error(`unknown type in: ${line}`);
        f.type = rest;
      }
      current = name;
      continue;
    }
    if (line.startsWith('#')) continue; // a plain comment
    const name = /^[^{\s]*/.exec(line)![0];
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
    const { labels, end } = line[name.length] === '{' ? parseLabels(line, name.length) : { labels: {}, end: name.length };
    const [value, timestamp, ...extra] = line.slice(end).trim().split(/\s+/);
    if (!/^\s/.test(line.slice(end)) || value === undefined || !FLOAT.test(value) || (timestamp !== undefined && !/^-?\d+$/.test(timestamp)) || extra.length) {
      throw new Error(`bad value in: ${line}`);
    }
    const f = current === undefined ? undefined : families.get(current);
    if (!f?.type) throw new Error(`sample without a TYPE before it: ${line}`);
    if (!(SUFFIXES[f.type] ?? ['']).some((s) => name === `${current}${s}`)) throw new Error(`sample ${name} in family ${current} (${f.type})`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(series)) throw new Error(`series twice: ${line}`);
    seen.add(series);
    f.samples.push({ name, labels, value: toNumber(value) });
  }
  for (const [name, f] of families) {
    if (!f.type) throw new Error(`${name} has no TYPE`);
    if (f.type === 'histogram') checkHistogram(name, f);
  }
  return families;
}

/** The value of the one sample with exactly these labels, or undefined. */
function valueOf(families: Map<string, Family>, sample: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(sample) ?? families.get(sample.replace(/_(bucket|sum|count)$/, ''));
  const want = JSON.stringify(Object.entries(labels).sort());
  return family?.samples.find((s) => s.name === sample && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

describe('the Prometheus text parser of this test', () => {
  it('reads a valid exposition, escapes and all', () => {
    const text = [
      '# HELP a_total A "count" \\\\ of\\nthings',
      '# TYPE a_total counter',
      'a_total{x="q\\"\\\\\\n",y=""} 3 1700000000000',
      'a_total 1.5e3',
      '# a comment',
      '',
      '# TYPE h histogram',
      'h_bucket{le="1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 3.5',
      'h_count 2',
      '# TYPE g gauge',
      'g -Inf',
      '# TYPE n gauge',
      'n Nan',
      '',
    ].join('\n');
    const f = parseMetrics(text);
    expect(f.get('a_total')).toEqual({
      type: 'counter',
      help: 'A "count" \\ of\nthings',
      samples: [
        { name: 'a_total', labels: { x: 'q"\\\n', y: '' }, value: 3 },
        { name: 'a_total', labels: {}, value: 1500 },
      ],
    });
    expect(valueOf(f, 'h_count')).toBe(2);
    expect(valueOf(f, 'h_bucket', { le: '+Inf' })).toBe(2);
    expect(valueOf(f, 'g')).toBe(-Infinity);
    expect(valueOf(f, 'n')).toBeNaN();
  });

  it.each([
    ['no final line feed', '# TYPE a counter\na 1', /line feed/],
    ['no TYPE', 'a 1\n', /without a TYPE/],
    ['a value that is no number', '# TYPE a counter\na one\n', /bad value/],
    ['no space before the value', '# TYPE a counter\na{}1\n', /bad value/],
    ['a bad metric name', '# TYPE 1a counter\n1a 1\n', /bad metric name/],
    ['an unquoted label', '# TYPE a counter\na{x=1} 1\n', /not quoted/],
    ['a bad escape', '# TYPE a counter\na{x="\\t"} 1\n', /bad escape/],
    ['a bad escape in HELP', '# HELP a x\\ty\n# TYPE a counter\na 1\n', /bad escape/],
    ['a word for a value', '# TYPE a gauge\na Infinite\n', /bad value/],
    ['an unterminated label', '# TYPE a counter\na{x="1} 1\n', /unterminated/],
    ['a label twice', '# TYPE a counter\na{x="1",x="2"} 1\n', /label x twice/],
    ['a reserved label name', '# TYPE a counter\na{__x="1"} 1\n', /bad label name/],
    ['a series twice', '# TYPE a counter\na{x="1"} 1\na{x="1"} 2\n', /series twice/],
    ['a sample of another family', '# TYPE a counter\nb 1\n', /sample b in family a/],
    ['an unknown type', '# TYPE a thing\na 1\n', /unknown type/],
    ['TYPE after the samples', '# TYPE a counter\na 1\n# TYPE a counter\n', /after its samples/],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /le="\+Inf"/],
    ['a histogram whose count differs', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /_count 1/],
    ['buckets that are not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not ascending and cumulative/],
  ] as const)('refuses %s', (_what, text, error) => {
    expect(() => parseMetrics(text)).toThrow(error);
  });
});

// ---- the counters, fed from audit rows over a real database ----

describe('berthMetrics over a real database', () => {
  let dir: string;
  let db: ReturnType<typeof openDatabase>;
  let audit: AuditLog;
  let syncs: SyncStore;
  let deliveries: DeliveryStore;
  const events = new EventEmitter<EngineEvents>();
  let hosts: HostStatus[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-metrics-'));
    db = openDatabase(join(dir, 'berth.db'));
    audit = new AuditLog(db);
    audit.onAppend((row) => events.emit('audit', row));
    syncs = new SyncStore(db);
    deliveries = new DeliveryStore(db);
  });
  afterAll(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const host = (name: string, state: HostStatus['state']): HostStatus => ({ name, endpoint: '', labels: {}, state, since: new Date().toISOString() });
  const delivery = (provider: string, outcome: 'accepted' | 'rejected' | 'ignored') => deliveries.record({ provider, outcome, status: 200 });

  /** One sync of `stack` as the engine records it: the record, sync.started, the steps, the record finished, then sync.succeeded/failed. */
  function sync(
    stack: string,
    steps: Array<Omit<AuditInput, 'stack'>>,
    end: { outcome: 'succeeded' | 'failed'; result?: 'failed' | 'paused' | 'rolledback' },
    opts: { announce?: boolean } = {},
  ) {
    const rec = syncs.start({ repo: 'r', stack, commitSha: 'a'.repeat(40), trigger: 'poll', actor: 'berth' });
    if (opts.announce !== false) audit.append({ kind: 'sync.started', stack, syncId: rec.id });
    for (const s of steps) audit.append({ ...s, stack, syncId: rec.id });
    return () => {
      syncs.finish(rec.id, end);
      audit.append({
        kind: end.outcome === 'succeeded' ? 'sync.succeeded' : 'sync.failed',
        stack,
        syncId: rec.id,
        outcome: end.outcome === 'succeeded' ? 'ok' : 'error',
      });
    };
  }

  it('counts syncs by how they ended, their durations, rollouts, rollbacks, drift, deliveries, hosts and audit rows', async () => {
    // Before the metrics exist: a sync already running (an orphan to be) and a delivery; neither counts as new.
    const orphanEnds = sync('orphan', [], { outcome: 'failed' });
    delivery('github', 'accepted');
    const rowsBefore = audit.query({ limit: 1 }).rows[0]!.id;

    const m = berthMetrics({ db, syncs, monitor: { status: () => hosts }, events });
    const scrape = async () => parseMetrics(await m.registry.metrics());
    let f = await scrape();
    expect(valueOf(f, 'berth_webhook_deliveries_total', { provider: 'github', outcome: 'accepted' })).toBe(0);
    expect(valueOf(f, 'berth_syncs_total', { stack: 'shop', outcome: 'succeeded' })).toBeUndefined();
    expect(valueOf(f, 'berth_hosts_up')).toBe(0);
    expect(valueOf(f, 'process_cpu_seconds_total')).toBeGreaterThanOrEqual(0); // the default Node metrics

    sync('shop', [{ kind: 'container.created', service: 'db' }], { outcome: 'succeeded' })();
    sync(
      'shop',
      [
        { kind: 'rollout.batch', service: 'web', outcome: 'info' },
        { kind: 'container.replaced', service: 'web' },
        { kind: 'container.unhealthy', service: 'web', outcome: 'error' },
        { kind: 'rollout.failed', service: 'web', outcome: 'error' },
        { kind: 'rollback.started', service: 'web' },
        { kind: 'rollback.batch', service: 'web', outcome: 'info' },
        { kind: 'container.replaced', service: 'web' },
        { kind: 'rollback.succeeded', service: 'web' },
      ],
      { outcome: 'failed', result: 'rolledback' },
    )();
    sync(
      'shop',
      [
        { kind: 'rollout.batch', service: 'api', outcome: 'info' },
        { kind: 'rollout.paused', service: 'api', outcome: 'error' },
      ],
      { outcome: 'failed', result: 'paused' },
    )();
    sync(
      'cart',
      [
        { kind: 'drift.detected', service: 'web', outcome: 'error' },
        { kind: 'container.created', service: 'web' },
        { kind: 'drift.corrected', service: 'web' },
        { kind: 'container.removed', service: 'extra' },
        { kind: 'drift.corrected', service: 'extra' },
      ],
      { outcome: 'succeeded' },
    )();
    sync('cart', [], { outcome: 'failed', result: 'failed' })();
    orphanEnds();
    audit.append({ kind: 'rollback.started', stack: 'shop', trigger: 'manual', actor: 'ada' }); // engine.rollback's own row
    audit.append({ kind: 'sync.failed', stack: 'cart', outcome: 'error', message: 'cannot place' }); // no sync record: not a sync
    delivery('github', 'rejected');
    delivery('generic', 'ignored');
    delivery('generic', 'ignored');
    hosts = [host('a', 'up'), host('b', 'unreachable'), host('c', 'lost')];

    f = await scrape();
    const count = (stack: string, outcome: string) => valueOf(f, 'berth_syncs_total', { stack, outcome });
    expect([count('shop', 'succeeded'), count('shop', 'rolledback'), count('shop', 'paused'), count('shop', 'failed')]).toEqual([1, 1, 1, undefined]);
    expect([count('cart', 'succeeded'), count('cart', 'failed'), count('orphan', 'failed')]).toEqual([1, 1, 1]);
    // durations: of the syncs seen starting only (not the orphan's)
    expect(valueOf(f, 'berth_sync_duration_seconds_count', { stack: 'shop' })).toBe(3);
    expect(valueOf(f, 'berth_sync_duration_seconds_count', { stack: 'cart' })).toBe(2);
    expect(valueOf(f, 'berth_sync_duration_seconds_count', { stack: 'orphan' })).toBeUndefined();
    // rollouts: services that had a rollout batch (not db, created only; not web of cart, a drift repair)
    const rollouts = f.get('berth_rollout_duration_seconds')!.samples.filter((s) => s.name.endsWith('_count'));
    expect(rollouts.map((s) => [s.labels, s.value])).toEqual([
      [{ stack: 'shop', service: 'web' }, 1],
      [{ stack: 'shop', service: 'api' }, 1],
    ]);
    expect(valueOf(f, 'berth_rollout_duration_seconds_sum', { stack: 'shop', service: 'web' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(f, 'berth_rollbacks_total', { stack: 'shop', kind: 'automatic' })).toBe(1);
    expect(valueOf(f, 'berth_rollbacks_total', { stack: 'shop', kind: 'manual' })).toBe(1);
    expect(valueOf(f, 'berth_drift_corrections_total', { stack: 'cart' })).toBe(2);
    expect(valueOf(f, 'berth_hosts_up')).toBe(1);
    expect(['a', 'b', 'c'].map((h) => valueOf(f, 'berth_host_up', { host: h }))).toEqual([1, 0, 0]);
    expect(valueOf(f, 'berth_audit_rows_total')).toBe(audit.query({ limit: 1 }).rows[0]!.id - rowsBefore);
    const byDelivery = (provider: string, outcome: string) => valueOf(f, 'berth_webhook_deliveries_total', { provider, outcome });
    expect([byDelivery('github', 'accepted'), byDelivery('github', 'rejected'), byDelivery('generic', 'ignored')]).toEqual([0, 1, 2]);

    // A second scrape counts only what is new; after stop() no row counts.
    delivery('generic', 'ignored');
    f = await scrape();
    expect([byDelivery('github', 'rejected'), byDelivery('generic', 'ignored')]).toEqual([1, 3]);
    const rows = valueOf(f, 'berth_audit_rows_total');
    m.stop();
    sync('shop', [], { outcome: 'succeeded' })();
    f = await scrape();
    expect(valueOf(f, 'berth_audit_rows_total')).toBe(rows);
    expect(count('shop', 'succeeded')).toBe(1);
  });

  it('a failure to count a row is reported, and the row is still appended', () => {
    const broken = {
      get: () => {
        throw new Error('boom');
      },
    };
    const errors: string[] = [];
    const m = berthMetrics({ db, syncs: broken, monitor: { status: () => [] }, events }, (err, row) => errors.push(`${row.kind}: ${err.message}`));
    try {
      sync('x', [], { outcome: 'succeeded' })();
      expect(errors).toEqual(['sync.succeeded: boom']);
      expect(audit.query({ limit: 1 }).rows[0]).toMatchObject({ kind: 'sync.succeeded', stack: 'x' });
    } finally {
      m.stop();
    }
  });
});

// ---- a berth server in this process ----

const SECRET = 'whsec-metrics-3c9a1e7b52d04f68';

describe('GET /metrics on a running berth', () => {
  let git: GitServer;
  let repo: RemoteRepo;
  let stack: string;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let app: FastifyInstance;
  const docker = testDocker();
  const compose = (image: string) => ({
    [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${image}\n    deploy:\n      update_config: { failure_action: rollback }\n`,
  });

  async function scrape() {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parseMetrics(res.body);
  }
  /** A generic webhook delivery for the repo, signed with `secret`. */
  function hook(body: Record<string, string>, secret = SECRET) {
    const payload = JSON.stringify({ repo: repo.url, branch: 'main', ...body });
    const signature = `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
    return app.inject({
      method: 'POST',
      url: '/webhooks/generic',
      headers: { 'content-type': 'application/json', 'x-berth-delivery': uniqueName('ci-run'), 'x-berth-signature': signature },
      payload,
    });
  }
  const web = async () => (await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } }))[0];

  beforeAll(async () => {
    git = await startGitServer();
    stack = uniqueName('metrics').replaceAll('-', '');
    repo = await git.createRepo(uniqueName('metricsrepo'));
    cfg = writeConfig([], { repos: [{ name: repo.name, url: repo.url, branch: 'main', poll: '1h', webhookSecretFile: 'hook.secret' }] });
    writeFileSync(join(cfg.dir, 'hook.secret'), `${SECRET}\n`);
    engine = testEngine(cfg.file);
    app = buildServer({ ready: () => true, engine }, pino({ level: process.env.BERTH_TEST_LOG ? 'debug' : 'silent' }));
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await engine?.drain();
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
    await git?.close();
  });

  it("serves the Node process metrics and berth's, nothing counted yet", async () => {
    const f = await scrape();
    expect(
      valueOf(f, 'nodejs_version_info', {
        version: process.version,
        major: process.versions.node.split('.')[0]!,
        minor: process.versions.node.split('.')[1]!,
        patch: process.versions.node.split('.')[2]!,
      }),
    ).toBe(1);
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBeUndefined();
    expect(valueOf(f, 'berth_hosts_up')).toBe(0); // no host checked yet
    expect(f.get('berth_sync_duration_seconds')?.type).toBe('histogram');
    expect(f.get('berth_webhook_deliveries_total')?.type).toBe('counter');
  });

  it('a sync moves the sync counter and histogram; the host is up; every audit row is counted', async () => {
    await repo.commit(compose(IMAGES.webV1), { message: 'rev 1' });
    expect((await engine.syncAll({ trigger: 'startup' }))[0]!.stacks[0]!.status).toBe('synced');
    const f = await scrape();
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBe(1);
    expect(valueOf(f, 'berth_sync_duration_seconds_count', { stack })).toBe(1);
    expect(valueOf(f, 'berth_sync_duration_seconds_sum', { stack })).toBeGreaterThan(0);
    expect(valueOf(f, 'berth_rollout_duration_seconds_count', { stack, service: 'web' })).toBeUndefined(); // created, not rolled out
    expect(valueOf(f, 'berth_hosts_up')).toBe(1);
    expect(valueOf(f, 'berth_host_up', { host: 'test' })).toBe(1);
    expect(valueOf(f, 'berth_audit_rows_total')).toBe(engine.audit.query({ limit: 1000 }).rows.length);
  });

  it("webhook deliveries are counted by provider and outcome, ignored ones too; the push's rollout is timed", async () => {
    const sha = await repo.commit(compose(IMAGES.webV2), { message: 'rev 2' });
    expect((await hook({ after: sha })).statusCode).toBe(202);
    expect((await hook({ after: sha }, 'a-guessed-secret')).statusCode).toBe(401);
    expect((await hook({ after: sha, branch: 'dev' })).statusCode).toBe(200); // branch not watched: ignored, no audit row
    await engine.drain();
    expect((await web())!.Labels['berth.commit']).toBe(sha);

    const f = await scrape();
    const deliveries = (outcome: string) => valueOf(f, 'berth_webhook_deliveries_total', { provider: 'generic', outcome });
    expect([deliveries('accepted'), deliveries('rejected'), deliveries('ignored')]).toEqual([1, 1, 1]);
    expect(valueOf(f, 'berth_webhook_deliveries_total', { provider: 'github', outcome: 'accepted' })).toBe(0);
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBe(2);
    expect(valueOf(f, 'berth_rollout_duration_seconds_count', { stack, service: 'web' })).toBe(1);
    expect(valueOf(f, 'berth_audit_rows_total')).toBe(engine.audit.query({ limit: 1000 }).rows.length);
  });

  it('drift corrections, a manual rollback and an automatic one are counted', async () => {
    await removeContainers(docker, { 'berth.stack': stack }); // by hand
    await engine.syncRepo(repo.name, { trigger: 'drift' });
    let f = await scrape();
    expect(valueOf(f, 'berth_drift_corrections_total', { stack })).toBe(1);
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBe(3);

    const first = engine.syncs.list({ stack, limit: 1000 }).rows.at(-1)!.commitSha;
    expect((await engine.rollback(stack, { to: first, actor: 'test' })).status).toBe('synced');
    const broken = await repo.commit(compose(IMAGES.webUnhealthy), { message: 'rev 3, unhealthy' });
    const pass = await engine.syncRepo(repo.name, { trigger: 'poll' }); // a new commit ends the rollback's hold
    expect(pass.stacks[0]!.status, pass.stacks[0]!.errors?.join('\n')).toBe('rolledback');
    expect(pass.commit?.sha).toBe(broken);

    f = await scrape();
    expect(valueOf(f, 'berth_rollbacks_total', { stack, kind: 'manual' })).toBe(1);
    expect(valueOf(f, 'berth_rollbacks_total', { stack, kind: 'automatic' })).toBe(1);
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBe(4);
    expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'rolledback' })).toBe(1);
    expect(valueOf(f, 'berth_sync_duration_seconds_count', { stack })).toBe(5);
    expect(valueOf(f, 'berth_rollout_duration_seconds_count', { stack, service: 'web' })).toBe(3);
    expect(valueOf(f, 'berth_audit_rows_total')).toBe(engine.audit.query({ limit: 1000 }).rows.length);
  });

  it('two servers on two engines in one process each count their own', async () => {
    const other = writeConfig([{ name: uniqueName('otherrepo'), url: repo.url }]);
    const engine2 = testEngine(other.file);
    const app2 = buildServer({ ready: () => true, engine: engine2 }, pino({ level: 'silent' }));
    try {
      const f = parseMetrics((await app2.inject({ method: 'GET', url: '/metrics' })).body);
      expect(valueOf(f, 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBeUndefined();
      expect(valueOf(f, 'berth_audit_rows_total')).toBe(0);
      expect(valueOf(await scrape(), 'berth_syncs_total', { stack, outcome: 'succeeded' })).toBe(4);
    } finally {
      await app2.close();
      engine2.close();
      other.cleanup();
    }
  });
});

describe('/readyz', () => {
  it('is 503 until the server state says ready (database open, first pass done), then 200; /healthz is 200 throughout', async () => {
    const cfg = writeConfig([]);
    const engine = testEngine(cfg.file);
    let ready = false;
    const app = buildServer({ ready: () => ready, engine }, pino({ level: 'silent' }));
    try {
      const get = async (url: string) => {
        const res = await app.inject({ method: 'GET', url });
        return [res.statusCode, res.json()];
      };
      expect(await get('/readyz')).toEqual([503, { status: 'starting' }]);
      expect(await get('/healthz')).toEqual([200, { status: 'ok' }]);
      ready = true;
      expect(await get('/readyz')).toEqual([200, { status: 'ready' }]);
    } finally {
      await app.close();
      engine.close();
      cfg.cleanup();
    }
  });
});
