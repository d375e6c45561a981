/**
 * `npm run bench`: every scenario (bench/README.md), one after another, each starting and stopping
 * its own daemons (the fleet of 200 hosts: its simulator), then one table of berth against each
 * peer with the figures, the ratios and which target is met. The 1,000-container no-op resync and
 * the peak RSS with them take the bench from about 21 to 29 min on 2 cores (creating the
 * containers): only with BERTH_BENCH_LARGE=1; with 100 containers otherwise. Run as root.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { change } from './change.ts';
import { cluster } from './cluster.ts';
import { cold } from './cold.ts';
import { fleet } from './fleet.ts';
import { printTable, type Row } from './lib.ts';
import { memory } from './memory.ts';
import { noop } from './noop.ts';
import { react } from './react.ts';
import { rolling } from './rolling.ts';

/** How many runs each scenario's medians are taken over. */
const RUNS = { react: 7, cold: 3, change: 5, noop: 10, rolling: 3, cluster: 3, fleet: 3 };

const t0 = performance.now();
const load = loadavg()[0].toFixed(1);
const rows: Row[] = [];
const scenarios: Array<[string, () => Promise<Row[]>]> = [
  ['reaction times', () => react(RUNS.react)],
  ['cold deploy', () => cold(RUNS.cold)],
  ['one change', () => change(RUNS.change)],
  ['rolling update', () => rolling(RUNS.rolling)],
  ['two engines on PostgreSQL', () => cluster(RUNS.cluster)],
  // no Docker daemon: 200 simulated hosts in one process (bench/sim/)
  ['a fleet of 200 simulated hosts', () => fleet(RUNS.fleet)],
  // last: creating and removing 1,000 containers leaves the machine busy for minutes after
  ['no-op resync', () => noop(RUNS.noop)],
  ['memory', async () => memory()],
];
// A scenario that fails is a row of the table (and the others still run); each prints its rows when done.
for (const [name, run] of scenarios) {
  const started = performance.now();
  const got = await run().catch((err: unknown): Row[] => {
    console.error(err);
    return [{ scenario: name, value: 'failed', against: String((err as Error).message ?? err).split('\n')[0], target: 'the scenario runs', met: false }];
  });
  rows.push(...got);
  printTable(`${name} (${((performance.now() - started) / 1000).toFixed(0)} s)`, got);
}

const dockerd = execFileSync('dockerd', ['--version'], { encoding: 'utf8' }).trim();
console.log(
  `\nberth bench, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${dockerd}, Node ${process.versions.node}; load average ${load} at the start; ${((performance.now() - t0) / 60_000).toFixed(0)} min in all`,
);
console.log(
  `medians over: reaction times ${RUNS.react} runs, cold deploy ${RUNS.cold}, one change ${RUNS.change}, no-op resync ${RUNS.noop} (API calls 3), rolling update ${RUNS.rolling}, two engines ${RUNS.cluster}, the fleet's no-op pass 10 and its rollout ${RUNS.fleet} of each probe time; the peak RSS and the database size once`,
);
printTable('berth against its peers', rows);
const missed = rows.filter((r) => r.target && !r.met);
console.log(missed.length ? `\n${missed.length} target(s) missed: see docs/benchmarks.md for why.` : '\nEvery target met.');
