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

/**
 * An engine on the repo with the daemon behind `socketPath` as host `test`, as under berth serve:
 * the monitor (checking the host hourly, so that its own checks do not fall in what is counted)
 * and the host's events followed.
 */
function followingEngine(repo: { name: string; url: string }, socketPath: string) {
  const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
    hosts: [{ name: 'test', endpoint: `unix://${socketPath}` }],
    hostCheck: { interval: '1h' },
  });
  const engine = testEngine(cfg.file);
  engine.startMonitor();
  const stopWatching = engine.watchDrift({ resyncMs: 3_600_000 });
  return { cfg, engine, stopWatching };
}

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
    const { cfg, engine, stopWatching } = followingEngine(repo, proxy.socketPath);
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

  it("list nothing a host's events keep current; a network removed by hand is listed again, and made again", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-reads-'));
    const proxy = await countingProxy(inject('docker').socketPath, join(dir, 'docker.sock'));
    const stack = uniqueName('readsev').replaceAll('-', '');
    const repo = await ctx.server.createRepo(uniqueName('readsevrepo'));
    await repo.commit({
      'berth.yaml': `stacks:\n  - name: ${stack}\n    compose: [compose.yaml]\n    sync: { selfHeal: false }\n`,
      'compose.yaml': `services:\n  web:\n    image: ${IMAGES.webV1}\n`,
    });
    const { cfg, engine, stopWatching } = followingEngine(repo, proxy.socketPath);
    const events = () => proxy.counts.get('GET /events') ?? 0;
    try {
      // both event streams (containers; networks and volumes) are up before the first pass lists the host
      await waitFor(() => events() >= 2, { what: 'the two event streams' });
      const [first] = await engine.syncAll({ trigger: 'startup', waitHealthy: true });
      expect(first.stacks.map((s) => s.status)).toEqual(['synced']);
      await engine.syncAll({ trigger: 'poll' }); // networks and volumes listed again: the first pass made one
      const before = new Map(proxy.counts);
      const [idle] = await engine.syncAll({ trigger: 'poll' });
      expect(idle.stacks.map((s) => s.status)).toEqual(['unchanged']);
      const calls = [...proxy.counts].filter(([k, n]) => n !== (before.get(k) ?? 0)).map(([k, n]) => `${k} x${n - (before.get(k) ?? 0)}`);
      expect(calls).toEqual([]);

      // the replica and then its network removed by hand: a pass lists the networks again, and the next sync makes both again
      const [replica] = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      await ctx.docker.getContainer(replica.Id).remove({ force: true });
      await ctx.docker.getNetwork(`${stack}_default`).remove();
      // its destroy event heard: the World's networks are to be listed again (or were, by the drift watcher's pass)
      const known = () => engine.world.currentObjects('test')?.networks.some((n) => n.name === `${stack}_default`);
      await waitFor(() => !known(), { what: "the network's destroy event" });
      const before2 = new Map(proxy.counts);
      const [repaired] = await engine.syncRepo(repo.name, { trigger: 'manual', waitHealthy: true }).then((p) => [p]);
      expect(repaired.stacks.map((s) => s.status)).toEqual(['synced']);
      const listed = (k: string) => (proxy.counts.get(k) ?? 0) - (before2.get(k) ?? 0);
      // its containers taken as the events keep them: one list, of the changed stack, at the pass's end
      expect(listed('GET /containers/json')).toBe(1);
      const [network] = await ctx.docker.listNetworks({ filters: { name: [`${stack}_default`] } });
      expect(network?.Labels?.['berth.stack']).toBe(stack);
      const running = await ctx.docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } });
      expect(running).toHaveLength(1);
    } finally {
      stopWatching();
      engine.close();
      const list = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.repo=${repo.name}`] } });
      await Promise.all(list.map((c) => ctx.docker.getContainer(c.Id).remove({ force: true })));
      await ctx.docker
        .getNetwork(`${stack}_default`)
        .remove()
        .catch(() => undefined);
      await proxy.close();
      cfg.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
