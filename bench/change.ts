/**
 * One change: in the cold-deploy repo (bench/cold.ts: 20 stacks, 50 services of 2 replicas, 100
 * containers, one host), one service's image changes (s0's svc0, berth-test/web:v1 <-> v2, both
 * replicas), from the push to both new replicas running and the old ones gone:
 * - berth: the push's webhook -> fetch -> render -> plan -> replace (stop-first, one at a time: the
 *   service's default update_config; then again with `parallelism: 0`, both at once);
 * - `git pull` in a clone, then `docker-compose up -d` of the one stack that changed, and of every
 *   stack (what a deploy script that does not know which stack changed runs);
 * - `docker service update --image` of that service on a one-node Swarm (the stacks deployed with
 *   `docker stack deploy`), with `--update-monitor 1ms`: Swarm would otherwise watch each updated
 *   task for 5 s before the next (berth's monitor defaults to 0 s).
 * Beside the floor (one container's create + start on the same daemon, still empty), the floor in
 * place: the same on the service's network while the repo's 100 containers run, which is where the
 * change's containers start; the target is judged on it. And the same replacement straight through
 * the Docker API, no tool, to show what berth adds to what the daemon takes. Both are measured
 * beside each of berth's runs, one before it, so that all three see the machine in the same state
 * (measured in a block of their own after the repo's deploy, they once read a busier daemon).
 *
 * Run as root: `node bench/change.ts [runs]` (default 5). Starts and stops its own daemons.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { cleanupLeftovers, startDaemon, type TestDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { git, startGitServer } from '../test/harness/git-server.ts';
import { CONTAINERS, SERVICES, STACKS } from './cold.ts';
import {
  cli,
  containerStates,
  floorRuns,
  median,
  ms,
  passErrors,
  probeContainer,
  pushWebhook,
  repoFiles,
  repoShape,
  startBerth,
  until,
  wipe,
  type OnNetwork,
  type Row,
} from './lib.ts';

const STACK = 's0';
const SERVICE = 'svc0';

/** The other web image: each run changes the service from the one to the other. */
const other = (image: string) => (image === IMAGES.webV1 ? IMAGES.webV2 : IMAGES.webV1);

/**
 * Starts following the containers matching `labels` through Docker's event stream, subscribed
 * before any change begins: which of them run, and since when. `until` waits until exactly
 * `replicas` of them run, each started after t0, and returns the time from t0 to the event that
 * made it so (or to `notBefore`, when later: a command that does the change and returns when it is
 * done). Only then does one look at the list check their image. Nothing polls the daemon while it
 * works on the change: the bench must not load it for one tool and not for another.
 */
async function watchChange(docker: Dockerode, labels: string[]) {
  const stream = (await docker.getEvents({ filters: { type: ['container'], label: labels, event: ['start', 'die'] } })) as NodeJS.ReadableStream & {
    destroy(): void;
  };
  const events: Array<{ at: number; start: boolean; id: string }> = [];
  let wake = () => {};
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    const at = performance.now();
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const e = JSON.parse(buffer.slice(0, nl)) as { Action: string; id: string };
      buffer = buffer.slice(nl + 1);
      events.push({ at, start: e.Action === 'start', id: e.id });
    }
    wake();
  });
  stream.on('error', () => undefined);
  // which of them run, and when each started (those running when the watch began: before any t0)
  const running = new Map<string, number>();
  for (const c of await docker.listContainers({ filters: { label: labels } })) if (c.State === 'running') running.set(c.Id, -Infinity);
  let seen = 0; // events taken into `running`
  return {
    async until(imageId: string, replicas: number, t0: number, what: string, notBefore = t0): Promise<number> {
      const deadline = Date.now() + 300_000;
      for (;;) {
        while (seen < events.length) {
          const e = events[seen++];
          if (e.start) running.set(e.id, e.at);
          else running.delete(e.id);
          if (e.at < t0 || running.size !== replicas || ![...running.values()].every((at) => at >= t0)) continue;
          const list = (await docker.listContainers({ filters: { label: labels } })).filter((c) => running.has(c.Id));
          if (list.length === replicas && list.every((c) => c.ImageID === imageId)) return Math.max(e.at, notBefore) - t0;
        }
        if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
        await Promise.race([new Promise<void>((r) => (wake = r)), sleep(1000)]);
      }
    },
    close: () => stream.destroy(),
  };
}

/** Where berth put the service's replicas: the network of its first replica, and its aliases there. */
async function serviceNetwork(docker: Dockerode, labels: string[]): Promise<OnNetwork> {
  const [first] = await docker.listContainers({ filters: { label: labels } });
  const info = await docker.getContainer(first.Id).inspect();
  const [[network, endpoint]] = Object.entries(info.NetworkSettings.Networks);
  return { network, aliases: ((endpoint.Aliases ?? []) as string[]).filter((a) => a !== first.Id.slice(0, 12)) };
}

/**
 * The same change with no tool at all: `replicas` probe containers (not berth's: no labels) on the
 * service's network, each replaced straight through the Docker API one after the other, stop-first,
 * the stop beside the create and the start beside the removal (as berth does); the time of one
 * such replacement of them all. The probes are made before it and removed after it, untimed, so
 * that they do not run beside berth's.
 */
async function apiReplaceOnce(docker: Dockerode, on: OnNetwork, replicas: number): Promise<number> {
  let n = 0;
  const probe = () => docker.createContainer(probeContainer(`api-replace-${n++}`, on));
  const live = await Promise.all(
    Array.from({ length: replicas }, async () => {
      const c = await probe();
      await c.start();
      return c;
    }),
  );
  try {
    const t0 = performance.now();
    for (let i = 0; i < replicas; i++) {
      const [, next] = await Promise.all([live[i].stop(), probe()]);
      await Promise.all([next.start(), live[i].remove()]);
      live[i] = next;
    }
    return performance.now() - t0;
  } finally {
    await Promise.all(live.map((c) => c.remove({ force: true }).catch(() => undefined)));
  }
}

/** Runs the one-change scenario and returns its rows. */
export async function change(runs = 5): Promise<Row[]> {
  await cleanupLeftovers();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-change-'));
  const daemons: TestDaemon[] = [];
  const git_ = await startGitServer();
  let swarmSocket: string | undefined;
  try {
    daemons.push(await startDaemon(), await startDaemon());
    const [main, swarmDaemon] = daemons;
    const docker = new Dockerode(main.dockerOptions);
    const swarmDocker = new Dockerode(swarmDaemon.dockerOptions);
    await Promise.all([buildTestImages(docker), buildTestImages(swarmDocker)]);
    const imageId = async (d: Dockerode, image: string) => (await d.getImage(image).inspect()).Id;

    const shape = repoShape(STACKS, SERVICES, CONTAINERS);
    const replicas = shape[0].find((s) => s.name === SERVICE)?.replicas ?? 0;
    const filesFor = (image: string, parallelism?: number) => {
      const s0 = shape[0].map((s) => (s.name === SERVICE ? { ...s, image, parallelism } : s));
      return repoFiles([s0, ...shape.slice(1)], IMAGES.webV1);
    };
    const repo = await git_.createRepo('change');
    let deployed: string = IMAGES.webV1; // the changed service's image at the repo's head
    await repo.commit(filesFor(deployed));
    const allRunning = (d: Dockerode) =>
      until(async () => ((await containerStates(d)).running >= CONTAINERS ? true : undefined), `${CONTAINERS} containers running`, 900_000, 200);

    // The floor: one container's create + start.
    const floorRun = await floorRuns(docker);

    // berth: the repo deployed, then each change pushed by webhook: with the service's default
    // update_config (one replica after the other), then with `parallelism: 0` (all at once, as
    // docker-compose recreates them), after one untimed push that sets it.
    const floorInPlace: number[] = [];
    let serviceNet = '';
    const apiRuns: number[] = [];
    const berthRuns: number[] = [];
    const berthAllRuns: number[] = [];
    const berth = await startBerth(join(dir, 'berth'), [{ name: 'bench', socketPath: main.socketPath }], repo);
    try {
      const errors = passErrors(await berth.engine.syncAll({ trigger: 'manual' }));
      if (errors.length) throw new Error(`bench: berth's deploy failed: ${errors.join('; ')}`);
      await allRunning(docker);
      // The floor where this change happens: on the service's network, beside the repo's running containers.
      const labels = [`berth.stack=${STACK}`, `berth.service=${SERVICE}`];
      const on = await serviceNetwork(docker, labels);
      serviceNet = on.network;
      const watch = await watchChange(docker, labels);
      for (const [times, parallelism, out] of [
        [runs, undefined, berthRuns],
        [runs + 1, 0, berthAllRuns],
      ] as const) {
        for (let r = 0; r < times; r++) {
          // Beside each run of berth, in the same moment of the machine: the floor in place and, for
          // the default order, the same replacement straight through the API.
          if (times === runs || r > 0) floorInPlace.push(...(await floorRuns(docker, 1, on)));
          if (parallelism === undefined) apiRuns.push(await apiReplaceOnce(docker, on, replicas));
          const image = (deployed = other(deployed));
          const id = await imageId(docker, image);
          const sha = await repo.commit(filesFor(image, parallelism));
          const t0 = performance.now();
          await pushWebhook(berth.port, berth.secret, repo.url, sha, `change-${parallelism ?? 1}-${r}`);
          const took = await watch.until(id, replicas, t0, 'berth to replace the service');
          if (times === runs || r > 0) out.push(took);
          await berth.engine.drain();
        }
      }
      watch.close();
    } finally {
      await berth.close();
    }
    await wipe(docker);

    // docker-compose over a clone: git pull, then up -d of the one stack, or of every stack.
    const clone = join(dir, 'clone');
    await git(['clone', '-q', repo.url, clone]);
    const up = (i: number) => cli('docker-compose', ['-p', `s${i}`, '-f', join(clone, `s${i}`, 'compose.yaml'), 'up', '-d'], main.socketPath);
    for (let i = 0; i < STACKS; i++) await up(i);
    await allRunning(docker);
    const composeRuns = { one: [] as number[], all: [] as number[] };
    const composeWatch = await watchChange(docker, [`com.docker.compose.project=${STACK}`, `com.docker.compose.service=${SERVICE}`]);
    for (const variant of ['one', 'all'] as const) {
      for (let r = 0; r < runs; r++) {
        const image = (deployed = other(deployed));
        const id = await imageId(docker, image);
        await repo.commit(filesFor(image));
        const t0 = performance.now();
        await git(['pull', '-q', '--ff-only'], clone);
        if (variant === 'one') await up(0);
        else for (let i = 0; i < STACKS; i++) await up(i);
        // docker-compose is done when its last `up` returns (the changed stack is the first of 20)
        composeRuns[variant].push(await composeWatch.until(id, replicas, t0, 'docker-compose to replace the service', performance.now()));
      }
    }
    composeWatch.close();
    await wipe(docker);

    // Swarm: the stacks deployed with docker stack deploy, then `docker service update --image`.
    await cli('docker', ['swarm', 'init', '--advertise-addr', swarmDaemon.address], swarmDaemon.socketPath);
    swarmSocket = swarmDaemon.socketPath;
    for (let i = 0; i < STACKS; i++) {
      await cli('docker', ['stack', 'deploy', '--detach=true', '--resolve-image', 'never', '-c', join(clone, `s${i}`, 'compose.yaml'), `s${i}`], swarmSocket);
    }
    await allRunning(swarmDocker);
    const swarmRuns: number[] = [];
    const swarmWatch = await watchChange(swarmDocker, [`com.docker.swarm.service.name=${STACK}_${SERVICE}`]);
    for (let r = 0; r < runs; r++) {
      const image = (deployed = other(deployed));
      const id = await imageId(swarmDocker, image);
      const t0 = performance.now();
      await cli(
        'docker',
        ['service', 'update', '--detach', '--no-resolve-image', '--update-monitor', '1ms', '--image', image, `${STACK}_${SERVICE}`],
        swarmSocket,
      );
      swarmRuns.push(await swarmWatch.until(id, replicas, t0, 'Swarm to update the service'));
      await sleep(1000); // the update's last monitor period and its state in the Swarm settle before the next
    }
    swarmWatch.close();

    const empty = median(floorRun);
    const floor = median(floorInPlace);
    const target = 1.5 * floor * replicas;
    const b = median(berthRuns);
    const all = median(berthAllRuns);
    const api = median(apiRuns);
    const vs = (x: number) => `${(x / b).toFixed(2)}x berth`;
    const what = `one service (${replicas} replicas) of ${STACKS} stacks / ${CONTAINERS} containers changes image`;
    const toFloor = (x: number) =>
      `${(x / (floor * replicas)).toFixed(2)}x floor in place x ${replicas} (${ms(floor * replicas)}); ${(x / (empty * replicas)).toFixed(2)}x the empty daemon's floor x ${replicas}; ${(x / api).toFixed(2)}x the API alone`;
    return [
      { scenario: 'one change: floor on the empty daemon (create + start, default bridge)', value: ms(empty) },
      {
        scenario: `one change: floor in place (create + start on ${serviceNet}, ${CONTAINERS} containers running)`,
        value: ms(floor),
        against: `${(floor / empty).toFixed(2)}x the empty daemon's`,
      },
      {
        scenario: `one change: the same replacement straight through the Docker API, no tool (${replicas} containers, stop-first, one after the other)`,
        value: ms(api),
        against: `${(api / (floor * replicas)).toFixed(2)}x floor in place x ${replicas}`,
      },
      {
        scenario: `one change: ${what}, berth, push (webhook) to running, one replica after the other (update_config's default)`,
        value: ms(b),
        against: toFloor(b),
        target: `within 1.5x floor x ${replicas}`,
        met: b <= target,
      },
      {
        scenario: 'one change: the same, berth, with update_config parallelism 0 (both at once, as docker-compose does)',
        value: ms(all),
        against: toFloor(all),
        target: `within 1.5x floor x ${replicas}`,
        met: all <= target,
      },
      {
        scenario: 'one change: git pull + docker-compose up -d of the one stack',
        value: ms(median(composeRuns.one)),
        against: vs(median(composeRuns.one)),
        target: 'berth faster',
        met: b < median(composeRuns.one),
      },
      {
        scenario: `one change: git pull + docker-compose up -d of all ${STACKS} stacks`,
        value: ms(median(composeRuns.all)),
        against: vs(median(composeRuns.all)),
        target: 'berth faster',
        met: b < median(composeRuns.all),
      },
      {
        scenario: 'one change: docker service update --image (Swarm, monitor 1ms)',
        value: ms(median(swarmRuns)),
        against: vs(median(swarmRuns)),
        target: 'berth faster',
        met: b < median(swarmRuns),
      },
    ];
  } finally {
    if (swarmSocket) await cli('docker', ['swarm', 'leave', '--force'], swarmSocket).catch((err: unknown) => console.error(String(err)));
    await git_.close();
    for (const d of daemons) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  const runs = Number(process.argv[2] ?? 5);
  printTable(`berth bench: one change, median of ${runs} runs`, await change(runs));
}
