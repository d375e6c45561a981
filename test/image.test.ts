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
  it(
    'as an image: built by npm run image, it converges a stack as berth (not root), ends the pass in progress on docker stop with 0, is healthy and answers',
    { timeout: 20 * 60_000 },
    async () => {
      const docker = testDocker();
      const { socketPath, address } = inject('docker');
      const lines: string[] = [];
      const built = await buildImage({ env: { ...process.env, DOCKER_HOST: `unix://${socketPath}` }, log: (line) => lines.push(line) }).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}\n${lines.slice(-30).join('\n')}`, { cause: err });
        },
      );
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
      // a repo as people have it, one compose.yaml at its root (named by its `name:`), with a pre-sync
      // hook that takes a while: the first pass is still running when the first container is stopped
      await repo.commit(
        {
          'compose.yaml': `name: ${stack}
services:
  migrate:
    image: ${IMAGES.base}
    command: ["sh", "-c", "sleep 4"]
    x-berth: { hook: pre-sync, timeout: 1m }
  web:
    image: ${IMAGES.webV1}
`,
        },
        { message: 'web v1, after a migration' },
      );

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

      const containers: Dockerode.Container[] = [];
      /** berth's container as a user runs it: the daemon's socket and its group, the config read-only, the port published. */
      const startBerth = async () => {
        const c = await docker.createContainer({
          name: uniqueName('berth-image'),
          Image: built.tags[0],
          ExposedPorts: { '8080/tcp': {} },
          HostConfig: {
            Binds: [`${socketPath}:/var/run/docker.sock`, `${cfg}:/etc/berth:ro`],
            GroupAdd: [String(statSync(socketPath).gid)],
            PortBindings: { '8080/tcp': [{ HostIp: address, HostPort: '' }] },
          },
        });
        containers.push(c);
        await c.start();
        return c;
      };
      const logsOf = async (c: Dockerode.Container) => (await c.logs({ stdout: true, stderr: true })).toString('utf8');
      /** `docker stop` (SIGTERM, SIGKILL `t` seconds later: by default the daemon's 10 s); prints how long it took. */
      const stop = async (c: Dockerode.Container, what: string, t?: number) => {
        const t0 = performance.now();
        await c.stop(t === undefined ? {} : { t });
        console.log(`image: docker stop of berth ${what} took ${Math.round(performance.now() - t0)} ms`);
        const state = (await c.inspect()).State;
        expect({ exitCode: state.ExitCode, oomKilled: state.OOMKilled }).toEqual({ exitCode: 0, oomKilled: false });
      };
      const stackContainers = async (service: string) =>
        docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`, `berth.service=${service}`] } });
      try {
        // 1. stopped while its first pass runs the hook: berth ends that pass (web is created), then exits 0
        const first = await startBerth();
        await waitFor(async () => (await stackContainers('migrate')).some((m) => m.State === 'running'), {
          what: 'the pre-sync hook to run',
          timeoutMs: 120_000,
        }).catch(async (err: Error) => {
          throw new Error(`${err.message}\n${await logsOf(first)}`);
        });
        // the pass in progress ends first: as the README says, a stop gives it time (`docker stop --time`)
        await stop(first, 'during its first pass', 30);
        const firstLogs = await logsOf(first);
        expect(firstLogs.indexOf('"msg":"stopping"')).toBeGreaterThan(-1);
        expect(firstLogs.indexOf('"msg":"sync succeeded"')).toBeGreaterThan(firstLogs.indexOf('"msg":"stopping"'));
        expect((await stackContainers('web')).map((w) => [w.Image, w.State])).toEqual([[IMAGES.webV1, 'running']]);

        // 2. a new container (and volume) on the stack in sync: healthy, not root, its data in the volume, the API answering
        const c = await startBerth();
        const started = await waitFor(
          async () => {
            const state = (await c.inspect()).State;
            return !state.Running || state.Health?.Status === 'healthy' ? state : undefined; // healthy, or ended
          },
          { what: "berth's container to be healthy", timeoutMs: 120_000 },
        ).catch(async (err: Error) => {
          throw new Error(`${err.message}\n${JSON.stringify((await c.inspect()).State.Health?.Log?.slice(-2))}\n${await logsOf(c)}`);
        });
        if (!started.Running) throw new Error(`berth's container ended (exit code ${started.ExitCode}):\n${await logsOf(c)}`);
        expect((await execIn(c, ['id', '-u'])).output.trim()).not.toBe('0');
        expect((await execIn(c, ['ls', '/var/lib/berth'])).output.split('\n')).toEqual(expect.arrayContaining(['berth.db', 'owner.json']));
        const port = (await c.inspect()).NetworkSettings.Ports['8080/tcp']![0].HostPort;
        const view = async () => {
          const answer = await fetch(`http://${address}:${port}/api/v1/stacks/${stack}`, { headers: { authorization: `Bearer ${token}` } });
          return answer.status === 200 ? ((await answer.json()) as { name: string; sync: string }) : undefined;
        };
        await waitFor(async () => (await view())?.sync === 'Synced', { what: `the API to tell ${stack} Synced`, timeoutMs: 60_000 });
        await stop(c, 'once it ran');
        expect(await logsOf(c)).toContain('"msg":"stopping"');
      } finally {
        await Promise.all(containers.map((c) => c.remove({ force: true, v: true }).catch(() => undefined)));
        await removeContainers(docker, { 'berth.stack': stack });
        await new Promise((done) => front.close(done));
        await hole.release();
        await git.close();
        rmSync(cfg, { recursive: true, force: true });
      }
    },
  );

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
