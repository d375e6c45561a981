// Built images do not pile up: a host keeps the newest few builds of a service, and the one in use.
import { expect, it } from 'vitest';
import { BUILDS_KEPT } from '../src/apply/docker-host.ts';
import { removeContainers, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { gitServerAndDocker, testEngine, writeConfig } from './harness/berth.ts';

const t = gitServerAndDocker();

it(`keeps the newest ${BUILDS_KEPT} builds of a service on its host and removes the older ones`, async () => {
  const stack = uniqueName('builds').replaceAll('-', '');
  const repo = await t.server.createRepo(uniqueName('buildsrepo'));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const engine = testEngine(cfg.file);
  const builds = async () => (await t.docker.listImages({ filters: { label: [`berth.stack=${stack}`] } })).sort((a, b) => b.Created - a.Created);
  try {
    const made: string[] = [];
    for (let i = 1; i <= BUILDS_KEPT + 2; i++) {
      await repo.commit({
        [`${stack}/compose.yaml`]: 'services:\n  web:\n    build: ./app\n',
        [`${stack}/app/Dockerfile`]: `FROM ${IMAGES.webV1}\nRUN echo ${i} > /version\n`,
      });
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
      expect(pass.stacks[0].status, pass.stacks[0].errors?.join('\n')).toBe('synced');
      const [running] = await t.docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } });
      made.push(running.ImageID);
      // Docker dates images to the second: the next build must be newer to tell them apart
      await new Promise((r) => setTimeout(r, 1100));
    }
    const left = await builds();
    expect(left.map((b) => b.Id)).toEqual(made.slice(-BUILDS_KEPT).reverse());
  } finally {
    engine.close();
    await removeContainers(t.docker, { 'berth.stack': stack });
    for (const b of await builds())
      await t.docker
        .getImage(b.Id)
        .remove({ force: true })
        .catch(() => undefined);
    cfg.cleanup();
  }
});
