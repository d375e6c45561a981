// The order of an apply on a real daemon: services that do not depend on each other go together,
// a dependant waits for what it depends on, a failure starts nothing more, a stop-first update
// whose new container cannot be created puts the old one back, and a stack network gets a
// configured subnet only when a start-first service needs one (docs/how-it-works.md, "Rollouts").
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DockerHost } from '../src/apply/docker-host.ts';
import { startFirstNetworks } from '../src/apply/execute.ts';
import type { AuditRow } from '../src/audit/log.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { serviceContainers, testDocker, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { auditRows, capturedLogger, ownStack } from './harness/berth.ts';
import { stackOf } from './render/helpers.ts';

let server: GitServer;
let docker: Dockerode;
beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => server?.close());

/** Where in a stack's audit rows the first of `kind` for `service` is. */
const at = (list: AuditRow[], kind: string, service: string) => list.findIndex((r) => r.kind === kind && r.service === service);

/** A stack of its own; `apply` commits the Compose file and syncs it by hand. */
async function setup(prefix: string, engine?: (file: string) => Engine) {
  const own = await ownStack(server, docker, prefix, engine);
  const apply = async (compose: string) => {
    await own.commit(compose);
    return own.sync('manual');
  };
  return { ...own, apply, rows: () => auditRows(own.engine, own.stack) };
}

/** Healthy only once its command has run for 3 s: whoever waits for it waits a while. */
const slow = `  slow:
    image: ${IMAGES.webV1}
    command: ["sh", "-c", "trap 'exit 0' TERM; (sleep 3; touch /ready) & httpd -f -p 80 -h /www & wait"]
    healthcheck: { test: ["CMD", "test", "-f", "/ready"], interval: 1s, retries: 30 }
`;

describe('the order of an apply', () => {
  it('an independent service starts beside a slow one; its dependant waits until it is healthy', async () => {
    const { apply, rows, done } = await setup('order');
    try {
      const result = await apply(`services:
${slow}  dependant:
    image: ${IMAGES.webV1}
    depends_on: { slow: { condition: service_healthy } }
  free:
    image: ${IMAGES.webV1}
`);
      expect(result.status, result.errors?.join('\n')).toBe('synced');
      const list = rows();
      const slowHealthy = at(list, 'container.healthy', 'slow');
      expect(slowHealthy).toBeGreaterThan(-1);
      // free is in the file after dependant, which waits for slow: it went ahead
      expect(at(list, 'container.created', 'free')).toBeLessThan(slowHealthy);
      expect(at(list, 'container.created', 'dependant')).toBeGreaterThan(slowHealthy);
    } finally {
      await done();
    }
  });

  it('after a failing service nothing more starts; what was under way finishes', async () => {
    const { stack, apply, rows, done } = await setup('halt');
    try {
      const result = await apply(`services:
  broken:
    image: ${IMAGES.webV1}
    command: ["sh", "-c", "exit 3"]
    healthcheck: { disable: true }
    restart: "no"
    deploy: { update_config: { monitor: 2s } }
  dependant:
    image: ${IMAGES.webV1}
    depends_on: [broken]
${slow}`);
      expect(result.status).toBe('failed');
      expect(result.errors?.join('\n')).toMatch(/^broken: a new replica is not up/);
      expect(await serviceContainers(docker, stack, 'dependant')).toHaveLength(0);
      // slow was started beside broken, and its apply went to the end
      const list = rows();
      expect(at(list, 'container.created', 'slow')).toBeGreaterThan(-1);
      expect(list.at(-1)).toMatchObject({ kind: 'sync.failed', service: 'broken' });
    } finally {
      await done();
    }
  });
});

describe('stop-first', () => {
  it('readies the new image once per host, not again for each replica it creates', async () => {
    const { apply, done } = await setup('prepare');
    const prepare = vi.spyOn(DockerHost.prototype, 'prepare');
    try {
      const file = (image: string) => `services:\n  web:\n    image: ${image}\n    deploy: { replicas: 3 }\n`;
      expect((await apply(file(IMAGES.webV1))).status).toBe('synced');
      prepare.mockClear();
      expect((await apply(file(IMAGES.webV2))).status).toBe('synced');
      expect(prepare.mock.calls.map(([spec]) => spec.create.Image)).toEqual([IMAGES.webV2]);
    } finally {
      prepare.mockRestore();
      await done();
    }
  });

  it('puts the old container back, name and all, when the new one cannot be created', async () => {
    const { stack, apply, rows, done } = await setup('restore');
    try {
      const file = (cpus: string) => `services:
  web:
    image: ${IMAGES.webV1}
    deploy: { resources: { limits: { cpus: "${cpus}" } } }
`;
      expect((await apply(file('0.5'))).status).toBe('synced');
      const [before] = await serviceContainers(docker, stack, 'web');

      // more CPUs than the daemon's machine has: Docker refuses the container at create
      const result = await apply(file('512'));
      // failure_action (pause by default) applies, as to a replica that does not get ready
      expect(result.status).toBe('paused');
      expect(result.errors?.join('\n')).toMatch(/CPUs/);
      const after = await serviceContainers(docker, stack, 'web');
      expect(after.map((c) => [c.Id, c.Names[0], c.State])).toEqual([[before.Id, `/${stack}-web-1`, 'running']]);
      expect(
        rows()
          .slice(-4)
          .map((r) => r.kind),
      ).toEqual(['container.restored', 'rollout.failed', 'rollout.paused', 'sync.failed']);
    } finally {
      await done();
    }
  });
});

/** Whether Docker lets a container join `network` with an address of its choosing (only on a network with a configured subnet). */
async function takesAnAddress(network: string): Promise<boolean> {
  const net = docker.getNetwork(network);
  const subnet = String((await net.inspect()).IPAM?.Config?.[0]?.Subnet);
  const box = await docker.createContainer({ Image: IMAGES.webV1, name: uniqueName('addr') });
  try {
    await net.connect({ Container: box.id, EndpointConfig: { IPAMConfig: { IPv4Address: subnet.replace(/\.0\/\d+$/, '.200') } } });
    return true;
  } catch (err) {
    expect(String(err)).toMatch(/user configured subnets/);
    return false;
  } finally {
    await box.remove({ force: true });
  }
}

describe('stack networks', () => {
  it('the networks that need a configured subnet: those a service joins that updates or rolls back start-first', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': `services:
  a: { image: nginx, networks: [front] }
  b: { image: nginx, networks: [back], deploy: { update_config: { order: start-first } } }
  c: { image: nginx, deploy: { rollback_config: { order: start-first } } }
  d: { image: nginx, networks: [front, back] }
networks: { front: {}, back: {} }
`,
      },
      'app',
    );
    expect([...startFirstNetworks(stack)].sort()).toEqual(['back', 'default']);
    expect(startFirstNetworks(null).size).toBe(0);
  });

  it('only a start-first stack gets a configured subnet; start-first on a network without one still replaces every replica', async () => {
    const captured = capturedLogger();
    const plain = await setup('plainnet', (file) => new Engine(loadConfig(file), captured.log));
    const first = await setup('firstnet');
    const file = (image: string, order: string) => `services:
  web:
    image: ${image}
    deploy: { replicas: 2, update_config: { order: ${order} } }
`;
    try {
      expect((await plain.apply(file(IMAGES.webV1, 'stop-first'))).status).toBe('synced');
      expect((await first.apply(file(IMAGES.webV1, 'start-first'))).status).toBe('synced');
      expect(await takesAnAddress(`${plain.stack}_default`)).toBe(false);
      expect(await takesAnAddress(`${first.stack}_default`)).toBe(true);

      // The stop-first stack turns start-first: its network stays as it is, the replicas reconnect with new addresses.
      const before = await serviceContainers(docker, plain.stack, 'web');
      const result = await plain.apply(file(IMAGES.webV2, 'start-first'));
      expect(result.status, result.errors?.join('\n')).toBe('synced');
      const after = await serviceContainers(docker, plain.stack, 'web');
      const v2 = (await docker.getImage(IMAGES.webV2).inspect()).Id;
      expect(after.map((c) => [c.Names[0], c.ImageID])).toEqual([1, 2].map((n) => [`/${plain.stack}-web-${n}`, v2]));
      expect(after.map((c) => c.Id).filter((id) => before.some((b) => b.Id === id))).toEqual([]);
      expect(captured.text()).toMatch(/the network has no configured subnet: the container reconnects with a new address/);
    } finally {
      await plain.done();
      await first.done();
    }
  });
});
