// The repo policy end to end: a capability beyond Docker's default set is refused by the strict
// default (the stack invalid, located, naming the setting, no container), then created with it
// once the repo's policy lists it.
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { loadConfig } from '../src/config.ts';
import { testLog, writeConfig } from './harness/berth.ts';
import { removeContainers, testDocker, uniqueName } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

let server: GitServer;
let docker: Dockerode;
let repo: RemoteRepo;
const stack = uniqueName('pol').replaceAll('-', '');
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
  repo = await server.createRepo(uniqueName('policy'));
  await repo.commit({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    cap_add: [NET_ADMIN, CHOWN]\n` });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await removeContainers(docker, { 'berth.stack': stack });
  await server?.close();
});

function engine(policy: Record<string, unknown>): Engine {
  const cfg = writeConfig([{ name: repo.name, url: repo.url, settings: { policy } }]);
  const e = new Engine(loadConfig(cfg.file), testLog());
  cleanups.push(
    () => e.close(),
    () => cfg.cleanup(),
  );
  return e;
}

const containers = async () => docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });

describe('a capability beyond the default set', () => {
  it('is refused by the strict default, and honoured once the policy lists it', async () => {
    const strict = (await engine({}).syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks.find((s) => s.stack === stack);
    expect(strict?.status).toBe('invalid');
    expect(strict?.errors).toEqual([
      `${stack}/compose.yaml:4:15: services.web.cap_add[0]: the capability NET_ADMIN (not in Docker's default set) is not allowed for this repo: allow it with policy.capabilities: ["NET_ADMIN"] on the repo in berth's config`,
    ]);
    expect(await containers()).toEqual([]);

    const allowed = (await engine({ capabilities: ['NET_ADMIN'] }).syncRepo(repo.name, { trigger: 'manual', actor: 'test' })).stacks.find(
      (s) => s.stack === stack,
    );
    expect(allowed?.status).toBe('synced');
    const [web] = await containers();
    const inspected = await docker.getContainer(web!.Id).inspect();
    expect(inspected.HostConfig.CapAdd).toEqual(['NET_ADMIN', 'CHOWN']);
  });
});
