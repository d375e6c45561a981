// Two repos on one host (the test daemon), one engine: what push access to one repo can do to
// the other's stacks, tried for real and refused, each legitimate form still working. A stack
// name another repo holds; another repo's network and volume, by a name of its own that only
// looks like one of this repo's stacks'; another container's namespaces; berth's own labels.
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { loadConfig } from '../src/config.ts';
import { testLog, writeConfig } from './harness/berth.ts';
import { removeContainers, testDocker, uniqueName } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

let server: GitServer;
let docker: Dockerode;
let a: RemoteRepo;
let b: RemoteRepo;
const base = uniqueName('iso').replaceAll('-', '');
/** a's stacks: `<base>_x` (its network and volume have names that start like b's stack `<base>`'s) and the shared name */
const [aStack, shared, bStack, jStack] = [`${base}_x`, `${base}s`, base, `${base}j`];
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
  [a, b] = await Promise.all([server.createRepo(uniqueName('isoa')), server.createRepo(uniqueName('isob'))]);
  await a.commit({
    [`${aStack}/compose.yaml`]: `services:\n  db:\n    image: ${IMAGES.webV1}\n    volumes: [data:/data]\nvolumes:\n  data:\n`,
    [`${shared}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n`,
  });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const stack of [aStack, shared, bStack, jStack]) await removeContainers(docker, { 'berth.stack': stack });
  for (const n of await docker.listNetworks({ filters: { label: ['berth.managed=true'] } })) {
    if ([aStack, shared, bStack, jStack].some((s) => n.Name.startsWith(`${s}_`)))
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
  }
  for (const v of [`${aStack}_data`])
    await docker
      .getVolume(v)
      .remove()
      .catch(() => undefined);
  await server?.close();
});

/** An engine over a (first) and b (second, with `policy`). */
function engine(policy: Record<string, unknown> = {}): Engine {
  const cfg = writeConfig([
    { name: a.name, url: a.url },
    { name: b.name, url: b.url, settings: { policy } },
  ]);
  const e = new Engine(loadConfig(cfg.file), testLog());
  cleanups.push(
    () => e.close(),
    () => cfg.cleanup(),
  );
  return e;
}

const containers = async (stack: string) =>
  (await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).map((c) => ({
    id: c.Id,
    repo: c.Labels['berth.repo'],
    name: c.Names[0],
  }));

describe('a repo cannot reach past its own stacks', () => {
  it("a stack name another repo's containers run under is not the later repo's: its stack fails, the first keeps running", async () => {
    const e = engine();
    const first = await e.syncRepo(a.name, { trigger: 'manual', actor: 'test' });
    expect(first.stacks.map((s) => [s.stack, s.status]).sort()).toEqual([
      [aStack, 'synced'],
      [shared, 'synced'],
    ]);
    const before = await containers(shared);
    expect(before.map((c) => c.repo)).toEqual([a.name]);

    await b.commit({ [`${shared}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV2}\n` }, { message: 'the same name' });
    const taken = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === shared);
    expect(taken).toMatchObject({
      status: 'failed',
      errors: [`the stack name ${shared} is repo ${a.name}'s (its containers run under that name): this repo's stack of that name is not applied; rename it`],
    });
    expect(await containers(shared)).toEqual(before);
    expect(e.audit.query({ stack: shared, kind: 'sync.failed', limit: 1 }).rows[0]?.message).toContain(`is repo ${a.name}'s`);
  });

  it("a network or volume named like the repo's own but held by another repo is not joined or mounted", async () => {
    const e = engine();
    await e.syncRepo(a.name, { trigger: 'manual', actor: 'test' });
    // `<base>_x_default` starts like a name of b's stack `<base>`: the render lets it through, the owner labels on the host do not
    await b.commit(
      {
        [`${shared}/compose.yaml`]: null,
        [`${bStack}/compose.yaml`]: `services:\n  spy:\n    image: ${IMAGES.webV1}\n    networks: [n]\n    volumes: [v:/loot]\nnetworks:\n  n: { external: true, name: ${aStack}_default }\nvolumes:\n  v: { external: true, name: ${aStack}_data }\n`,
      },
      { message: 'reach' },
    );
    const reached = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === bStack);
    expect(reached).toMatchObject({
      status: 'failed',
      errors: [
        `the network ${aStack}_default on test belongs to repo ${a.name}, stack ${aStack}: this stack does not reach it`,
        `the volume ${aStack}_data on test belongs to repo ${a.name}, stack ${aStack}: this stack does not reach it`,
      ],
    });
    expect(await containers(bStack)).toEqual([]);

    // a name outside the repo's stacks is refused where it is written; the policy lets it through
    await b.commit({
      [`${bStack}/compose.yaml`]: `services:\n  spy:\n    image: ${IMAGES.webV1}\n    networks: [n]\nnetworks:\n  n: { external: true, name: ${shared}_default }\n`,
    });
    const named = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === bStack);
    expect(named?.status).toBe('invalid');
    expect(named?.errors).toEqual([
      `${bStack}/compose.yaml:6:3: networks.n: the network ${shared}_default is not one of this repo's stacks' (<stack>_...): reaching it is not allowed for this repo: allow it with policy.externalNetworks: ["${shared}_default"] on the repo in berth's config`,
    ]);
    const allowed = engine({ externalNetworks: [`${shared}_*`] });
    const joined = (await allowed.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === bStack);
    expect(joined?.status).toBe('synced');
    const [spy] = await containers(bStack);
    const inspected = await docker.getContainer(spy!.id).inspect();
    expect(Object.keys(inspected.NetworkSettings.Networks)).toEqual([`${shared}_default`]);
  });

  it("another container's namespaces, and berth's own labels, are refused; policy.joinContainers allows a join", async () => {
    const e = engine();
    await e.syncRepo(a.name, { trigger: 'manual', actor: 'test' });
    const [target] = await containers(shared);
    const name = target!.name!.replace(/^\//, '');
    await b.commit({
      [`${bStack}/compose.yaml`]: null,
      [`${jStack}/compose.yaml`]: `services:\n  spy:\n    image: ${IMAGES.webV1}\n    network_mode: container:${name}\n    pid: container:${name}\n`,
    });
    const joined = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === jStack);
    expect(joined?.status).toBe('invalid');
    expect(joined?.errors).toEqual([
      `${jStack}/compose.yaml:4:19: services.spy.network_mode: joining the network namespace of the container ${name} (a service of this stack: network_mode: service:NAME) is not allowed for this repo: allow it with policy.joinContainers: ["${name}"] on the repo in berth's config`,
      `${jStack}/compose.yaml:5:10: services.spy.pid: joining the PID namespace of the container ${name} is not allowed for this repo: allow it with policy.joinContainers: ["${name}"] on the repo in berth's config`,
    ]);
    expect(await containers(jStack)).toEqual([]);

    await b.commit({ [`${jStack}/compose.yaml`]: `services:\n  spy:\n    image: ${IMAGES.webV1}\n    labels: { berth.repo: ${a.name} }\n` });
    const labelled = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === jStack);
    expect(labelled?.errors?.[0]).toMatch(/compose\.yaml:4:15: services\.spy\.labels\.berth\.repo: the label berth\.repo is reserved/);
    expect(await containers(jStack)).toEqual([]);

    // (not a second web server: the port is taken in the namespace it joins)
    await b.commit({
      [`${jStack}/compose.yaml`]: `services:\n  spy:\n    image: ${IMAGES.webV1}\n    entrypoint: [sleep, "3600"]\n    network_mode: container:${name}\n`,
    });
    const allowed = engine({ joinContainers: [`${shared}-*`] });
    expect((await allowed.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === jStack)).toMatchObject({ status: 'synced' });
    const [spy] = await containers(jStack);
    expect((await docker.getContainer(spy!.id).inspect()).HostConfig.NetworkMode).toBe(`container:${target!.id}`);
  });

  it('a build does not retag an image it did not build for its stack; labels under berth. in the image are not believed', async () => {
    const e = engine();
    const rStack = `${base}r`;
    cleanups.push(() => removeContainers(docker, { 'berth.stack': rStack }));
    const before = await docker.getImage(IMAGES.webV1).inspect();
    // the image's own labels claim a job and a reservation berth would count
    const dockerfile = `FROM ${IMAGES.webV1}\nLABEL berth.job=schedule berth.reserve.memory=1000000000000\nRUN echo 1 > /version\n`;
    await b.commit({
      [`${jStack}/compose.yaml`]: null,
      [`${rStack}/compose.yaml`]: `services:\n  app:\n    build: { context: ./app, tags: ["${IMAGES.webV1}"] }\n`,
      [`${rStack}/app/Dockerfile`]: dockerfile,
    });
    const retag = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === rStack);
    expect(retag?.status).toBe('failed');
    expect(retag?.errors?.join('\n')).toContain(`the tag ${IMAGES.webV1} names an image berth did not build: a build does not retag it`);
    expect((await docker.getImage(IMAGES.webV1).inspect()).Id).toBe(before.Id);

    // its own name, built and built again: tagged each time
    for (const version of ['1', '2']) {
      await b.commit({
        [`${rStack}/compose.yaml`]: `services:\n  app:\n    image: ${rStack}-own\n    build: ./app\n`,
        [`${rStack}/app/Dockerfile`]: dockerfile.replace('echo 1', `echo ${version}`),
      });
      const own = (await e.syncRepo(b.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === rStack);
      expect(own?.status, own?.errors?.join('\n')).toBe('synced');
    }
    const [app] = await docker.listContainers({ filters: { label: [`berth.stack=${rStack}`] } });
    expect([app!.Labels['berth.job'], app!.Labels['berth.reserve.memory'], app!.State]).toEqual(['', '', 'running']);
    expect((await docker.getImage(`${rStack}-own`).inspect()).Id).toBe((await docker.getImage(app!.Image).inspect()).Id);
  });
});
