// Reservations of stacks placed in the same pass: a first deploy cannot promise a host's CPUs to two stacks.
import { expect, it } from 'vitest';
import { removeContainers, uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { gitServerAndDocker, testEngine, writeConfig } from './harness/berth.ts';

const t = gitServerAndDocker();

it("two stacks that each reserve most of the host's CPUs, deployed in one pass: the second is refused, not placed beside the first", async () => {
  const cpus = (await t.docker.info()).NCPU as number;
  const [one, two] = [uniqueName('resa'), uniqueName('resb')].map((n) => n.replaceAll('-', ''));
  const compose = `services:\n  web:\n    image: ${IMAGES.webV1}\n    deploy:\n      resources:\n        reservations:\n          cpus: '${(cpus * 0.75).toFixed(2)}'\n`;
  const repo = await t.server.createRepo(uniqueName('resrepo'));
  await repo.commit({ [`${one}/compose.yaml`]: compose, [`${two}/compose.yaml`]: compose });
  const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  const engine = testEngine(cfg.file);
  try {
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
    const outcome = (stack: string) => pass.stacks.find((s) => s.stack === stack);
    expect(outcome(one)?.status, outcome(one)?.errors?.join('\n')).toBe('synced');
    expect(outcome(two)?.status).toBe('failed');
    expect(outcome(two)?.errors?.join('\n')).toMatch(/cpu/i);
  } finally {
    engine.close();
    for (const stack of [one, two]) await removeContainers(t.docker, { 'berth.stack': stack });
    cfg.cleanup();
  }
});
