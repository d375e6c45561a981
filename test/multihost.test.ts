// Several real hosts: placement by constraints, caps and modes, and a host that stops answering.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { uniqueName, removeContainers, waitFor } from './harness/docker.ts';
import { IMAGES, buildTestImages } from './harness/images.ts';
import { startDaemon, TEST_ROOT, type TestDaemon } from './harness/daemon.ts';
import { testEngine, testHosts, writeConfig } from './harness/berth.ts';

let server: GitServer;
const dockers = () => inject('dockers').map((d) => new Dockerode({ socketPath: d.socketPath }));

beforeAll(async () => {
  server = await startGitServer();
});
afterAll(async () => server?.close());

/** service -> host name -> how many running replicas of the stack's service. */
async function spread(stack: string, hosts: Array<{ name: string; docker: Dockerode }>) {
  const out: Record<string, Record<string, number>> = {};
  for (const h of hosts) {
    for (const c of await h.docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } })) {
      const svc = c.Labels['berth.service'];
      out[svc] ??= {};
      out[svc][h.name] = (out[svc][h.name] ?? 0) + 1;
    }
  }
  return out;
}

describe('placement over three hosts', () => {
  it('replicas 4 with max 2 per node on the label-matching hosts, a global service once per matching host', async () => {
    const stack = uniqueName('place').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('placerepo'));
    const hosts = testHosts([
      { role: 'web', zone: 'a' },
      { role: 'web', zone: 'b' },
      { role: 'db', zone: 'a' },
    ]);
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts });
    const engine = testEngine(cfg.file);
    const clients = dockers().map((docker, i) => ({ name: hosts[i].name, docker }));
    try {
      await repo.commit({
        [`${stack}/compose.yaml`]: `services:
  web:
    image: ${IMAGES.webV1}
    deploy:
      replicas: 4
      placement:
        max_replicas_per_node: 2
        constraints: [node.labels.role == web]
  agent:
    image: ${IMAGES.webV1}
    deploy:
      mode: global
      placement:
        constraints: ["node.labels.zone == a"]
`,
      });
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
      expect(pass.stacks[0].status, pass.stacks[0].errors?.join()).toBe('synced');
      expect(await spread(stack, clients)).toEqual({ web: { d1: 2, d2: 2 }, agent: { d1: 1, d3: 1 } });

      // A fifth replica has nowhere to go: a clear error, and nothing changes.
      await repo.commit({
        [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    deploy:\n      replicas: 5\n      placement:\n        max_replicas_per_node: 2\n        constraints: [node.labels.role == web]\n`,
      });
      const full = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(full.stacks[0].status).toBe('failed');
      expect(full.stacks[0].errors?.[0]).toMatch(
        /service web: cannot place replica 5 of 5: host d1: max_replicas_per_node \(2\) reached; host d2: max_replicas_per_node \(2\) reached; host d3: does not match node\.labels\.role == web/,
      );
      expect(await spread(stack, clients)).toEqual({ web: { d1: 2, d2: 2 }, agent: { d1: 1, d3: 1 } });
    } finally {
      engine.close();
      await Promise.all(clients.map((c) => removeContainers(c.docker, { 'berth.stack': stack })));
      cfg.cleanup();
    }
  });
});

describe('placement of many stacks', () => {
  it('a pass spreads new one-replica stacks over the hosts, counting the stacks it placed before', async () => {
    const repo = await server.createRepo(uniqueName('spreadrepo'));
    // One daemon under three names: each host lists the same containers (whatever other tests run), so only the stacks placed in this pass tell them apart.
    const socket = inject('docker').socketPath;
    const hosts = ['x', 'y', 'z'].map((name) => ({ name, endpoint: `unix://${socket}` }));
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts });
    const engine = testEngine(cfg.file);
    try {
      const prefix = uniqueName('sp').replaceAll('-', '');
      const stacks = [1, 2, 3].map((i) => `${prefix}${i}`);
      await repo.commit(Object.fromEntries(stacks.map((s) => [`${s}/compose.yaml`, `services:\n  web:\n    image: ${IMAGES.webV1}\n`])));
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual', dryRun: true });
      const where = pass.stacks.map((s) => s.plan?.actions.map((a) => `${a.kind}@${a.host}`).join());
      expect(where).toHaveLength(3);
      expect(new Set(where)).toEqual(new Set(['create@x', 'create@y', 'create@z']));
    } finally {
      engine.close();
      cfg.cleanup();
    }
  });
});

describe('a host that stops answering', () => {
  let extra: TestDaemon;
  beforeAll(async () => {
    extra = await startDaemon();
    await buildTestImages(new Dockerode(extra.dockerOptions));
  });
  afterAll(async () => {
    signal('SIGCONT');
    await extra?.stop();
  });
  /** Freezes or thaws the extra host's dockerd: its API stops answering, its containers keep running. */
  const signal = (sig: 'SIGSTOP' | 'SIGCONT') => {
    if (!extra) return;
    const pid = Number(readFileSync(join(TEST_ROOT, `d${extra.index}`, 'dockerd.pid'), 'utf8'));
    process.kill(pid, sig);
  };

  it('its replicas move after the grace period; when it answers again its stale ones go, leaving exactly the replicas wanted', async () => {
    const stack = uniqueName('lost').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('lostrepo'));
    const [d1] = testHosts();
    const hosts = [
      { ...d1, labels: { pool: 'kill' } },
      { name: 'dx', endpoint: `unix://${extra.socketPath}`, labels: { pool: 'kill' } },
    ];
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts, hostCheck: { interval: '1s', gracePeriod: '3s', timeout: '1s' } });
    const engine = testEngine(cfg.file);
    const clients = [
      { name: 'd1', docker: dockers()[0] },
      { name: 'dx', docker: new Dockerode(extra.dockerOptions) },
    ];
    const passes: Array<Promise<unknown>> = [];
    try {
      await repo.commit({
        [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    deploy:\n      replicas: 2\n      placement: { constraints: [node.labels.pool == kill] }\n`,
      });
      await engine.syncRepo(repo.name, { trigger: 'manual' });
      expect(await spread(stack, clients)).toEqual({ web: { d1: 1, dx: 1 } });
      engine.startMonitor(() => passes.push(engine.syncRepo(repo.name, { trigger: 'drift' })));

      signal('SIGSTOP');
      // While it is only unreachable, nothing moves, and a pass still completes for the hosts that answer.
      await waitFor(() => engine.monitor.status().find((h) => h.name === 'dx')?.state === 'unreachable', { what: 'dx to be unreachable' });
      const during = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(during.unreachable).toEqual(['dx']);
      expect(during.stacks[0].status, during.stacks[0].diff).toBe('unchanged');
      expect((await engine.status(stack))[0]).toMatchObject({ sync: 'Unknown', health: 'Unknown' });

      // Past the grace period it is lost: its replica is placed on d1.
      await waitFor(async () => (await spread(stack, [clients[0]])).web?.d1 === 2, { what: 'the replica to move to d1', timeoutMs: 60_000 });

      signal('SIGCONT');
      await waitFor(() => engine.monitor.status().find((h) => h.name === 'dx')?.state === 'up', { what: 'dx to answer again' });
      await waitFor(async () => JSON.stringify(await spread(stack, clients)) === JSON.stringify({ web: { d1: 2 } }), {
        what: 'the stale replica on dx to be removed',
        timeoutMs: 60_000,
      });
      await Promise.all(passes);
      const rows = engine.audit.query({ limit: 1000 }).rows.reverse();
      const story = rows.filter((r) => r.host === 'dx' && ['host.down', 'host.lost', 'host.up', 'container.removed'].includes(r.kind)).map((r) => r.kind);
      expect(story).toEqual(['host.down', 'host.lost', 'host.up', 'container.removed']);
      const created = rows.filter((r) => r.stack === stack && r.kind === 'container.created' && r.trigger === 'drift');
      expect(created).toMatchObject([{ host: 'd1', service: 'web' }]);
    } finally {
      signal('SIGCONT');
      engine.close();
      await Promise.all(clients.map((c) => removeContainers(c.docker, { 'berth.stack': stack })));
      cfg.cleanup();
    }
  });
});
