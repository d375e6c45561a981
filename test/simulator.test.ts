// The Docker simulator (bench/sim/) against a real daemon: the same berth scenario runs on the
// shared test daemon and on one simulated host, side by side, and at every step berth must plan
// the same, make the same changes (the mutating Docker calls, per object, in order) and leave the
// same containers, networks and volumes. What the simulator is trusted for in bench/fleet.ts is
// what this test holds it to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callTemplate, isMutating } from '../bench/sim/calls.ts';
import { commandExit, healthFails, humanDuration } from '../bench/sim/host.ts';
import { startSimFleet, type SimFleet } from '../bench/sim/server.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { RepoPass } from '../src/engine/outcome.ts';
import { auditRows, testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';
import { recordingProxy, type RecordedCall } from './harness/proxy.ts';

/** One side of the comparison: berth on a host (the real daemon, or the simulated one) behind a recording front. */
interface Side {
  what: string;
  docker: Dockerode;
  front: Awaited<ReturnType<typeof recordingProxy>>;
  engine: Engine;
  stopDrift: () => void;
  /** each container's label by id, for the calls of later steps */
  labels: Map<string, string>;
  cleanup: () => void;
}

let server: GitServer;
let sim: SimFleet;
let dir: string;
let repo: RemoteRepo;
let stack: string;
const sides: Side[] = [];

beforeAll(async () => {
  server = await startGitServer();
  dir = mkdtempSync(join(tmpdir(), 'berth-sim-'));
  sim = await startSimFleet({ dir, hosts: ['h1'] });
  stack = uniqueName('sim').replaceAll('-', '');
  repo = await server.createRepo(uniqueName('simrepo'));
  const hosts = [
    { what: 'real daemon', socket: inject('docker').socketPath },
    { what: 'simulator', socket: sim.endpoints[0]!.socketPath },
  ];
  for (const [i, h] of hosts.entries()) {
    const front = await recordingProxy(h.socket, join(dir, `front${i}.sock`));
    const cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts: [{ name: 'h1', endpoint: `unix://${front.socketPath}` }] });
    const engine = testEngine(cfg.file);
    // the hosts' events are followed as under berth serve: the drift step needs them
    const stopDrift = engine.watchDrift({ resyncMs: 3_600_000 });
    sides.push({ what: h.what, docker: new Dockerode({ socketPath: h.socket }), front, engine, stopDrift, labels: new Map(), cleanup: cfg.cleanup });
  }
});

afterAll(async () => {
  for (const s of sides) {
    s.stopDrift();
    s.engine.close();
    await s.front.close();
    s.cleanup();
  }
  if (sides[0]) await removeContainers(sides[0].docker, { 'berth.stack': stack });
  if (sides[0])
    for (const n of await sides[0].docker.listNetworks({ filters: { label: [`berth.stack=${stack}`] } })) await sides[0].docker.getNetwork(n.Id).remove();
  if (sides[0])
    for (const v of (await sides[0].docker.listVolumes({ filters: { label: [`berth.stack=${stack}`] } })).Volumes ?? [])
      await sides[0].docker.getVolume(v.Name).remove();
  await sim?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The stack: `web` (2 replicas, health-checked, start-first), `worker` (stop-first), a network and a volume. */
function compose(image: string, tier: string, worker: boolean, broken = false): string {
  // broken: the image's own health check (IMAGES.webUnhealthy's fails) and a rollback when it does
  const health = broken ? '' : `    healthcheck:\n      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]\n      interval: 1s\n`;
  return `services:
  web:
    image: ${image}
    labels: { tier: ${tier} }
    deploy:
      replicas: 2
      update_config: { order: start-first, failure_action: ${broken ? 'rollback' : 'pause'} }
${health}    networks: [front]
    volumes: [data:/data]
${
  worker
    ? `  worker:
    image: ${IMAGES.webV1}
    labels: { tier: ${tier} }
    healthcheck: { disable: true }
    networks: [front]
`
    : ''
}networks:
  front: {}
volumes:
  data: {}
`;
}

/** A name without the stack (and an aside container's id): the same object on both hosts has the same one. */
const plain = (name: string) =>
  name
    .replace(/^\//, '')
    .replaceAll(stack, 'S')
    .replace(/-old-[0-9a-f]{12}$/, '-old');

/** Ids, hashes of containers and times out of a text. */
const noIds = (text: string) =>
  text
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id>')
    .replace(/\d+(\.\d+)? ?(ms|s)\b/g, '<time>');

/** berth's plan of a pass, without what differs between hosts by nature (container ids, times). */
function planOf(pass: RepoPass) {
  expect(pass.error).toBeUndefined();
  return pass.stacks.map((s) => ({
    stack: plain(s.stack),
    status: s.status,
    errors: s.errors?.map(noIds),
    diff: s.diff && noIds(s.diff.replaceAll(stack, 'S')),
    networks: s.plan?.networks.map((n) => `${n.host} ${plain(n.spec.name)}`),
    volumes: s.plan?.volumes.map((v) => `${v.host} ${plain(v.spec.name)}`),
    removeNetworks: s.plan?.removeNetworks.map((n) => `${n.host} ${plain(n.name)}`),
    actions: s.plan?.actions.map((a) => ({
      kind: a.kind,
      where: `${a.service}#${a.slot}@${a.host}`,
      reason: 'reason' in a ? a.reason : undefined,
      spec: 'desired' in a ? a.desired.specHash : undefined,
      live: 'live' in a ? { spec: a.live.specHash, state: a.live.state, health: a.live.health, name: plain(a.live.name) } : undefined,
    })),
  }));
}

/**
 * The audit rows of the stack from the `from`-th on (kinds and messages, ids out), per replica they
 * name (`web#1`), else per service, else the stack's own: berth works on replicas concurrently, so
 * only the order of each one's rows is the same from run to run.
 */
function auditOf(side: Side, from: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of auditRows(side.engine, stack).slice(from)) {
    const message = noIds(r.message ?? '').replaceAll(stack, 'S');
    const key = /\b\w+#\d+\b/.exec(message)?.[0] ?? r.service ?? 'stack';
    (out[key] ??= []).push(`${r.kind} ${r.service ?? ''}@${r.host ?? ''} ${r.outcome}: ${message}`);
  }
  return out;
}

/**
 * berth's changes on a host, as recorded: per object (a container by the name it was created with,
 * a network, a volume), its mutating calls in order (`METHOD /template status`). The order between
 * objects is left out: berth works on replicas concurrently, and a real daemon's stop takes longer
 * than a simulated one's.
 */
function changesOf(side: Side, calls: RecordedCall[], step: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const created = new Map<string, number>();
  const labelOf = (ref: string) => side.labels.get(ref) ?? `container ${plain(ref)}`;
  for (const c of calls) {
    if (!isMutating(c.method)) continue;
    const template = callTemplate(c.method, c.url);
    const query = new URLSearchParams(c.url.split('?')[1] ?? '');
    const body = (c.body ?? {}) as { Name?: string; Container?: string };
    const path = c.url.split('?')[0]!;
    let object: string;
    let extra = '';
    if (template === 'POST /containers/create') {
      const name = plain(query.get('name') ?? '');
      const n = (created.get(name) ?? 0) + 1;
      created.set(name, n);
      object = `container ${name} (${step}${n > 1 ? ` #${n}` : ''})`;
      const id = (c.answer as { Id?: string } | undefined)?.Id;
      if (id) side.labels.set(id, object);
    } else if (template.startsWith('POST /networks/create')) {
      object = `network ${plain(body.Name ?? '')}`;
      const id = (c.answer as { Id?: string } | undefined)?.Id;
      if (id) side.labels.set(id, object);
    } else if (template.startsWith('POST /networks/{id}/')) {
      object = labelOf(body.Container ?? '');
      extra = ` ${plain(decodeURIComponent(path.split('/')[2]!))}`;
    } else if (template.startsWith('DELETE /networks/')) {
      const ref = decodeURIComponent(path.split('/')[2]!);
      object = side.labels.get(ref) ?? `network ${plain(ref)}`;
    } else if (template === 'POST /volumes/create') object = `volume ${plain(body.Name ?? '')}`;
    else if (template.startsWith('POST /containers/{id}/') || template === 'DELETE /containers/{id}') object = labelOf(path.split('/')[2]!);
    else object = template;
    if (template === 'POST /containers/{id}/rename') extra = ` to ${plain(query.get('name') ?? '')}`;
    (out[object] ??= []).push(`${template}${extra} ${c.status}`);
  }
  return out;
}

/** What berth left on a host: the stack's containers (as inspected), networks and volumes, without ids, addresses and times. */
async function outcomeOf(docker: Dockerode) {
  const listed = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
  const containers = await Promise.all(
    listed.map(async (l) => {
      const i = await docker.getContainer(l.Id).inspect();
      const short = i.Id.slice(0, 12);
      return {
        name: plain(i.Name),
        listed: l.Status.replace(/^Up [^(]*?(?= \(|$)/, 'Up').replace(/^Exited \((-?\d+)\) .* ago$/, 'Exited ($1)'),
        state: { status: i.State.Status, running: i.State.Running, exitCode: i.State.ExitCode, health: i.State.Health?.Status, restarts: i.RestartCount },
        image: i.Config.Image,
        labels: Object.fromEntries(Object.entries(i.Config.Labels ?? {}).map(([k, v]) => [k, v.replaceAll(stack, 'S')])),
        cmd: i.Config.Cmd,
        entrypoint: i.Config.Entrypoint,
        env: i.Config.Env,
        healthcheck: i.Config.Healthcheck,
        exposed: i.Config.ExposedPorts,
        hostConfig: {
          networkMode: plain(i.HostConfig.NetworkMode ?? ''),
          restart: i.HostConfig.RestartPolicy,
          mounts: (i.HostConfig.Mounts ?? []).map((m) => ({ ...m, Source: plain(m.Source ?? '') })),
          ports: i.HostConfig.PortBindings,
        },
        mounts: (i.Mounts ?? []).map((m) => ({ type: m.Type, name: plain(m.Name ?? ''), destination: m.Destination, rw: m.RW })),
        networks: Object.fromEntries(
          Object.entries(i.NetworkSettings.Networks).map(([n, e]) => [
            plain(n),
            {
              aliases: ((e.Aliases as string[] | null) ?? []).filter((a) => a !== short),
              addressed: Boolean(e.IPAddress),
              // the addresses themselves differ (the real daemon has other networks): which were given, and whether it kept them
              given: Object.keys(e.IPAMConfig ?? {}),
              kept: !e.IPAMConfig?.IPv4Address || e.IPAMConfig.IPv4Address === e.IPAddress,
            },
          ]),
        ),
      };
    }),
  );
  const networks = (await docker.listNetworks({ filters: { label: [`berth.stack=${stack}`] } })).map((n) => ({
    name: plain(n.Name),
    driver: n.Driver,
    internal: n.Internal,
    labels: Object.fromEntries(Object.entries(n.Labels ?? {}).map(([k, v]) => [k, v.replaceAll(stack, 'S')])),
    subnets: (n.IPAM?.Config ?? []).length,
  }));
  const volumes = ((await docker.listVolumes({ filters: { label: [`berth.stack=${stack}`] } })).Volumes ?? []).map((v) => ({
    name: plain(v.Name),
    driver: v.Driver,
    labels: Object.fromEntries(Object.entries(v.Labels ?? {}).map(([k, val]) => [k, val.replaceAll(stack, 'S')])),
  }));
  const byName = <T extends { name: string }>(xs: T[]) => xs.sort((a, b) => a.name.localeCompare(b.name));
  return { containers: byName(containers), networks: byName(networks), volumes: byName(volumes) };
}

/** Until no container of the stack is starting (a health check not settled yet) on either host. */
async function settled(): Promise<void> {
  for (const s of sides) {
    await waitFor(
      async () => {
        const list = await s.docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
        return list.every((c) => !c.Status.includes('health: starting'));
      },
      { what: `the stack's health checks to settle on the ${s.what}`, timeoutMs: 20_000 },
    );
  }
}

/** Runs `act` on both sides at once and compares what berth did on each. */
async function step(name: string, act: (side: Side) => Promise<unknown>): Promise<unknown[]> {
  const before = sides.map((s) => auditRows(s.engine, stack).length);
  sides.forEach((s) => s.front.reset());
  const results = await Promise.all(sides.map(act));
  await settled();
  const [real, simulated] = sides.map((s, i) => ({
    audit: auditOf(s, before[i]!),
    changes: changesOf(s, s.front.calls.slice(), name),
  }));
  expect(sim.calls().h1?.unknown, `${name}: calls the simulator does not have`).toEqual({});
  expect(simulated!.audit, `${name}: the audit trail`).toEqual(real!.audit);
  expect(simulated!.changes, `${name}: the changes berth made`).toEqual(real!.changes);
  const [realOutcome, simOutcome] = await Promise.all(sides.map((s) => outcomeOf(s.docker)));
  expect(simOutcome, `${name}: what runs afterwards`).toEqual(realOutcome);
  return results;
}

const sync = (s: Side) => s.engine.syncRepo(repo.name, { trigger: 'manual' });

describe("the simulator's rules (bench/sim/README.md)", () => {
  it('ends a command by the last statement of its script', () => {
    expect(commandExit(['sh', '-c', 'exit 3'])).toEqual({ code: 3, afterMs: 0 });
    expect(commandExit(['sh', '-c', 'echo migrating; sleep 2; exit 0'])).toEqual({ code: 0, afterMs: 2000 });
    expect(commandExit(['false'])).toEqual({ code: 1, afterMs: 0 });
    expect(commandExit(['/bin/sh', '-c', 'make && true'])).toEqual({ code: 0, afterMs: 0 });
    // the test images' command, and a conditional exit: they run until stopped
    expect(commandExit(['sh', '-c', "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"])).toBeUndefined();
    expect(commandExit(['sh', '-c', 'serve || exit 1'])).toBeUndefined();
    expect(commandExit(['nginx', '-g', 'daemon off;'])).toBeUndefined();
  });

  it('fails a health check whose last statement exits non-zero', () => {
    expect(healthFails(['CMD-SHELL', 'exit 1'])).toBe(true);
    expect(healthFails(['CMD', 'false'])).toBe(true);
    expect(healthFails(['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ || exit 1'])).toBe(false);
    expect(healthFails(['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1/'])).toBe(false);
  });

  it("says how long ago as Docker's container list does", () => {
    expect([500, 1000, 42_000, 61_000, 300_000, 3_600_000, 30 * 3_600_000].map(humanDuration)).toEqual([
      'Less than a second',
      '1 second',
      '42 seconds',
      'About a minute',
      '5 minutes',
      'About an hour',
      '30 hours',
    ]);
  });
});

describe('the Docker simulator', () => {
  it('has the test images as the test daemon built them', async () => {
    for (const ref of Object.values(IMAGES)) {
      const [real, simulated] = await Promise.all(sides.map((s) => s.docker.getImage(ref).inspect()));
      const shape = (i: Dockerode.ImageInspectInfo) => {
        const { Env, Cmd, Entrypoint, Healthcheck, ExposedPorts, Volumes, WorkingDir, User } = i.Config;
        return { Env, Cmd, Entrypoint, Healthcheck, ExposedPorts, Volumes, WorkingDir, User, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests, Os: i.Os };
      };
      expect(shape(simulated!), ref).toEqual(shape(real!));
    }
  });

  it('gets the same plans, changes and outcome from berth as a real daemon: deploy, rolling update, removal, drift, rollback', async () => {
    const file = `${stack}/compose.yaml`;
    const plans = async (name: string, compose: string) => {
      await repo.commit({ [file]: compose }, { message: name });
      const [real, simulated] = (await step(name, sync)) as RepoPass[];
      expect(planOf(simulated!), `${name}: the plan`).toEqual(planOf(real!));
      expect(real!.stacks[0]?.status, `${name} on the real daemon: ${real!.stacks[0]?.errors?.join('; ')}`).toBe('synced');
      return real!;
    };

    // 2 health-checked replicas, a second service, a network and a volume
    const deploy = await plans('deploy', compose(IMAGES.webV1, 'a', true));
    expect(deploy.stacks[0]?.plan?.actions.map((a) => a.kind)).toEqual(['create', 'create', 'create']);

    // a new image and a label: web rolls start-first, replica after replica, gated on health; worker stop-first
    const update = await plans('update', compose(IMAGES.webV2, 'b', true));
    expect(update.stacks[0]?.plan?.actions.map((a) => a.kind)).toEqual(['replace', 'replace', 'replace']);

    // worker leaves Git
    const removal = await plans('remove', compose(IMAGES.webV2, 'b', false));
    expect(removal.stacks[0]?.plan?.actions.map((a) => a.kind).sort()).toEqual(['keep', 'keep', 'remove']);

    // a replica removed by hand: the events tell berth, which puts it back
    await step('drift', async (s) => {
      const [web1] = await s.docker.listContainers({ all: true, filters: { name: [`^/${stack}-web-1$`] } });
      await s.docker.getContainer(web1!.Id).remove({ force: true });
      await waitFor(() => auditRows(s.engine, stack, ['drift.corrected']).length > 0, { what: `berth to put web-1 back on the ${s.what}` });
      await waitFor(async () => !s.engine.passQueued(repo.name) && auditRows(s.engine, stack).at(-1)?.kind === 'sync.succeeded', {
        what: `the drift pass to end on the ${s.what}`,
      });
    });
    const [, simulated] = await Promise.all(sides.map((s) => outcomeOf(s.docker)));
    expect(simulated!.containers.map((c) => `${c.name} ${c.state.status} ${c.state.health}`)).toEqual(['S-web-1 running healthy', 'S-web-2 running healthy']);

    // an image whose health check fails (`exit 1`): unhealthy after its retries, read for evidence, rolled back
    await repo.commit({ [file]: compose(IMAGES.webUnhealthy, 'b', false, true) }, { message: 'broken' });
    const [real, simulatedPass] = (await step('rollback', sync)) as RepoPass[];
    expect(planOf(simulatedPass!), 'rollback: the plan').toEqual(planOf(real!));
    expect(real!.stacks[0]?.status).toBe('rolledback');
    const evidence = (p: RepoPass) => ({ ...p.stacks[0]?.evidence, logs: p.stacks[0]?.evidence?.logs, at: undefined, container: undefined });
    expect(noIds(JSON.stringify(evidence(simulatedPass!))), 'rollback: the evidence of the failed replica').toEqual(noIds(JSON.stringify(evidence(real!))));
  });
});
