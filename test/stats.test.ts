// A stack's resource use, read on demand from the hosts (docs/api.md, "GET
// /api/v1/stacks/:name/stats"): one sample per replica, through the API, `berth status --stats` over
// BERTH_URL and the dashboard's stack page in Chromium; a replica that does not run says so; a
// read asks each running replica's host once and nothing polls.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { countingProxy } from './harness/proxy.ts';
import { gitServerAndDocker, runCli, serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import type { StackStats, StackView } from '../src/engine/ops.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
const ctx = gitServerAndDocker();

describe('resource use of a stack', () => {
  it('is one sample per replica, asked of the host when read: API, CLI and dashboard', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-stats-'));
    const proxy = await countingProxy(inject('docker').socketPath, join(dir, 'docker.sock'));
    const stack = uniqueName('stats').replaceAll('-', '');
    const repo = await ctx.server.createRepo(uniqueName('statsrepo'));
    await repo.commit({
      'berth.yaml': `stacks:\n  - name: ${stack}\n    compose: [compose.yaml]\n    sync: { selfHeal: false }\n`,
      'compose.yaml': [
        'services:',
        '  busy:',
        `    image: ${IMAGES.base}`,
        // a shell loop that keeps one CPU busy, under a 64 MiB limit
        `    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]`,
        '    mem_limit: 64m',
        '  web:',
        `    image: ${IMAGES.webV1}`,
        '    deploy: { replicas: 2 }',
        '',
      ].join('\n'),
    });
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      hosts: [{ name: 'test', endpoint: `unix://${proxy.socketPath}` }],
      hostCheck: { interval: '1h' },
    });
    const engine = testEngine(cfg.file);
    engine.startMonitor();
    const stopWatching = engine.watchDrift({ resyncMs: 3_600_000 });
    const { app, base } = await serveEngine(engine);
    const browser = existsSync(CHROMIUM) ? await chromium.launch({ executablePath: CHROMIUM }) : undefined;
    try {
      const [pass] = await engine.syncAll({ trigger: 'startup', waitHealthy: true });
      expect(pass.stacks.map((s) => s.status)).toEqual(['synced']);
      // one web replica stopped by hand: it has no figures, and says why
      const [stopped] = await ctx.docker.listContainers({ filters: { label: [`berth.stack=${stack}`, 'berth.service=web', 'berth.slot=2'] } });
      await ctx.docker.getContainer(stopped.Id).stop({ t: 1 });
      await waitFor(
        async () => {
          const res = await fetch(`${base}/api/v1/stacks/${stack}`);
          const s = (await res.json()) as StackView;
          return s.replicas.some((r) => r.service === 'web' && r.slot === 2 && r.state === 'exited');
        },
        { what: 'the stopped replica seen as exited' },
      );

      const before = new Map(proxy.counts);
      const res = await fetch(`${base}/api/v1/stacks/${stack}/stats`);
      expect(res.status).toBe(200);
      const stats = (await res.json()) as StackStats;
      // a stats request per running replica (the drift watcher may be looking at the stopped one meanwhile)
      const asked = (since: Map<string, number>) =>
        [...proxy.counts].filter(([k, n]) => k.includes('/stats') && n !== (since.get(k) ?? 0)).map(([k, n]) => `${k} x${n - (since.get(k) ?? 0)}`);
      expect(asked(before)).toEqual(['GET /containers/{id}/stats x2']);
      expect(stats.stack).toBe(stack);
      const byReplica = new Map(stats.replicas.map((r) => [`${r.service}.${r.slot}`, r]));
      expect([...byReplica.keys()].sort()).toEqual(['busy.1', 'web.1', 'web.2']);
      const busy = byReplica.get('busy.1')!;
      if (!('sample' in busy)) throw new Error(`busy.1 has no sample: ${busy.error}`);
      expect(busy.host).toBe('test');
      expect(busy.sample.cpuPercent).toBeGreaterThan(2); // a busy loop, on a machine that may be busy too
      expect(busy.sample.memoryLimitBytes).toBe(64 * 2 ** 20);
      expect(busy.sample.memoryBytes).toBeGreaterThan(0);
      expect(busy.sample.pids).toBeGreaterThanOrEqual(1);
      const web1 = byReplica.get('web.1')!;
      expect('sample' in web1 && web1.sample.memoryBytes).toBeGreaterThan(0);
      expect(byReplica.get('web.2')).toMatchObject({ error: 'not running (exited)', container: stopped.Id });

      // nothing polls: no stats request between reads
      const idle = new Map(proxy.counts);
      await new Promise((r) => setTimeout(r, 3000));
      expect(asked(idle)).toEqual([]);

      const unknown = await fetch(`${base}/api/v1/stacks/nosuchstack/stats`);
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ code: 'unknown-stack' });

      const cli = await runCli(['status', '--stack', stack, '--stats'], { env: { BERTH_URL: base } });
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/^SERVICE +REPLICA +HOST +CPU %/m);
      expect(cli.stdout).toMatch(/^busy +#1 +test +\d+\.\d\d% +[\d.]+\w+ \/ 64\.0MiB/m);
      expect(cli.stdout).toMatch(/^web +#2 +test( +-){6} +not running \(exited\)$/m);
      // locally (no BERTH_URL): the replicas of the status just read, sampled on the host
      const local = await runCli(['--config', cfg.file, 'status', '--stack', stack, '--stats']);
      expect(local.code, local.stderr).toBe(0);
      expect(local.stdout).toMatch(/^busy +#1 +test +\d+\.\d\d% +[\d.]+\w+ \/ 64\.0MiB/m);
      expect(local.stdout).toMatch(/^web +#2 +test( +-){6} +not running \(exited\)$/m);
      const json = await runCli(['status', '--stack', stack, '--stats', '--json'], { env: { BERTH_URL: base } });
      expect((JSON.parse(json.stdout) as Array<{ stats: StackStats }>)[0].stats.replicas).toHaveLength(3);

      if (browser) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
        await page.goto(`${base}/#/stacks/${stack}`);
        await page.getByRole('button', { name: 'Sample now' }).click();
        const row = page.locator('.stats tr[data-key="busy#1@test"]');
        await row.waitFor();
        await expect.poll(async () => row.textContent()).toMatch(/\d+\.\d %.*of 64\.0 MiB/);
        await expect.poll(async () => page.locator('.stats tr[data-key="web#2@test"]').textContent()).toContain('not running (exited)');
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'stack-stats.png'), fullPage: true });
      } else if (process.env.CI) throw new Error(`${CHROMIUM} is missing`);
    } finally {
      await browser?.close();
      stopWatching();
      await app.close();
      engine.close();
      const list = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.repo=${repo.name}`] } });
      await Promise.all(list.map((c) => ctx.docker.getContainer(c.Id).remove({ force: true })));
      await proxy.close();
      cfg.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
