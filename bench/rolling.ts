/**
 * Rolling update: a service of 6 replicas of the health-checked test image (check every 1 s),
 * `update_config: { parallelism: 2, order: start-first, monitor: 1ms }`, updated v1 <-> v2 while
 * a client service on the stack's network asks it `GET /` by its name 20 times a second (each
 * request bounded by 2 s): berth (push by webhook) against a one-node Swarm (`docker stack deploy`
 * of the same file), on the same private daemon one after the other. Wall time from the push (or
 * the deploy command) until exactly 6 replicas run, all healthy on the new image; failed requests
 * counted from the client's output over each update and 2 s after it. The monitor is 1ms rather
 * than berth's default 0 s because Swarm reads 0 as its own default of 5 s; Swarm's service has
 * `endpoint_mode: dnsrr` (see rollingFile).
 *
 * Run as root: `node bench/rolling.ts [runs]` (default 3). Starts and stops its own daemon.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { cleanupLeftovers, startDaemon, type TestDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { cli, median, ms, passErrors, pushWebhook, startBerth, until, wipe, type Row } from './lib.ts';

const REPLICAS = 6;
const STACK = 'roll';

/**
 * The stack: the web service under test and a client that asks it 20 times a second, printing ok
 * or FAIL per request. For Swarm, `endpoint_mode: dnsrr` (the name answers with the tasks'
 * addresses, as berth's network aliases do): Swarm's default virtual IP needs the kernel's IPVS,
 * which this machine's kernel lacks (its requests fail with "No route to host").
 */
export function rollingFile(image: string, swarm = false): string {
  return `services:
  web:
    image: ${image}
    deploy:
      replicas: ${REPLICAS}${swarm ? '\n      endpoint_mode: dnsrr' : ''}
      update_config: { parallelism: 2, order: start-first, monitor: 1ms }
  client:
    image: ${IMAGES.webV1}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do if timeout 2 wget -q -O /dev/null http://web/; then echo ok; else echo FAIL; fi; usleep 50000; done & wait"]
    healthcheck: { disable: true }
    depends_on: [web]
`;
}

/** The client's answers so far: ok and FAIL lines of its output. */
async function answers(docker: Dockerode, clientLabel: string): Promise<{ ok: number; failed: number }> {
  const [client] = await docker.listContainers({ filters: { label: [clientLabel] } });
  if (!client) throw new Error('bench: the client container does not run');
  const out = String(await docker.getContainer(client.Id).logs({ stdout: true, stderr: true }));
  return { ok: out.split('ok\n').length - 1, failed: out.split('FAIL').length - 1 };
}

/** Waits until exactly REPLICAS web containers run, all healthy on `imageId`; returns the time since t0. */
async function rolled(docker: Dockerode, webLabel: string, imageId: string, t0: number, what: string): Promise<number> {
  await until(
    async () => {
      const list = await docker.listContainers({ filters: { label: [webLabel] } });
      return list.length === REPLICAS && list.every((c) => c.ImageID === imageId && c.Status.includes('(healthy)')) ? true : undefined;
    },
    what,
    300_000,
    20,
  );
  return performance.now() - t0;
}

/** Runs the rolling-update scenario and returns its rows. */
export async function rolling(runs = 3): Promise<Row[]> {
  await cleanupLeftovers();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-rolling-'));
  const git = await startGitServer();
  let daemon: TestDaemon | undefined;
  let swarm = false;
  try {
    daemon = await startDaemon();
    const docker = new Dockerode(daemon.dockerOptions);
    await buildTestImages(docker);
    const ids: Record<string, string> = {
      [IMAGES.webV1]: (await docker.getImage(IMAGES.webV1).inspect()).Id,
      [IMAGES.webV2]: (await docker.getImage(IMAGES.webV2).inspect()).Id,
    };
    const other = (image: string) => (image === IMAGES.webV1 ? IMAGES.webV2 : IMAGES.webV1);
    const result = {
      berth: { wall: [] as number[], failed: [] as number[], ok: [] as number[] },
      swarm: { wall: [] as number[], failed: [] as number[], ok: [] as number[] },
    };

    /** One update: the trigger, then the wall time until rolled out, and the client's answers over it and 2 s after. */
    const measure = async (tool: 'berth' | 'swarm', labels: { web: string; client: string }, imageId: string, trigger: () => Promise<void>) => {
      const before = await answers(docker, labels.client);
      const t0 = performance.now();
      await trigger();
      result[tool].wall.push(await rolled(docker, labels.web, imageId, t0, `${tool} to roll the update out`));
      await sleep(2000);
      const after = await answers(docker, labels.client);
      result[tool].failed.push(after.failed - before.failed);
      result[tool].ok.push(after.ok - before.ok);
    };
    const clientAnswers = (labels: { client: string }) =>
      until(
        async () => ((await answers(docker, labels.client).catch(() => ({ ok: 0 }))).ok > 20 ? true : undefined),
        'the client to get answers',
        120_000,
        200,
      );

    // berth: the stack deployed, then each update pushed by webhook.
    const repo = await git.createRepo('rolling');
    let image: string = IMAGES.webV1;
    await repo.commit({ [`${STACK}/compose.yaml`]: rollingFile(image) });
    const berthLabels = { web: `berth.service=web`, client: `berth.service=client` };
    const berth = await startBerth(join(dir, 'berth'), [{ name: 'bench', socketPath: daemon.socketPath }], repo);
    try {
      const errors = passErrors(await berth.engine.syncAll({ trigger: 'manual' }));
      if (errors.length) throw new Error(`bench: berth's deploy failed: ${errors.join('; ')}`);
      await rolled(docker, berthLabels.web, ids[image], 0, 'berth to deploy the stack');
      await clientAnswers(berthLabels);
      for (let r = 0; r < runs; r++) {
        image = other(image);
        const sha = await repo.commit({ [`${STACK}/compose.yaml`]: rollingFile(image) });
        await measure('berth', berthLabels, ids[image], () => pushWebhook(berth.port, berth.secret, repo.url, sha, `rolling-${r}`));
        await berth.engine.drain();
      }
    } finally {
      await berth.close();
    }
    await wipe(docker);

    // Swarm: the same file with docker stack deploy.
    await cli('docker', ['swarm', 'init', '--advertise-addr', daemon.address], daemon.socketPath);
    swarm = true;
    const file = join(dir, 'compose.yaml');
    const deploy = async (img: string) => {
      writeFileSync(file, rollingFile(img, true));
      await cli('docker', ['stack', 'deploy', '--detach=true', '--resolve-image', 'never', '-c', file, STACK], daemon!.socketPath);
    };
    const swarmLabels = { web: `com.docker.swarm.service.name=${STACK}_web`, client: `com.docker.swarm.service.name=${STACK}_client` };
    await deploy(image);
    await rolled(docker, swarmLabels.web, ids[image], 0, 'Swarm to deploy the stack');
    await clientAnswers(swarmLabels);
    for (let r = 0; r < runs; r++) {
      image = other(image);
      await measure('swarm', swarmLabels, ids[image], () => deploy(image));
    }

    const b = result.berth;
    const s = result.swarm;
    const what = `rolling update, ${REPLICAS} replicas, start-first, parallelism 2`;
    const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    return [
      {
        scenario: `${what}: berth, push to all healthy`,
        value: ms(median(b.wall)),
        against: `${(median(b.wall) / median(s.wall)).toFixed(2)}x Swarm`,
        target: "no worse than Swarm's",
        met: median(b.wall) <= median(s.wall),
      },
      { scenario: `${what}: docker stack deploy (Swarm)`, value: ms(median(s.wall)) },
      {
        scenario: `${what}: failed requests, berth`,
        value: `${sum(b.failed)} of ${sum(b.failed) + sum(b.ok)}`,
        against: `over ${runs} updates`,
        target: 'no failed request',
        met: sum(b.failed) === 0,
      },
      { scenario: `${what}: failed requests, Swarm`, value: `${sum(s.failed)} of ${sum(s.failed) + sum(s.ok)}`, against: `over ${runs} updates` },
    ];
  } finally {
    if (swarm && daemon) await cli('docker', ['swarm', 'leave', '--force'], daemon.socketPath).catch((err: unknown) => console.error(String(err)));
    await git.close();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  const runs = Number(process.argv[2] ?? 3);
  printTable(`berth bench: rolling update, median of ${runs} runs`, await rolling(runs));
}
