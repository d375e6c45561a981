// Following a host's Docker events: berth's containers only, and nothing lost when the stream drops.
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { expect, inject, it } from 'vitest';
import { watchEvents, watchObjects, type ContainerEvent } from '../src/observe/events.ts';
import { removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { proxyTo } from './harness/proxy.ts';

it("delivers managed containers' events, and after the stream drops, subscribes again without losing any", async () => {
  const socketPath = inject('docker').socketPath;
  const direct = new Dockerode({ socketPath });
  const proxy = await proxyTo(socketPath);
  const stack = uniqueName('ev').replaceAll('-', '');
  const seen: ContainerEvent[] = [];
  // The daemon is shared with other test files: keep only this test's containers' events.
  const stop = watchEvents('p', new Dockerode({ host: '127.0.0.1', port: proxy.port }), (e) => e.stack === stack && seen.push(e), pino({ level: 'silent' }));
  const labels = { 'berth.managed': 'true', 'berth.repo': 'evrepo', 'berth.stack': stack };
  try {
    const managed = await direct.createContainer({ Image: IMAGES.webV1, name: `${stack}-a`, Labels: labels });
    const unmanaged = await direct.createContainer({ Image: IMAGES.webV1, name: `${stack}-b`, Labels: { 'berth.stack': stack } });
    await managed.start();
    await unmanaged.start();
    await waitFor(() => seen.some((e) => e.id === managed.id && e.action === 'start'), { what: 'the start event' });
    expect(seen[0]).toMatchObject({ host: 'p', repo: 'evrepo', stack, action: 'create', id: managed.id });

    // The stream drops; meanwhile the container is stopped. Once the host answers again the watcher
    // subscribes again, from the last event it saw, and the stop arrives.
    await proxy.stop();
    await managed.stop({ t: 1 });
    await proxy.resume();
    await waitFor(() => seen.some((e) => e.id === managed.id && e.action === 'stop'), { what: 'the stop event after the drop', timeoutMs: 30_000 });
    const actions = seen.filter((e) => e.id === managed.id).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['create', 'start', 'kill', 'die', 'stop']));
    expect(seen.some((e) => e.id === unmanaged.id)).toBe(false);
    expect(seen.every((e) => e.repo === 'evrepo')).toBe(true);
  } finally {
    stop();
    await proxy.stop();
    await removeContainers(direct, { 'berth.stack': stack });
  }
});

it("tells of networks and volumes made and removed (Docker's events of them carry no labels), and when its stream is up", async () => {
  const socketPath = inject('docker').socketPath;
  const direct = new Dockerode({ socketPath });
  const proxy = await proxyTo(socketPath);
  const name = uniqueName('evnet');
  const states: boolean[] = [];
  let changes = 0;
  const stop = watchObjects(
    'p',
    new Dockerode({ host: '127.0.0.1', port: proxy.port }),
    () => changes++,
    pino({ level: 'silent' }),
    (up) => states.push(up),
  );
  try {
    await waitFor(() => states.at(-1) === true, { what: 'the stream to be up' });
    const before = changes;
    const network = await direct.createNetwork({ Name: name });
    await waitFor(() => changes > before, { what: 'the network create event' });
    const created = changes;
    await direct.createVolume({ Name: name });
    await waitFor(() => changes > created, { what: 'the volume create event' });
    const made = changes;
    await network.remove();
    await direct.getVolume(name).remove();
    await waitFor(() => changes >= made + 2, { what: 'the destroy events' });
    // the stream drops: said at once, and said again once it is up
    await proxy.stop();
    await waitFor(() => states.at(-1) === false, { what: 'the stream to be down' });
    await proxy.resume();
    await waitFor(() => states.at(-1) === true, { what: 'the stream to be up again', timeoutMs: 30_000 });
  } finally {
    stop();
    await proxy.stop();
    await direct
      .getNetwork(name)
      .remove()
      .catch(() => undefined);
    await direct
      .getVolume(name)
      .remove()
      .catch(() => undefined);
  }
});
