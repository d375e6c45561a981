/**
 * Cold deploy: a generated repo of 20 stacks, 50 services and 100 containers (berth-test/web:v1,
 * replicas 1-3) on one host, from nothing to every container running (health checks disabled: see composeFile): berth from
 * commit to converged (Engine.syncAll, trigger manual), `docker-compose -p STACK -f FILE up -d`
 * per stack one after another (Debian's docker-compose v1), and `docker stack deploy` per stack on
 * a one-node Swarm of a second private daemon. Beside the floor: one container's create + start
 * on the same daemon, and the 100 containers created and started straight through the
 * API, 8 at a time (berth's hostConcurrency). Each round measures the floors, then runs the three
 * tools one after the other (the Swarm initialised on its daemon throughout), so that none reads a
 * quieter machine than another.
 *
 * Run as root: `node bench/cold.ts [runs]` (default 3). Starts and stops its own daemons.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { cleanupLeftovers, startDaemon, type TestDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { cli, containerStates, floorRuns, median, ms, repoFiles, repoShape, until, wipe, type Row } from './lib.ts';

export const STACKS = 20;
export const SERVICES = 50;
export const CONTAINERS = 100;
const PARALLELISM = 8; // berth's default hostConcurrency

/** Waits until `n` containers run; returns the time since t0. */
async function converged(docker: Dockerode, t0: number, n: number, what: string): Promise<number> {
  await until(async () => ((await containerStates(docker)).running >= n ? true : undefined), `${what}: ${n} containers running`, 600_000, 50);
  return performance.now() - t0; // health checks are disabled in the generated repo (see composeFile)
}

/** The 100 containers straight through the API, PARALLELISM at a time, on the default bridge; ms until all run. */
async function apiFloor(docker: Dockerode): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLELISM }, async () => {
      while (next < CONTAINERS) {
        const i = next++;
        await (await docker.createContainer({ Image: IMAGES.webV1, name: `floor-all-${i}`, Healthcheck: { Test: ['NONE'] } })).start();
      }
    }),
  );
  const took = performance.now() - t0;
  await wipe(docker);
  return took;
}

/** berth, a fresh engine (and clone) in `data`: from the commit to every container running, in ms. */
async function berthDeploy(docker: Dockerode, socketPath: string, url: string, data: string): Promise<number> {
  mkdirSync(data);
  const config = join(data, 'berth.config.yaml');
  writeFileSync(
    config,
    stringify({
      dataDir: join(data, 'data'),
      hosts: [{ name: 'bench', endpoint: `unix://${socketPath}` }],
      repos: [{ name: 'cold', url, branch: 'main', poll: '1h' }],
    }),
  );
  const engine = new Engine(loadConfig(config), pino({ level: 'silent' }));
  try {
    const t0 = performance.now();
    const pass = engine.syncAll({ trigger: 'manual' });
    const took = await converged(docker, t0, CONTAINERS, 'berth');
    const failed = (await pass).flatMap((p) => [p.error ?? [], ...p.stacks.flatMap((s) => s.errors ?? [])]).flat();
    if (failed.length) throw new Error(`bench: berth's cold deploy failed: ${failed.join('; ')}`);
    await engine.drain();
    await wipe(docker);
    return took;
  } finally {
    engine.close();
  }
}

/** docker-compose v1 over the repo in `repoDir`, one stack after another; ms until every container runs. */
async function composeDeploy(docker: Dockerode, socketPath: string, repoDir: string): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < STACKS; i++) await cli('docker-compose', ['-p', `s${i}`, '-f', join(repoDir, `s${i}`, 'compose.yaml'), 'up', '-d'], socketPath);
  const took = await converged(docker, t0, CONTAINERS, 'docker-compose');
  await wipe(docker);
  return took;
}

/** `docker stack deploy` of each stack on the one-node Swarm of `socketPath`, under names fresh for round `r`; ms until every container runs. */
async function swarmDeploy(swarmDocker: Dockerode, socketPath: string, repoDir: string, r: number): Promise<number> {
  const names = Array.from({ length: STACKS }, (_, i) => `r${r}s${i}`);
  const t0 = performance.now();
  for (let i = 0; i < STACKS; i++) {
    await cli('docker', ['stack', 'deploy', '--detach=true', '--resolve-image', 'never', '-c', join(repoDir, `s${i}`, 'compose.yaml'), names[i]], socketPath);
  }
  const took = await converged(swarmDocker, t0, CONTAINERS, 'docker stack deploy');
  // Under load Swarm may refuse to remove a network a task still holds: remove again once the tasks are gone.
  const rm = () => cli('docker', ['stack', 'rm', ...names], socketPath);
  const refused = await rm().then(
    () => undefined,
    (err: unknown) => err,
  );
  await until(async () => ((await containerStates(swarmDocker)).all === 0 ? true : undefined), 'the Swarm stacks to be removed', 300_000, 200);
  await sleep(2000); // Swarm removes the stacks' networks after their tasks
  if (refused)
    await until(
      () =>
        rm().then(
          () => true,
          () => sleep(2000).then(() => undefined),
        ),
      "the Swarm stacks' networks to be removed",
      120_000,
    );
  return took;
}

/** Runs the cold-deploy scenario and returns its rows. */
export async function cold(runs = 3): Promise<Row[]> {
  await cleanupLeftovers();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-cold-'));
  const daemons: TestDaemon[] = [];
  const git = await startGitServer();
  let swarm: { socket: string; joined: boolean } | undefined;
  try {
    daemons.push(await startDaemon(), await startDaemon());
    const [main, swarmDaemon] = daemons;
    const docker = new Dockerode(main.dockerOptions);
    const swarmDocker = new Dockerode(swarmDaemon.dockerOptions);
    await Promise.all([buildTestImages(docker), buildTestImages(swarmDocker)]);

    const files = repoFiles(repoShape(STACKS, SERVICES, CONTAINERS), IMAGES.webV1);
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(join(dir, 'repo', file, '..'), { recursive: true });
      writeFileSync(join(dir, 'repo', file), content);
    }

    // Each round: the floor (one container, twice), all of them straight through the API
    // PARALLELISM at a time, berth, docker-compose and Swarm one after the other, so that all see
    // the machine in the same state (rounds of one tool after another's once read a busier machine).
    const floorRun: number[] = [];
    const floorAll: number[] = [];
    const repo = await git.createRepo('cold');
    await repo.commit(files);
    const berth: number[] = [];
    const compose: number[] = [];
    const stack: number[] = [];
    await cli('docker', ['swarm', 'init', '--advertise-addr', swarmDaemon.address], swarmDaemon.socketPath);
    swarm = { socket: swarmDaemon.socketPath, joined: true };
    for (let r = 0; r < runs; r++) {
      floorRun.push(...(await floorRuns(docker, 2)));
      floorAll.push(await apiFloor(docker));
      berth.push(await berthDeploy(docker, main.socketPath, repo.url, join(dir, `berth-${r}`)));
      compose.push(await composeDeploy(docker, main.socketPath, join(dir, 'repo')));
      stack.push(await swarmDeploy(swarmDocker, swarmDaemon.socketPath, join(dir, 'repo'), r));
    }

    const floor = median(floorRun);
    // The target: 1.5x the floor times the containers that must start; starting them in
    // parallel is how a tool gets under it (each container counts once, however it is started).
    const targetRunning = floor * CONTAINERS;
    const b = median(berth);
    const vs = (x: number, y: number) => `${(x / y).toFixed(2)}x berth`;
    const rows: Row[] = [
      { scenario: 'floor: create + start, one container', value: ms(floor) },
      { scenario: `floor: ${CONTAINERS} containers via the API, ${PARALLELISM} at a time, running`, value: ms(median(floorAll)) },
      {
        scenario: `cold deploy ${STACKS} stacks / ${CONTAINERS} containers, berth, running`,
        value: ms(b),
        against: `${(b / targetRunning).toFixed(2)}x floor x ${CONTAINERS} (${ms(targetRunning)}); ${(b / median(floorAll)).toFixed(2)}x the parallel API floor`,
        target: 'within 1.5x floor x containers',
        met: b <= 1.5 * targetRunning,
      },
      {
        scenario: 'cold deploy, docker-compose up -d per stack, running',
        value: ms(median(compose)),
        against: vs(median(compose), b),
        target: 'berth faster',
        met: b < median(compose),
      },
      {
        scenario: 'cold deploy, docker stack deploy per stack, running',
        value: ms(median(stack)),
        against: vs(median(stack), b),
        target: 'berth faster',
        met: b < median(stack),
      },
    ];
    return rows;
  } finally {
    if (swarm?.joined) await cli('docker', ['swarm', 'leave', '--force'], swarm.socket).catch((err: unknown) => console.error(String(err)));
    await git.close();
    for (const d of daemons) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  printTable(`berth bench: cold deploy, median of ${process.argv[2] ?? 3} runs`, await cold(Number(process.argv[2] ?? 3)));
}
