// Proves the Docker test harness: the private daemon, its addresses and the test images.
import Dockerode from 'dockerode';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';

const docker = testDocker();
const { socketPath, address, tcpPort } = inject('docker');
const labels = { 'berth-test.suite': uniqueName('harness') };

afterAll(() => removeContainers(docker, labels));

/** Runs a web image with port 80 published on a random port; returns the container and its URL. */
async function runWeb(image: string) {
  const container = await docker.createContainer({
    name: uniqueName('harness-web'),
    Image: image,
    Labels: labels,
    HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '' }] } },
  });
  await container.start();
  const port = (await container.inspect()).NetworkSettings.Ports['80/tcp']?.[0]?.HostPort;
  expect(port).toMatch(/^\d+$/);
  return { container, url: `http://${address}:${port}/` };
}

async function body(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.text();
}

const health = async (c: Dockerode.Container) => (await c.inspect()).State.Health?.Status;

/** Stops with a short timeout and checks the container exited 0 (its TERM trap ran, no SIGKILL). */
async function expectCleanStop(container: Dockerode.Container) {
  await container.stop({ t: 2 });
  const { State } = await container.inspect();
  expect(State.Running).toBe(false);
  expect(State.ExitCode).toBe(0);
}

describe('test daemon', () => {
  test('answers on its unix socket and over TCP at its address, and both are the same daemon', async () => {
    expect(socketPath).toMatch(/^\/var\/tmp\/berth-test\//);
    const overTcp = new Dockerode({ host: address, port: tcpPort });
    const [viaSocket, viaTcp] = await Promise.all([docker.info(), overTcp.info()]);
    expect(viaTcp.ID).toBe(viaSocket.ID);
    expect(viaSocket.DockerRootDir).toMatch(/^\/var\/tmp\/berth-test\//);
  });

  test('has the test images', async () => {
    for (const image of Object.values(IMAGES)) {
      expect((await docker.getImage(image).inspect()).RepoTags).toContain(image);
    }
  });
});

describe('test images', () => {
  test.each([
    [IMAGES.webV1, 'v1'],
    [IMAGES.webV2, 'v2'],
  ])('%s serves %s on a published port, becomes healthy and stops cleanly', async (image, expected) => {
    const { container, url } = await runWeb(image);
    expect(await waitFor(() => body(url), { what: `${image} to answer at ${url}` })).toBe(expected);
    await waitFor(async () => (await health(container)) === 'healthy', { what: `${image} to become healthy` });
    await expectCleanStop(container);
  });

  test(`${IMAGES.webUnhealthy} serves but becomes unhealthy, and stops cleanly`, async () => {
    const { container, url } = await runWeb(IMAGES.webUnhealthy);
    expect(await waitFor(() => body(url), { what: `${IMAGES.webUnhealthy} to answer at ${url}` })).toBe('unhealthy');
    await waitFor(async () => (await health(container)) === 'unhealthy', { what: `${IMAGES.webUnhealthy} to become unhealthy` });
    await expectCleanStop(container);
  });
});
