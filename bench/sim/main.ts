/**
 * The simulated fleet as a process of its own, so that a bench measures berth's CPU time and memory
 * without the simulator's: `node bench/sim/main.ts DIR HOSTS [CPUS] [MEMORY_GIB]`. Prints one JSON
 * line once every socket listens (`{"ready":true,"endpoints":[...]}`); SIGTERM stops it.
 */
import { startSimFleet } from './server.ts';

const [dir, hosts = '1', cpus = '4', memoryGib = '8'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node bench/sim/main.ts DIR HOSTS [CPUS] [MEMORY_GIB]');
  process.exit(2);
}
const fleet = await startSimFleet({ dir, hosts: Number(hosts), cpus: Number(cpus), memoryBytes: Number(memoryGib) * 2 ** 30, control: true });
const stop = () => {
  void fleet.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.write(`${JSON.stringify({ ready: true, endpoints: fleet.endpoints })}\n`);
