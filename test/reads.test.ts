// Under berth serve, reads are answered from what berth last saw: the stacks, a stack, the hosts,
// a host and `berth status` through BERTH_URL cost the Docker host and the git server nothing
// (counted through a proxy in front of the daemon and by the git server), and a replica removed
// by hand shows in them within seconds, by the host's events (docs/how-it-works.md, "Reads").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { countingProxy } from './harness/proxy.ts';
import { gitServerAndDocker, runCli, serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import type { StackView } from '../src/engine/ops.ts';

const ctx = gitServerAndDocker();

describe('reads under berth serve', () => {
  it('cost the host and the forge nothing, and see a hand-made change within seconds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-reads-'));
    const proxy = await countingProxy(inject('docker').socketPath, join(dir, 'docker.sock'));
    const prefix = uniqueName('reads').replaceAll('-', '');
    const stacks = [1, 2, 3].map((n) => `${prefix}s${n}`);
    const repo = await ctx.server.createRepo(uniqueName('readsrepo'));
    await repo.commit({
      'berth.yaml': `stacks:\n${stacks.map((s) => `  - name: ${s}\n    compose: [${s}/compose.yaml]\n    sync: { selfHeal: false }\n`).join('')}`,
      ...Object.fromEntries(stacks.map((s) => [`${s}/compose.yaml`, `services:\n  web:\n    image: ${IMAGES.webV1}\n    deploy: { replicas: 2 }\n`])),
    });
    // the host checked hourly, so that the monitor's own checks do not fall in the reads below
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      hosts: [{ name: 'test', endpoint: `unix://${proxy.socketPath}` }],
      hostCheck: { interval: '1h' },
    });
    const engine = testEngine(cfg.file);
    engine.startMonitor();
    const stopWatching = engine.watchDrift({ resyncMs: 3_600_000 });
    const { app, base } = await serveEngine(engine);
    const get = async <T>(path: string) => {
      const res = await fetch(`${base}/api/v1${path}`);
      expect(res.status, path).toBe(200);
      return (await res.json()) as T;
    };
    const stackView = (name: string) => get<StackView>(`/stacks/${name}`);
    try {
      const [pass] = await engine.syncAll({ trigger: 'startup', waitHealthy: true });
      expect(pass.stacks.map((s) => s.status)).toEqual(['synced', 'synced', 'synced']);
      await waitFor(async () => (await get<{ stacks: StackView[] }>('/stacks')).stacks.every((s) => s.health === 'Healthy' && s.sync === 'Synced'), {
        what: 'every stack Healthy and Synced',
      });

      const docker0 = new Map(proxy.counts);
      const git0 = ctx.server.requests(repo.name);
      for (let i = 0; i < 20; i++) {
        const { stacks: all } = await get<{ stacks: StackView[] }>('/stacks');
        expect(all.map((s) => s.name).sort()).toEqual(stacks);
        for (const s of all) expect(s.observedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
        await stackView(stacks[0]);
        await get('/hosts');
        await get('/hosts/test');
      }
      const cli = await runCli(['status'], { env: { BERTH_URL: base } });
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(new RegExp(`^${stacks[0]} +\\S+ +Synced +Healthy`, 'm'));
      const calls = [...proxy.counts].filter(([k, n]) => n !== (docker0.get(k) ?? 0)).map(([k, n]) => `${k} x${n - (docker0.get(k) ?? 0)}`);
      expect({ docker: calls, git: ctx.server.requests(repo.name) }).toEqual({ docker: [], git: git0 });

      // a replica removed by hand (straight on the daemon, not through berth): the reads say so within seconds
      const [victim] = await ctx.docker.listContainers({ filters: { label: [`berth.stack=${stacks[1]}`, 'berth.slot=1'] } });
      await ctx.docker.getContainer(victim.Id).remove({ force: true });
      const seen = await waitFor(
        async () => {
          const s = await stackView(stacks[1]);
          return s.sync === 'OutOfSync' && s.health === 'Degraded' && s.replicas.some((r) => r.state === 'missing') ? s : undefined;
        },
        { what: `${stacks[1]} OutOfSync and Degraded`, timeoutMs: 5000, intervalMs: 100 },
      );
      expect(seen.replicas.filter((r) => r.state === 'missing').map((r) => r.slot)).toEqual([1]);
      expect((await stackView(stacks[0])).health).toBe('Healthy'); // the others as they were
    } finally {
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
