// Built images do not pile up: a host keeps the newest few builds of a service, and the one in use.
// Each build is audited with what it was given, secrets masked.
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { BUILDS_KEPT } from '../src/apply/docker-host.ts';
import { execIn, removeContainers, uniqueName } from './harness/docker.ts';
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

it('audits each build with its args, extra_hosts, network and target, an arg that looks secret or holds a secret masked', async () => {
  const stack = uniqueName('built').replaceAll('-', '');
  const repo = await t.server.createRepo(uniqueName('builtrepo'));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const engine = testEngine(cfg.file);
  // values found nowhere else, so that a leak anywhere in the audit shows
  const token = `tok-${uniqueName('t')}`;
  const seed = `seed-${uniqueName('s')}`;
  try {
    await repo.commit({
      [`${stack}/compose.yaml`]: `services:
  web:
    build:
      context: ./app
      target: final
      network: none
      args:
        VERSION: "1.2.3"
        API_TOKEN: ${token}
        SEED_VALUE: ${seed}
      extra_hosts:
        - "db.internal:10.0.0.5"
    secrets: [seed]
secrets:
  seed:
    file: ./seed.txt
`,
      [`${stack}/seed.txt`]: `${seed}\n`,
      [`${stack}/app/Dockerfile`]: `FROM ${IMAGES.webV1} AS base\nARG VERSION\nARG API_TOKEN\nARG SEED_VALUE\nRUN echo "$VERSION" > /version\nFROM base AS final\nRUN cat /etc/hosts > /build-hosts\n`,
    });
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
    expect(pass.stacks[0].status, pass.stacks[0].errors?.join('\n')).toBe('synced');
    const [running] = await t.docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } });
    const built = engine.audit.query({ kind: 'image.built', stack, limit: 10 }).rows;
    expect(built.map((r) => [r.stack, r.service, r.host, r.outcome])).toEqual([[stack, 'web', 'test', 'ok']]);
    const mask = (v: string) => `<masked sha256:${createHash('sha256').update(v).digest('hex').slice(0, 12)}>`;
    expect(built[0].message).toBe(
      `built ${running.Image}: args API_TOKEN=${mask(token)}, SEED_VALUE=${mask(seed)}, VERSION=1.2.3; extra_hosts db.internal:10.0.0.5; network none; target final`,
    );
    // the build was given them: the target's stage ran, with the extra host
    const hosts = await execIn(t.docker.getContainer(running.Id), ['cat', '/build-hosts']);
    expect(hosts.output).toMatch(/10\.0\.0\.5\s+db\.internal/);
    // neither value is anywhere in the stack's audit rows
    const all = JSON.stringify(engine.audit.query({ stack, limit: 1000 }).rows);
    expect(all).not.toContain(token);
    expect(all).not.toContain(seed);

    // a sync that builds nothing writes no such row
    expect((await engine.syncRepo(repo.name, { trigger: 'manual' })).stacks[0].errors).toBeUndefined();
    expect(engine.audit.query({ kind: 'image.built', stack, limit: 10 }).rows).toHaveLength(1);
  } finally {
    engine.close();
    await removeContainers(t.docker, { 'berth.stack': stack });
    for (const b of await t.docker.listImages({ filters: { label: [`berth.stack=${stack}`] } }))
      await t.docker
        .getImage(b.Id)
        .remove({ force: true })
        .catch(() => undefined);
    cfg.cleanup();
  }
});
