// A repo as people already have it: one compose.yaml at its root, no berth.yaml, deployed on a real
// daemon from a real git remote; then renamed by its name:, which makes a new stack and prunes the old.
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { removeContainers, testDocker, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { testEngine, writeConfig } from './harness/berth.ts';
import type { Engine } from '../src/engine/engine.ts';

let server: GitServer;
let docker: Dockerode;

beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => {
  await server?.close();
});

async function running(stack: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ['berth.managed=true', `berth.stack=${stack}`] } });
  return list.map((c) => `${c.Names[0]!.slice(1)} ${c.State}`).sort();
}

const networks = async (stack: string) => (await docker.listNetworks({ filters: { label: [`berth.stack=${stack}`] } })).map((n) => n.Name).sort();

const compose = (name?: string) =>
  `${name ? `name: ${name}\n` : ''}services:\n  web:\n    image: ${IMAGES.webV1}\n    volumes: [data:/data]\nvolumes:\n  data: {}\n`;

describe('a repo with only a compose.yaml at its root', () => {
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  const stacks: string[] = [];
  afterAll(async () => {
    engine?.close();
    for (const stack of stacks) {
      await removeContainers(docker, { 'berth.stack': stack });
      for (const n of await networks(stack)) await docker.getNetwork(n).remove();
      await docker
        .getVolume(`${stack}_data`)
        .remove()
        .catch(() => undefined);
    }
    cfg?.cleanup();
  });

  it('deploys as one stack named after the repo, and a name: added later makes a new stack and prunes the old one', async () => {
    const repo = await server.createRepo(uniqueName('plain'));
    cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    engine = testEngine(cfg.file);
    const renamed = uniqueName('shop');
    stacks.push(repo.name, renamed);

    await repo.commit({ 'compose.yaml': compose(), 'README.md': '# the app\n' });
    const first = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(first.error).toBeUndefined();
    expect(first.stacks.map((s) => [s.stack, s.status])).toEqual([[repo.name, 'synced']]);
    expect(await running(repo.name)).toEqual([`${repo.name}-web-1 running`]);
    expect(await networks(repo.name)).toEqual([`${repo.name}_default`]);

    await repo.commit({ 'compose.yaml': compose(renamed) });
    const second = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(second.error).toBeUndefined();
    expect(second.stacks.map((s) => [s.stack, s.status]).sort()).toEqual(
      [
        [renamed, 'synced'],
        [repo.name, 'synced'],
      ].sort(),
    );
    expect(await running(renamed)).toEqual([`${renamed}-web-1 running`]);
    // the old stack's containers and network are gone; its volume stays, and the new stack has a volume of its own
    expect(await running(repo.name)).toEqual([]);
    expect(await networks(repo.name)).toEqual([]);
    expect((await docker.getVolume(`${repo.name}_data`).inspect()).Name).toBe(`${repo.name}_data`);
    expect((await docker.getVolume(`${renamed}_data`).inspect()).Name).toBe(`${renamed}_data`);
    const removed = engine.audit.query({ stack: repo.name, kind: 'container.removed' }).rows;
    expect(removed.map((r) => r.message)).toEqual([expect.stringContaining('stack removed from Git')]);
  });

  it("is found under the repo's path:, and a berth.yaml added later wins", async () => {
    const repo = await server.createRepo(uniqueName('nested'));
    const viaPath = writeConfig([{ name: repo.name, url: repo.url, settings: { path: 'deploy/' } }]);
    const nested = testEngine(viaPath.file);
    stacks.push(repo.name);
    try {
      await repo.commit({ 'deploy/docker-compose.yml': compose(), 'compose.yaml': 'not: [read\n' });
      const pass = await nested.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
      expect(pass.error).toBeUndefined();
      expect(pass.stacks.map((s) => [s.stack, s.status])).toEqual([[repo.name, 'synced']]);
      expect(await running(repo.name)).toEqual([`${repo.name}-web-1 running`]);

      const listed = repo.name.replaceAll('-', '');
      stacks.push(listed);
      await repo.commit({ 'deploy/berth.yaml': `stacks:\n  - name: ${listed}\n    compose: docker-compose.yml\n` });
      const after = await nested.syncRepo(repo.name, { trigger: 'poll' });
      expect(after.stacks.map((s) => s.stack).sort()).toEqual([listed, repo.name].sort());
      expect(await running(listed)).toEqual([`${listed}-web-1 running`]);
      expect(await running(repo.name)).toEqual([]);
    } finally {
      nested.close();
      viaPath.cleanup();
    }
  });
});
