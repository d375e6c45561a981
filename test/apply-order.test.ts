// The order of an apply on a real daemon: services that do not depend on each other go together,
// a dependant waits for what it depends on, a failure starts nothing more, and a stop-first update
// whose new container cannot be created puts the old one back (issue 6).
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DockerHost } from '../src/apply/docker-host.ts';
import type { AuditRow } from '../src/audit/log.ts';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { serviceContainers, testDocker } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { auditRows, ownStack } from './harness/berth.ts';

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
async function setup(prefix: string) {
  const own = await ownStack(server, docker, prefix);
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
      expect(result.status).toBe('failed');
      expect(result.errors?.join('\n')).toMatch(/CPUs/);
      const after = await serviceContainers(docker, stack, 'web');
      expect(after.map((c) => [c.Id, c.Names[0], c.State])).toEqual([[before.Id, `/${stack}-web-1`, 'running']]);
      expect(rows().at(-1)).toMatchObject({ kind: 'sync.failed' });
    } finally {
      await done();
    }
  });
});
