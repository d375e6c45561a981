// vitest globalSetup: three private Docker daemons with the test images, and a private registry
// with two of those images pushed to it, shared by all test files.
import Dockerode from 'dockerode';
import type { TestProject } from 'vitest/node';
import { cleanupLeftovers, startDaemon, type TestDaemon, type TestDockerInfo } from './daemon.ts';
import { buildTestImages, IMAGES } from './images.ts';
import { startPostgres, type TestPostgres, type TestPostgresInfo } from './postgres.ts';
import { pushImage, registryInfo, startRegistry, type PushedImage, type TestRegistry, type TestRegistryInfo } from './registry.ts';
import { build } from '../../scripts/build.ts';

/** How many daemons the tests share (`inject('dockers')`), so that tests can use several hosts. */
const DAEMONS = 3;

/** The shared registry and what the global setup pushed to it. */
export interface SharedRegistry extends TestRegistryInfo {
  /** `<host>/private/web:1` (IMAGES.webV1) and `<host>/private/web:2` (IMAGES.webV2); no daemon has pulled them. */
  images: { web1: PushedImage; web2: PushedImage };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The first shared test daemon; read it with `inject('docker')` (or `testDocker()` from ./docker.ts). */
    docker: TestDockerInfo;
    /** All the shared test daemons, in order (the first is `docker`); each has the test images. */
    dockers: TestDockerInfo[];
    /** The shared private registry (HTTPS that every daemon trusts, basic auth); read it with `inject('registry')`. */
    registry: SharedRegistry;
    /** The shared PostgreSQL server (password logins); each test file makes databases of its own on it (createDatabase() in ./postgres.ts). */
    postgres: TestPostgresInfo;
  }
}

/** Stops every daemon and the registry, even when stopping one of them fails; then reports the failures. */
async function stopAll(daemons: TestDaemon[], registry: TestRegistry | undefined, postgres?: TestPostgres): Promise<void> {
  const parts = [
    ...daemons.map((d) => ({ name: d.name, stop: d.stop })),
    ...(registry ? [{ name: `registry ${registry.host}`, stop: registry.stop }] : []),
    ...(postgres ? [{ name: `postgres on port ${postgres.port}`, stop: postgres.stop }] : []),
  ];
  const results = await Promise.allSettled(parts.map((p) => p.stop()));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${parts[i].name}: ${(r.reason as Error).message}`] : []));
  if (failed.length > 0) throw new Error(`Could not stop ${failed.length} test daemon(s) or registry:\n${failed.join('\n')}`);
}

/** Starts the shared daemons and the registry in parallel and builds the images on each; the returned teardown removes it all again. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await cleanupLeftovers();
  // The registry needs neither berth's bundle nor a daemon: it starts while they are made.
  const registryStarted = startRegistry().then(
    (registry) => ({ registry, error: undefined }),
    (error: unknown) => ({ registry: undefined, error }),
  );
  const postgresStarted = startPostgres().then(
    (postgres) => ({ postgres, error: undefined }),
    (error: unknown) => ({ postgres: undefined, error }),
  );
  // berth's bundle, which the tests that start bin/berth.js run (it would otherwise be made by the
  // first of them, and by each that starts before the first is done)
  const built = await build().then(
    () => undefined,
    (error: unknown) => error,
  );
  const started = built ? [] : await Promise.allSettled(Array.from({ length: DAEMONS }, () => startDaemon({ startTimeoutMs: 180_000 })));
  const daemons = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const { registry, error: registryError } = await registryStarted;
  const { postgres, error: postgresError } = await postgresStarted;
  let images: SharedRegistry['images'];
  try {
    if (built) throw built;
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (!registry) throw registryError;
    if (!postgres) throw postgresError;
    // The first daemon pushes as soon as it has the images, while the others still build theirs.
    const [pushed] = await Promise.all([
      buildTestImages(new Dockerode(daemons[0].dockerOptions)).then(() =>
        Promise.all([pushImage(registry, daemons[0], IMAGES.webV1, 'private/web:1'), pushImage(registry, daemons[0], IMAGES.webV2, 'private/web:2')]),
      ),
      ...daemons.slice(1).map((d) => buildTestImages(new Dockerode(d.dockerOptions))),
    ]);
    images = { web1: pushed[0], web2: pushed[1] };
  } catch (err) {
    await stopAll(daemons, registry, postgres).catch(() => undefined); // the start or build error is the one worth seeing
    throw err;
  }
  const infos = daemons.map(({ socketPath, address, tcpPort }): TestDockerInfo => ({ socketPath, address, tcpPort }));
  project.provide('docker', infos[0]);
  project.provide('dockers', infos);
  project.provide('registry', { ...registryInfo(registry), images });
  const { stop: _stop, ...postgresInfo } = postgres!;
  project.provide('postgres', postgresInfo);
  return () => stopAll(daemons, registry, postgres);
}
