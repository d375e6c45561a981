// The evidence of a failed rollout step, on a real daemon: a replica that exits, one whose health
// check fails saying why, one killed for memory, one whose entrypoint does not exist. Each time the
// failing container is read before it goes, and what it showed (the telling line first) is in the
// failing step's audit row, the sync's record through the API, the stack's reason, the output of
// `berth sync --wait` (the CLI as a process) and the notification; a secret the container printed is
// masked, and the evidence is bounded (docs/how-it-works.md, "Evidence of a failure").
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVIDENCE_MAX_BYTES, type Evidence } from '../src/apply/evidence.ts';
import type { AuditRow } from '../src/audit/log.ts';
import type { SyncView } from '../src/engine/ops.ts';
import type { StackView } from '../src/engine/ops.ts';
import { auditRows, gitServerAndDocker, runCli, serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { startReceiver, type Receiver } from './harness/receiver.ts';

const ctx = gitServerAndDocker();
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => receiver?.close());

const good = (extra = '') => `services:
  web:
    image: ${IMAGES.webV1}
${extra}    deploy:
      replicas: 1
`;

interface Failure {
  stack: string;
  /** `berth sync --wait`'s exit code and output */
  cli: { code: number | null; stdout: string; stderr: string };
  /** the sync's record, as GET /api/v1/syncs/:id answers */
  sync: SyncView;
  /** the stack, as GET /api/v1/stacks/:name answers */
  view: StackView;
  /** the failing step's audit row: the one with evidence */
  row: AuditRow;
  /** the Slack message's text the failure was told with */
  notified: string;
}

/**
 * A stack of its own synced at `good()`, then at `next` by `berth sync --wait` (a process); what the
 * failure left: the CLI's output, the sync record and the stack through the API, the audit row with
 * the evidence, the Slack notification's text.
 */
async function failingRollout(prefix: string, next: string): Promise<Failure> {
  const stack = uniqueName(prefix).replaceAll('-', '');
  const repo = await ctx.server.createRepo(uniqueName(`${prefix}repo`));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
    notifications: [{ name: 'chat', type: 'slack', urlFile: 'slack.url', events: ['rollout.paused', 'rollout.rolledback', 'sync.failed'] }],
  });
  writeFileSync(join(cfg.dir, 'slack.url'), `${receiver.url}/slack/${stack}\n`);
  const engine = testEngine(cfg.file);
  const { app, base } = await serveEngine(engine);
  try {
    await repo.commit({ [`${stack}/compose.yaml`]: good() });
    expect((await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks[0]?.status).toBe('synced');
    await repo.commit({ [`${stack}/compose.yaml`]: next });
    const cli = await runCli(['--config', cfg.file, 'sync', '--wait']);
    const latest = engine.syncs.latest(repo.name, stack)!;
    const get = async <T>(path: string) => (await (await fetch(`${base}/api/v1${path}`)).json()) as T;
    const sync = await get<SyncView>(`/syncs/${latest.id}`);
    const view = await get<StackView>(`/stacks/${stack}`);
    const row = auditRows(engine, stack).find((r) => r.evidence !== undefined)!;
    // the CLI queued the notification; this engine sends what is pending
    engine.startNotifications();
    const [message] = await receiver.waitForRequests(1, (r) => r.path === `/slack/${stack}`);
    return { stack, cli, sync, view, row, notified: (JSON.parse(message!.body) as { text: string }).text };
  } finally {
    await app.close();
    engine.close();
    await removeContainers(ctx.docker, { 'berth.stack': stack });
    cfg.cleanup();
  }
}

/** Checks what every failure keeps: the same evidence everywhere, its summary in the reason, the CLI's output and the notification. */
function expectKept(f: Failure, summary: string | RegExp, telling: string | RegExp): Evidence {
  const evidence = f.sync.evidence!;
  expect(evidence, `${f.cli.stdout}\n${f.cli.stderr.slice(-3000)}`).toBeDefined();
  expect(evidence.summary).toMatch(summary);
  expect(evidence.telling).toMatch(telling);
  expect(evidence).toMatchObject({ container: `${f.stack}-web-1`, host: 'test', service: 'web', slot: 1 });
  expect(Buffer.byteLength(JSON.stringify(evidence))).toBeLessThanOrEqual(EVIDENCE_MAX_BYTES);
  // the failing step's audit row holds the same, and the sync's steps through the API show it
  expect(f.row.evidence).toEqual(evidence);
  expect(f.sync.steps.find((s) => s.id === f.row.id)?.evidence).toEqual(evidence);
  // the stack's reason names the replica and the telling line
  expect(f.view.reason).toContain(evidence.summary);
  // berth sync --wait said it, with the evidence under it
  expect(f.cli.code).toBe(1);
  expect(f.cli.stdout).toContain(evidence.summary);
  expect(f.cli.stdout).toContain(`evidence of ${evidence.container}`);
  // and so did the notification, first
  expect(f.notified).toContain(`: ${evidence.summary}`);
  return evidence;
}

describe.concurrent('the evidence of a failed rollout step', () => {
  it('a replica that exits: its last line, the secret it printed masked, bounded', async () => {
    const noise = 'n'.repeat(200);
    const f = await failingRollout(
      'evexit',
      good(`    command: ["sh", "-c", "echo \\"token is $$API_TOKEN\\"; for i in $$(seq 1 80); do echo \\"noise $$i ${noise}\\"; done; echo 'fatal: config file /etc/app.conf is missing'; exit 3"]
    environment:
      API_TOKEN: tok-9f8e7d-secret-value
`).replace('replicas: 1', 'replicas: 1\n      update_config: { failure_action: rollback }'),
    );
    const e = expectKept(f, 'web.1@test exited 3: fatal: config file /etc/app.conf is missing', 'fatal: config file /etc/app.conf is missing');
    expect(e).toMatchObject({ cause: 'exited', exitCode: 3, oomKilled: false, truncated: true });
    expect(e.logs.at(-1)).toBe('fatal: config file /etc/app.conf is missing');
    expect(e.logs.length).toBeLessThan(50);
    expect(f.view.condition).toBe('RolledBack');
    expect(f.sync.result).toBe('rolledback');
    // the secret: masked in what berth kept (the token line was cut as the oldest; the step's message kept its masked tail)
    const kept = JSON.stringify([f.sync, f.view, f.row, f.cli.stdout, f.notified]);
    expect(kept).not.toContain('tok-9f8e7d-secret-value');
  });

  it('a secret printed by a failing replica is masked in its evidence', async () => {
    const f = await failingRollout(
      'evsecret',
      good(`    command: ["sh", "-c", "echo \\"connecting as $$DB_URL\\"; echo \\"password $$DB_PASSWORD\\"; echo 'giving up'; exit 4"]
    environment:
      DB_PASSWORD: pw-5c4b3a-hidden
      DB_URL: postgres://app:url-secret-77@db/app
`),
    );
    const e = expectKept(f, 'web.1@test exited 4: giving up', 'giving up');
    expect(e.logs).toEqual(['connecting as <masked>', 'password <masked>', 'giving up']);
    const kept = JSON.stringify([f.sync, f.view, f.row, f.cli.stdout, f.notified]);
    expect(kept).not.toContain('pw-5c4b3a-hidden');
    expect(kept).not.toContain('url-secret-77');
    expect(f.view.condition).toBe('Paused');
  });

  it("a replica whose health check fails: the check's own words, its secret masked", async () => {
    const f = await failingRollout(
      'evhealth',
      good(`    environment:
      DB_PASSWORD: hc-2b1a-hidden
    healthcheck:
      test: ["CMD-SHELL", "echo 'db check: connection refused (db:5432)'; echo \\"tried with $$DB_PASSWORD\\"; exit 1"]
      interval: 1s
      timeout: 1s
      retries: 2
`),
    );
    const e = expectKept(f, 'web.1@test unhealthy: health check: db check: connection refused (db:5432)', 'db check: connection refused (db:5432)');
    expect(e.cause).toBe('unhealthy');
    expect(e.health.length).toBeGreaterThanOrEqual(2);
    expect(e.health.at(-1)).toEqual({ exitCode: 1, output: 'db check: connection refused (db:5432)\ntried with <masked>' });
    expect(JSON.stringify([f.sync, f.row, f.cli.stdout])).not.toContain('hc-2b1a-hidden');
    expect(f.cli.stdout).toContain('health check: exit 1: db check: connection refused (db:5432)');
  });

  it('a replica killed for memory: OOM-killed', async () => {
    // it runs a moment (so that it starts), then builds a string far over its 8 MiB limit
    const f = await failingRollout(
      'evoom',
      good(`    command: ["sh", "-c", "echo 'filling memory'; sleep 1; x=$$(head -c 67108864 /dev/zero | tr '\\\\0' a); echo done"]
    mem_limit: 8m
`),
    );
    const e = expectKept(f, 'web.1@test exited 137 (OOM-killed)', 'OOM-killed');
    expect(e).toMatchObject({ cause: 'oom', oomKilled: true, exitCode: 137 });
    expect(f.cli.stdout).toContain('OOM-killed (its memory limit)');
  });

  it("a replica whose entrypoint does not exist: the daemon's words; the old container runs again", async () => {
    const f = await failingRollout('evstart', good('    entrypoint: ["/no/such/program"]\n'));
    const e = expectKept(f, /^web\.1@test did not start: .*\/no\/such\/program.*no such file or directory/, /\/no\/such\/program/);
    expect(e.cause).toBe('start-error');
    expect(e.error).toMatch(/no such file or directory/);
    expect(f.row.kind).toBe('container.restored');
  });
});
