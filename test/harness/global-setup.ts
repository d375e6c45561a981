// vitest globalSetup: three private Docker daemons with the test images, shared by all test files.
import Dockerode from 'dockerode';
import type { TestProject } from 'vitest/node';
import { cleanupLeftovers, startDaemon, type TestDaemon, type TestDockerInfo } from './daemon.ts';
import { buildTestImages } from './images.ts';
import { build } from '../../scripts/build.ts';

/** How many daemons the tests share (`inject('dockers')`), so that tests can use several hosts. */
const DAEMONS = 3;

declare module 'vitest' {
  export interface ProvidedContext {
    /** The first shared test daemon; read it with `inject('docker')` (or `testDocker()` from ./docker.ts). */
    docker: TestDockerInfo;
    /** All the shared test daemons, in order (the first is `docker`); each has the test images. */
    dockers: TestDockerInfo[];
  }
}

/** Stops every daemon, even when stopping one of them fails; then reports the failures. */
async function stopAll(daemons: TestDaemon[]): Promise<void> {
  const results = await Promise.allSettled(daemons.map((d) => d.stop()));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${daemons[i].name}: ${(r.reason as Error).message}`] : []));
  if (failed.length > 0) throw new Error(`Could not stop ${failed.length} test daemon(s):\n${failed.join('\n')}`);
}

/** Starts the shared daemons in parallel and builds the images on each; the returned teardown removes it all again. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await cleanupLeftovers();
  // berth's bundle, which the tests that start bin/berth.js run (it would otherwise be made by the
  // first of them, and by each that starts before the first is done)
  await build();
  const started = await Promise.allSettled(Array.from({ length: DAEMONS }, () => startDaemon({ startTimeoutMs: 180_000 })));
  const daemons = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    await Promise.all(daemons.map((d) => buildTestImages(new Dockerode(d.dockerOptions))));
  } catch (err) {
    await stopAll(daemons).catch(() => undefined); // the start or build error is the one worth seeing
    throw err;
  }
  const infos = daemons.map(({ socketPath, address, tcpPort }): TestDockerInfo => ({ socketPath, address, tcpPort }));
  project.provide('docker', infos[0]);
  project.provide('dockers', infos);
  return () => stopAll(daemons);
}
