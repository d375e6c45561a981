// The berth command as people use it: readable logs on a terminal (a real pseudo-terminal), exit
// codes that scripts can trust, `sync --wait` that ends only once converged, hints to paste as
// they ran berth, the branches a repo has when the configured one is missing, one config per
// data folder, and `status` as a table.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { BERTH_BIN, gitServerAndDocker, runCli, serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { formatReplicasTable, formatStatusTable } from '../src/cli/status.ts';
import { invocation } from '../src/cli/invocation.ts';
import type { StackState } from '../src/engine/status.ts';

const ctx = gitServerAndDocker();
const run = promisify(execFile);

/** A repo of its own with one stack, committed, and a config for it on the shared test daemon. */
async function stackRepo(prefix: string, compose: string, extra: Parameters<typeof writeConfig>[1] = {}) {
  const stack = uniqueName(prefix).replaceAll('-', '');
  const repo = await ctx.server.createRepo(uniqueName(`${prefix}repo`));
  await repo.commit({ [`${stack}/compose.yaml`]: compose });
  const cfg = writeConfig([{ name: repo.name, url: repo.url }], extra);
  const done = async () => {
    const list = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    await Promise.all(list.map((c) => ctx.docker.getContainer(c.Id).remove({ force: true })));
    cfg.cleanup();
  };
  return { stack, repo, cfg, done };
}

const web = (extra = '') => `services:\n  web:\n    image: ${IMAGES.webV1}\n${extra}`;

/**
 * Runs berth in a pseudo-terminal (util-linux `script`), as a person at a terminal would: what
 * the terminal shows (stdout and stderr together), and the exit code.
 */
async function onTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number; screen: string }> {
  const line = [process.execPath, BERTH_BIN, ...args].map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(' ');
  const { BERTH_LOG_JSON: _, ...rest } = process.env;
  try {
    const { stdout } = await run('script', ['-qec', line, '/dev/null'], { env: { ...rest, NO_COLOR: '1', ...env } });
    return { code: 0, screen: stdout.replaceAll('\r', '') };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, screen: (e.stdout ?? '').replaceAll('\r', '') };
  }
}

describe('logs on a terminal', () => {
  it('are one readable line each: time, level, where (stack@host, commit), message; JSON with --log-format json; fewer with --quiet, more with --verbose', async () => {
    const s = await stackRepo('tty', web());
    try {
      const { code, screen } = await onTerminal(['--config', s.cfg.file, 'sync']);
      expect(code, screen).toBe(0);
      const lines = screen.split('\n');
      expect(lines.some((l) => l.trimStart().startsWith('{'))).toBe(false); // no raw JSON
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO: ${s.stack} [0-9a-f]{7}: sync started \\{"changes":1\\}$`)),
          expect.stringMatching(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO: ${s.stack}@test [0-9a-f]{7}: container.created: web#1: missing`)),
          expect.stringMatching(new RegExp(`^  ${s.stack}: synced \\(1 container change\\(s\\), sync \\d+\\)$`)),
        ]),
      );

      const json = await onTerminal(['--config', s.cfg.file, '--log-format', 'json', 'sync']);
      const logLines = json.screen.split('\n').filter((l) => l.startsWith('{'));
      expect(logLines.length).toBeGreaterThan(0);
      expect(JSON.parse(logLines[0])).toMatchObject({ level: 30, repo: s.repo.name });

      const quiet = await onTerminal(['--config', s.cfg.file, '--quiet', 'sync']);
      expect(quiet.screen).not.toMatch(/ INFO: /);
      expect(quiet.screen).toContain(`${s.stack}: unchanged`);
      const verbose = await onTerminal(['--config', s.cfg.file, '--verbose', 'diff']);
      expect(verbose.screen).toMatch(/ DEBUG: .*: hosts observed/);
    } finally {
      await s.done();
    }
  });
});

describe('exit codes', () => {
  it('diff: 0 in sync, 1 differences, 2 an invalid stack or a host that does not answer', async () => {
    const s = await stackRepo('exits', web());
    try {
      expect((await runCli(['--config', s.cfg.file, 'diff'])).code).toBe(1);
      expect((await runCli(['--config', s.cfg.file, 'sync'])).code).toBe(0);
      expect((await runCli(['--config', s.cfg.file, 'diff'])).code).toBe(0);

      await s.repo.commit({ [`${s.stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    enviroment: { A: b }\n` });
      const invalid = await runCli(['--config', s.cfg.file, 'diff']);
      expect(invalid.code).toBe(2);
      expect(invalid.stdout).toMatch(new RegExp(`# ${s.stack}: invalid\\n.*enviroment`));
    } finally {
      await s.done();
    }
    const hosts = [
      { name: 'test', endpoint: `unix://${inject('docker').socketPath}` },
      { name: 'gone', endpoint: 'unix:///var/run/no-such-docker.sock' },
    ];
    const dark = await stackRepo('exitsdark', web(), { hosts, hostCheck: { timeout: '2s' } });
    try {
      const unreachable = await runCli(['--config', dark.cfg.file, 'diff']);
      expect(unreachable.code, unreachable.stdout + unreachable.stderr).toBe(2);
      expect(unreachable.stdout).toContain('# host gone does not answer');

      const list = await runCli(['--config', dark.cfg.file, 'hosts']);
      expect(list.code).toBe(1);
      expect(list.stdout).toMatch(/^NAME +ENDPOINT +STATE/);
      expect(list.stderr).toContain('1 of 2 host(s) not up: gone unreachable');
    } finally {
      await dark.done();
    }
    const fine = writeConfig([]);
    try {
      const up = await runCli(['--config', fine.file, 'hosts']);
      expect(up.code, up.stderr).toBe(0);
    } finally {
      fine.cleanup();
    }
  });
});

describe('sync --wait', () => {
  // healthy only once its command has run for 3 s
  const slow = web(`    command: ["sh", "-c", "trap 'exit 0' TERM; (sleep 3; touch /ready) & httpd -f -p 80 -h /www & wait"]
    healthcheck: { test: ["CMD", "test", "-f", "/ready"], interval: 1s, retries: 30 }
`);
  const health = async (stack: string) => {
    const [c] = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    return (await ctx.docker.getContainer(c.Id).inspect()).State.Health?.Status;
  };

  it('ends once every replica it created runs and is healthy, locally and through BERTH_URL', async () => {
    const local = await stackRepo('wait', slow);
    try {
      const r = await runCli(['--config', local.cfg.file, 'sync', '--wait']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`${local.stack}: synced \\(1 container change\\(s\\), running and healthy, sync \\d+\\)`));
      expect(await health(local.stack)).toBe('healthy');
    } finally {
      await local.done();
    }

    const remote = await stackRepo('waitapi', slow);
    const engine = testEngine(remote.cfg.file);
    const { app, base } = await serveEngine(engine);
    try {
      const r = await runCli(['sync', '--stack', remote.stack, '--wait'], { env: { BERTH_URL: base } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`${remote.stack}: synced \\(running and healthy, sync \\d+\\)`));
      expect(await health(remote.stack)).toBe('healthy');
    } finally {
      await app.close();
      engine.close();
      await remote.done();
    }
  });

  it('ends with why when a new replica does not get healthy', async () => {
    const s = await stackRepo('waitbad', `services:\n  web:\n    image: ${IMAGES.webUnhealthy}\n`);
    try {
      const r = await runCli(['--config', s.cfg.file, 'sync', '--wait']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/failed \(sync \d+\)\n\s+web: a new replica is not up: web\.1@test unhealthy: health check exit code 1\n/);
      // what the container showed, under it
      expect(r.stdout).toMatch(new RegExp(`\\n\\s+evidence of ${s.stack}-web-1 \\([0-9a-f]{12}\\) on test\\n\\s+health check: exit 1 \\(\\d times\\)\\n`));
    } finally {
      await s.done();
    }
  });
});

describe('hints', () => {
  it('show the command as it was run, with the same --config', async () => {
    const s = await stackRepo('hint', web());
    try {
      expect((await runCli(['--config', s.cfg.file, 'sync'])).code).toBe(0);
      expect((await runCli(['--config', s.cfg.file, 'pause', s.stack])).code).toBe(0);
      const held = await runCli(['--config', s.cfg.file, 'sync'], { env: { npm_lifecycle_event: 'berth' } });
      expect(held.stdout).toContain(`${s.stack}: paused`);
      expect(held.stdout).toContain(`then: npm run berth -- --config ${s.cfg.file} resume ${s.stack}`);
      const direct = await runCli(['-c', s.cfg.file, 'sync']);
      expect(direct.stdout).toMatch(new RegExp(`then: node \\S*bin/berth.js --config ${s.cfg.file} resume ${s.stack}`));
    } finally {
      await s.done();
    }
    expect(invocation(['resume', 'my app'], { argv: ['node', '/usr/local/bin/berth'], env: {} })).toBe("berth resume 'my app'");
  });
});

describe('a branch that does not exist', () => {
  it('is named with the branches the remote has', async () => {
    const stack = uniqueName('branch').replaceAll('-', '');
    const repo = await ctx.server.createRepo(uniqueName('branchrepo'));
    await repo.commit({ [`${stack}/compose.yaml`]: web() }, { branch: 'master' });
    await repo.commit({ [`${stack}/compose.yaml`]: web() }, { branch: 'dev' });
    const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    try {
      const r = await runCli(['--config', cfg.file, 'sync']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('branch main not found; the remote has: dev, master');
    } finally {
      cfg.cleanup();
    }
  });
});

describe('one config per data folder', () => {
  it('a second config on the same dataDir is refused, naming the one that owns it; nothing is written', async () => {
    const s = await stackRepo('owner', web());
    const other = writeConfig([{ name: s.repo.name, url: s.repo.url }], {
      dataDir: s.cfg.dataDir,
      hosts: [{ name: 'far', endpoint: 'unix:///var/run/no-such-docker.sock' }],
    });
    try {
      expect((await runCli(['--config', s.cfg.file, 'sync', '--wait'])).code).toBe(0);
      const before = readFileSync(`${s.cfg.dataDir}/berth.db`);
      const refused = await runCli(['--config', other.file, 'sync']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(
        `the data folder ${s.cfg.dataDir} holds the state of another config (${s.cfg.file}); give ${other.file} a dataDir of its own`,
      );
      expect(readFileSync(`${s.cfg.dataDir}/berth.db`).equals(before)).toBe(true);
      const status = await runCli(['--config', s.cfg.file, 'status']);
      expect(status.stdout).toMatch(new RegExp(`${s.stack} +${s.repo.name} +Synced +Healthy`));
    } finally {
      other.cleanup();
      await s.done();
    }
  });
});

describe('berth status', () => {
  it('is a table with a header, aligned columns and the last sync always shown', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    const state = (over: Partial<StackState>): StackState => ({
      name: 'web',
      repo: 'apps',
      sync: 'Synced',
      health: 'Healthy',
      replicas: [{ service: 'web', slot: 1, host: 'h1', state: 'running' }],
      ...over,
    });
    const out = formatStatusTable(
      [
        state({ commit: 'a3f1c9e0d', lastSync: { id: 3, outcome: 'ok', commit: 'a3f1c9e0d', at: '2026-12-02T09:57:00Z' } }),
        state({
          name: 'payments-api',
          sync: 'OutOfSync',
          condition: 'RolledBack',
          reason: 'web: rolled back: unhealthy',
          lastSync: { id: 4, outcome: 'rolledback', commit: 'b', at: '2026-12-02T07:00:00Z' },
        }),
        state({ name: 'new', sync: 'OutOfSync', health: 'Missing', replicas: [{ service: 'web', slot: 1, host: 'h1', state: 'missing' }] }),
      ],
      now,
    );
    expect(out).toBe(
      [
        'STACK         REPO  SYNC       HEALTH   COMMIT   REPLICAS     LAST SYNC            NOTE',
        'web           apps  Synced     Healthy  a3f1c9e  1/1 running  ok 3 m ago',
        'payments-api  apps  OutOfSync  Healthy  -        1/1 running  rolled back 3 h ago  RolledBack',
        'new           apps  OutOfSync  Missing  -        0/1 running  never',
        '',
        'payments-api: web: rolled back: unhealthy',
      ].join('\n'),
    );
    const digest = `sha256:${'ab12'.repeat(16)}`;
    const replicas = formatReplicasTable(
      state({
        replicas: [
          {
            service: 'web',
            slot: 1,
            host: 'h1',
            state: 'running',
            health: 'healthy',
            container: 'c'.repeat(64),
            image: `ghcr.io/acme/web:1.4@${digest}`,
            digest,
          },
          { service: 'web', slot: 2, host: 'h2', state: 'missing' },
        ],
      }),
    );
    expect(replicas).toBe(
      [
        'SERVICE  REPLICA  HOST  STATE    HEALTH   IMAGE                                     CONTAINER',
        'web      #1       h1    running  healthy  ghcr.io/acme/web:1.4@sha256:ab12ab12ab12  cccccccccccc',
        'web      #2       h2    missing  -        -                                         -',
      ].join('\n'),
    );
  });

  it('prints the table from a real engine, and --json', async () => {
    const s = await stackRepo('status', web());
    try {
      expect((await runCli(['--config', s.cfg.file, 'sync', '--wait'])).code).toBe(0);
      const table = await runCli(['--config', s.cfg.file, 'status']);
      const [header, row] = table.stdout.split('\n');
      expect(header).toMatch(/^STACK +REPO +SYNC +HEALTH +COMMIT +REPLICAS +LAST SYNC +NOTE$/);
      expect(row).toMatch(new RegExp(`^${s.stack} +${s.repo.name} +Synced +Healthy +[0-9a-f]{7} +1/1 running +ok \\d+ s ago$`));
      expect(header.indexOf('LAST SYNC')).toBe(row.indexOf('ok '));
      const json = JSON.parse((await runCli(['--config', s.cfg.file, 'status', '--json'])).stdout) as StackState[];
      expect(json[0].lastSync).toMatchObject({ outcome: 'ok' });
    } finally {
      await s.done();
    }
  });
});
