/**
 * `npm run bench`: the reaction times (bench/react.ts, its own table), then cold deploy, no-op
 * resync and memory, ending with one table of berth against each peer and which target is met.
 * Every scenario starts and stops its own daemons. Run as root.
 */
import { execFileSync } from 'node:child_process';
import { cold } from './cold.ts';
import { printTable, type Row } from './lib.ts';
import { memory } from './memory.ts';
import { noop } from './noop.ts';

execFileSync(process.execPath, [new URL('./react.ts', import.meta.url).pathname], { stdio: 'inherit' });
const rows: Row[] = [...(await cold(3)), ...(await noop(10)), ...memory()];
printTable(`berth bench: cold deploy (median of 3 runs), no-op resync (median of 10), memory; ${new Date().toISOString().slice(0, 10)}`, rows);
const missed = rows.filter((r) => r.target && !r.met);
console.log(missed.length ? `\n${missed.length} target(s) missed: see docs/benchmarks.md for why.` : '\nEvery target met.');
