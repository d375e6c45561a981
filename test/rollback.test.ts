// Manual rollback to an earlier commit, the hold it leaves, and the ways the hold ends
// (docs/how-it-works.md, "Manual rollback, pause, resume").
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { testDocker, uniqueName, removeContainers } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { runCli, testEngine, writeConfig } from './harness/berth.ts';

let server: GitServer;
let docker: Dockerode;
beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
});
afterAll(async () => server?.close());

it('rolls a stack back by hand, holds it there, and lets go on resume or on a new commit', async () => {
  const stack = uniqueName('rb').replaceAll('-', '');
  const repo = await server.createRepo(uniqueName('rbrepo'));
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const engine = testEngine(cfg.file);
  const file = (image: string) => ({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${image}\n    deploy: { replicas: 2 }\n` });
  const live = async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    return { commits: [...new Set(list.map((c) => c.Labels['berth.commit']))], images: [...new Set(list.map((c) => c.Image))], count: list.length };
  };
  const cli = (...args: string[]) => runCli(['--config', cfg.file, ...args], { env: { BERTH_ACTOR: 'alice' } });
  try {
    const c1 = await repo.commit(file(IMAGES.webV1), { message: 'v1' });
    await engine.syncRepo(repo.name, { trigger: 'poll' });
    const c2 = await repo.commit(file(IMAGES.webV2), { message: 'v2' });
    await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(await live()).toEqual({ commits: [c2], images: [IMAGES.webV2], count: 2 });

    // Without --to: the commit before the one applied.
    const back = await cli('rollback', stack);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain(`${stack}: synced at ${c1.slice(0, 7)} v1`);
    expect(await live()).toEqual({ commits: [c1], images: [IMAGES.webV1], count: 2 });

    // Held: polls leave it at c1 although the branch says c2.
    const held = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(held.stacks[0]).toMatchObject({ stack, status: 'paused' });
    expect(held.stacks[0].errors?.[0]).toMatch(new RegExp(`held at ${c1.slice(0, 7)} by alice`));
    expect(await live()).toEqual({ commits: [c1], images: [IMAGES.webV1], count: 2 });

    // Resume: the next pass applies the head again.
    const resumed = await cli('resume', stack);
    expect(resumed.stdout).toContain(`${stack}: resumed`);
    await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(await live()).toEqual({ commits: [c2], images: [IMAGES.webV2], count: 2 });

    // --to a named commit, then a new commit ends the hold by itself.
    expect((await cli('rollback', stack, '--to', c1.slice(0, 8))).code).toBe(0);
    expect(await live()).toEqual({ commits: [c1], images: [IMAGES.webV1], count: 2 });
    const c3 = await repo.commit({ ...file(IMAGES.webV2), 'NOTES.md': 'v2, fixed\n' }, { message: 'v2 again' });
    const after = await engine.syncRepo(repo.name, { trigger: 'poll' });
    expect(after.stacks[0].status).toBe('synced');
    expect(await live()).toEqual({ commits: [c3], images: [IMAGES.webV2], count: 2 });

    const rows = engine.audit.query({ stack, limit: 1000 }).rows.reverse();
    const story = rows
      .filter((r) => ['rollback.started', 'rollback.succeeded', 'stack.resumed'].includes(r.kind))
      .map((r) => [r.kind, r.actor, r.commitSha?.slice(0, 7)]);
    expect(story).toEqual([
      ['rollback.started', 'alice', c1.slice(0, 7)],
      ['rollback.succeeded', 'alice', c1.slice(0, 7)],
      ['stack.resumed', 'alice', undefined],
      ['rollback.started', 'alice', c1.slice(0, 7)],
      ['rollback.succeeded', 'alice', c1.slice(0, 7)],
      ['stack.resumed', 'berth', c3.slice(0, 7)],
    ]);
    // The syncs the rollbacks made are recorded as manual, by alice, at c1.
    const syncs = engine.audit.query({ stack, kind: 'sync.started', limit: 1000 }).rows.reverse();
    expect(syncs.map((r) => [r.trigger, r.actor, r.commitSha])).toEqual([
      ['poll', 'berth', c1],
      ['poll', 'berth', c2],
      ['manual', 'alice', c1],
      ['poll', 'berth', c2],
      ['manual', 'alice', c1],
      ['poll', 'berth', c3],
    ]);

    // A stack that does not exist (refused, exit 1, as the API refuses it), or a commit that cannot be read (exit 2): a clear error.
    const none = await cli('rollback', 'nosuchstack');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no repo defines a stack named nosuchstack');
    const badCommit = await cli('rollback', stack, '--to', 'deadbeef');
    expect(badCommit.code).toBe(2);
    expect(badCommit.stderr).toContain('deadbeef');
  } finally {
    engine.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg.cleanup();
  }
});
