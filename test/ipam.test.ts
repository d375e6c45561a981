// A network's ipam and a service's fixed address, on a real daemon from a real git remote: the
// network is made with the subnet, the container gets its address (and keeps it through a
// stop-first update); a changed subnet makes the network anew; two replicas with one address are
// refused at the key.
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

/** A subnet of 10.200-249.x.0/24 that no other test run picks at the same time (the pid and a random byte). */
function freshSubnet(): string {
  return `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`;
}

const compose = (net: string, opts: { replicas?: number; greeting?: string } = {}) => `name: STACK
services:
  web:
    image: ${IMAGES.webV1}
    environment: { GREETING: ${opts.greeting ?? 'hello'} }
    networks:
      back:
        ipv4_address: ${net}.10
${opts.replicas ? `    deploy: { replicas: ${opts.replicas} }\n` : ''}  probe:
    image: ${IMAGES.webV1}
    networks: [back]
  seed:
    image: ${IMAGES.webV1}
    command: ["true"]
    networks: [back]
    x-berth: { hook: post-sync }
networks:
  back:
    ipam:
      config:
        - subnet: ${net}.0/24
          gateway: ${net}.1
`;

async function inspectWeb(stack: string): Promise<Dockerode.ContainerInspectInfo> {
  const [c] = await docker.listContainers({ filters: { label: [`berth.stack=${stack}`, 'berth.service=web'] } });
  return docker.getContainer(c!.Id).inspect();
}

describe('ipam and a fixed address', () => {
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  let stack: string;
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    await docker
      .getNetwork(`${stack}_back`)
      .remove()
      .catch(() => undefined);
    cfg?.cleanup();
  });

  it('deploys with the subnet and the address, keeps it through an update, and makes the network anew for a new subnet', async () => {
    const repo = await server.createRepo(uniqueName('ipam'));
    stack = uniqueName('ipam').replaceAll('-', '');
    cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    engine = testEngine(cfg.file);
    const file = (net: string, opts?: { replicas?: number; greeting?: string }) => ({ 'compose.yaml': compose(net, opts).replace('STACK', stack) });
    const a = freshSubnet();

    await repo.commit(file(a));
    const first = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(first.stacks.map((s) => [s.stack, s.status, s.errors])).toEqual([[stack, 'synced', undefined]]);
    const net = await docker.getNetwork(`${stack}_back`).inspect();
    expect(net.IPAM?.Config).toEqual([{ Subnet: `${a}.0/24`, Gateway: `${a}.1` }]);
    expect(net.Labels?.['berth.network-config']).toBe(`{"ipam":{"config":[{"subnet":"${a}.0/24","gateway":"${a}.1"}]}}`);
    const web = await inspectWeb(stack);
    expect(web.NetworkSettings.Networks[`${stack}_back`]).toMatchObject({ IPAddress: `${a}.10`, IPAMConfig: { IPv4Address: `${a}.10` } });

    // an update replaces the container stop-first, and the new one has the address again
    await repo.commit(file(a, { greeting: 'again' }));
    const update = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(update.stacks.map((s) => [s.stack, s.status, s.errors])).toEqual([[stack, 'synced', undefined]]);
    const updated = await inspectWeb(stack);
    expect(updated.Id).not.toBe(web.Id);
    expect(updated.NetworkSettings.Networks[`${stack}_back`]?.IPAddress).toBe(`${a}.10`);

    // two replicas with one address: refused at the key, and what runs stays
    await repo.commit(file(a, { greeting: 'again', replicas: 2 }));
    const refused = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(refused.stacks.map((s) => [s.stack, s.status])).toEqual([[stack, 'invalid']]);
    expect(refused.stacks[0]!.errors).toEqual([
      `compose.yaml:8:9: services.web.networks.back.ipv4_address: a fixed address is one container's, but the service asks for 2 replicas: use one replica, or drop the address`,
    ]);
    expect((await inspectWeb(stack)).Id).toBe(updated.Id);

    // a new subnet: the stack's containers go, the network is made anew, the replicas come back on it
    let b = freshSubnet();
    while (b === a) b = freshSubnet();
    await repo.commit(file(b, { greeting: 'again' }));
    const renewed = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(renewed.stacks.map((s) => [s.stack, s.status, s.errors])).toEqual([[stack, 'synced', undefined]]);
    const again = await docker.getNetwork(`${stack}_back`).inspect();
    expect(again.Id).not.toBe(net.Id);
    expect(again.IPAM?.Config).toEqual([{ Subnet: `${b}.0/24`, Gateway: `${b}.1` }]);
    expect((await inspectWeb(stack)).NetworkSettings.Networks[`${stack}_back`]?.IPAddress).toBe(`${b}.10`);
    const kinds = engine.audit
      .query({ stack, limit: 1000 })
      .rows.filter((r) => r.commitSha === renewed.commit?.sha && r.kind.startsWith('network.'))
      .map((r) => r.kind);
    expect(kinds.reverse()).toEqual(['network.removed', 'network.created']);
    expect(engine.audit.query({ stack, kind: 'sync.started', limit: 1 }).rows[0]!.diff).toContain(`# create network ${stack}_back on test anew: `);

    // and then nothing more to do
    const quiet = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(quiet.stacks.map((s) => s.status)).toEqual(['unchanged']);
  });
});
