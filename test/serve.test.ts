// `berth serve`: a pass at start, then polling; health and readiness; a clean stop on SIGTERM.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, runCli, writeConfig } from './harness/berth.ts';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { testDocker, uniqueName, removeContainers, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';

let server: GitServer;
beforeAll(async () => {
  server = await startGitServer();
});
afterAll(async () => server?.close());

it('converges at start, follows a push by polling, and stops cleanly', async () => {
  const docker = testDocker();
  const stack = uniqueName('serve').replaceAll('-', '');
  const repo = await server.createRepo(uniqueName('serverepo'));
  const file = (image: string) => ({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${image}\n` });
  const sha1 = await repo.commit(file(IMAGES.webV1), { message: 'v1' });
  const port = await freePort();
  const cfg = writeConfig([{ name: repo.name, url: repo.url, poll: '1s' }], { listen: `127.0.0.1:${port}` });
  const serve = runCli(['--config', cfg.file, 'serve']);
  const url = `http://127.0.0.1:${port}`;
  const web = async () => (await docker.listContainers({ filters: { label: [`berth.stack=${stack}`] } }))[0];
  try {
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: 'berth to be ready', timeoutMs: 60_000 });
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    // Ready means the first pass is done: the container is there already.
    expect((await web())?.Labels['berth.commit']).toBe(sha1);

    const sha2 = await repo.commit(file(IMAGES.webV2), { message: 'v2' });
    const replaced = await waitFor(async () => ((await web())?.Labels['berth.commit'] === sha2 ? web() : undefined), {
      what: 'the poll to replace web with v2',
      timeoutMs: 60_000,
    });
    expect(replaced.Image).toBe(IMAGES.webV2);

    serve.child.kill('SIGTERM');
    const ended = await serve;
    expect(ended.code).toBe(0);
    // Every log line is structured JSON; the sync lines carry repo, stack and commit.
    const lines = ended.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // each names a field once: a logger bound to a key its parent is bound to already writes it twice
    for (const l of ended.stderr.trim().split('\n')) expect(JSON.stringify(JSON.parse(l))).toBe(l);
    expect(lines.filter((l) => l.component === 'api').length).toBeGreaterThan(0);
    const started = lines.filter((l) => l.msg === 'sync started');
    expect(started.map((l) => [l.repo, l.stack, l.commit])).toEqual([
      [repo.name, stack, sha1.slice(0, 7)],
      [repo.name, stack, sha2.slice(0, 7)],
    ]);

    const audit = await runCli(['--config', cfg.file, 'audit', '--stack', stack, '--json']);
    const rows = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; trigger: string; commitSha: string });
    expect(rows.filter((r) => r.kind === 'sync.started').map((r) => [r.trigger, r.commitSha])).toEqual([
      ['poll', sha2],
      ['startup', sha1],
    ]);
  } finally {
    serve.child.kill('SIGKILL');
    await removeContainers(docker, { 'berth.stack': stack });
    cfg.cleanup();
  }
});
