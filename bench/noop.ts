/**
 * No-op resync: a repo in sync on 3 private daemons, then `engine.syncAll({ trigger: 'poll' })`
 * while nothing changed: wall time and this process's CPU time (an engine talking straight to the
 * daemons' sockets), and the Docker API calls per resync (a second engine whose hosts are HTTP
 * proxies that count each request). For the repo of bench/cold.ts (20 stacks, 100 containers),
 * then 500 stacks / 1,000 containers (only with BERTH_BENCH_LARGE=1); with the largest, the peak
 * RSS of a `berth serve` process managing them (bench/memory.ts), and readers polling the API (bench/reads.ts).
 *
 * The containers are not deployed through berth (1,000 took it over 15 min here): berth's own
 * dry-run plan gives the networks and containers it would create, labelled and hashed as it would
 * (schedule/container.ts desiredContainer), and the bench creates them on the daemons directly,
 * the containers through berth's Docker edge (DockerHost.createAndStart), a few at a time per host.
 * A dry run then proves the engine sees every stack in sync.
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
import { DockerHost } from '../src/apply/docker-host.ts';
import { mapLimit } from '../src/engine/limit.ts';
import { LABEL } from '../src/model.ts';
import type { Action } from '../src/diff/plan.ts';
import { countingProxy, median, ms, passErrors, repoFiles, repoShape, wipe, type Row } from './lib.ts';
import { serveRss } from './memory.ts';
import { readersBench } from './reads.ts';

const HOSTS = 3;
/** Containers created (and started) at once per daemon while seeding. */
const SEED_PARALLEL = 4;
const SIZES = [
  { stacks: 20, services: 50, containers: 100 },
  // creating 1,000 containers and 1,000 networks takes 6-11 min on 2 cores
  ...(process.env.BERTH_BENCH_LARGE ? [{ stacks: 500, services: 500, containers: 1000 }] : []),
];

/**
 * The repo's files with a berth.yaml that puts each stack on two of the hosts in turn (h0+h1,
 * h1+h2, h2+h0). Written when berth's placement broke ties by config order alone (every
 * 2-replica service on h0 and h1); it now counts other stacks' containers and would spread them
 * itself, but the pinned layout keeps the figures comparable with the earlier runs.
 */
export function spreadRepo(files: Record<string, string>): Record<string, string> {
  const stacks = Object.keys(files).map((file, i) => ({
    name: file.split('/')[0],
    compose: [file],
    hosts: { names: [`h${i % HOSTS}`, `h${(i + 1) % HOSTS}`] },
  }));
  return { ...files, 'berth.yaml': stringify({ stacks }) };
}

/** An engine for one repo on the given host endpoints, logging nowhere. */
function engineFor(dir: string, repo: { name: string; url: string }, sockets: string[]): Engine {
  const file = join(dir, 'berth.config.yaml');
  const config = {
    dataDir: join(dir, 'data'),
    hosts: sockets.map((s, i) => ({ name: `h${i}`, endpoint: `unix://${s}` })),
    repos: [{ name: repo.name, url: repo.url, branch: 'main', poll: '1h' }],
    // the monitor, once started, checks the hosts at its start and then not during the bench
    hostCheck: { interval: '1h' },
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, stringify(config));
  return new Engine(loadConfig(file), pino({ level: 'silent' }));
}

/**
 * Creates on the hosts what berth's plan says is missing: the stack networks (labelled as berth
 * labels them) and the containers (through berth's Docker edge), SEED_PARALLEL at a time per host.
 * Returns the time it took.
 */
export async function seed(engine: Engine, dockers: Map<string, Dockerode>): Promise<number> {
  const t0 = performance.now();
  const [pass] = await engine.syncAll({ trigger: 'manual', dryRun: true });
  if (pass.error) throw new Error(`bench: cannot plan the repo: ${pass.error}`);
  const plans = pass.stacks.map((s) => s.plan).filter((p) => p !== undefined);
  const networks = plans.flatMap((p) => p.networks.map((n) => ({ ...n, repo: p.repo, stack: p.stack })));
  const creates = plans.flatMap((p) => p.actions).filter((a): a is Extract<Action, { kind: 'create' }> => a.kind === 'create');
  const log = pino({ level: 'silent' });
  await Promise.all(
    [...dockers].map(async ([host, docker]) => {
      await mapLimit(
        networks.filter((n) => n.host === host),
        SEED_PARALLEL,
        async (n) => {
          await docker.createNetwork({
            Name: n.spec.name,
            Driver: n.spec.driver ?? 'bridge',
            CheckDuplicate: true,
            Labels: {
              ...n.spec.labels,
              [LABEL.managed]: 'true',
              [LABEL.repo]: n.repo,
              [LABEL.stack]: n.stack,
              [LABEL.composeProject]: n.stack,
              [LABEL.composeNetwork]: n.spec.key,
            },
          });
        },
      );
      const edge = new DockerHost(host, docker, log);
      await mapLimit(
        creates.filter((a) => a.host === host),
        SEED_PARALLEL,
        (a) => edge.createAndStart(a.desired),
      );
    }),
  );
  return performance.now() - t0;
}

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

    for (const size of SIZES) {
      const label = `${size.stacks} stacks / ${size.containers} containers / ${HOSTS} hosts`;
      const name = `noop${size.stacks}`;
      const repo = await git.createRepo(name);
      await repo.commit(spreadRepo(repoFiles(repoShape(size.stacks, size.services, size.containers), IMAGES.webV1)));
      const direct = engineFor(
        join(dir, `${name}-direct`),
        repo,
        daemons.map((d) => d.socketPath),
      );
      const counted = engineFor(
        join(dir, `${name}-counted`),
        repo,
        proxies.map((p) => p.socketPath),
      );
      try {
        const seedMs = await seed(direct, new Map(dockers.map((d, i) => [`h${i}`, d])));
        const check = await direct.syncAll({ trigger: 'manual', dryRun: true });
        const planned = check.flatMap((p) => p.stacks).filter((s) => s.status !== 'unchanged');
        if (planned.length || passErrors(check).length) {
          throw new Error(
            `bench: after seeding, berth does not see ${label} in sync: ${planned.length} stack(s) ${planned[0]?.status ?? ''}\n${planned[0]?.diff ?? passErrors(check).join('\n')}`,
          );
        }
        console.error(`bench: ${label} created in ${(seedMs / 1000).toFixed(0)} s`);
        await direct.syncAll({ trigger: 'poll' }); // warm-up: the clone, the render of the commit
        await counted.syncAll({ trigger: 'poll' });

        const notNoop = (pass: Awaited<ReturnType<Engine['syncAll']>>) => {
          const changed = pass.flatMap((p) => p.stacks).filter((s) => s.status !== 'unchanged');
          if (changed.length || passErrors(pass).length) {
            throw new Error(
              `bench: a no-op resync of ${label} was not a no-op: ${[...changed.map((s) => `${s.stack} ${s.status}`), ...passErrors(pass)].join(', ')}`,
            );
          }
        };
        // Twice: as a CLI-style pass (each pass checks its hosts first: _ping, info, version), then
        // as under `berth serve`, whose host monitor checks them on its own timer.
        const large = size.containers >= 1000;
        for (const style of ['CLI-style', 'serve'] as const) {
          if (style === 'serve') {
            for (const e of [direct, counted]) e.startMonitor();
            await direct.syncAll({ trigger: 'poll' });
            await counted.syncAll({ trigger: 'poll' });
          }
          const wall: number[] = [];
          const cpu: number[] = [];
          for (let r = 0; r < resyncs; r++) {
            const cpu0 = process.cpuUsage();
            const t0 = performance.now();
            const pass = await direct.syncAll({ trigger: 'poll' });
            wall.push(performance.now() - t0);
            const c = process.cpuUsage(cpu0);
            cpu.push((c.user + c.system) / 1000);
            notNoop(pass);
          }
          const calls: number[] = [];
          let breakdown = new Map<string, number>();
          for (let r = 0; r < Math.min(resyncs, 3); r++) {
            proxies.forEach((p) => p.reset());
            notNoop(await counted.syncAll({ trigger: 'poll' }));
            calls.push(proxies.reduce((a, p) => a + p.total(), 0));
            breakdown = new Map();
            for (const p of proxies) for (const [k, v] of p.counts) breakdown.set(k, (breakdown.get(k) ?? 0) + v);
          }
          const perCall = [...breakdown].map(([k, v]) => `${v} ${k}`).join(', ');
          const callsMedian = median(calls);
          // the target is judged on the pass `berth serve` makes, the resync a user's berth runs
          const judged = style === 'serve';
          const what = `no-op resync (${style === 'serve' ? 'as under berth serve' : 'CLI-style, hosts checked first'}), ${label}`;
          rows.push(
            {
              scenario: `${what}: wall`,
              value: ms(median(wall)),
              against: `min ${ms(Math.min(...wall))}, max ${ms(Math.max(...wall))}`,
              target: large && judged ? 'under 300 ms' : undefined,
              met: median(wall) < 300,
            },
            {
              scenario: `${what}: CPU time`,
              value: ms(median(cpu)),
              against: `the engine's process; ${(median(cpu) / median(wall)).toFixed(2)} CPU s per wall s`,
            },
            {
              scenario: `${what}: Docker API calls`,
              value: String(callsMedian),
              against: perCall,
              // per host: the three list calls of observe, and (CLI-style) the host check's ping, info and version
              target: 'O(hosts), not O(containers): at most 6 per host',
              met: callsMedian <= 6 * HOSTS,
            },
          );
        }
        if (size === SIZES.at(-1)) {
          rows.push(...(await readersBench(counted, proxies, label)));
          rows.push(
            await serveRss(
              join(dir, `${name}-serve`),
              daemons.map((d) => d.socketPath),
              repo,
              size.containers,
            ),
          );
        }
      } finally {
        direct.close();
        counted.close();
      }
      if (size !== SIZES.at(-1)) await Promise.all(dockers.map(wipe)); // the daemons' stop removes the last
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
