/**
 * How fast berth reacts: push -> webhook -> converged, and kill -> drift corrected, for one
 * replica, beside the floor the Docker daemon sets (create + start, and create + start + healthy of
 * the same image on the same daemon). Medians over several runs; ratios against the floor.
 *
 * Starts and stops its own Docker daemon (in a network namespace, like the tests) and git server:
 * run as root, `npm run bench` (or `node bench/react.ts [runs]`, default 7).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { cleanupLeftovers, startDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { median, ms, pushWebhook, startBerth, until, type BenchBerth, type Row } from './lib.ts';

/** Runs the reaction-time scenarios and returns their rows. */
export async function react(runs = 7): Promise<Row[]> {
  await cleanupLeftovers();
  const daemon = await startDaemon();
  const docker = new Dockerode(daemon.dockerOptions);
  const git = await startGitServer();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  let berth: BenchBerth | undefined;
  let stopDrift: (() => void) | undefined;
  try {
    await buildTestImages(docker);

    // The floor: the same image, straight through the Docker API.
    const floorRun: number[] = [];
    const floorHealthy: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const c = await docker.createContainer({ Image: IMAGES.webV1, name: `floor-${i}` });
      await c.start();
      floorRun.push(performance.now() - t0);
      await until(async () => ((await c.inspect()).State.Health?.Status === 'healthy' ? true : undefined), 'the floor container to be healthy');
      floorHealthy.push(performance.now() - t0);
      await c.remove({ force: true });
    }

    const repo = await git.createRepo('bench');
    const compose = (n: number) => ({ 'web/compose.yaml': `services:\n  web:\n    image: ${IMAGES.webV1}\n    environment: { RUN: "${n}" }\n` });
    await repo.commit(compose(0));
    berth = await startBerth(join(dir, 'berth'), [{ name: 'bench', socketPath: daemon.socketPath }], repo);
    const { engine } = berth;
    await engine.syncAll({ trigger: 'startup' });
    stopDrift = engine.watchDrift({ resyncMs: 3_600_000 });
    const web = async () => (await docker.listContainers({ all: true, filters: { label: ['berth.stack=web'] } }))[0];

    // Push -> webhook -> converged.
    const pushRun: number[] = [];
    const pushHealthy: number[] = [];
    for (let i = 1; i <= runs; i++) {
      const sha = await repo.commit(compose(i));
      const t0 = performance.now();
      await pushWebhook(berth.port, berth.secret, repo.url, sha, `bench-${i}`);
      await until(async () => {
        const c = await web();
        return c?.Labels['berth.commit'] === sha && c.State === 'running' ? c : undefined;
      }, 'the push to converge');
      pushRun.push(performance.now() - t0);
      await until(async () => ((await web())?.Status.includes('(healthy)') ? true : undefined), 'the new replica to be healthy');
      pushHealthy.push(performance.now() - t0);
      await engine.drain();
    }

    // Kill -> drift corrected.
    const killRun: number[] = [];
    for (let i = 0; i < runs; i++) {
      const before = await web();
      const t0 = performance.now();
      await docker.getContainer(before.Id).kill();
      await until(async () => {
        const c = await web();
        return c && c.Id !== before.Id && c.State === 'running' ? c : undefined;
      }, 'the killed replica to be replaced');
      killRun.push(performance.now() - t0);
      await engine.drain();
      await until(async () => ((await web())?.Status.includes('(healthy)') ? true : undefined), 'the replacement to be healthy');
    }

    const [fr, fh, pr, ph, kr] = [floorRun, floorHealthy, pushRun, pushHealthy, killRun].map(median);
    return [
      { scenario: 'floor: create + start, one container (running)', value: ms(fr) },
      { scenario: 'floor: create + start + healthy (1 s health check)', value: ms(fh) },
      { scenario: 'push -> webhook -> replaced, running', value: ms(pr), against: `${(pr / fr).toFixed(2)}x floor (running)` },
      {
        scenario: 'push -> webhook -> replaced, healthy',
        value: ms(ph),
        against: `${(ph / fh).toFixed(2)}x floor (healthy); floor + ${ms(ph - fh)}`,
        target: 'under the floor + 500 ms',
        met: ph < fh + 500,
      },
      { scenario: 'kill -> drift corrected, running', value: ms(kr), against: `${(kr / fr).toFixed(2)}x floor (running); includes the 250 ms drift debounce` },
    ];
  } finally {
    stopDrift?.();
    await berth?.close();
    await git.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  const runs = Number(process.argv[2] ?? 7);
  printTable(`berth bench: reaction times, median of ${runs} runs`, await react(runs));
}
