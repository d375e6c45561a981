// The evidence of a failed step and the progress of a rollout as plain data: the first telling
// line, the summary, masking and bounding (src/apply/evidence.ts); a container's log stream as lines
// (src/observe/container-logs.ts); the replica counts and the step lines (src/engine/progress.ts);
// what `berth sync --wait` prints (src/cli/progress.ts); the event stream's parsing
// (src/cli/client.ts); the notifications' text; the audit rows that hold evidence.
import type { AuditRow } from '../src/audit/log.ts';
import { describe, expect, it } from 'vitest';
import { bound, buildEvidence, EVIDENCE_MAX_BYTES, tellingLine, type Evidence, type FailureFacts } from '../src/apply/evidence.ts';
import type { StepEvent } from '../src/apply/execute.ts';
import { redact } from '../src/apply/job.ts';
import { openDatabase } from '../src/audit/db.ts';
import { AuditLog } from '../src/audit/log.ts';
import { parseEventStream } from '../src/cli/client.ts';
import { evidenceLines, ProgressPrinter } from '../src/cli/progress.ts';
import type { StackPlan } from '../src/diff/plan.ts';
import type { SyncEvent } from '../src/engine/events.ts';
import { progressLine, RolloutProgress, stepLine } from '../src/engine/progress.ts';
import { eventOf, type NotificationEvent } from '../src/notify/events.ts';
import { commitStatus, slackMessage, webhookBody } from '../src/notify/targets.ts';
import { isMultiplexed, logLines, logText } from '../src/observe/container-logs.ts';

const facts = (over: Partial<FailureFacts>): FailureFacts => ({
  host: 'h1',
  service: 'web',
  slot: 1,
  container: 'app-web-1',
  id: 'a1b2c3d4e5f6a7b8c9d0',
  code: 'exited',
  reason: 'it exited with code 3',
  logs: [],
  ...over,
});
const same = (text: string) => text;
const stopped = (ExitCode: number, OOMKilled = false) => ({ Running: false, ExitCode, OOMKilled });

describe('the evidence of a failure', () => {
  it('killed for memory: says OOM-killed, whatever it printed', () => {
    const e = buildEvidence(facts({ state: stopped(137, true), logs: ['allocating', 'still allocating'] }), same);
    expect(e).toEqual({
      container: 'app-web-1',
      id: 'a1b2c3d4e5f6',
      host: 'h1',
      service: 'web',
      slot: 1,
      cause: 'oom',
      exitCode: 137,
      oomKilled: true,
      health: [],
      logs: ['allocating', 'still allocating'],
      telling: 'OOM-killed',
      summary: 'web.1@h1 exited 137 (OOM-killed)',
    });
  });

  it('exited: its last non-empty line of output; none: only the code', () => {
    const e = buildEvidence(facts({ state: stopped(3), logs: ['starting', 'boom: the disk is full', '', '   '] }), same);
    expect(e).toMatchObject({
      cause: 'exited',
      exitCode: 3,
      oomKilled: false,
      telling: 'boom: the disk is full',
      summary: 'web.1@h1 exited 3: boom: the disk is full',
    });
    expect(buildEvidence(facts({ state: stopped(1) }), same).summary).toBe('web.1@h1 exited 1');
    expect(
      buildEvidence(facts({ code: 'restarted', reason: 'it restarted', state: { Running: true, ExitCode: 0, OOMKilled: false }, logs: ['x', 'crash'] }), same)
        .summary,
    ).toBe('web.1@h1 restarted: crash');
  });

  it("unhealthy: the first non-empty line of the health check's last output, else its exit code; it runs, so no exit code of its own", () => {
    const Health = {
      Log: [
        { ExitCode: 0, Output: 'ok\n' },
        { ExitCode: 7, Output: '\n  curl: (7) Failed to connect to localhost port 80\nafter 0 ms\n' },
      ],
    };
    const e = buildEvidence(facts({ code: 'unhealthy', reason: 'unhealthy: ...', state: { Running: true, ExitCode: 0, OOMKilled: false, Health } }), same);
    expect(e).toMatchObject({
      cause: 'unhealthy',
      health: [
        { exitCode: 0, output: 'ok' },
        { exitCode: 7, output: '\n  curl: (7) Failed to connect to localhost port 80\nafter 0 ms' },
      ],
      telling: 'curl: (7) Failed to connect to localhost port 80',
      summary: 'web.1@h1 unhealthy: health check: curl: (7) Failed to connect to localhost port 80',
    });
    expect(e.exitCode).toBeUndefined();
    const silent = { Running: true, ExitCode: 0, OOMKilled: false, Health: { Log: [{ ExitCode: 1, Output: '' }] } };
    expect(buildEvidence(facts({ code: 'unhealthy', state: silent }), same).summary).toBe('web.1@h1 unhealthy: health check exit code 1');
  });

  it('not ready in time: why, and the failing health check when there is one', () => {
    const Health = { Log: [{ ExitCode: 1, Output: 'not yet: waiting for the database' }] };
    const slow = buildEvidence(
      facts({ code: 'timeout', reason: 'not healthy after 40 s (starting)', state: { Running: true, ExitCode: 0, OOMKilled: false, Health } }),
      same,
    );
    expect(slow.summary).toBe('web.1@h1 not healthy after 40 s (starting): health check: not yet: waiting for the database');
    const plain = buildEvidence(facts({ code: 'timeout', reason: 'not running after 61 s (created)' }), same);
    expect(plain).toMatchObject({ telling: 'not running after 61 s (created)', summary: 'web.1@h1 not running after 61 s (created)' });
    expect(buildEvidence(facts({ code: 'gone', reason: 'the container is gone' }), same).summary).toBe('web.1@h1: the container is gone');
  });

  it("could not start: the daemon's words, and the exit code Docker gave the container when it made one", () => {
    const error = 'failed to create task for container: exec: "/no/such/program": stat /no/such/program: no such file or directory: unknown';
    const e = buildEvidence(facts({ code: 'start-error', reason: `start container app-web-1 on h1: ${error}`, error, state: stopped(127) }), same);
    expect(e).toMatchObject({ cause: 'start-error', exitCode: 127, error, telling: error, summary: `web.1@h1 did not start: ${error}` });
    const never = buildEvidence(facts({ code: 'start-error', id: undefined, reason: 'Bind for 0.0.0.0:80 failed: port is already allocated' }), same);
    expect(never).toMatchObject({ summary: 'web.1@h1 did not start: Bind for 0.0.0.0:80 failed: port is already allocated' });
    expect(never.id).toBeUndefined();
    expect(never.exitCode).toBeUndefined();
  });

  it("masks secret-looking values everywhere, as a failed container's output is masked", () => {
    const env = ['DB_PASSWORD=hunter2-pw-77', 'DATABASE_URL=postgres://app:s3cret-in-url@db/app', 'PLAIN=visible-value'];
    const mask = (t: string) => redact(t, env, ['file-secret-4e2a']);
    const e = buildEvidence(
      facts({
        code: 'unhealthy',
        reason: 'unhealthy',
        state: { Running: true, ExitCode: 0, OOMKilled: false, Health: { Log: [{ ExitCode: 1, Output: 'login hunter2-pw-77 refused' }] } },
        logs: ['connecting to postgres://app:s3cret-in-url@db/app', 'key file-secret-4e2a', 'PLAIN is visible-value'],
        error: 'said hunter2-pw-77',
      }),
      mask,
    );
    const text = JSON.stringify(e);
    for (const secret of ['hunter2-pw-77', 's3cret-in-url', 'file-secret-4e2a']) expect(text).not.toContain(secret);
    expect(e.logs).toEqual(['connecting to <masked>', 'key <masked>', 'PLAIN is visible-value']);
    expect(e.summary).toBe('web.1@h1 unhealthy: health check: login <masked> refused');
  });

  it('is bounded: the oldest lines go first, the newest and the summary stay', () => {
    const logs = Array.from({ length: 50 }, (_, i) => `line ${i} ${'x'.repeat(400)}`);
    const e = buildEvidence(facts({ state: stopped(2), logs }), same);
    expect(Buffer.byteLength(JSON.stringify(e))).toBeLessThanOrEqual(EVIDENCE_MAX_BYTES);
    expect(e.truncated).toBe(true);
    expect(e.logs.at(-1)).toBe(logs.at(-1));
    expect(e.logs.length).toBeLessThan(50);
    expect(e.logs[0]).toBe(logs[50 - e.logs.length]);
    expect(e.summary).toMatch(/^web\.1@h1 exited 2: line 49 x+/);
    // a single huge line, and huge health outputs, are cut too
    const huge = buildEvidence(
      facts({
        code: 'unhealthy',
        state: {
          Running: true,
          ExitCode: 0,
          OOMKilled: false,
          Health: { Log: Array.from({ length: 5 }, () => ({ ExitCode: 1, Output: 'y'.repeat(50_000) })) },
        },
        logs: ['z'.repeat(100_000)],
      }),
      same,
    );
    expect(Buffer.byteLength(JSON.stringify(huge))).toBeLessThanOrEqual(EVIDENCE_MAX_BYTES);
    expect(huge.telling.length).toBeLessThanOrEqual(300);
    const small: Evidence = buildEvidence(facts({ state: stopped(1), logs: ['one'] }), same);
    expect(bound(small)).toBe(small);
    expect(small.truncated).toBeUndefined();
  });

  it('the telling line of an evidence as stored', () => {
    expect(tellingLine({ cause: 'exited', oomKilled: true, health: [], logs: ['x'] })).toBe('OOM-killed');
    expect(tellingLine({ cause: 'start-error', oomKilled: false, health: [], logs: [], error: '\nport is already allocated\nmore' })).toBe(
      'port is already allocated',
    );
  });
});

describe("a container's log stream", () => {
  const frame = (stream: number, text: string) => {
    const payload = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(payload.length, 4);
    return Buffer.concat([head, payload]);
  };

  it('takes multiplexed frames apart (stdout and stderr as they came), and reads a TTY stream as it is', () => {
    const muxed = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err two\r\n'), frame(1, 'out three\n\n')]);
    expect(isMultiplexed(muxed)).toBe(true);
    expect(logLines(logText(muxed))).toEqual(['out one', 'err two', 'out three']);
    const tty = Buffer.from('plain\r\nterminal output\n');
    expect(isMultiplexed(tty)).toBe(false);
    expect(logLines(logText(tty))).toEqual(['plain', 'terminal output']);
    expect(logLines('')).toEqual([]);
  });
});

/** A plan's actions as RolloutProgress reads them: web replaced on two hosts, api created, old removed. */
const plan = {
  actions: [
    { kind: 'replace', service: 'web', slot: 1, host: 'h1', live: { specHash: 'aaaaaaa111' }, desired: { specHash: 'bbbbbbb222' } },
    { kind: 'replace', service: 'web', slot: 2, host: 'h2', live: { specHash: 'aaaaaaa111' }, desired: { specHash: 'bbbbbbb222' } },
    { kind: 'create', service: 'api', slot: 1, host: 'h1', desired: { specHash: 'ccccccc333' } },
    { kind: 'create', service: 'migrate', slot: 1, host: 'h1', desired: { specHash: 'ddddddd444', job: { kind: 'replicated-job' } } },
    { kind: 'remove', service: 'old', slot: 1, host: 'h1', live: { specHash: 'eeeeeee555', id: 'o1' } },
    { kind: 'keep', service: 'db', slot: 1, host: 'h1', live: { specHash: 'fffffff666' } },
  ],
} as unknown as Pick<StackPlan, 'actions'>;

const at = (service: string, slot: number, host: string) => ({ service, slot, host });

describe("a rollout's progress", () => {
  it('counts per service the replicas it changes (not jobs, not those it keeps or removes): updated once ready, failed when one fails', () => {
    const p = new RolloutProgress(plan);
    expect(p.services()).toEqual([
      { service: 'web', total: 2, updated: 0, failed: 0 },
      { service: 'api', total: 1, updated: 0, failed: 0 },
    ]);
    const steps = [
      p.progress({ ...at('web', 1, 'h1'), kind: 'replica.stopped', container: 'old000000001xx', rollback: false }, 0),
      p.progress({ ...at('web', 1, 'h1'), kind: 'replica.started', container: 'new000000001xx', rollback: false }, 1000),
      p.progress({ ...at('web', 1, 'h1'), kind: 'replica.ready', container: 'new000000001xx', health: 'healthy', rollback: false }, 4120),
      p.progress({ ...at('api', 1, 'h1'), kind: 'replica.started', container: 'api000000001', rollback: false }, 5000),
      p.progress({ ...at('api', 1, 'h1'), kind: 'replica.ready', container: 'api000000001', health: 'running', rollback: false }, 5000),
    ];
    expect(steps.map(stepLine)).toEqual([
      'web.1@h1 stopped aaaaaaa',
      'web.1@h1 started bbbbbbb',
      'web.1@h1 healthy bbbbbbb (3.1 s)',
      'api.1@h1 started ccccccc',
      'api.1@h1 running ccccccc (0 s)',
    ]);
    expect(steps[2]).toMatchObject({ container: 'new000000001', seconds: 3.1 });
    expect(p.services()).toEqual([
      { service: 'web', total: 2, updated: 1, failed: 0 },
      { service: 'api', total: 1, updated: 1, failed: 0 },
    ]);

    const failed = p.step(
      {
        ...at('web', 2, 'h2'),
        kind: 'container.unhealthy',
        containerAfter: 'n2',
        reason: 'it exited with code 137',
        evidence: { summary: 'web.2@h2 exited 137 (OOM-killed)' } as Evidence,
      },
      6000,
    );
    expect(failed).toMatchObject({ step: 'failed', spec: 'bbbbbbb', summary: 'web.2@h2 exited 137 (OOM-killed)' });
    expect(stepLine(failed!)).toBe('web.2@h2 exited 137 (OOM-killed)');
    expect(p.services()[0]).toEqual({ service: 'web', total: 2, updated: 1, failed: 1 });
    expect(progressLine(p.services()[0]!)).toBe('web 1/2 updated, 1 failed');

    // the rollback puts the first replica's old container back: no longer counted as updated
    expect(p.step({ kind: 'rollback.started', service: 'web', reason: 'x' }, 0)).toBeUndefined();
    const back = p.step(
      {
        ...at('web', 1, 'h1'),
        kind: 'container.restored',
        containerBefore: 'n1',
        containerAfter: 'old000000001',
        reason: 'rollback',
        failed: false,
      },
      10_000,
    );
    expect(back).toMatchObject({ step: 'restored', spec: 'aaaaaaa', rollback: true });
    // the failed replica's old container back too: it stays counted as failed
    p.step(
      { ...at('web', 2, 'h2'), kind: 'container.restored', containerBefore: 'n2', containerAfter: 'old000000002', reason: 'rollback', failed: false },
      10_000,
    );
    // its readiness is timed from the restore
    expect(stepLine(p.progress({ ...at('web', 1, 'h1'), kind: 'replica.ready', container: 'old000000001', health: 'healthy', rollback: true }, 11_500))).toBe(
      'web.1@h1 healthy aaaaaaa (1.5 s)',
    );
    expect(p.services()[0]).toEqual({ service: 'web', total: 2, updated: 0, failed: 1, rollingBack: true });
    expect(progressLine(p.services()[0]!)).toBe('web 0/2 updated, 1 failed, rolling back');
    expect(stepLine(p.progress({ ...at('web', 2, 'h2'), kind: 'replica.started', container: 'x', rollback: true }, 0))).toBe(
      'web.2@h2 started (rollback) aaaaaaa',
    );

    const removed = p.step({ ...at('old', 1, 'h1'), kind: 'container.removed', containerBefore: 'o1', reason: 'unwanted' } as StepEvent, 0);
    expect(stepLine(removed!)).toBe('old.1@h1 removed eeeeeee');
    expect(p.step({ kind: 'rollout.failed', service: 'web', reason: 'x' }, 0)).toBeUndefined();
  });
});

/** A terminal that keeps what is written. */
const terminal = (isTTY: boolean) => {
  const out = { text: '', isTTY, columns: 60, write: (t: string) => (out.text += t) };
  return out;
};
const services = (updated: number) => [{ service: 'web', total: 2, updated, failed: 0 }];
const events: SyncEvent[] = [
  { id: 1, stack: 'other', phase: 'progress', replica: { ...at('web', 1, 'h9'), step: 'started' }, services: services(0) }, // began before: not ours
  { id: 7, stack: 'app', phase: 'started' },
  { id: 7, stack: 'app', phase: 'progress', services: services(0) },
  { id: 7, stack: 'app', phase: 'progress', replica: { ...at('web', 1, 'h1'), step: 'started', spec: 'bbbbbbb' }, services: services(0) },
  { id: 7, stack: 'app', phase: 'progress', replica: { ...at('web', 1, 'h1'), step: 'healthy', spec: 'bbbbbbb', seconds: 3.1 }, services: services(1) },
  { id: 7, stack: 'app', phase: 'finished', outcome: 'succeeded' },
];

describe('berth sync --wait as it runs', () => {
  it('not on a terminal: one line per replica step of its own syncs', async () => {
    const out = terminal(false);
    const p = new ProgressPrinter(out);
    for (const e of events) p.handle(e);
    await p.end();
    expect(out.text).toBe('  app: web.1@h1 started bbbbbbb\n  app: web.1@h1 healthy bbbbbbb (3.1 s)\n');
    expect(p.live).toBe(false);
  });

  it('on a terminal: a line per service under the steps, redrawn in place, cleared at the end', async () => {
    const out = terminal(true);
    const p = new ProgressPrinter(out);
    for (const e of events) p.handle(e);
    await p.end();
    expect(out.text).toBe(
      [
        '  app/web 0/2 updated\n', // the first counts
        '\x1b[1F\x1b[J  app: web.1@h1 started bbbbbbb\n  app/web 0/2 updated\n',
        '\x1b[1F\x1b[J  app: web.1@h1 healthy bbbbbbb (3.1 s)\n  app/web 1/2 updated\n',
        '\x1b[1F\x1b[J', // finished: the line goes
      ].join(''),
    );
  });

  it('--json: one object per step; another stack is left out when one was asked for', async () => {
    const out = terminal(true);
    const p = new ProgressPrinter(out, { json: true, stacks: ['app'] });
    for (const e of [...events, { ...events[1]!, stack: 'else', id: 9 }, { ...events[3]!, stack: 'else', id: 9 }]) p.handle(e);
    await p.end();
    const lines = out.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { type: 'step', syncId: 7, stack: 'app', service: 'web', slot: 1, host: 'h1', step: 'started', spec: 'bbbbbbb' },
      { type: 'step', syncId: 7, stack: 'app', service: 'web', slot: 1, host: 'h1', step: 'healthy', spec: 'bbbbbbb', seconds: 3.1 },
    ]);
  });

  it('waits, once the command has its answer, for the end of a sync whose events are still on their way', async () => {
    const out = terminal(false);
    const p = new ProgressPrinter(out);
    p.handle(events[1]!);
    const ended = p.end();
    p.handle(events[3]!);
    p.handle(events[5]!);
    await ended;
    expect(out.text).toBe('  app: web.1@h1 started bbbbbbb\n');
  });

  it('prints the evidence of a failure under it', () => {
    const e = buildEvidence(
      facts({
        code: 'unhealthy',
        state: {
          Running: true,
          ExitCode: 0,
          OOMKilled: false,
          Health: {
            Log: [
              { ExitCode: 0, Output: 'ok' },
              { ExitCode: 1, Output: 'no db\n' },
              { ExitCode: 1, Output: 'no db' },
            ],
          },
        },
        logs: Array.from({ length: 12 }, (_, i) => `log ${i}`),
      }),
      same,
    );
    expect(evidenceLines(e, 2)).toEqual([
      'evidence of app-web-1 (a1b2c3d4e5f6) on h1',
      '  health check: exit 0: ok',
      '  health check: exit 1: no db (2 times)',
      '  last output (last 2 of 12):',
      '    log 10',
      '    log 11',
    ]);
    expect(evidenceLines(buildEvidence(facts({ state: stopped(137, true) }), same))[0]).toBe(
      'evidence of app-web-1 (a1b2c3d4e5f6) on h1: exit code 137, OOM-killed (its memory limit)',
    );
  });
});

describe('the event stream, read by the CLI through BERTH_URL', () => {
  it('is split into messages: comments skipped, data lines joined, an unfinished one kept for later', () => {
    const { messages, rest } = parseEventStream(
      ': berth events\nretry: 3000\n\nevent: sync\ndata: {"id":1}\n\n: keep-alive\n\nevent: audit\ndata: a\ndata: b\n\nevent: sy',
    );
    expect(messages).toEqual([
      { event: 'sync', data: '{"id":1}' },
      { event: 'audit', data: 'a\nb' },
    ]);
    expect(rest).toBe('event: sy');
    expect(parseEventStream(`${rest}nc\r\ndata: {}\r\n\r\n`).messages).toEqual([{ event: 'sync', data: '{}' }]);
  });
});

describe('notifications with evidence', () => {
  const evidence = buildEvidence(facts({ state: stopped(137, true) }), same);
  const ev: NotificationEvent = {
    event: 'rollout.rolledback',
    outcome: 'failure',
    stack: 'app',
    commit: { sha: '1a2b3c4d5e6f708192a3b4c5d6e7f80912345678' },
    reason: 'web: rolled back: 1 of 2 replica(s) failed (batch 1 of 1): web.1@h1 exited 137 (OOM-killed)',
    evidence,
    syncId: 4,
    time: '2026-05-01T10:00:00.000Z',
    auditId: 9,
  };

  it("take it from the sync's record, and say its summary first", () => {
    const row: AuditRow = {
      id: 9,
      time: ev.time,
      kind: 'sync.failed',
      stack: 'app',
      syncId: 4,
      actor: 'berth',
      outcome: 'error',
      message: ev.reason,
      prevHash: '',
      hash: '',
    };
    expect(eventOf(row, { commitSha: ev.commit!.sha, result: 'rolledback', evidence })).toMatchObject({ event: 'rollout.rolledback', evidence });
    expect(slackMessage(ev, { id: 1, count: 1 }).text).toBe('app: the rollout of 1a2b3c4 failed and was rolled back: web.1@h1 exited 137 (OOM-killed)');
    expect(commitStatus(ev, undefined)?.description).toBe('Rolled back: web.1@h1 exited 137 (OOM-killed)');
    expect(webhookBody(ev, { id: 1, count: 1 }).evidence).toEqual(evidence);
  });
});

describe('audit rows with evidence', () => {
  it('hash it with the row: the chain holds, and an edit of the evidence shows', () => {
    const db = openDatabase(':memory:');
    const log = new AuditLog(db);
    log.append({ kind: 'sync.started', stack: 'app' });
    const evidence = buildEvidence(facts({ state: stopped(3), logs: ['boom'] }), same);
    const stored = log.append({
      kind: 'container.unhealthy',
      stack: 'app',
      service: 'web',
      outcome: 'error',
      message: 'web#1: it exited with code 3',
      evidence,
    });
    log.append({ kind: 'sync.failed', stack: 'app' });
    expect(stored.evidence).toEqual(evidence);
    expect(log.query({ kind: 'container.unhealthy' }).rows[0]?.evidence).toEqual(evidence);
    expect(log.verify()).toEqual({ ok: true, rows: 3 });
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare('UPDATE audit SET evidence = ? WHERE id = 2').run(JSON.stringify({ ...evidence, logs: ['all fine'] }));
    expect(log.verify()).toMatchObject({ ok: false, badRow: 2 });
    db.close();
  });
});
