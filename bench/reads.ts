/**
 * Readers: `readers` clients each polling `GET /api/v1/stacks` once a second against a berth that
 * follows its hosts' events (as `berth serve` does), for `seconds`; then as long with no reader.
 * Measured: the Docker API calls the engine makes in each window (through the counting proxies in
 * front of the daemons), the reads' latency (p50, p99) and this process's CPU per wall second
 * (the engine and its HTTP server run here). Reads are answered from what berth last saw of the
 * hosts (docs/how-it-works.md, "Reads"): the calls with readers should be the calls without.
 *
 * Called by bench/noop.ts on the repo it has seeded (the engine whose hosts are the proxies).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Engine } from '../src/engine/engine.ts';
import { buildServer } from '../src/server/server.ts';
import type { countingProxy } from '../test/harness/proxy.ts';
import { ms, type Row } from './lib.ts';

type Proxy = Awaited<ReturnType<typeof countingProxy>>;

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

export async function readersBench(engine: Engine, proxies: Proxy[], label: string, { readers = 10, seconds = 20 } = {}): Promise<Row[]> {
  const stopWatching = engine.watchDrift({ resyncMs: 3_600_000 });
  const app = buildServer({ ready: () => true, engine }, pino({ level: 'silent' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1/stacks`;
  try {
    const first = await fetch(url); // the first read works the states out; the windows read them
    if (first.status !== 200) throw new Error(`bench: GET /api/v1/stacks answered ${first.status}`);
    await first.arrayBuffer();
    const window = async (n: number) => {
      proxies.forEach((p) => p.reset());
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      const latencies: number[] = [];
      let bytes = 0;
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await sleep((i * 1000) / n); // spread over the second
          while (performance.now() < end) {
            const s = performance.now();
            const res = await fetch(url);
            bytes = (await res.arrayBuffer()).byteLength;
            if (res.status !== 200) throw new Error(`bench: GET /api/v1/stacks answered ${res.status}`);
            latencies.push(performance.now() - s);
            await sleep(Math.max(0, 1000 - (performance.now() - s)));
          }
        }),
      );
      if (n === 0) await sleep(seconds * 1000);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(cpu0);
      const calls = proxies.reduce((a, p) => a + p.total(), 0);
      return { perMinute: (calls * 60_000) / wall, cpu: (c.user + c.system) / 1000 / wall, latencies, bytes };
    };
    const idle = await window(0);
    const busy = await window(readers);
    const what = `${readers} readers polling GET /api/v1/stacks every second, ${label}`;
    return [
      {
        scenario: `${what}: Docker API calls a minute`,
        value: busy.perMinute.toFixed(1),
        against: `${idle.perMinute.toFixed(1)} with no reader`,
        target: 'the same as with no reader',
        met: busy.perMinute <= idle.perMinute,
      },
      {
        scenario: `${what}: read latency p99`,
        value: ms(quantile(busy.latencies, 0.99)),
        against: `p50 ${ms(quantile(busy.latencies, 0.5))}, ${busy.latencies.length} reads of ${Math.round(busy.bytes / 1024)} KiB`,
        target: 'under 20 ms',
        met: quantile(busy.latencies, 0.99) < 20,
      },
      { scenario: `${what}: CPU`, value: `${busy.cpu.toFixed(3)} CPU s per wall s`, against: `${idle.cpu.toFixed(3)} with no reader` },
    ];
  } finally {
    stopWatching();
    await app.close();
  }
}
