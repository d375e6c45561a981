// vitest globalSetup: one private Docker daemon with the test images, shared by all test files.
import Dockerode from 'dockerode';
import type { TestProject } from 'vitest/node';
import { cleanupLeftovers, startDaemon, type TestDockerInfo } from './daemon.ts';
import { buildTestImages } from './images.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared test daemon; read it with `inject('docker')` (or `testDocker()` from ./docker.ts). */
    docker: TestDockerInfo;
  }
}

/** Starts the shared daemon and builds the images; the returned teardown removes it all again. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await cleanupLeftovers();
  const daemon = await startDaemon({ startTimeoutMs: 180_000 });
  try {
    await buildTestImages(new Dockerode(daemon.dockerOptions));
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  project.provide('docker', { socketPath: daemon.socketPath, address: daemon.address, tcpPort: daemon.tcpPort });
  return () => daemon.stop();
}
