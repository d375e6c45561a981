/**
 * How fast berth reacts: push -> webhook -> converged, and kill -> drift corrected, for one
 * replica, beside the floor the Docker daemon sets (create + start, and create + start + healthy of
 * the same image on the same daemon). Medians over several runs; ratios against the floor.
 *
 * Starts and stops its own Docker daemon (in a network namespace, like the tests) and git server:
 * run as root, `npm run bench` (or `node bench/react.ts [runs]`).
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { cleanupLeftovers, startDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { buildServer } from '../src/server/server.ts';

const RUNS = Number(process.argv[2] ?? 7);
const SECRET = 'bench-webhook-secret';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function main() {
  await cleanupLeftovers();
  const daemon = await startDaemon();
  const docker = new Dockerode(daemon.dockerOptions);
  const git = await startGitServer();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  let engine: Engine | undefined;
  let stopDrift: (() => void) | undefined;
  let app: Awaited<ReturnType<typeof buildServer>> | undefined;
  try {
    await buildTestImages(docker);

    // The floor: the same image, straight through the Docker API.
    const floorRun: number[] = [];
    const floorHealthy: number[] = [];
    for (let i = 0; i < RUNS; i++) {
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
    writeFileSync(join(dir, 'hook-secret'), SECRET);
    const file = join(dir, 'berth.config.yaml');
    writeFileSync(
      file,
      stringify({
        dataDir: join(dir, 'data'),
        listen: '127.0.0.1:0',
        hosts: [{ name: 'bench', endpoint: `unix://${daemon.socketPath}` }],
        repos: [{ name: 'bench', url: repo.url, branch: 'main', poll: '1h', webhookSecretFile: 'hook-secret' }],
      }),
    );
    engine = new Engine(loadConfig(file), pino({ level: 'silent' }));
    await engine.syncAll({ trigger: 'startup' });
    app = buildServer({ ready: () => true, engine }, pino({ level: 'silent' }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    stopDrift = engine.watchDrift({ resyncMs: 3_600_000 });
    const web = async () => (await docker.listContainers({ all: true, filters: { label: ['berth.stack=web'] } }))[0];

    // Push -> webhook -> converged.
    const pushRun: number[] = [];
    const pushHealthy: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const sha = await repo.commit(compose(i));
      const t0 = performance.now();
      const body = JSON.stringify({ repo: repo.url, branch: 'main', after: sha });
      const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
      const res = await fetch(`http://127.0.0.1:${port}/webhooks/generic`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-berth-signature': signature, 'x-berth-delivery': `bench-${i}` },
        body,
      });
      if (res.status !== 202) throw new Error(`bench: the webhook was answered ${res.status}: ${await res.text()}`);
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
    for (let i = 0; i < RUNS; i++) {
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

    const ms = (x: number) => `${x.toFixed(0)} ms`;
    const rows: Array<[string, number, string]> = [
      ['floor: create + start (running)', median(floorRun), ''],
      ['floor: create + start + healthy', median(floorHealthy), ''],
      ['push -> webhook -> replaced, running', median(pushRun), `${(median(pushRun) / median(floorRun)).toFixed(2)}x floor (running)`],
      ['push -> webhook -> replaced, healthy', median(pushHealthy), `${(median(pushHealthy) / median(floorHealthy)).toFixed(2)}x floor (healthy); +${ms(median(pushHealthy) - median(floorHealthy))}`],
      ['kill -> drift corrected, running', median(killRun), `${(median(killRun) / median(floorRun)).toFixed(2)}x floor (running)`],
    ];
    console.log(`berth bench: reaction times, median of ${RUNS} runs (Docker ${(await docker.version()).Version}, Node ${process.versions.node})`);
    for (const [name, v, ratio] of rows) console.log(`  ${name.padEnd(40)} ${ms(v).padStart(8)}  ${ratio}`);
  } finally {
    stopDrift?.();
    await app?.close();
    engine?.close();
    await git.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
