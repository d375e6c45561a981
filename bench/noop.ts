/**
 * No-op resync: a repo deployed on 3 private daemons, then `engine.syncAll({ trigger: 'poll' })`
 * while nothing changed: wall time, this process's CPU time, and the Docker API calls per resync,
 * counted by an HTTP proxy in front of each daemon's socket. For the repo of bench/cold.ts (20
 * stacks, 100 containers), then 500 stacks / 1,000 containers; berth's peak RSS is taken once it
 * manages the 1,000.
 *
 * Run as root: `node bench/noop.ts [resyncs]` (default 10). Starts and stops its own daemons.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { cleanupLeftovers, startDaemon, type TestDaemon } from '../test/harness/daemon.ts';
import { buildTestImages, IMAGES } from '../test/harness/images.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { composeFile, containerStates, countingProxy, median, ms, repoShape, until, wipe, type Row } from './lib.ts';
import { peakRssMb } from './memory.ts';

const HOSTS = 3;
/** The 1,000-container repo takes berth longer than 15 min to deploy here: only with BERTH_BENCH_LARGE=1. */
const SIZES = [
  { stacks: 20, services: 50, containers: 100 },
  ...(process.env.BERTH_BENCH_LARGE ? [{ stacks: 500, services: 500, containers: 1000 }] : []),
];

/** Runs the no-op resync scenario (and the peak RSS with the largest repo) and returns its rows. */
export async function noop(resyncs = 10): Promise<Row[]> {
  await cleanupLeftovers();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-noop-'));
  const daemons: TestDaemon[] = [];
  const proxies: Array<Awaited<ReturnType<typeof countingProxy>>> = [];
  const git = await startGitServer();
  const rows: Row[] = [];
  try {
    for (let i = 0; i < HOSTS; i++) daemons.push(await startDaemon());
    const dockers = daemons.map((d) => new Dockerode(d.dockerOptions));
    await Promise.all(dockers.map((d) => buildTestImages(d)));
    for (const [i, d] of daemons.entries()) proxies.push(await countingProxy(d.socketPath, join(dir, `proxy${i}.sock`)));
    const running = async () => (await Promise.all(dockers.map(containerStates))).reduce((a, s) => a + s.running, 0);

    for (const size of SIZES) {
      const label = `${size.stacks} stacks / ${size.containers} containers / ${HOSTS} hosts`;
      const files: Record<string, string> = {};
      repoShape(size.stacks, size.services, size.containers).forEach((services, i) => { files[`s${i}/compose.yaml`] = composeFile(services, IMAGES.webV1); });
      const name = `noop${size.stacks}`;
      const repo = await git.createRepo(name);
      await repo.commit(files);
      const data = join(dir, name);
      mkdirSync(data);
      writeFileSync(join(data, 'berth.config.yaml'), stringify({
        dataDir: join(data, 'data'),
        hosts: proxies.map((p, i) => ({ name: `h${i}`, endpoint: `unix://${p.socketPath}` })),
        repos: [{ name, url: repo.url, branch: 'main', poll: '1h' }],
      }));
      const engine = new Engine(loadConfig(join(data, 'berth.config.yaml')), pino({ level: 'silent' }));
      try {
        const deployed = await engine.syncAll({ trigger: 'manual' });
        const errors = deployed.flatMap((p) => [p.error ?? [], ...p.stacks.flatMap((s) => s.errors ?? [])]).flat();
        if (errors.length) {
          // e.g. 500 stack networks exhaust dockerd's default address pools (about 30 bridge networks)
          rows.push({ scenario: `no-op resync, ${label}`, value: 'not measured', against: `deploying failed: ${errors[0]} (and ${errors.length - 1} more)`, target: 'under 300 ms', met: false });
          continue;
        }
        await until(async () => ((await running()) >= size.containers ? true : undefined), `${label} running`, 900_000, 500);
        await engine.drain();
        await engine.syncAll({ trigger: 'poll' }); // warm-up

        const wall: number[] = [];
        const cpu: number[] = [];
        const calls: number[] = [];
        let breakdown = new Map<string, number>();
        for (let r = 0; r < resyncs; r++) {
          proxies.forEach((p) => p.reset());
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          const pass = await engine.syncAll({ trigger: 'poll' });
          wall.push(performance.now() - t0);
          const c = process.cpuUsage(cpu0);
          cpu.push((c.user + c.system) / 1000);
          calls.push(proxies.reduce((a, p) => a + p.total(), 0));
          const changed = pass.flatMap((p) => p.stacks).filter((s) => s.status !== 'unchanged');
          if (changed.length) throw new Error(`bench: a no-op resync of ${label} was not a no-op: ${changed.map((s) => `${s.stack} ${s.status}`).join(', ')}`);
          breakdown = new Map();
          for (const p of proxies) for (const [k, v] of p.counts) breakdown.set(k, (breakdown.get(k) ?? 0) + v);
        }
        const perCall = [...breakdown].map(([k, v]) => `${v} ${k}`).join(', ');
        const callsMedian = median(calls);
        rows.push(
          { scenario: `no-op resync, ${label}: wall`, value: ms(median(wall)), target: size.containers >= 1000 ? 'under 300 ms' : undefined, met: median(wall) < 300 },
          { scenario: `no-op resync, ${label}: CPU time`, value: ms(median(cpu)), against: 'bench process (engine + counting proxies)' },
          {
            scenario: `no-op resync, ${label}: Docker API calls`, value: String(callsMedian), against: perCall,
            // per host: the three list calls of observe, and the host check's ping, info and version
            // (a CLI-style pass checks its hosts; under `serve` the monitor does that on its own timer)
            target: 'O(hosts), not O(containers): at most 6 per host', met: callsMedian <= 6 * HOSTS,
          },
        );
        if (size.containers >= 1000) {
          const rss = peakRssMb();
          rows.push({ scenario: `peak RSS managing ${size.containers} containers`, value: `${rss.toFixed(0)} MiB`, against: 'the whole bench process (engine, proxies, dockerode polling)', target: 'under 150 MB', met: rss * 1.048576 < 150 });
        }
      } finally {
        engine.close();
      }
      await Promise.all(dockers.map(wipe));
    }
    return rows;
  } finally {
    for (const p of proxies) await p.close();
    await git.close();
    for (const d of daemons) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  printTable('berth bench: no-op resync', await noop(Number(process.argv[2] ?? 10)));
}
