// berth as a container image and as an npm package, each as a user gets it: the image built by
// scripts/image.ts (`npm run image`) on the shared test daemon and run there against a git repo,
// and the package made by `npm pack`, installed with `npm install -g` in a folder of its own.
// Both tests run at once (describe.concurrent): each mostly waits on a build or an install.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { stringify } from 'yaml';
import { describe, expect, inject, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import { buildImage } from '../scripts/image.ts';
import { claimHostAddress } from './harness/daemon.ts';
import { execIn, removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const { version } = pkg;

/** The size berth's image must stay under, base included. */
const MAX_IMAGE_BYTES = 350e6;

/** Forwards TCP connections from host:0 to 127.0.0.1:port (the git server listens on loopback only). */
async function forward(host: string, port: number): Promise<Server & { port: number }> {
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((done) => server.listen(0, host, done));
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

describe.concurrent('berth shipped', () => {
  it('as an image: built by npm run image, it runs as berth, is healthy, converges a stack and stops with 0', { timeout: 20 * 60_000 }, async () => {
    const docker = testDocker();
    const { socketPath, address } = inject('docker');
    const lines: string[] = [];
    const built = await buildImage({ env: { ...process.env, DOCKER_HOST: `unix://${socketPath}` }, log: (line) => lines.push(line) }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${lines.slice(-30).join('\n')}`, { cause: err });
    });
    for (const line of lines.filter((l) => l.startsWith('image:'))) console.log(line);

    const image = await docker.getImage(built.tags[0]).inspect();
    expect(image.RepoTags).toEqual(expect.arrayContaining([`berth:${version}`, 'berth:latest']));
    expect(image.Size).toBeLessThan(MAX_IMAGE_BYTES);
    const revision = (await run('git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim();
    expect(image.Config.Labels).toMatchObject({ 'org.opencontainers.image.version': version, 'org.opencontainers.image.revision': revision });
    expect(image.Config.Labels).toHaveProperty(['org.opencontainers.image.source']);
    expect(image.Config.User).toBe('berth');

    // the repo, served where the container reaches it: a host address every test daemon routes to
    const git = await startGitServer();
    const hole = await claimHostAddress();
    const front = await forward(hole.address, Number(new URL(git.baseUrl).port));
    const repo = await git.createRepo(uniqueName('imagerepo'));
    const stack = uniqueName('image').replaceAll('-', '');
    await repo.commit({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n` }, { message: 'web v1' });

    // the config folder, mounted read-only: no dataDir (the image's volume), the daemon's socket
    // as the default host, listening on every address with a token
    const cfg = mkdtempSync(join(tmpdir(), 'berth-image-cfg-'));
    chmodSync(cfg, 0o755); // berth's user reads it
    const token = `t-${uniqueName('token')}`;
    writeFileSync(join(cfg, 'admin.token'), token, { mode: 0o644 });
    writeFileSync(
      join(cfg, 'berth.config.yaml'),
      stringify({
        listen: '0.0.0.0:8080',
        auth: { tokens: [{ name: 'admin', role: 'admin', tokenFile: 'admin.token' }] },
        repos: [{ name: repo.name, url: `http://${hole.address}:${front.port}/${repo.name}.git`, branch: 'main', poll: '2s' }],
      }),
    );

    const name = uniqueName('berth-image');
    let container: Dockerode.Container | undefined;
    try {
      container = await docker.createContainer({
        name,
        Image: built.tags[0],
        Env: ['BERTH_LOG_LEVEL=debug'],
        ExposedPorts: { '8080/tcp': {} },
        HostConfig: {
          Binds: [`${socketPath}:/var/run/docker.sock`, `${cfg}:/etc/berth:ro`],
          GroupAdd: [String(statSync(socketPath).gid)],
          PortBindings: { '8080/tcp': [{ HostIp: address, HostPort: '' }] },
        },
      });
      await container.start();
      const c = container;
      const logs = async () => (await c.logs({ stdout: true, stderr: true, tail: 40 })).toString('utf8');

      // healthy, or ended
      const started = await waitFor(
        async () => {
          const state = (await c.inspect()).State;
          return !state.Running || state.Health?.Status === 'healthy' ? state : undefined;
        },
        { what: "berth's container to be healthy", timeoutMs: 120_000 },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${JSON.stringify((await c.inspect()).State.Health?.Log?.slice(-2))}\n${await logs()}`);
      });
      if (!started.Running) throw new Error(`berth's container ended (exit code ${started.ExitCode}):\n${await logs()}`);
      expect((await execIn(c, ['id', '-u'])).output.trim()).not.toBe('0');
      const web = await waitFor(
        async () => (await docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } })).find((w) => w.State === 'running'),
        { what: "the stack's container to run", timeoutMs: 120_000 },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await logs()}`);
      });
      expect(web.Image).toBe(IMAGES.webV1);
      expect((await execIn(c, ['ls', '/var/lib/berth'])).output.split('\n')).toEqual(expect.arrayContaining(['berth.db', 'owner.json']));

      // the API on the published port, with the token
      const port = (await c.inspect()).NetworkSettings.Ports['8080/tcp']![0].HostPort;
      const stacks = await fetch(`http://${address}:${port}/api/v1/stacks`, { headers: { authorization: `Bearer ${token}` } });
      expect(stacks.status).toBe(200);
      expect(((await stacks.json()) as { stacks: { name: string }[] }).stacks.map((s) => s.name)).toContain(stack);

      const t0 = performance.now();
      await c.stop(); // the daemon's default: SIGTERM, SIGKILL 10 s later
      console.log(`image: docker stop of berth took ${Math.round(performance.now() - t0)} ms`);
      const state = (await c.inspect()).State;
      expect({ exitCode: state.ExitCode, oomKilled: state.OOMKilled }).toEqual({ exitCode: 0, oomKilled: false });
      expect(await logs()).toContain('"msg":"stopping"');
    } finally {
      await container?.remove({ force: true, v: true }).catch(() => undefined);
      await removeContainers(docker, { 'berth.stack': stack });
      await new Promise((done) => front.close(done));
      await hole.release();
      await git.close();
      rmSync(cfg, { recursive: true, force: true });
    }
  });

  it('as an npm package: npm install -g of npm pack, berth runs outside the checkout on the Node it brings', { timeout: 10 * 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-pack-'));
    try {
      // prepack makes the bundle
      await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT });
      const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
      expect(tarball).toBe(`berth-${version}.tgz`);
      const listing = (await run('tar', ['-tzf', join(dir, tarball!)])).stdout.split('\n');
      expect(listing).toEqual(expect.arrayContaining(['package/bin/berth.js', 'package/dist/berth.mjs', 'package/src/dashboard/index.html']));
      expect(listing.filter((f) => f.endsWith('.ts'))).toEqual([]);

      const prefix = join(dir, 'global');
      await run('npm', ['install', '-g', '--no-audit', '--no-fund', '--prefix', prefix, `./${tarball}`], { cwd: dir, maxBuffer: 16 << 20 });
      // the machine's own PATH, not the checkout's node_modules/.bin: `node` is whatever the machine has
      const env = {
        ...process.env,
        PATH: (process.env.PATH ?? '')
          .split(':')
          .filter((p) => !p.startsWith(ROOT))
          .join(':'),
      };
      const berth = (args: string[]) => run(join(prefix, 'bin', 'berth'), args, { cwd: dir, env });
      expect((await berth(['--version'])).stdout.trim()).toBe(version);
      const examples = join(prefix, 'lib', 'node_modules', 'berth', 'examples');
      expect((await berth(['validate', examples])).stdout).toMatch(/^ok: 2 stack\(s\)/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
