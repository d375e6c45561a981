// Secrets and configs delivered as files (docs/manifests.md): from the repo, from the repo's
// secrets folder on the engine's machine, and from the engine's environment; a rotation rolls the
// service, and no value ever reaches the log, the database, a diff or an API answer.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { execIn, removeContainers, testDocker, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { serveEngine, writeConfig } from './harness/berth.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';

// distinctive values, so that a grep finds any copy of them
const VALUES = {
  file1: 'file-secret-7c1e-first',
  file2: 'file-secret-9d2f-second',
  ext1: 'ext-secret-3a4b-first',
  ext2: 'ext-secret-5c6d-second',
  env: 'env-secret-8e9f-only',
};
const ENV_NAME = `BERTH_TEST_SECRET_${process.pid}`;

const compose = `services:
  app:
    image: ${IMAGES.webV1}
    secrets:
      - source: api_key
        target: api-key
        mode: 0400
        uid: "100"
        gid: "101"
      - token
      - from_env
    configs:
      - source: settings
        target: /etc/app/settings.conf
secrets:
  api_key:
    file: ./api_key.txt
  token:
    external: true
    name: app-token
  from_env:
    environment: ${ENV_NAME}
configs:
  settings:
    content: |
      level=debug
`;

let server: GitServer;
let docker: Dockerode;

beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => {
  await server?.close();
});

describe('secret rotation', () => {
  let repo: RemoteRepo;
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  let logFile: string;
  let secretsDir: string;
  let closed = false;
  const stack = `sec${uniqueName('').replaceAll('-', '')}`;

  beforeAll(async () => {
    process.env[ENV_NAME] = VALUES.env;
    repo = await server.createRepo(uniqueName('secrets'));
    cfg = writeConfig([{ name: repo.name, url: repo.url, settings: { secrets: { dir: 'secrets', environment: ['BERTH_TEST_SECRET_*'] } } }]);
    secretsDir = join(cfg.dir, 'secrets');
    mkdirSync(secretsDir);
    writeFileSync(join(secretsDir, 'app-token'), VALUES.ext1);
    logFile = join(cfg.dir, 'berth.log');
    engine = new Engine(loadConfig(cfg.file), pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true })));
  });
  afterAll(async () => {
    if (!closed) engine?.close();
    delete process.env[ENV_NAME];
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  const app = async () => {
    const [c] = await docker.listContainers({ filters: { label: [`berth.stack=${stack}`, 'berth.service=app'] } });
    return docker.getContainer(c.Id);
  };
  const cat = async (path: string) => (await execIn(await app(), ['cat', path])).output;
  const sync = async () => {
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    return pass.stacks.map((s) => [s.status, s.errors]);
  };

  it('delivers every source as a file, rolls the service on each rotation, and shows no value anywhere', async () => {
    await repo.commit({ [`${stack}/compose.yaml`]: compose, [`${stack}/api_key.txt`]: VALUES.file1 });
    expect(await sync()).toEqual([['synced', undefined]]);
    expect(await cat('/run/secrets/api-key')).toBe(VALUES.file1);
    expect(await cat('/run/secrets/token')).toBe(VALUES.ext1);
    expect(await cat('/run/secrets/from_env')).toBe(VALUES.env);
    expect(await cat('/etc/app/settings.conf')).toBe('level=debug\n');
    expect((await execIn(await app(), ['stat', '-c', '%a %u %g', '/run/secrets/api-key', '/run/secrets/token'])).output.trim().split('\n')).toEqual([
      '400 100 101',
      '444 0 0',
    ]);
    const first = (await app()).id;

    // rotated in Git: the service rolls, the new value is in the file
    await repo.commit({ [`${stack}/api_key.txt`]: VALUES.file2 });
    expect(await sync()).toEqual([['synced', undefined]]);
    expect(await cat('/run/secrets/api-key')).toBe(VALUES.file2);
    const second = (await app()).id;
    expect(second).not.toBe(first);

    // rotated in the secrets folder (no commit): the service rolls too
    writeFileSync(join(secretsDir, 'app-token'), VALUES.ext2);
    expect(await sync()).toEqual([['synced', undefined]]);
    expect(await cat('/run/secrets/token')).toBe(VALUES.ext2);
    expect((await app()).id).not.toBe(second);
    expect(engine.audit.query({ stack, kind: 'drift.detected' }).rows).toEqual([]); // a rotation is no drift
    // and nothing changes when nothing rotates
    expect(await sync()).toEqual([['unchanged', undefined]]);

    // every API answer
    const { app: api, base: root } = await serveEngine(engine);
    const base = `${root}/api/v1`;
    const answers: string[] = [];
    const read = async (path: string) => {
      const text = await (await fetch(base + path)).text();
      answers.push(text);
      return JSON.parse(text) as Record<string, unknown>;
    };
    try {
      await read('/stacks');
      await read(`/stacks/${stack}`);
      await read('/hosts');
      const { syncs } = (await read(`/syncs?stack=${stack}`)) as { syncs: Array<{ id: number }> };
      expect(syncs.length).toBe(4); // three rotations and the manual sync that found nothing
      for (const s of syncs) await read(`/syncs/${s.id}`);
      await read(`/audit?stack=${stack}&limit=500`);
    } finally {
      await api.close();
    }
    const diffs = (await engine.syncAll({ trigger: 'manual', dryRun: true })).flatMap((p) => p.stacks.map((s) => JSON.stringify(s)));
    // the audit shows that the files changed, by hash only
    const steps = answers.join('\n');
    expect(steps).toMatch(/\/run\/secrets\/api-key: secret api_key sha256:[0-9a-f]{12}/);

    engine.close();
    closed = true;
    const db = ['berth.db', 'berth.db-wal'].map((f) => {
      try {
        return readFileSync(join(cfg.dataDir, f)).toString('latin1');
      } catch {
        return '';
      }
    });
    const haystacks = { log: readFileSync(logFile, 'utf8'), database: db.join('\n'), api: answers.join('\n'), plans: diffs.join('\n') };
    expect(haystacks.log).toContain('sync succeeded'); // the log is really there
    for (const [where, text] of Object.entries(haystacks)) {
      for (const value of Object.values(VALUES)) expect({ where, found: text.includes(value) }).toEqual({ where, found: false });
    }
  });
});

describe('a rollback puts the files back', () => {
  let repo: RemoteRepo;
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  const stack = `secrb${uniqueName('').replaceAll('-', '')}`;
  // Two replicas, one at a time, start-first. The new version is healthy only in the first replica
  // to take a lock on a volume they share: replica 1 is replaced for good (its old container
  // removed after the drain), replica 2's new one never gets healthy and goes. The rollback
  // recreates replica 1 from what its old container was, files and all.
  const file = (next: boolean) => `services:
  web:
    image: ${next ? IMAGES.webV2 : IMAGES.webV1}
${
  next
    ? `    command: ["sh", "-c", "trap 'exit 0' TERM; if mkdir /shared/lock; then touch /ok; fi; httpd -f -p 80 -h /www & wait"]
    healthcheck: { test: ["CMD", "test", "-f", "/ok"], interval: 1s, retries: 2 }
`
    : ''
}    secrets: [key]
    volumes: ["shared:/shared"]
    deploy:
      replicas: 2
      update_config: { parallelism: 1, order: start-first, failure_action: rollback, monitor: 2s }
secrets:
  key:
    file: key.txt
volumes:
  shared: {}
`;

  beforeAll(async () => {
    repo = await server.createRepo(uniqueName('secrb'));
    cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
  });
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  it('rolls back a failed rollout with the secret the old replica had', async () => {
    await repo.commit({ [`${stack}/compose.yaml`]: file(false), [`${stack}/key.txt`]: 'old-key' });
    const first = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(first.stacks.map((s) => s.status)).toEqual(['synced']);
    const before = (await docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } })).sort((a, b) => a.Names[0].localeCompare(b.Names[0]));
    await repo.commit({ [`${stack}/compose.yaml`]: file(true), [`${stack}/key.txt`]: 'new-key' });
    const second = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(second.stacks.map((s) => s.status)).toEqual(['rolledback']);
    const after = (await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).sort((a, b) =>
      a.Names[0].localeCompare(b.Names[0]),
    );
    expect(after.map((c) => [c.Names[0], c.State])).toEqual([
      [`/${stack}-web-1`, 'running'],
      [`/${stack}-web-2`, 'running'],
    ]);
    const rows = engine.audit.query({ stack, limit: 100 }).rows.reverse();
    expect(after[0].Id).not.toBe(before[0].Id); // recreated from what it was
    expect(after[1].Id).toBe(before[1].Id); // never replaced
    expect(
      rows
        .slice(
          rows.findIndex((r) => r.kind === 'rollback.started'),
          -1,
        )
        .map((r) => `${r.kind} ${r.message}`),
    ).toEqual([
      'rollback.started 1 of 2 replica(s) failed (batch 2 of 2): web.2@test unhealthy: health check exit code 1; rolling back 1 replica(s)',
      'rollback.batch batch 1 of 1: web#1@test',
      'container.replaced web#1: rollback',
      'container.healthy web#1: healthy',
      'rollback.succeeded 1 of 2 replica(s) failed (batch 2 of 2): web.2@test unhealthy: health check exit code 1',
    ]);
    for (const c of after) {
      expect(c.ImageID).toBe((await docker.getImage(IMAGES.webV1).inspect()).Id);
      expect((await execIn(docker.getContainer(c.Id), ['cat', '/run/secrets/key'])).output).toBe('old-key');
    }
  });
});

describe("a failed replica's output, kept in the audit", () => {
  const stack = uniqueName('secro').replaceAll('-', '');
  let repo: RemoteRepo;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;

  beforeAll(async () => {
    repo = await server.createRepo(uniqueName('secro'));
    cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    engine = new Engine(loadConfig(cfg.file), pino({ level: 'silent' }));
  });
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  it('has the secrets berth wrote into the container, and credential URLs of its environment, masked', async () => {
    // the replica prints its secret file and its database URL, then fails
    await repo.commit({
      [`${stack}/compose.yaml`]: `services:
  web:
    image: ${IMAGES.webV1}
    command: ["sh", "-c", "cat /run/secrets/key; echo; echo \\"url $$DB_URL\\"; exit 3"]
    environment:
      DB_URL: postgres://app:pw-6f1d-url@db/app
    secrets: [key]
secrets:
  key:
    file: key.txt
`,
      [`${stack}/key.txt`]: 'key-4e2a-in-a-file\n',
    });
    // as `berth sync --wait`: the sync ends once the new replica runs, or says why it does not
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test', waitHealthy: true });
    const [outcome] = pass.stacks;
    expect(outcome?.status).not.toBe('synced');
    const said = [...(outcome?.errors ?? []), ...engine.audit.query({ stack, limit: 100 }).rows.map((r) => `${r.message ?? ''} ${r.diff ?? ''}`)].join('\n');
    expect(said).toMatch(/last output: <masked> [ |]*url <masked>/);
    expect(said).not.toContain('key-4e2a-in-a-file');
    expect(said).not.toContain('pw-6f1d-url');
  });
});
