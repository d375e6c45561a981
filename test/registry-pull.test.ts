// Private images from the harness's registry (TLS, htpasswd), pulled by berth on two hosts that
// never pulled or logged in: with a password file, with Docker's config file and a credential
// helper (a script on PATH stands in for docker-credential-NAME); a wrong password, no credentials
// and a tag that does not exist each fail the sync before the running replicas are touched, saying
// the registry's reason and whose credentials went; the password is in no log, row, answer or file.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { capturedLogger, freePort, runCli, serveEngine, testHosts, writeConfig } from './harness/berth.ts';
import { removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';
import { moveTag, pushImage, startRegistry } from './harness/registry.ts';
import { claimHostAddress } from './harness/daemon.ts';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import { buildServer } from '../src/server/server.ts';

const registry = inject('registry');
const dockers = inject('dockers');
/** The second and third daemons: the first pushed the images (and has them under other names). */
const hosts = testHosts().slice(1);
const daemons = dockers.slice(1).map((d) => new Dockerode({ socketPath: d.socketPath }));

const secrets = mkdtempSync(join(tmpdir(), 'berth-regpull-'));
const name = `private/${uniqueName('pull')}`;
const v1 = `${registry.host}/${name}:1`;
const v2 = `${registry.host}/${name}:2`;
const v3 = `${registry.host}/${name}:3`;

/** what the registry serves for :1 and :3 */
let digest1: string | undefined;
let digest3: string | undefined;
let server: GitServer;
let repo: RemoteRepo;
const stack = uniqueName('regpull').replaceAll('-', '');
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await startGitServer();
  repo = await server.createRepo(uniqueName('regpullrepo'));
  // images of this file's own: no other test pulls (or removes) them on these daemons meanwhile
  [digest1, , digest3] = (
    await Promise.all([
      pushImage(registry, dockers[0], IMAGES.webV1, `${name}:1`),
      pushImage(registry, dockers[0], IMAGES.webV2, `${name}:2`),
      pushImage(registry, dockers[0], IMAGES.webV2, `${name}:3`), // :2's image, which no sync before this one pulls
    ])
  ).map((p) => p.digest);
  writeFileSync(join(secrets, 'good'), `${registry.password}\n`);
  writeFileSync(join(secrets, 'wrong'), registry.wrongPassword);
  // a credential helper, as Docker's CLI runs them: the server on stdin, the credentials on stdout
  writeFileSync(
    join(secrets, 'docker-credential-berthreg'),
    `#!/bin/sh\nread server\n[ "$server" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"${registry.host}","Username":"${registry.username}","Secret":"${registry.password}"}'\n`,
    { mode: 0o755 },
  );
  writeFileSync(join(secrets, 'docker-config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'berthreg' } }));
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all(daemons.map((d) => removeContainers(d, { 'berth.stack': stack })));
  for (const d of daemons)
    for (const ref of [v1, v2, v3])
      await d
        .getImage(ref)
        .remove({ force: true })
        .catch(() => undefined);
  await server?.close();
  rmSync(secrets, { recursive: true, force: true });
});

/** An engine in this process on d2 and d3 with these registries, its log captured; `again` starts another on its config and data. */
function engineWith(registries: unknown[]) {
  const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts, registries });
  const start = () => {
    const { log, text } = capturedLogger();
    const engine = new Engine(loadConfig(cfg.file), log);
    cleanups.push(() => engine.close());
    return { engine, logs: text, dataDir: cfg.dataDir, again: start };
  };
  cleanups.push(() => cfg.cleanup());
  return start();
}

const compose = (image: string) => `services:\n  web:\n    image: ${image}\n    deploy:\n      mode: global\n`;
const deploy = (image: string) => repo.commit({ [`${stack}/compose.yaml`]: compose(image) }, { message: image });

/** The stack's replicas on d2 and d3: host -> { id, image }. */
async function replicas(): Promise<Record<string, { id: string; image: string }>> {
  const out: Record<string, { id: string; image: string }> = {};
  for (const [i, d] of daemons.entries()) {
    for (const c of await d.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })) out[hosts[i]!.name] = { id: c.Id, image: c.Image };
  }
  return out;
}

describe('pulling from a private registry', () => {
  const good = () => [{ host: registry.host, username: registry.username, passwordFile: join(secrets, 'good') }];

  it('a password file that cannot be read stops berth serve at start, naming the file', async () => {
    const missing = join(secrets, 'no-such-file');
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts, registries: [{ host: registry.host, username: 'u', passwordFile: missing }] });
    cleanups.push(() => cfg.cleanup());
    const serve = await runCli(['--config', cfg.file, 'serve']);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain(`berth: cannot read the password of registry ${registry.host} (registries[0]) from ${missing}: ENOENT`);
  });

  it('deploys a private image on two hosts that never pulled or logged in, with a password file', async () => {
    for (const d of daemons) await expect(d.getImage(v1).inspect()).rejects.toMatchObject({ statusCode: 404 });
    const { engine, logs } = engineWith(good());
    await deploy(v1);
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass.stacks.map((s) => [s.status, s.errors])).toEqual([['synced', undefined]]);
    // created from the digest the registry served when the spec was first applied
    expect(await replicas()).toEqual({ d2: { id: expect.any(String), image: `${v1}@${digest1}` }, d3: { id: expect.any(String), image: `${v1}@${digest1}` } });
    expect(logs()).toMatch(new RegExp(`"registry":"${registry.host.replaceAll('.', '\\.')}","credentials":"registries\\[0\\]".*"msg":"pulling image"`));
    expect(logs()).not.toContain(registry.password);
  });

  it('with a wrong password, no credentials, or a tag that does not exist: the sync fails before the running replicas are touched', async () => {
    const before = await replicas();
    const cases: Array<[unknown[], string, RegExp]> = [
      [
        [{ host: registry.host, username: registry.username, passwordFile: join(secrets, 'wrong') }],
        v2,
        /unauthorized: authentication required \(registry 10\.231\.\d+\.1:\d+, credentials from registries\[0\]\)/,
      ],
      [[], v2, /no basic auth credentials \(registry 10\.231\.\d+\.1:\d+, no credentials for it in the engine config \(registries:\)\)/],
      [good(), `${registry.host}/${name}:nope`, /manifest unknown.* \(registry 10\.231\.\d+\.1:\d+, credentials from registries\[0\]\)/],
    ];
    for (const [registries, image, reason] of cases) {
      const { engine } = engineWith(registries);
      await deploy(image);
      const [outcome] = (await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks;
      expect(outcome!.status, image).toBe('failed');
      expect(outcome!.errors?.join('\n')).toMatch(new RegExp(`^web: pull ${image.replaceAll('.', '\\.')} on d[23]: `));
      expect(outcome!.errors?.join('\n')).toMatch(reason);
      const failed = engine.audit.query({ stack, kind: 'sync.failed', limit: 1 }).rows[0];
      expect(failed?.message).toMatch(reason);
      expect(await replicas()).toEqual(before); // the same containers, still v1
    }
  });

  it("takes credentials from Docker's config file through a credential helper on PATH; the password is in no log, row, answer or file", async () => {
    const path = process.env.PATH;
    process.env.PATH = `${secrets}:${path}`;
    cleanups.push(() => (process.env.PATH = path));
    const { engine, logs, dataDir } = engineWith([{ dockerConfigFile: join(secrets, 'docker-config.json') }]);
    await deploy(v3);
    const [outcome] = (await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks;
    expect([outcome!.status, outcome!.errors]).toEqual(['synced', undefined]);
    expect(Object.values(await replicas()).map((r) => r.image)).toEqual([`${v3}@${digest3}`, `${v3}@${digest3}`]);
    expect(logs()).toContain(`credential helper berthreg`);

    const { app, base } = await serveEngine(engine);
    cleanups.push(() => app.close());
    const answers = await Promise.all(
      ['/api/v1/stacks', '/api/v1/audit?limit=1000', '/api/v1/syncs', '/api/v1/hosts'].map(async (p) => (await fetch(base + p)).text()),
    );
    const files = readdirSync(dataDir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => readFileSync(join(f.parentPath, f.name)).toString('latin1'));
    for (const seen of [logs(), ...answers, ...files]) expect(seen).not.toContain(registry.password);
  });

  it('pins the digest when a spec is first applied: a moved tag changes nothing, a replica recreated after a restart runs the pinned bits, a changed spec is pinned anew', async () => {
    const tag = `${name}:pin`;
    const ref = `${registry.host}/${tag}`;
    const first = await pushImage(registry, dockers[0], IMAGES.webV1, tag);
    const one = engineWith(good());
    await deploy(ref);
    const sync = async (e: Engine) => (await e.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks[0]!;
    expect((await sync(one.engine)).status).toBe('synced');
    expect(await replicas()).toEqual({
      d2: { id: expect.any(String), image: `${ref}@${first.digest}` },
      d3: { id: expect.any(String), image: `${ref}@${first.digest}` },
    });
    const labels = (await daemons[0]!.listContainers({ filters: { label: [`berth.stack=${stack}`] } }))[0]!.Labels;
    expect(labels['berth.image-digest']).toBe(first.digest);

    // the tag moves in the registry: the commit decides, not the registry
    const moved = await moveTag(registry, dockers[0], IMAGES.webV2, tag);
    const pinnedBefore = await replicas();
    expect((await sync(one.engine)).status).toBe('unchanged');
    expect(await replicas()).toEqual(pinnedBefore);

    // a restart, then a replica removed by hand: recreated from the recorded digest, not the moved tag
    one.engine.close();
    const two = one.again();
    await daemons[0]!.getContainer(pinnedBefore.d2!.id).remove({ force: true });
    expect((await sync(two.engine)).status).toBe('synced');
    const after = await replicas();
    expect(after.d2).toEqual({ id: expect.not.stringMatching(pinnedBefore.d2!.id), image: `${ref}@${first.digest}` });
    expect(after.d3).toEqual(pinnedBefore.d3);

    // a commit that changes the service: its image is resolved again, the same digest on both hosts
    await repo.commit({ [`${stack}/compose.yaml`]: `${compose(ref)}    environment:\n      WAVE: "2"\n` }, { message: 'wave 2' });
    const changed = await sync(two.engine);
    expect(changed.status).toBe('synced');
    expect(changed.diff).toContain(`+image: ${ref}@${moved.digest}`);
    expect(Object.values(await replicas()).map((r) => r.image)).toEqual([`${ref}@${moved.digest}`, `${ref}@${moved.digest}`]);
  });

  it('follows a watched tag: a moved digest rolls only the watched service; a digest whose rollout rolled back is not taken again by itself', async () => {
    const [watchedTag, plainTag] = [`${name}:watched`, `${name}:plain`];
    const [first] = await Promise.all([pushImage(registry, dockers[0], IMAGES.webV1, watchedTag), pushImage(registry, dockers[0], IMAGES.webV1, plainTag)]);
    const followStack = `${stack}f`;
    cleanups.push(() => Promise.all(daemons.map((d) => removeContainers(d, { 'berth.stack': followStack }))));
    const service = (svc: string, tag: string, watch: boolean) =>
      `  ${svc}:\n    image: ${registry.host}/${tag}\n    deploy:\n      mode: global\n      update_config: { failure_action: rollback, monitor: 1s }\n` +
      // the images' own health checks: the unhealthy one's never passes
      `${watch ? '    x-berth: { watch-image: true }\n' : ''}`;
    await repo.commit(
      { [`${followStack}/compose.yaml`]: `services:\n${service('watched', watchedTag, true)}${service('plain', plainTag, false)}` },
      { message: 'follow' },
    );
    const { engine } = engineWith(good());
    const sync = async () => (await engine.syncRepo(repo.name, { trigger: 'poll' })).stacks.find((s) => s.stack === followStack)!;
    const images = async (svc: string) => {
      const list = await Promise.all(
        daemons.map((d) => d.listContainers({ all: true, filters: { label: [`berth.stack=${followStack}`, `berth.service=${svc}`] } })),
      );
      return list.flat().map((c) => c.Image);
    };
    expect((await sync()).status).toBe('synced');
    expect(await images('watched')).toEqual([`${registry.host}/${watchedTag}@${first.digest}`, `${registry.host}/${watchedTag}@${first.digest}`]);

    // both tags move: the watched service rolls to the new digest, the other stays
    const moved = await moveTag(registry, dockers[0], IMAGES.webV2, watchedTag);
    await moveTag(registry, dockers[0], IMAGES.webV2, plainTag);
    expect((await sync()).status).toBe('synced');
    expect(await images('watched')).toEqual([`${registry.host}/${watchedTag}@${moved.digest}`, `${registry.host}/${watchedTag}@${moved.digest}`]);
    expect((await images('plain')).every((i) => i.endsWith(`@${first.digest}`))).toBe(true);
    const updated = engine.audit.query({ stack: followStack, kind: 'image.updated', limit: 5 }).rows;
    expect(updated.map((r) => [r.service, r.message])).toEqual([['watched', expect.stringMatching(/sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}$/)]]);

    // the tag moves to an image that never gets healthy: rolled back, and the next passes leave it alone
    await moveTag(registry, dockers[0], IMAGES.webUnhealthy, watchedTag);
    expect((await sync()).status).toBe('rolledback');
    expect(await images('watched')).toEqual([`${registry.host}/${watchedTag}@${moved.digest}`, `${registry.host}/${watchedTag}@${moved.digest}`]);
    expect((await sync()).status).toBe('unchanged');
    expect(await images('watched')).toEqual([`${registry.host}/${watchedTag}@${moved.digest}`, `${registry.host}/${watchedTag}@${moved.digest}`]);
  });

  it('looks at a followed tag between passes, every imagePoll (watchImages)', async () => {
    const tag = `${name}:polled`;
    const first = await pushImage(registry, dockers[0], IMAGES.webV1, tag);
    const pollStack = `${stack}p`;
    cleanups.push(() => Promise.all(daemons.map((d) => removeContainers(d, { 'berth.stack': pollStack }))));
    await repo.commit(
      {
        [`${pollStack}/compose.yaml`]: `services:\n  web:\n    image: ${registry.host}/${tag}\n    deploy:\n      mode: global\n    x-berth: { watch-image: true }\n`,
      },
      { message: 'polled' },
    );
    const { engine } = engineWith(good());
    expect((await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === pollStack)?.status).toBe('synced');
    const images = async () =>
      (await Promise.all(daemons.map((d) => d.listContainers({ filters: { label: [`berth.stack=${pollStack}`] } })))).flat().map((c) => c.Image);
    expect(await images()).toEqual([`${registry.host}/${tag}@${first.digest}`, `${registry.host}/${tag}@${first.digest}`]);
    const stop = engine.watchImages(1000);
    cleanups.push(stop);
    const moved = await moveTag(registry, dockers[0], IMAGES.webV2, tag);
    // no pass asked for: the engine's own look at the tag rolls it
    await waitFor(
      async () => {
        const now = await images();
        return now.length === 2 && now.every((i) => i === `${registry.host}/${tag}@${moved.digest}`);
      },
      { what: 'the followed service to run the moved digest', timeoutMs: 60_000 },
    );
    stop(); // its passes would apply the next tests' stacks of this repo too, beside their own engines
  });

  it("a registry's push notification rolls a followed service at once (POST /webhooks/registry); an unsigned one is refused, an unfollowed tag ignored", async () => {
    // a registry of this test's own, whose notifications go to the port this engine's server will
    // listen on, with the secret as a bearer token
    const hookSecret = `hook-${uniqueName('s')}`;
    writeFileSync(join(secrets, 'registry-hook'), hookSecret);
    const pollStack = `${stack}w`;
    // a repo of its own: the engines of the tests before, on this file's repo, may still be in a pass
    const repo = await server.createRepo(uniqueName('regnotify'));
    const port = await freePort();
    const own = await startRegistry({ notify: { url: `http://127.0.0.1:${port}/webhooks/registry`, headers: { Authorization: `Bearer ${hookSecret}` } } });
    cleanups.push(() => own.stop());
    writeFileSync(join(secrets, 'own'), own.password);
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      hosts,
      registries: [{ host: own.host, username: own.username, passwordFile: join(secrets, 'own') }],
      registryWebhookSecretFile: join(secrets, 'registry-hook'),
    });
    cleanups.push(() => cfg.cleanup());
    const engine2 = new Engine(loadConfig(cfg.file), capturedLogger().log);
    cleanups.push(() => engine2.close());
    const app = buildServer({ ready: () => true, engine: engine2 }, capturedLogger().log);
    await app.listen({ host: '127.0.0.1', port });
    cleanups.push(() => app.close());
    const base = `http://127.0.0.1:${port}`;
    const tag = `${name}:notified`;
    const first = await pushImage(own, dockers[0]!, IMAGES.webV1, tag);
    cleanups.push(() => Promise.all(daemons.map((d) => removeContainers(d, { 'berth.stack': pollStack }))));

    await repo.commit(
      {
        [`${pollStack}/compose.yaml`]: `services:\n  web:\n    image: ${own.host}/${tag}\n    deploy:\n      mode: global\n    x-berth: { watch-image: true }\n`,
      },
      { message: 'notified' },
    );
    const applied = (await engine2.syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === pollStack);
    expect(applied?.status, applied?.errors?.join('\n')).toBe('synced');
    const images = async () =>
      (await Promise.all(daemons.map((d) => d.listContainers({ filters: { label: [`berth.stack=${pollStack}`] } })))).flat().map((c) => c.Image);
    expect(await images()).toEqual([`${own.host}/${tag}@${first.digest}`, `${own.host}/${tag}@${first.digest}`]);

    // no imagePoll timer runs and no pass is asked for: the registry's notification of the push does it
    const moved = await moveTag(own, dockers[0]!, IMAGES.webV2, tag);
    await waitFor(
      async () => {
        const now = await images();
        return now.length === 2 && now.every((i) => i === `${own.host}/${tag}@${moved.digest}`);
      },
      { what: 'the followed service to run the digest the registry notified', timeoutMs: 60_000 },
    );
    const store = new DeliveryStore(engine2.db);
    const accepted = store.query({ provider: 'registry', outcome: 'accepted' }).rows;
    expect(accepted.length).toBeGreaterThan(0);
    expect(accepted[0]).toMatchObject({ repo: repo.name, status: 202, detail: expect.stringContaining(`${own.host}/${tag}`) });
    expect(engine2.audit.query({ kind: 'webhook.received', limit: 5 }).rows[0]?.message).toContain(`${own.host}/${tag}`);
    expect(engine2.audit.query({ stack: pollStack, kind: 'image.updated', limit: 5 }).rows).toHaveLength(1);

    // a push of a tag nothing follows is ignored; a delivery without the secret is refused and audited, naming no secret
    await pushImage(own, dockers[0]!, IMAGES.webV1, `${name}:unfollowed`);
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(`${base}/webhooks/registry`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const ignored = await post({ authorization: `Bearer ${hookSecret}` }, { image: `${own.host}/${name}:unfollowed` });
    expect(ignored.status).toBe(200);
    expect(await ignored.json()).toMatchObject({ accepted: false, reason: 'no repo matches' });
    const unsigned = await post({}, { image: `${own.host}/${tag}` });
    expect(unsigned.status).toBe(401);
    const wrong = await post({ authorization: 'Bearer not-the-secret' }, { image: `${own.host}/${tag}` });
    expect(wrong.status).toBe(401);
    const bad = await post({ authorization: `Bearer ${hookSecret}` }, { images: [] });
    expect(bad.status).toBe(400);
    const rejected = engine2.audit.query({ kind: 'webhook.rejected', limit: 5 }).rows;
    // two refused within a minute from one address: both kept as deliveries, one audit row (docs/config.md, "Webhooks")
    expect(rejected).toHaveLength(1);
    expect(store.query({ provider: 'registry', outcome: 'rejected' }).rows.filter((r) => r.status === 401)).toHaveLength(2);
    const everything = JSON.stringify([
      rejected,
      store.query({ provider: 'registry' }).rows,
      await unsigned.text().catch(() => ''),
      await wrong.text().catch(() => ''),
    ]);
    expect(everything).not.toContain(hookSecret);
  });

  it("a registry that does not answer fails its own stack's sync, saying so, before its replicas are touched; the pass's other stacks go on", async () => {
    // a server that takes connections and never says a word: the TLS handshake of every request to it hangs
    const hole = await claimHostAddress();
    cleanups.push(() => hole.release());
    const sockets = new Set<Socket>();
    const silent = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolveListen) => silent.listen(0, hole.address, resolveListen));
    cleanups.push(() => {
      for (const sock of sockets) sock.destroy();
      return new Promise((resolveClose) => silent.close(() => resolveClose(undefined)));
    });
    const mute = `${hole.address}:${(silent.address() as AddressInfo).port}/acme/web:1`;
    const [quiet, other] = [`${stack}q`, `${stack}o`];
    cleanups.push(() => Promise.all(daemons.map((d) => Promise.all([quiet, other].map((st) => removeContainers(d, { 'berth.stack': st }))))));
    const { engine } = engineWith(good());
    const outcomes = async () => {
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
      return Object.fromEntries([quiet, other].map((st) => [st, pass.stacks.find((o) => o.stack === st)!]));
    };
    const running = async (st: string) =>
      (await Promise.all(daemons.map((d) => d.listContainers({ filters: { label: [`berth.stack=${st}`] } })))).flat().map((c) => [c.Id, c.Image]);
    await repo.commit({ [`${quiet}/compose.yaml`]: compose(v1), [`${other}/compose.yaml`]: compose(v1) }, { message: 'two stacks' });
    const first = await outcomes();
    expect([first[quiet]!.status, first[other]!.status]).toEqual(['synced', 'synced']);
    const before = await running(quiet);

    await repo.commit({ [`${quiet}/compose.yaml`]: compose(mute), [`${other}/compose.yaml`]: compose(v3) }, { message: 'one registry is mute' });
    const second = await outcomes();
    expect(second[other]!.status).toBe('synced');
    expect((await running(other)).map(([, image]) => image)).toEqual([`${v3}@${digest3}`, `${v3}@${digest3}`]);
    expect(second[quiet]!.status).toBe('failed');
    const why = second[quiet]!.errors!.join('\n');
    expect(why).toMatch(
      new RegExp(
        `^web: pull ${mute.replaceAll('.', '\\.')} on d[23]: .*(timeout|no answer).*\\(registry ${hole.address.replaceAll('.', '\\.')}:\\d+, no credentials`,
      ),
    );
    expect(engine.audit.query({ stack: quiet, kind: 'sync.failed', limit: 1 }).rows[0]?.message).toContain(`pull ${mute}`);
    expect(await running(quiet)).toEqual(before); // the same containers, still v1
  });
});
