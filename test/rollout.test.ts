// Rolling updates gated on health, on a real daemon: start-first without a failed request, and an
// automatic rollback when the new version never gets healthy (docs/how-it-works.md, "Rollouts").
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { serviceContainers, testDocker, uniqueName, removeContainers, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { testEngine, writeConfig } from './harness/berth.ts';

let server: GitServer;
let docker: Dockerode;
beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => server?.close());

const replicas = (stack: string, service: string) => serviceContainers(docker, stack, service);

async function imageId(name: string): Promise<string> {
  return (await docker.getImage(name).inspect()).Id;
}

const web = (image: string, update: string) => `  web:
    image: ${image}
    deploy:
      replicas: 3
      update_config: { ${update} }
`;

describe('rolling updates', () => {
  it('start-first from v1 to v2 over 3 replicas: the client never sees a failed request', async () => {
    const stack = uniqueName('roll').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('rollrepo'));
    const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    const engine = testEngine(cfg.file);
    // The client calls the service by its name as fast as it can and prints one line per request.
    const client = `  client:
    image: ${IMAGES.webV1}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do if wget -q -O- http://web/ >/dev/null 2>&1; then echo ok; else echo FAIL; fi; done & wait"]
    healthcheck: { disable: true }
    depends_on: [web]
`;
    const file = (image: string) => `services:\n${web(image, 'parallelism: 1, order: start-first')}${client}`;
    try {
      await repo.commit({ [`${stack}/compose.yaml`]: file(IMAGES.webV1) });
      expect((await engine.syncRepo(repo.name, { trigger: 'manual' })).stacks[0].status).toBe('synced');
      const [clientBox] = await replicas(stack, 'client');
      const logs = async () => String(await docker.getContainer(clientBox.Id).logs({ stdout: true, stderr: true }));
      await waitFor(async () => (await logs()).split('ok').length > 20, { what: 'the client to get answers' }).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\nclient output: ${(await logs()).slice(-500)}`);
      });

      const v1 = (await replicas(stack, 'web')).map((c) => c.Id);
      await repo.commit({ [`${stack}/compose.yaml`]: file(IMAGES.webV2) });
      const running = engine.syncRepo(repo.name, { trigger: 'poll' });
      // While the rollout runs, the stack says so.
      const during = await waitFor(async () => (await engine.status(stack)).find((s) => s.health === 'Progressing'), { what: 'status Progressing' });
      expect(during.sync).toBe('OutOfSync');
      const pass = await running;
      expect((await engine.status(stack))[0]).toMatchObject({ sync: 'Synced', health: 'Healthy' });
      expect(pass.stacks[0].status, pass.stacks[0].errors?.join('\n')).toBe('synced');
      const before = (await logs()).split('ok').length;
      await waitFor(async () => (await logs()).split('ok').length > before + 20, { what: 'more answers after the update' });

      const out = await logs();
      const ok = out.split('\n').filter((l) => l.endsWith('ok')).length;
      const failed = out.split('\n').filter((l) => l.includes('FAIL')).length;
      expect(ok).toBeGreaterThan(50);
      expect(failed).toBe(0);

      const after = await replicas(stack, 'web');
      expect(after.map((c) => c.Names[0])).toEqual([1, 2, 3].map((n) => `/${stack}-web-${n}`));
      const v2 = await imageId(IMAGES.webV2);
      for (const c of after) {
        expect(c.ImageID).toBe(v2);
        expect(c.Status).toContain('(healthy)');
        expect(v1).not.toContain(c.Id);
      }
      // The audit shows the three batches in order, each followed by its replica's replacement and health.
      const rows = engine.audit.query({ stack, limit: 1000 }).rows.reverse();
      const rollout = rows.filter((r) => ['rollout.batch', 'container.replaced', 'container.healthy'].includes(r.kind) && r.service === 'web');
      expect(rollout.map((r) => `${r.kind} ${r.message}`)).toEqual(
        [1, 2, 3].flatMap((n) => [
          `rollout.batch batch ${n} of 3: web#${n}@test`,
          `container.replaced web#${n}: spec changed`,
          `container.healthy web#${n}: healthy`,
        ]),
      );
    } finally {
      engine.close();
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });

  it('rolls back when the new version never gets healthy, stopping at the first failing batch', async () => {
    const stack = uniqueName('back').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('backrepo'));
    const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    const engine = testEngine(cfg.file);
    const file = (image: string) => `services:\n${web(image, 'parallelism: 1, failure_action: rollback')}`;
    try {
      await repo.commit({ [`${stack}/compose.yaml`]: file(IMAGES.webV1) });
      expect((await engine.syncRepo(repo.name, { trigger: 'manual' })).stacks[0].status).toBe('synced');
      const before = await replicas(stack, 'web');
      await waitFor(async () => (await replicas(stack, 'web')).every((c) => c.Status.includes('(healthy)')), { what: 'v1 to be healthy' });

      const sha = await repo.commit({ [`${stack}/compose.yaml`]: file(IMAGES.webUnhealthy) }, { message: 'Ship the broken one' });
      const pass = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(pass.stacks[0].status).toBe('rolledback');
      // the reason names the replica that failed and what its health check said
      expect(pass.stacks[0].errors?.[0]).toBe('web: rolled back: 1 of 3 replica(s) failed (batch 1 of 3): web.1@test unhealthy: health check exit code 1');

      const after = await replicas(stack, 'web');
      const v1 = await imageId(IMAGES.webV1);
      expect(after).toHaveLength(3);
      for (const c of after) expect(c.ImageID).toBe(v1);
      await waitFor(async () => (await replicas(stack, 'web')).every((c) => c.Status.includes('(healthy)')), {
        what: 'the rolled-back replicas to be healthy',
      });
      // Replicas 2 and 3 were never touched; replica 1's old container, kept aside while its new one
      // was not healthy, is back.
      expect(after.map((c) => c.Id)).toEqual(before.map((c) => c.Id));
      expect(after.map((c) => c.Names[0])).toEqual([1, 2, 3].map((n) => `/${stack}-web-${n}`));
      expect(after[0].Labels['berth.spec-hash']).toBe(before[0].Labels['berth.spec-hash']);

      const rows = engine.audit.query({ stack, commit: sha, limit: 1000 }).rows.reverse();
      expect(rows.map((r) => r.kind)).toEqual([
        'sync.started',
        'rollout.batch',
        'container.replaced',
        'container.unhealthy',
        'rollout.failed',
        'rollback.started',
        'rollback.batch',
        'container.restored',
        'container.healthy',
        'rollback.succeeded',
        'sync.failed',
      ]);
      expect(rows.find((r) => r.kind === 'sync.failed')?.message).toMatch(/rolled back/);
      // The stack says it was rolled back, and why; it runs v1 healthy, out of sync with Git.
      const [status] = await engine.status(stack);
      expect(status).toMatchObject({ sync: 'OutOfSync', health: 'Healthy', condition: 'RolledBack' });
      expect(status.reason).toMatch(/rolled back: 1 of 3 replica\(s\) failed \(batch 1 of 3\): web\.1@test unhealthy: health check exit code 1/);

      // The engine does not try that commit again by itself.
      const again = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(again.stacks[0].status).toBe('outofsync');
      expect((await replicas(stack, 'web')).map((c) => c.Id)).toEqual(after.map((c) => c.Id));
    } finally {
      engine.close();
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });
});
