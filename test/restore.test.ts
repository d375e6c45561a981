// A replacement is final only once the new container runs: a stop-first replacement whose new
// container cannot be created or started puts the old one back (same container, name and all),
// and an engine killed between the old one's stop and the new one's start finishes the job or
// puts the old one back when it runs again (docs/how-it-works.md, "Rollouts" and "Crashes").
import type Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { auditRows, freePort, gitServerAndDocker, runCli, testEngine, writeConfig } from './harness/berth.ts';
import type { Engine } from '../src/engine/engine.ts';

const ctx = gitServerAndDocker();

/** A stack of its own on a repo of its own, with `settings` in the repo's entry of the engine config. */
async function setup(prefix: string, settings: Record<string, unknown> = {}) {
  const stack = uniqueName(prefix).replaceAll('-', '');
  const repo = await ctx.server.createRepo(uniqueName(`${prefix}repo`));
  const cfg = writeConfig([{ name: repo.name, url: repo.url, settings }]);
  let engine: Engine | undefined;
  const inProcess = () => (engine ??= testEngine(cfg.file));
  return {
    stack,
    cfg,
    commit: (compose: string) => repo.commit({ [`${stack}/compose.yaml`]: compose }),
    sync: async () => (await inProcess().syncRepo(repo.name, { trigger: 'poll' })).stacks[0],
    rows: () => auditRows(inProcess(), stack),
    /** every container of the stack, aside ones and leftovers too */
    all: async () =>
      (await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).sort((a, b) => a.Names[0].localeCompare(b.Names[0])),
    done: async () => {
      engine?.close();
      const list = await ctx.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      await Promise.all(list.map((c) => ctx.docker.getContainer(c.Id).remove({ force: true })));
      cfg.cleanup();
    },
  };
}

const web = (extra: string, deploy = '', replicas = 2) => `services:
  web:
    image: ${IMAGES.webV1}
${extra}    deploy:
      replicas: ${replicas}
      update_config: { parallelism: 1${deploy} }
`;

/** [id, name, state] of each container: the old ones, back where they were, running. */
const shape = (list: Dockerode.ContainerInfo[]) => list.map((c) => [c.Id, c.Names[0], c.State]);

describe('a replacement whose new container cannot start keeps the old one', () => {
  it('a host port already allocated: the old container runs again, the rollout pauses', async () => {
    const s = await setup('portbusy');
    // an unmanaged container holds the port the new version asks for
    const busy = await freePort();
    const holder = await ctx.docker.createContainer({
      Image: IMAGES.webV1,
      name: uniqueName('holder'),
      HostConfig: { PortBindings: { '80/tcp': [{ HostPort: String(busy) }] } },
    });
    try {
      await holder.start();
      await s.commit(web('', '', 1));
      expect((await s.sync()).status).toBe('synced');
      const before = await s.all();
      expect(before.map((c) => c.State)).toEqual(['running']);

      await s.commit(web(`    ports: ["${busy}:80"]\n`, '', 1));
      const result = await s.sync();
      expect(result.status).toBe('paused');
      expect(result.errors?.join('\n')).toMatch(/port is already allocated/);
      // the same containers, under their names, running; nothing left aside or created
      expect(shape(await s.all())).toEqual(shape(before).map(([id, name]) => [id, name, 'running']));
      const restored = s.rows().filter((r) => r.kind === 'container.restored');
      expect(restored).toHaveLength(1);
      expect(restored[0]).toMatchObject({ outcome: 'error', containerAfter: before[0].Id, service: 'web' });
      expect(restored[0].message).toMatch(/^web#1: the new container did not start, the old one runs again: .*port is already allocated/);
      expect(
        s
          .rows()
          .map((r) => r.kind)
          .slice(-5),
      ).toEqual(['rollout.batch', 'container.restored', 'rollout.failed', 'rollout.paused', 'sync.failed']);
    } finally {
      await holder.remove({ force: true });
      await s.done();
    }
  });

  it('a bind source that is missing: the old container runs again, and failure_action rollback ends the sync', async () => {
    const missing = `/var/tmp/${uniqueName('berth-missing')}`;
    const s = await setup('nobind', { policy: { bindMounts: [missing] } });
    try {
      await s.commit(web('', ', failure_action: rollback'));
      expect((await s.sync()).status).toBe('synced');
      const before = await s.all();
      await s.commit(web(`    volumes: ["${missing}:/data"]\n`, ', failure_action: rollback'));
      const result = await s.sync();
      expect(result.status).toBe('rolledback');
      expect(result.errors?.join('\n')).toMatch(/bind source path does not exist/);
      expect(shape(await s.all())).toEqual(shape(before));
      const restored = s.rows().filter((r) => r.kind === 'container.restored');
      expect(restored.map((r) => r.containerAfter)).toEqual([before[0].Id]);
      expect(restored[0].message).toMatch(new RegExp(`bind source path does not exist: ${missing}`));
    } finally {
      await s.done();
    }
  });

  it('an entrypoint that does not exist: each replica tried keeps its old container (failure_action continue)', async () => {
    const s = await setup('noentry');
    try {
      await s.commit(web('', ', failure_action: continue'));
      expect((await s.sync()).status).toBe('synced');
      const before = await s.all();
      await s.commit(web('    entrypoint: ["/no/such/program"]\n', ', failure_action: continue'));
      await s.sync();
      expect(shape(await s.all())).toEqual(shape(before));
      const restored = s.rows().filter((r) => r.kind === 'container.restored');
      expect(restored.map((r) => r.containerAfter)).toEqual(before.map((c) => c.Id));
      for (const r of restored) expect(r.message).toMatch(/no\/such\/program/);
      expect(s.rows().filter((r) => r.kind === 'rollout.failed')).toHaveLength(2);
    } finally {
      await s.done();
    }
  });
});

describe('an engine killed between the old container stopped and the new one started', () => {
  // The old container ignores SIGTERM, so its stop takes the whole grace period: berth is killed
  // while the daemon stops it, with the old container renamed aside and the new one created.
  const slowStop = (image: string, extra = '') => `services:
  web:
    image: ${image}
    command: ["sh", "-c", "trap '' TERM; httpd -f -p 80 -h /www & while true; do sleep 1; done"]
    stop_grace_period: 3s
${extra}`;

  async function killMidReplacement(s: Awaited<ReturnType<typeof setup>>, next: string): Promise<Dockerode.ContainerInfo> {
    await s.commit(slowStop(IMAGES.webV1));
    const first = await runCli(['--config', s.cfg.file, 'sync']);
    expect(first.code, first.stderr).toBe(0);
    const [old] = await s.all();
    await s.commit(next);
    const run = runCli(['--config', s.cfg.file, 'sync']);
    await waitFor(
      async () => {
        const list = await s.all();
        return list.some((c) => c.Names[0] === `/${s.stack}-web-1-old-${old.Id.slice(0, 12)}`) && list.some((c) => c.Id !== old.Id && c.State === 'created');
      },
      { what: 'the old container renamed aside and the new one created', intervalMs: 20 },
    );
    run.child.kill('SIGKILL');
    await run;
    await waitFor(async () => (await s.all()).find((c) => c.Id === old.Id)?.State === 'exited', { what: 'the old container to have stopped' });
    const states = (await s.all()).map((c) => c.State).sort();
    expect(states).toEqual(['created', 'exited']); // old stopped, new not started: no replica runs
    return old;
  }

  it('finishes the replacement when it runs again', async () => {
    const s = await setup('killmid');
    try {
      await killMidReplacement(s, slowStop(IMAGES.webV2));
      const again = await runCli(['--config', s.cfg.file, 'sync']);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      const after = await s.all();
      expect(after.map((c) => [c.Names[0], c.State, c.Image])).toEqual([[`/${s.stack}-web-1`, 'running', IMAGES.webV2]]);
      const removed = s.rows().filter((r) => r.kind === 'container.removed');
      expect(removed.map((r) => r.message)).toEqual(['web#1: duplicate of the same replica (left by an interrupted replacement)']);
      expect(
        s
          .rows()
          .filter((r) => r.kind === 'container.replaced')
          .at(-1)?.message,
      ).toBe('web#1: its replacement was interrupted: the old container waits aside, stopped');
    } finally {
      await s.done();
    }
  });

  it('puts the old container back when it runs again and the new one cannot start', async () => {
    const s = await setup('killback');
    try {
      const old = await killMidReplacement(s, slowStop(IMAGES.webV1, '    entrypoint: ["/no/such/program"]\n'));
      const again = await runCli(['--config', s.cfg.file, 'sync']);
      expect(again.code).toBe(1);
      expect(again.stdout).toMatch(/paused/);
      const after = await s.all();
      expect(after.map((c) => [c.Id, c.Names[0], c.State])).toEqual([[old.Id, `/${s.stack}-web-1`, 'running']]);
      expect(
        s
          .rows()
          .filter((r) => r.kind === 'container.restored')
          .map((r) => r.containerAfter),
      ).toEqual([old.Id]);
    } finally {
      await s.done();
    }
  });
});
