// A rollout as it runs, on a real daemon: `berth sync --wait` prints a line per replica step (the CLI
// as a process, locally and through BERTH_URL, text and --json), /metrics has the running
// rollout's replica gauges and drops them once it ends, and the dashboard's sync page shows the
// steps and the replica counts as they come (Debian's Chromium; a screenshot in the test's temp folder).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { SyncReport } from '../src/engine/ops.ts';
import { BERTH_BIN, gitServerAndDocker, runCli, serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';

const ctx = gitServerAndDocker();
const CHROMIUM = '/usr/bin/chromium';
const run = promisify(execFile);

/** Two replicas, one at a time; each new one is healthy only `slow` seconds after it starts. */
const web = (image: string, slow = 0) => `services:
  web:
    image: ${image}
${
  slow
    ? `    command: ["sh", "-c", "trap 'exit 0' TERM; (sleep ${slow}; touch /ready) & httpd -f -p 80 -h /www & wait"]
    healthcheck: { test: ["CMD", "test", "-f", "/ready"], interval: 1s, retries: 60 }
`
    : ''
}    deploy:
      replicas: 2
      update_config: { parallelism: 1 }
`;

/** A stack of its own at v1 (synced), with a config and an in-process engine; `next` commits the next version. */
async function rollout(prefix: string) {
  const stack = uniqueName(prefix).replaceAll('-', '');
  const repo = await ctx.server.createRepo(uniqueName(`${prefix}repo`));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const engine = testEngine(cfg.file);
  await repo.commit({ [`${stack}/compose.yaml`]: web(IMAGES.webV1) });
  expect((await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks[0]?.status).toBe('synced');
  /** the short spec hash of the stack's containers, by slot */
  const specs = async () => {
    const list = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    return Object.fromEntries(list.map((c) => [c.Labels['berth.slot'], c.Labels['berth.spec-hash']!.slice(0, 7)]));
  };
  return {
    stack,
    repo,
    cfg,
    engine,
    specs,
    next: (compose: string) => repo.commit({ [`${stack}/compose.yaml`]: compose }),
    done: async () => {
      engine.close();
      await removeContainers(ctx.docker, { 'berth.stack': stack });
      cfg.cleanup();
    },
  };
}

describe('a rollout as it runs', () => {
  it('berth sync --wait prints a line per replica step, in order, with the specs it goes from and to', async () => {
    const r = await rollout('progtext');
    try {
      const v1 = await r.specs();
      await r.next(web(IMAGES.webV2, 1));
      const cli = await runCli(['--config', r.cfg.file, 'sync', '--wait']);
      expect(cli.code, cli.stderr).toBe(0);
      const v2 = await r.specs();
      expect(v2['1']).not.toBe(v1['1']);
      const steps = cli.stdout.split('\n').filter((l) => l.startsWith(`  ${r.stack}: web.`));
      expect(steps.map((l) => l.replace(/ \([\d.]+ s\)$/, ' (T)'))).toEqual([
        `  ${r.stack}: web.1@test stopped ${v1['1']}`,
        `  ${r.stack}: web.1@test started ${v2['1']}`,
        `  ${r.stack}: web.1@test healthy ${v2['1']} (T)`,
        `  ${r.stack}: web.2@test stopped ${v1['2']}`,
        `  ${r.stack}: web.2@test started ${v2['2']}`,
        `  ${r.stack}: web.2@test healthy ${v2['2']} (T)`,
      ]);
      // it was healthy only after its command's sleep: the time says so
      const took = Number(/healthy \S+ \(([\d.]+) s\)/.exec(steps[2]!)?.[1]);
      expect(took).toBeGreaterThanOrEqual(1);
      expect(cli.stdout).toMatch(new RegExp(`${r.stack}: synced \\(2 container change\\(s\\), running and healthy, sync \\d+\\)`));
      // no progress escape codes where stdout is no terminal
      expect(cli.stdout).not.toContain('\x1b[');

      // berth rollback --wait: the same lines, back to the specs of the commit before
      const back = await runCli(['--config', r.cfg.file, 'rollback', r.stack, '--wait']);
      expect(back.code, back.stderr).toBe(0);
      const v3 = await r.specs();
      expect(v3).toEqual(v1);
      expect(
        back.stdout
          .split('\n')
          .filter((l) => l.startsWith(`  ${r.stack}: web.`))
          .map((l) => l.replace(/ \([\d.]+ s\)$/, '')),
      ).toEqual([
        `  ${r.stack}: web.1@test stopped ${v2['1']}`,
        `  ${r.stack}: web.1@test started ${v1['1']}`,
        `  ${r.stack}: web.1@test healthy ${v1['1']}`,
        `  ${r.stack}: web.2@test stopped ${v2['2']}`,
        `  ${r.stack}: web.2@test started ${v1['2']}`,
        `  ${r.stack}: web.2@test healthy ${v1['2']}`,
      ]);
      expect(back.stdout).toContain(`${r.stack}: synced at `);
    } finally {
      await r.done();
    }
  });

  it('through BERTH_URL, --json: one object per step as the server does it, then the result', async () => {
    const r = await rollout('progjson');
    const { app, base } = await serveEngine(r.engine);
    try {
      await r.next(web(IMAGES.webV2));
      const cli = await runCli(['sync', '--stack', r.stack, '--wait', '--json'], { env: { BERTH_URL: base } });
      expect(cli.code, cli.stderr).toBe(0);
      const lines = cli.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const steps = lines.filter((l) => l.type === 'step');
      expect(steps.map((s) => `${s.stack} ${s.service}.${s.slot}@${s.host} ${s.step}`)).toEqual([
        `${r.stack} web.1@test stopped`,
        `${r.stack} web.1@test started`,
        `${r.stack} web.1@test healthy`,
        `${r.stack} web.2@test stopped`,
        `${r.stack} web.2@test started`,
        `${r.stack} web.2@test healthy`,
      ]);
      const v2 = await r.specs();
      expect(steps[1]).toMatchObject({ spec: v2['1'], syncId: expect.any(Number), container: expect.stringMatching(/^[0-9a-f]{12}$/) });
      expect(typeof steps[2]!.seconds).toBe('number');
      const result = lines.at(-1) as { type: string; reports: SyncReport[] };
      expect(result.type).toBe('result');
      expect(result.reports[0]!.stacks[0]).toMatchObject({ stack: r.stack, status: 'synced', syncId: steps[0]!.syncId });
    } finally {
      await app.close();
      await r.done();
    }
  });

  it('on a terminal, a line per service under the steps, redrawn in place', async () => {
    const r = await rollout('progtty');
    try {
      await r.next(web(IMAGES.webV2, 1));
      // util-linux `script` runs berth in a pseudo-terminal: stdout is a TTY
      const line = [process.execPath, BERTH_BIN, '--config', r.cfg.file, 'sync', '--wait'].map((w) => `'${w}'`).join(' ');
      const { BERTH_LOG_JSON: _, ...env } = process.env;
      const { stdout } = await run('script', ['-qec', line, '/dev/null'], { env: { ...env, NO_COLOR: '1' } });
      const screen = stdout.replaceAll('\r', '');
      // the counts, drawn under each step line, then erased (cursor up a line, clear to the end) before the next
      expect(screen).toContain(`  ${r.stack}: web.1@test started`);
      expect(screen).toContain(`  ${r.stack}/web 0/2 updated\n`);
      expect(screen).toContain(`\x1b[1F\x1b[J  ${r.stack}: web.1@test healthy`);
      expect(screen).toContain(`  ${r.stack}/web 1/2 updated\n`);
      expect(screen).toMatch(new RegExp(`${r.stack}/web 2/2 updated\\n\\x1b\\[1F\\x1b\\[J`));
      // the steps say what the info log lines would: on a terminal, only warnings and errors are logged
      expect(screen).not.toMatch(/ INFO: /);
      expect(screen).toMatch(new RegExp(`${r.stack}: synced \\(2 container change\\(s\\), running and healthy`));
    } finally {
      await r.done();
    }
  });

  it("/metrics has the running rollout's replicas updated and planned, gone once it ends", async () => {
    const r = await rollout('progmetrics');
    const { app, base } = await serveEngine(r.engine);
    try {
      await r.next(web(IMAGES.webV2, 2));
      const running = r.engine.syncRepo(r.repo.name, { trigger: 'manual', actor: 'test', waitHealthy: true });
      const gauge = (text: string, name: string) =>
        new RegExp(`^${name}\\{repo="${r.repo.name}",stack="${r.stack}",service="web"\\} (\\d+)$`, 'm').exec(text)?.[1];
      const seen = new Set<string>();
      let done = false;
      void running.finally(() => (done = true));
      while (!done) {
        const text = await (await fetch(`${base}/metrics`)).text();
        const updated = gauge(text, 'berth_rollout_replicas_updated');
        if (updated !== undefined) seen.add(`${updated}/${gauge(text, 'berth_rollout_replicas_planned')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect((await running).stacks[0]?.status).toBe('synced');
      // while it ran: none updated, then one, of two (the second batch waits 2 s for its health)
      expect([...seen]).toEqual(expect.arrayContaining(['0/2', '1/2']));
      const after = await (await fetch(`${base}/metrics`)).text();
      expect(after).toContain('# TYPE berth_rollout_replicas_updated gauge');
      expect(gauge(after, 'berth_rollout_replicas_updated')).toBeUndefined();
      expect(gauge(after, 'berth_rollout_replicas_planned')).toBeUndefined();
    } finally {
      await app.close();
      await r.done();
    }
  });

  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)("the dashboard's sync page shows the steps and the replicas updated as they come", async () => {
    const r = await rollout('progdash');
    const { app, base } = await serveEngine(r.engine);
    const shots = mkdtempSync(join(tmpdir(), 'berth-progress-'));
    const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
      viewport: { width: 1400, height: 1000 },
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const before = r.engine.syncs.latest(r.repo.name, r.stack)!.id;
      await r.next(web(IMAGES.webV2, 3));
      const running = r.engine.syncRepo(r.repo.name, { trigger: 'manual', actor: 'test', waitHealthy: true });
      const id = await waitFor(() => r.engine.syncs.latest(r.repo.name, r.stack)?.id !== before && r.engine.syncs.latest(r.repo.name, r.stack)?.id, {
        what: 'the sync to start',
        intervalMs: 20,
      });
      await page.goto(`${base}/#/syncs/${id}`);
      const count = page.locator('li[data-service="web"] .progress-count');
      await count.waitFor();
      // the page was drawn while the first replica was still not healthy: what follows came live
      expect(await count.textContent()).toBe('0/2 updated');
      await expect.poll(() => count.textContent(), { timeout: 30_000 }).toBe('1/2 updated');
      const stepsTable = page.locator('section', { has: page.getByRole('heading', { name: 'Steps', exact: true }) });
      expect(await stepsTable.locator('tr', { hasText: 'container.healthy' }).count()).toBe(1);
      await page.screenshot({ path: join(shots, 'sync-running.png'), fullPage: true });
      await expect.poll(() => count.textContent(), { timeout: 30_000 }).toBe('2/2 updated');
      await expect.poll(() => stepsTable.locator('tr', { hasText: 'container.healthy' }).count(), { timeout: 10_000 }).toBe(2);
      await expect.poll(() => page.locator('h1 .badges').innerText(), { timeout: 10_000 }).toMatch(/succeeded/);
      await page.screenshot({ path: join(shots, 'sync-done.png'), fullPage: true });
      expect(existsSync(join(shots, 'sync-done.png'))).toBe(true);
      await running;

      // a rollout that fails: its page has the evidence, open at the top and folded under the failed step
      await r.next(web(IMAGES.webV2).replace('    deploy:', `    command: ["sh", "-c", "echo 'fatal: no config'; exit 3"]\n    deploy:`));
      expect((await r.engine.syncRepo(r.repo.name, { trigger: 'manual', actor: 'test' })).stacks[0]?.status).toBe('paused');
      const failed = r.engine.syncs.latest(r.repo.name, r.stack)!;
      await page.goto(`${base}/#/syncs/${failed.id}`);
      const top = page.locator('main > div > details.evidence');
      await top.waitFor();
      expect(await top.getAttribute('open')).toBe('');
      expect(await top.locator('summary').innerText()).toBe('Evidence: web.1@test exited 3: fatal: no config');
      expect(await top.locator('.evidence-logs').innerText()).toBe('fatal: no config');
      const folded = stepsTable.locator('tr', { hasText: 'container.unhealthy' }).locator('details.evidence');
      expect(await folded.getAttribute('open')).toBeNull();
      expect(await folded.locator('.evidence-logs').isVisible()).toBe(false);
      await folded.locator('summary').click();
      expect(await folded.locator('.evidence-logs').isVisible()).toBe(true);
      expect(await folded.locator('dl').innerText()).toMatch(/Ended\s+exit code 3/);
      await page.screenshot({ path: join(shots, 'sync-failed.png'), fullPage: true });
    } finally {
      await context.close();
      await app.close();
      await r.done();
    }
  });
});
