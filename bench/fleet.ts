/**
 * A fleet of 200 hosts, simulated (bench/sim/): berth on 200 Docker hosts served by one simulator
 * process, 25 stacks of one `global` service each, so one replica of each of the 25 services per
 * host: 5,000 containers in one repo (over berth's default `limits.repoContainers`, 2,000, which
 * the bench's config raises to 5,000, as a fleet this size would).
 *
 * - Cold deploy: berth's first pass creates them all (timed, no target).
 * - (a) No-op pass over the 200 hosts, as bench/noop.ts measures it: `syncAll({ trigger: 'poll' })`
 *   while nothing changed, its wall and CPU time, CLI-style (the pass checks its hosts first), with
 *   the monitor checking them on its own timer, and as under `berth serve` (the monitor, and the
 *   hosts' events followed: a pass takes their containers as the events keep them), and the Docker
 *   calls per host as the simulator counted them.
 * - (b) One line changes: one service's image (s00's svc00, berth-test/web:v1 <-> v2, with
 *   `update_config: { parallelism: 20 }` from the start), rolled out on the 200 hosts in 10 batches,
 *   each gated on the new replicas' health check (the image's: 1 s interval); a webhook's pass,
 *   which fetches at once. Its wall time, berth's CPU time and peak RSS, and berth's own overhead:
 *   the wall time less the time the simulated hosts made it wait, which is the length of the union
 *   of the intervals from each new container's start to its `healthy` (the simulator records both;
 *   stops, creates and every other call answer at once), with where the rest goes. Twice: with
 *   health probes that take no time (the simulator's default: a container is healthy exactly one
 *   interval after its start), then taking 60 ms, as the test daemon's probe of that image did.
 *   As under `berth serve`: the monitor checks the hosts, and their events are followed (a replica's
 *   readiness is looked at again when its `health_status` event comes, src/apply/health.ts).
 * - (c) The peak RSS of a `berth serve` process managing the 5,000 containers (bench/memory.ts
 *   serveRss: its startup pass, 45 s of polls every 2 s, full resyncs every 10 s that inspect
 *   every container, reads of the API).
 *
 * berth runs in child processes of its own, started as bin/berth.js starts it (V8 heap flags,
 * glibc malloc settings; from its sources, not the bundle), so that its CPU time and memory are
 * berth's alone: one for the cold deploy and the no-op passes, a fresh one for the rollouts. The
 * simulator runs in another, the git server in this one.
 *
 * `node bench/fleet.ts [rollouts] [noop,rollout,serve]`: the rollouts of each probe time (default
 * 3), the parts (default all; the cold deploy always runs). Needs no Docker. With
 * BERTH_BENCH_PROFILE=DIR each berth process writes its CPU profile there.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { startGitServer } from '../test/harness/git-server.ts';
import { IMAGES } from '../test/harness/images.ts';
import { median, ms, passErrors, type Row } from './lib.ts';
import { serveRss } from './memory.ts';
import { spawnSimFleet, type SimProcess } from './sim/client.ts';
import type { StartRecord } from './sim/host.ts';

export const HOSTS = 200;
/** a stack per service: berth's default limits.stackContainers (500) holds a stack of one global service on 200 hosts */
const STACKS = 25;
const SERVICES_PER_STACK = 1;
const CONTAINERS = HOSTS * STACKS * SERVICES_PER_STACK;
const PARALLELISM = 20;
const NOOP_PASSES = 10;
/** The service that changes, and its stack. */
const STACK = 's00';
const SERVICE = 'svc00';

/** 5,000 containers in one repo: over berth's default limits.repoContainers (2,000), which a fleet this size raises */
const LIMITS = { limits: { repoContainers: CONTAINERS } };

const label = `${STACKS} stacks / ${STACKS * SERVICES_PER_STACK} global services / ${CONTAINERS} containers / ${HOSTS} simulated hosts`;

/** The repo: `sNN/compose.yaml`, each with its global service `svcNN` of the web image (its 1 s health check); s00's svc00 with `image`. */
function repoFiles(image: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let s = 0; s < STACKS; s++) {
    const services = Array.from({ length: SERVICES_PER_STACK }, (_, i) => {
      const name = `svc${String(s * SERVICES_PER_STACK + i).padStart(2, '0')}`;
      const changing = name === SERVICE;
      const update = changing ? `      update_config:\n        parallelism: ${PARALLELISM}\n` : '';
      return `  ${name}:\n    image: ${changing ? image : IMAGES.webV1}\n    deploy:\n      mode: global\n${update}`;
    });
    files[`s${String(s).padStart(2, '0')}/compose.yaml`] = `services:\n${services.join('')}`;
  }
  return files;
}

/** The length of the union of [startedAt, readyAt] intervals, ms: the time at least one new container was waiting for its health check. */
export function waitedMs(records: StartRecord[]): number {
  const spans = records
    .filter((r) => r.readyAt !== undefined)
    .map((r) => [r.startedAt, r.readyAt!] as const)
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  let start = -Infinity;
  for (const [s, e] of spans) {
    if (s > end) {
      total += end - start > 0 ? end - start : 0;
      start = s;
      end = e;
    } else end = Math.max(end, e);
  }
  return total + (end - start > 0 ? end - start : 0);
}

/**
 * Where berth's own time in a rollout goes, from the simulator's record of each new container's
 * start and health (the batches do not overlap: `size` starts each, in order): before the first
 * start (fetch, render, observe, plan, images, the old containers read), within each batch from its
 * first start to its last, between a batch's last healthy and the next batch's first start, and
 * after the last healthy (the old containers removed, the sync recorded); `lag`, in those two:
 * from each batch's last healthy until berth's inspects had seen all of it healthy.
 */
export function phasesOf(records: StartRecord[], pass: { began: number; ended: number }, size: number) {
  const sorted = [...records].sort((a, b) => a.startedAt - b.startedAt);
  const batches: StartRecord[][] = [];
  for (let i = 0; i < sorted.length; i += size) batches.push(sorted.slice(i, i + size));
  const ready = (b: StartRecord[]) => Math.max(...b.map((r) => r.readyAt ?? r.startedAt));
  const seen = (b: StartRecord[]) => Math.max(...b.map((r) => r.seenReadyAt ?? r.readyAt ?? r.startedAt));
  let gaps = 0;
  let spread = 0;
  let lag = 0;
  batches.forEach((b, i) => {
    spread += b.at(-1)!.startedAt - b[0]!.startedAt;
    lag += seen(b) - ready(b);
    if (i > 0) gaps += b[0]!.startedAt - ready(batches[i - 1]!);
  });
  return { lead: sorted[0]!.startedAt - pass.began, spread, gaps, lag, tail: pass.ended - ready(batches.at(-1)!) };
}

const hostNames = Array.from({ length: HOSTS }, (_, i) => `h${String(i + 1).padStart(3, '0')}`);

/** berth's config for the simulated fleet; returns its file. */
function writeBerthConfig(dir: string, sim: SimProcess, repo: { name: string; url: string }): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'berth.config.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      hosts: sim.endpoints.map((e) => ({ name: e.name, endpoint: `unix://${e.socketPath}` })),
      repos: [{ name: repo.name, url: repo.url, branch: 'main', poll: '1h' }],
      // the monitor, once started, checks the hosts at its start and then not during the bench
      hostCheck: { interval: '1h' },
      ...LIMITS,
    }),
  );
  return file;
}

/** What a worker says of one pass: its wall and CPU time, the stacks' outcomes, and the process's memory after it. */
interface PassReport {
  /** when it began and ended, ms since the epoch */
  began: number;
  ended: number;
  wallMs: number;
  cpuMs: number;
  stacks: Array<{ stack: string; status: string; replaced: number }>;
  errors: string[];
  /** VmHWM and VmRSS, KiB */
  hwm: number;
  rss: number;
}

type WorkerAsk = { type: 'pass'; trigger: 'manual' | 'poll' | 'webhook' } | { type: 'monitor' } | { type: 'follow' };

/**
 * berth in a child process of its own (this file, `--worker CONFIG`): the passes it is asked for,
 * each timed there, so that its CPU time and memory are berth's alone (the git server's HTTP front,
 * the bench's bookkeeping and the simulator run elsewhere).
 */
async function worker(configFile: string): Promise<void> {
  // BERTH_BENCH_LOG=LEVEL: berth's log on stderr (its timeline: where a pass's time goes)
  const engine = new Engine(loadConfig(configFile), pino({ level: process.env.BERTH_BENCH_LOG ?? 'silent' }, pino.destination(2)));
  const send = (m: unknown) => process.send!(m);
  process.on('message', (ask: WorkerAsk) => {
    void (async () => {
      if (ask.type === 'monitor') {
        engine.startMonitor();
        return send({});
      }
      if (ask.type === 'follow') {
        engine.watchDrift({ resyncMs: 3_600_000 }); // the hosts' events, as berth serve follows them (no full resync meanwhile)
        return send({});
      }
      const cpu0 = process.cpuUsage();
      const began = Date.now();
      const t0 = performance.now();
      const passes =
        ask.trigger === 'webhook'
          ? [await engine.syncRepo(engine.config.repos[0]!.name, { trigger: 'webhook' })]
          : await engine.syncAll({ trigger: ask.trigger });
      const wallMs = performance.now() - t0;
      const c = process.cpuUsage(cpu0);
      const status = readFileSync('/proc/self/status', 'utf8');
      const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      const report: PassReport = {
        began,
        ended: Date.now(),
        wallMs,
        cpuMs: (c.user + c.system) / 1000,
        stacks: passes.flatMap((p) =>
          p.stacks.map((st) => ({ stack: st.stack, status: st.status, replaced: st.plan?.actions.filter((a) => a.kind === 'replace').length ?? 0 })),
        ),
        errors: passErrors(passes),
        hwm: kib('VmHWM'),
        rss: kib('VmRSS'),
      };
      send(report);
    })().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
  process.on('disconnect', () => {
    engine.close();
    process.exit(0);
  });
  send({ ready: true });
}

/** Starts a worker on `configFile`; `ask` sends it one request and waits for its answer. */
async function startWorker(configFile: string) {
  // as bin/berth.js starts berth: its V8 heap flags (BERTH_NODE_FLAGS replaces them, as there) and glibc's malloc settings
  const flags = (process.env.BERTH_NODE_FLAGS ?? '--max-semi-space-size=1 --max-old-space-size=512').split(/\s+/).filter(Boolean);
  const child = fork(import.meta.filename, ['--worker', configFile], {
    execArgv: [
      ...flags,
      // BERTH_BENCH_PROFILE=DIR: each worker writes V8's CPU profile there (node --cpu-prof)
      ...(process.env.BERTH_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BERTH_BENCH_PROFILE}`] : []),
    ],
    env: { ...process.env, MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<unknown>((done, fail) => {
      const onExit = (code: number | null) => fail(new Error(`bench: berth's worker exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        done(m);
      });
    });
  await next();
  return {
    ask: async (a: WorkerAsk) => {
      const answer = next();
      child.send(a);
      return answer;
    },
    pass: async (trigger: 'manual' | 'poll' | 'webhook', what: string, want: (status: string) => boolean): Promise<PassReport> => {
      const answer = next();
      child.send({ type: 'pass', trigger } satisfies WorkerAsk);
      const r = (await answer) as PassReport;
      const bad = r.stacks.filter((st) => !want(st.status));
      if (bad.length || r.errors.length)
        throw new Error(`bench: ${what}: ${[...bad.map((st) => `${st.stack} ${st.status}`), ...r.errors].join(', ').slice(0, 2000)}`);
      return r;
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.disconnect();
      await exited;
    },
  };
}

/** Calls per host, summed over the hosts: `n METHOD /template` sorted, and the total. */
async function callsOf(sim: SimProcess): Promise<{ total: number; perCall: string; unknown: string[] }> {
  const calls = await sim.calls();
  const sum = new Map<string, number>();
  const unknown = new Set<string>();
  for (const h of Object.values(calls)) {
    for (const [k, v] of Object.entries(h.calls)) sum.set(k, (sum.get(k) ?? 0) + v);
    for (const k of Object.keys(h.unknown)) unknown.add(k);
  }
  const total = [...sum.values()].reduce((a, b) => a + b, 0);
  return { total, perCall: [...sum].map(([k, v]) => `${v} ${k}`).join(', '), unknown: [...unknown] };
}

const unchanged = (s: string) => s === 'unchanged';
const mb = (kib: number) => `${((kib * 1024) / 1e6).toFixed(0)} MB`;

/** (c) The peak RSS of `berth serve` managing the fleet's containers (bench/memory.ts serveRss), and the simulator's own. */
async function serveRows(dir: string, sim: SimProcess, repo: { name: string; url: string }): Promise<Row[]> {
  const usage = await sim.usage();
  const rss = await serveRss(
    join(dir, 'serve'),
    sim.endpoints.map((e) => e.socketPath),
    repo,
    CONTAINERS,
    [],
    { hostNames, targetMb: 250, config: LIMITS },
  );
  return [
    rss,
    {
      scenario: `the simulator itself, ${HOSTS} hosts, ${CONTAINERS} containers`,
      value: `${(usage.memory.rss / 1e6).toFixed(0)} MB`,
      against: `its RSS before berth serve; ${((usage.cpu.user + usage.cpu.system) / 1e6).toFixed(1)} CPU s until then`,
    },
  ];
}

/** How long the test daemon's health probe of the web image took (its `exec_start` to its `health_status` event: 50-80 ms). */
const REAL_PROBE_MS = 60;
const ROLLOUT = `one line changed (${SERVICE}'s image), rolled out on ${HOSTS} simulated hosts, parallelism ${PARALLELISM} (${Math.ceil(HOSTS / PARALLELISM)} batches, each gated on a 1 s health check)`;

interface RolloutRun {
  wallMs: number;
  cpuMs: number;
  hwm: number;
  /** the time the hosts made berth wait: the union of the new containers' start-to-healthy */
  waitedMs: number;
  lead: number;
  spread: number;
  gaps: number;
  lag: number;
  tail: number;
}

/** One rollout of the change just committed, by `roller`, checked and timed. */
async function rollout(roller: Awaited<ReturnType<typeof startWorker>>, sim: SimProcess): Promise<RolloutRun> {
  await sim.reset();
  const start = Date.now();
  const pass = await roller.pass('webhook', `the rollout of ${SERVICE}`, (s) => s === 'synced' || s === 'unchanged');
  const replaced = pass.stacks.find((st) => st.stack === STACK)?.replaced ?? 0;
  if (replaced !== HOSTS) throw new Error(`bench: the rollout replaced ${replaced} replicas, not ${HOSTS}`);
  const starts = Object.values(await sim.starts()).flat();
  const late = starts.filter((st) => st.startedAt < start || st.readyAt === undefined);
  if (starts.length !== HOSTS || late.length) throw new Error(`bench: the rollout started ${starts.length} containers (${late.length} not ready)`);
  return { wallMs: pass.wallMs, cpuMs: pass.cpuMs, hwm: pass.hwm, waitedMs: waitedMs(starts), ...phasesOf(starts, pass, PARALLELISM) };
}

/** The rows of a set of rollouts: medians. */
function rolloutRows(runs: RolloutRun[], probeMs: number): Row[] {
  const m = (f: (r: RolloutRun) => number) => median(runs.map(f));
  const walls = runs.map((r) => r.wallMs);
  const overhead = m((r) => r.wallMs - r.waitedMs);
  const share = overhead / m((r) => r.wallMs);
  const what = `${ROLLOUT}, health probes taking ${probeMs} ms`;
  return [
    { scenario: `${what}: wall`, value: ms(m((r) => r.wallMs)), against: `min ${ms(Math.min(...walls))}, max ${ms(Math.max(...walls))}` },
    { scenario: `${what}: berth's CPU time`, value: ms(m((r) => r.cpuMs)), against: `${(m((r) => r.cpuMs) / m((r) => r.wallMs)).toFixed(2)} CPU s per wall s` },
    {
      scenario: `${what}: berth's own overhead`,
      value: `${ms(overhead)} (${(share * 100).toFixed(1)}% of the wall)`,
      against:
        `the wall less the time the hosts made it wait: ${ms(m((r) => r.waitedMs))}, the union of each new container's start-to-healthy; ` +
        `berth's share: ${ms(m((r) => r.lead))} from the pass's start to the first new container's, ${ms(m((r) => r.spread))} from each batch's first start to its last, ` +
        `${ms(m((r) => r.gaps))} from each batch's last healthy to the next batch's first start (and in the tail, ${ms(m((r) => r.lag))} in all until berth's inspects saw each batch healthy), ${ms(m((r) => r.tail))} from the last healthy to the pass's end (medians; summed over the batches)`,
      target: 'under 10% of the wall',
      met: share < 0.1,
    },
  ];
}

/** The parts of the scenario; a run can take some only (`node bench/fleet.ts 3 rollout`); the cold deploy always runs. */
export type Part = 'noop' | 'rollout' | 'serve';
const PARTS: Part[] = ['noop', 'rollout', 'serve'];

export async function fleet(runs = 3, parts: Part[] = PARTS): Promise<Row[]> {
  // short: a unix socket's path is limited to 107 bytes
  const dir = mkdtempSync(join(tmpdir(), 'bfl-'));
  const git = await startGitServer();
  const sim = await spawnSimFleet(dir, HOSTS);
  const rows: Row[] = [];
  const workers: Array<Awaited<ReturnType<typeof startWorker>>> = [];
  try {
    if (sim.endpoints.map((e) => e.name).join() !== hostNames.join()) throw new Error('bench: the simulator named its hosts otherwise');
    const repo = await git.createRepo('fleet');
    let image: string = IMAGES.webV1;
    await repo.commit(repoFiles(image));
    const configFile = writeBerthConfig(join(dir, 'berth'), sim, repo);

    // the cold deploy: berth's first pass creates the 5,000 containers
    const first = await startWorker(configFile);
    workers.push(first);
    const cold = await first.pass('manual', 'the cold deploy', (s) => s === 'synced');
    console.error(`bench: ${label} deployed in ${(cold.wallMs / 1000).toFixed(1)} s`);
    rows.push({
      scenario: `cold deploy, ${label}: berth's first pass, every container running`,
      value: ms(cold.wallMs),
      against: `${ms(cold.cpuMs)} CPU; peak RSS ${mb(cold.hwm)}`,
    });
    await first.pass('poll', 'the warm-up pass', unchanged); // as bench/noop.ts

    // (a) the no-op pass
    for (const style of parts.includes('noop') ? (['CLI-style', 'monitor', 'serve'] as const) : []) {
      if (style === 'monitor') {
        await first.ask({ type: 'monitor' });
        await first.pass('poll', 'the first pass with the monitor', unchanged);
      }
      if (style === 'serve') {
        await first.ask({ type: 'follow' });
        // its containers listed whole once more, the hosts' event streams being up: then taken as the events keep them
        await first.pass('poll', 'the first pass with the events followed', unchanged);
      }
      const wall: number[] = [];
      const cpu: number[] = [];
      const simCpu0 = (await sim.usage()).cpu;
      for (let r = 0; r < NOOP_PASSES; r++) {
        const pass = await first.pass('poll', `a no-op pass of ${label}`, unchanged);
        wall.push(pass.wallMs);
        cpu.push(pass.cpuMs);
      }
      const simCpu1 = (await sim.usage()).cpu;
      const simCpuMs = (simCpu1.user + simCpu1.system - simCpu0.user - simCpu0.system) / 1000 / NOOP_PASSES;
      const counted: number[] = [];
      let breakdown = '';
      for (let r = 0; r < 3; r++) {
        await sim.reset();
        await first.pass('poll', `a no-op pass of ${label}`, unchanged);
        const c = await callsOf(sim);
        if (c.unknown.length) throw new Error(`bench: berth called what the simulator lacks: ${c.unknown.join(', ')}`);
        counted.push(c.total);
        breakdown = c.perCall;
      }
      const what = `no-op pass (${
        style === 'serve'
          ? 'as under berth serve: the monitor checks the hosts on its timer, their events followed'
          : style === 'monitor'
            ? 'the monitor checks the hosts on its timer, their events not followed'
            : 'CLI-style, hosts checked first'
      }), ${label}`;
      const perHost = median(counted) / HOSTS;
      rows.push(
        {
          scenario: `${what}: wall`,
          value: ms(median(wall)),
          against: `min ${ms(Math.min(...wall))}, max ${ms(Math.max(...wall))}`,
          target: style === 'CLI-style' ? undefined : 'under 1 s',
          met: median(wall) < 1000,
        },
        {
          scenario: `${what}: CPU time`,
          value: ms(median(cpu)),
          against: `berth's process; ${(median(cpu) / median(wall)).toFixed(2)} CPU s per wall s; the simulator's ${ms(simCpuMs)} a pass (mean)`,
        },
        {
          scenario: `${what}: Docker calls`,
          value: `${median(counted)} (${perHost} per host)`,
          against: breakdown,
          target: 'O(hosts), not O(containers): at most 6 per host',
          met: perHost <= 6,
        },
      );
    }
    await first.close();

    // (b) the one-line change, rolled out on the 200 hosts, by a fresh berth process (its peak RSS is the rollouts'):
    // with probes that take no time (the simulator's default), then as long as the test daemon's took
    if (parts.includes('rollout')) {
      const roller = await startWorker(configFile);
      workers.push(roller);
      await roller.ask({ type: 'monitor' }); // as under berth serve: the passes do not check the hosts
      await roller.ask({ type: 'follow' }); // and the hosts' events are followed: a readiness wait wakes on a health_status event
      const warm = await roller.pass('poll', 'the warm-up pass', unchanged);
      let hwm = 0;
      for (const probeMs of [0, REAL_PROBE_MS]) {
        await sim.probeMs(probeMs);
        const runsOf: RolloutRun[] = [];
        for (let r = 0; r < runs; r++) {
          image = image === IMAGES.webV1 ? IMAGES.webV2 : IMAGES.webV1;
          await repo.commit(repoFiles(image), { message: `${SERVICE}: ${image}` });
          const run = await rollout(roller, sim);
          runsOf.push(run);
          hwm = run.hwm;
          console.error(
            `bench: rollout ${r + 1} (probes of ${probeMs} ms): ${ms(run.wallMs)} wall, ${ms(run.waitedMs)} waiting for health, ${ms(run.wallMs - run.waitedMs)} berth's own: ` +
              `${ms(run.lead)} before the first start, ${ms(run.spread)} starting each batch's 20 and ${ms(run.gaps)} between batches in all (${ms(run.lag)} until berth saw each batch healthy), ${ms(run.tail)} after the last was healthy`,
          );
        }
        rows.push(...rolloutRows(runsOf, probeMs));
      }
      await sim.probeMs(0);
      await roller.close();
      rows.push({
        scenario: `${ROLLOUT}: berth's peak RSS`,
        value: mb(hwm),
        against: `VmHWM of a berth process that made one no-op pass (${mb(warm.hwm)} after it) and the ${2 * runs} rollouts`,
      });
    }

    return rows.concat(parts.includes('serve') ? await serveRows(dir, sim, repo) : []);
  } finally {
    for (const w of workers) await w.close();
    await sim.close();
    await git.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main && process.argv[2] === '--worker') await worker(process.argv[3]!);
else if (import.meta.main) {
  const { printTable } = await import('./lib.ts');
  const parts = process.argv[3]?.split(',') as Part[] | undefined;
  printTable('berth bench: a fleet of 200 simulated hosts', await fleet(Number(process.argv[2] ?? 3), parts));
}
