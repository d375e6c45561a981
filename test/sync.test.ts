// The whole sync loop on one real Docker host, from a real git remote, with its audit log.
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { containerEvents, testDocker, uniqueName, removeContainers } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { runCli, testEngine, writeConfig } from './harness/berth.ts';
import type { Engine } from '../src/engine/engine.ts';

const TOKEN = 'sync-test-token-1f2e3d';

let server: GitServer;
let docker: Dockerode;

beforeAll(async () => {
  server = await startGitServer({ token: TOKEN });
  docker = testDocker();
});
afterAll(async () => {
  await server?.close();
});

/** The managed containers of one stack: service#slot -> container. */
async function containersOf(stack: string) {
  const list = await docker.listContainers({ all: true, filters: { label: [`berth.managed=true`, `berth.stack=${stack}`] } });
  return new Map(list.map((c) => [`${c.Labels['berth.service']}#${c.Labels['berth.slot']}`, c]));
}

function compose(opts: { greeting: string; withApi?: boolean; apiEnv?: string }): string {
  return `services:
  web:
    image: ${IMAGES.webV1}
    environment:
      GREETING: ${opts.greeting}
    deploy:
      replicas: 2
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]
      interval: 1s
${
  opts.withApi === false
    ? ''
    : `  api:
    image: ${IMAGES.webV2}
    environment:
      MODE: ${opts.apiEnv ?? 'one'}
      DB_PASSWORD: hunter2-${opts.apiEnv ?? 'one'}
    depends_on: [web]
    volumes:
      - cache:/cache
volumes:
  cache: {}
`
}`;
}

describe('one host converges to a git branch', () => {
  let repo: RemoteRepo;
  let stack: string;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let unmanaged: Dockerode.Container;
  const author = { name: 'Ada Lovelace', email: 'ada@example.com' };

  beforeAll(async () => {
    stack = uniqueName('shop').replaceAll('-', '');
    repo = await server.createRepo(uniqueName('platform'));
    cfg = writeConfig([{ name: repo.name, url: repo.url, token: TOKEN }]);
    engine = testEngine(cfg.file);
    // An unmanaged container that even claims the stack's compose project: berth must never touch it.
    unmanaged = await docker.createContainer({
      Image: IMAGES.webV1,
      name: uniqueName('unmanaged'),
      Labels: { 'com.docker.compose.project': stack, 'berth.stack': stack, 'test.unmanaged': stack },
    });
    await unmanaged.start();
  });
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  it('walks four commits: create, change one service, a broken commit, remove a service', async () => {
    const berthYaml = `stacks:\n  - name: ${stack}\n    compose: [app/compose.yaml]\n`;
    const sha1 = await repo.commit({ 'berth.yaml': berthYaml, 'app/compose.yaml': compose({ greeting: 'hello' }) }, { message: 'First deploy', author });
    const pass1 = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass1.error).toBeUndefined();
    expect(pass1.stacks.map((s) => [s.stack, s.status])).toEqual([[stack, 'synced']]);

    const after1 = await containersOf(stack);
    expect([...after1.keys()].sort()).toEqual(['api#1', 'web#1', 'web#2']);
    for (const c of after1.values()) {
      expect(c.State).toBe('running');
      expect(c.Labels).toMatchObject({
        'berth.managed': 'true',
        'berth.repo': repo.name,
        'berth.stack': stack,
        'berth.commit': sha1,
        'com.docker.compose.project': stack,
        'com.docker.compose.oneoff': 'False',
      });
      expect(c.Labels['berth.spec-hash']).toMatch(/^[0-9a-f]{16}$/);
      expect(c.Labels['com.docker.compose.service']).toBe(c.Labels['berth.service']);
      expect(c.Labels['com.docker.compose.container-number']).toBe(c.Labels['berth.slot']);
    }
    // What `docker compose -p STACK ps` asks the daemon for: the project label, not one-off.
    const composePs = await docker.listContainers({ filters: { label: [`com.docker.compose.project=${stack}`, 'com.docker.compose.oneoff=False'] } });
    expect(composePs.map((c) => c.Names[0]).sort()).toEqual([`/${stack}-api-1`, `/${stack}-web-1`, `/${stack}-web-2`]);

    // The stack's network: services answer to their names on it.
    const api = docker.getContainer(after1.get('api#1')!.Id);
    const exec = await api.exec({ Cmd: ['wget', '-q', '-O-', 'http://web/'], AttachStdout: true, AttachStderr: true });
    const out = await new Promise<string>((res, rej) => {
      exec.start({}, (err, stream) => {
        if (err || !stream) return rej(err);
        let s = '';
        stream.on('data', (d: Buffer) => (s += d.toString()));
        stream.on('end', () => res(s));
      });
    });
    expect(out).toContain('v1');
    expect((await docker.getNetwork(`${stack}_default`).inspect()).Labels).toMatchObject({ 'berth.managed': 'true', 'berth.stack': stack });
    expect((await docker.getVolume(`${stack}_cache`).inspect()).Labels).toMatchObject({ 'berth.managed': 'true' });

    // Commit 2 changes only api's environment: only api is replaced.
    const sha2 = await repo.commit({ 'app/compose.yaml': compose({ greeting: 'hello', apiEnv: 'two' }) }, { message: 'Switch api to mode two', author });
    const pass2 = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(pass2.stacks[0].status).toBe('synced');
    const after2 = await containersOf(stack);
    expect(after2.get('web#1')!.Id).toBe(after1.get('web#1')!.Id);
    expect(after2.get('web#2')!.Id).toBe(after1.get('web#2')!.Id);
    expect(after2.get('api#1')!.Id).not.toBe(after1.get('api#1')!.Id);
    expect(after2.get('api#1')!.Labels['berth.commit']).toBe(sha2);

    const replaced = engine.audit.query({ stack, kind: 'container.replaced' }).rows;
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({
      commitSha: sha2,
      commitAuthor: 'Ada Lovelace',
      commitEmail: 'ada@example.com',
      service: 'api',
      host: 'test',
      trigger: 'poll',
      containerBefore: after1.get('api#1')!.Id,
      containerAfter: after2.get('api#1')!.Id,
    });
    expect(replaced[0].commitMessage).toContain('Switch api to mode two');
    expect(replaced[0].diff).toContain('-  MODE: one');
    expect(replaced[0].diff).toContain('+  MODE: two');
    // The password changed too, but its value is in no audit row, only a hash of it.
    expect(replaced[0].diff).toContain('DB_PASSWORD: <masked sha256:');
    const everything = JSON.stringify(engine.audit.query({ limit: 1000 }).rows);
    expect(everything).not.toContain('hunter2');

    // Commit 3 is broken YAML: nothing changes, and it is recorded as invalid, once.
    const sha3 = await repo.commit({ 'app/compose.yaml': 'services:\n  web:\n    image: [unclosed\n' }, { message: 'Oops', author });
    const pass3 = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(pass3.stacks[0].status).toBe('invalid');
    expect(pass3.stacks[0].errors?.[0]).toMatch(/^app\/compose\.yaml:\d+:\d+: /);
    await engine.syncRepo(repo.name, { trigger: 'poll' });
    const after3 = await containersOf(stack);
    expect([...after3.values()].map((c) => c.Id).sort()).toEqual([...after2.values()].map((c) => c.Id).sort());
    const invalid = engine.audit.query({ kind: 'manifest.invalid', stack }).rows;
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ commitSha: sha3, commitMessage: 'Oops', outcome: 'error' });
    expect(invalid[0].message).toMatch(/app\/compose\.yaml:\d+:\d+/);

    // Commit 4 removes api: its container goes, web stays.
    const sha4 = await repo.commit({ 'app/compose.yaml': compose({ greeting: 'hello', withApi: false }) }, { message: 'Drop api', author });
    const pass4 = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(pass4.stacks[0].status).toBe('synced');
    const after4 = await containersOf(stack);
    expect([...after4.keys()].sort()).toEqual(['web#1', 'web#2']);
    expect(after4.get('web#1')!.Id).toBe(after1.get('web#1')!.Id);
    const removed = engine.audit.query({ kind: 'container.removed', stack }).rows;
    expect(removed).toMatchObject([{ commitSha: sha4, service: 'api', containerBefore: after2.get('api#1')!.Id }]);
    // Named volumes are never deleted by a prune.
    expect((await docker.getVolume(`${stack}_cache`).inspect()).Name).toBe(`${stack}_cache`);

    // The unmanaged container was never touched.
    const u = await unmanaged.inspect();
    expect(u.State.Running).toBe(true);
    expect(u.RestartCount).toBe(0);

    // The same sync again makes no create, start, stop or remove call.
    const t0 = Date.now();
    const again = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    const t1 = Date.now();
    expect(again.stacks[0].status).toBe('unchanged');
    expect(await containerEvents(docker, stack, t0, t1)).toEqual([]);
    // ...whereas a sync that does change something shows up in the same kind of event query.
    const t2 = Date.now();
    await docker.getContainer(after4.get('web#2')!.Id).remove({ force: true });
    await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    const events = await containerEvents(docker, stack, t2, Date.now());
    expect(events).toEqual(expect.arrayContaining(['create', 'start']));
  });

  it('removes a stack deleted from Git, and its network', async () => {
    const second = `${stack}b`;
    const berthYaml = `stacks:\n  - name: ${stack}\n    compose: [app/compose.yaml]\n  - name: ${second}\n    compose: [b/compose.yaml]\n`;
    await repo.commit({ 'berth.yaml': berthYaml, 'b/compose.yaml': `services:\n  one:\n    image: ${IMAGES.webV1}\n` });
    await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect([...(await containersOf(second)).keys()]).toEqual(['one#1']);
    await repo.commit({ 'berth.yaml': `stacks:\n  - name: ${stack}\n    compose: [app/compose.yaml]\n`, 'b/compose.yaml': null });
    const pass = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(pass.stacks.find((s) => s.stack === second)?.status).toBe('synced');
    expect((await containersOf(second)).size).toBe(0);
    await expect(docker.getNetwork(`${second}_default`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect([...(await containersOf(stack)).keys()].sort()).toEqual(['web#1', 'web#2']);
  });

  it('audit verify passes on the real log and fails once a row is edited in the file', async () => {
    const ok = await runCli(['--config', cfg.file, 'audit', 'verify']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: \d+ row\(s\)/);

    const listed = await runCli(['--config', cfg.file, 'audit', '--stack', stack, '--json']);
    expect(listed.code).toBe(0);
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; stack: string });
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.every((r) => r.stack === stack)).toBe(true);

    const db = new DatabaseSync(join(cfg.dataDir, 'berth.db'));
    const victim = db.prepare(`SELECT id FROM audit WHERE kind = 'container.replaced' AND stack = ?`).get(stack) as { id: number };
    // The table refuses edits through SQL; someone editing the file drops that guard first.
    expect(() => db.prepare(`UPDATE audit SET actor = 'mallory' WHERE id = ?`).run(victim.id)).toThrow();
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET actor = 'mallory' WHERE id = ?`).run(victim.id);
    db.close();
    const bad = await runCli(['--config', cfg.file, 'audit', 'verify']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`row ${victim.id}`);
  });
});

describe('an engine killed mid-plan', () => {
  it('converges to the same end state after a restart, with no duplicate and no lost container', async () => {
    const stack = uniqueName('kill').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('killrepo'));
    const cfg = writeConfig([{ name: repo.name, url: repo.url, token: TOKEN }]);
    try {
      const file = (mode: string) =>
        `services:\n  app:\n    image: ${IMAGES.webV1}\n    environment: { MODE: ${mode} }\n    deploy: { replicas: 5 }\n  tail:\n    image: ${IMAGES.webV2}\n    environment: { MODE: ${mode} }\n    depends_on: [app]\n    deploy: { replicas: 2 }\n`;
      await repo.commit({ 'berth.yaml': `stacks: [{ name: ${stack}, compose: [c.yaml] }]\n`, 'c.yaml': file('a') });
      const first = await runCli(['--config', cfg.file, 'sync']);
      expect(first.code, first.stderr).toBe(0);
      expect((await containersOf(stack)).size).toBe(7);

      // Commit 2 replaces all 7, one at a time (stop-first). Kill the engine once the first new one is up.
      const sha2 = await repo.commit({ 'c.yaml': file('b') });
      const run = runCli(['--config', cfg.file, 'sync']);
      let seenAtKill = -1;
      for (let i = 0; i < 3000 && seenAtKill < 0; i++) {
        const list = await containersOf(stack);
        const fresh = [...list.values()].filter((c) => c.Labels['berth.commit'] === sha2).length;
        if (fresh >= 1) {
          run.child.kill('SIGKILL');
          seenAtKill = fresh;
        } else await new Promise((r) => setTimeout(r, 10));
      }
      const killed = { ...(await run), pid: run.child.pid };
      expect(killed.signal).toBe('SIGKILL');
      // The kill came in the middle: not everything was replaced yet.
      expect(seenAtKill).toBeGreaterThan(0);
      expect([...(await containersOf(stack)).values()].filter((c) => c.Labels['berth.commit'] === sha2).length).toBeLessThan(7);

      const second = await runCli(['--config', cfg.file, 'sync']);
      expect(second.code, second.stderr).toBe(0);
      const end = await containersOf(stack);
      expect([...end.keys()].sort()).toEqual(['app#1', 'app#2', 'app#3', 'app#4', 'app#5', 'tail#1', 'tail#2']);
      const all = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      expect(all).toHaveLength(7);
      for (const c of all) {
        expect(c.State).toBe('running');
        expect(c.Labels['berth.commit']).toBe(sha2);
      }
      // The killed run's sync is settled as interrupted, in the audit log too.
      const audit = await runCli(['--config', cfg.file, 'audit', '--stack', stack, '--json']);
      const rows = audit.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; message?: string });
      expect(rows.filter((r) => r.kind === 'sync.failed').map((r) => r.message)).toEqual([
        expect.stringMatching(new RegExp(`of commit ${sha2.slice(0, 7)}: interrupted: the berth process that ran it \\(.*:${killed.pid}\\) stopped`)),
      ]);
    } finally {
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });
});

describe('what automatic triggers leave alone', () => {
  it('a stack with sync.auto off is only reported out of sync, until someone syncs it', async () => {
    const stack = uniqueName('manual').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('autorepo'));
    const cfg = writeConfig([{ name: repo.name, url: repo.url, token: TOKEN }]);
    const engine = testEngine(cfg.file);
    try {
      await repo.commit({
        'berth.yaml': `stacks:\n  - name: ${stack}\n    compose: c.yaml\n    sync: { auto: false }\n`,
        'c.yaml': `services:\n  web:\n    image: ${IMAGES.webV1}\n`,
      });
      const polled = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(polled.stacks[0]).toMatchObject({ stack, status: 'outofsync' });
      expect(polled.stacks[0].diff).toContain('# create web#1 on test: missing');
      expect((await containersOf(stack)).size).toBe(0);
      expect(engine.audit.query({ stack }).rows).toEqual([]);

      const manual = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'ops' });
      expect(manual.stacks[0].status).toBe('synced');
      // the harness's images are the daemon's own (no registry knows them): they run by their tag, and the plan says so
      expect(manual.stacks[0].diff).toContain(`# create web#1 on test: missing; image ${IMAGES.webV1} unpinned: no registry answers for it\n`);
      expect((await containersOf(stack)).size).toBe(1);
      expect(engine.audit.query({ stack, kind: 'sync.started' }).rows[0]).toMatchObject({ trigger: 'manual', actor: 'ops' });
    } finally {
      engine.close();
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });

  it('a failing apply is retried with back-off by polls, at once by hand', async () => {
    const stack = uniqueName('nopull').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('pullrepo'));
    const cfg = writeConfig([{ name: repo.name, url: repo.url, token: TOKEN }]);
    const engine = testEngine(cfg.file);
    try {
      // No registry is reachable from the test daemon: the image can be neither found nor pulled.
      await repo.commit({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: berth-test/nowhere:1\n` });
      const first = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(first.stacks[0].status).toBe('failed');
      expect(first.stacks[0].errors?.[0]).toMatch(
        /^web: pull berth-test\/nowhere:1 on test: .* \(registry docker\.io, no credentials for it in the engine config \(registries:\)\)/,
      );
      const rows = () => engine.audit.query({ stack }).rows.map((r) => r.kind);
      expect(rows()).toEqual(['sync.failed', 'network.created', 'sync.started']);

      const second = await engine.syncRepo(repo.name, { trigger: 'poll' });
      expect(second.stacks[0].status).toBe('outofsync');
      expect(second.stacks[0].errors?.[0]).toMatch(/the last 1 attempt\(s\) failed; the next in \d+ s/);
      expect(rows()).toHaveLength(3);

      const byHand = await engine.syncRepo(repo.name, { trigger: 'manual' });
      expect(byHand.stacks[0].status).toBe('failed');
      expect(rows()).toEqual(['sync.failed', 'sync.started', 'sync.failed', 'network.created', 'sync.started']);
    } finally {
      engine.close();
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });
});
