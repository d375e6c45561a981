// Drift: hand-made changes to managed containers, noticed through Docker events and put back
// (selfHeal), or reported and left alone (selfHeal off) (docs/how-it-works.md, "Drift").
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { execIn, testDocker, uniqueName, removeContainers, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { ownStack, testEngine, writeConfig } from './harness/berth.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { AuditRow } from '../src/audit/log.ts';

let server: GitServer;
let docker: Dockerode;
let engine: Engine;
let cfg: ReturnType<typeof writeConfig>;
let stopWatching: () => void;
const prefix = uniqueName('drift').replaceAll('-', '');
const KINDS = ['stopped', 'killed', 'removed', 'renamed', 'image', 'env', 'port', 'mount', 'extra', 'restart', 'noheal'] as const;
type Kind = (typeof KINDS)[number];
const stackOf = (k: Kind) => `${prefix}${k}`;

beforeAll(async () => {
  server = await startGitServer();
  docker = testDocker();
  const repo = await server.createRepo(uniqueName('driftrepo'));
  const files: Record<string, string> = {
    'berth.yaml': `stacks:\n${KINDS.map((k) => `  - name: ${stackOf(k)}\n    compose: [${k}/compose.yaml]\n${k === 'noheal' ? '    sync: { selfHeal: false }\n' : ''}`).join('')}`,
  };
  for (const k of KINDS) {
    files[`${k}/compose.yaml`] = `services:
  web:
    image: ${IMAGES.webV1}
    environment: { MODE: git }
    restart: "${k === 'restart' ? 'always' : 'no'}"
${k === 'port' ? '    ports: ["80"]\n' : ''}${k === 'mount' ? '    volumes: [data:/data]\nvolumes:\n  data: {}\n' : ''}`;
  }
  await repo.commit(files, { message: 'the stacks' });
  cfg = writeConfig([{ name: repo.name, url: repo.url }]);
  engine = testEngine(cfg.file);
  const pass = await engine.syncRepo(repo.name, { trigger: 'manual' });
  expect(pass.stacks.map((s) => s.status)).toEqual(KINDS.map(() => 'synced'));
  stopWatching = engine.watchDrift({ resyncMs: 3_600_000, restartGraceMs: 3000, debounceMs: 1500 });
});

afterAll(async () => {
  stopWatching?.();
  engine?.close();
  for (const k of KINDS) await removeContainers(docker, { 'berth.stack': stackOf(k) });
  await removeContainers(docker, { 'test.drift': prefix });
  cfg?.cleanup();
  await server?.close();
});

async function web(k: Kind) {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stackOf(k)}`, 'berth.service=web'] } });
  return c;
}

const rows = (k: Kind, kind: string): AuditRow[] => engine.audit.query({ stack: stackOf(k), kind, limit: 100 }).rows;

/** Waits for the correction of `before` and returns the two drift rows. */
async function corrected(k: Kind, before: string) {
  const fixed = await waitFor(() => rows(k, 'drift.corrected').find((r) => r.containerBefore === before || (!r.containerBefore && r.containerAfter)), {
    what: `berth to correct the ${k} drift`,
    timeoutMs: 30_000,
  });
  const detected = rows(k, 'drift.detected');
  expect(detected).toHaveLength(1);
  expect(fixed.trigger).toBe('drift');
  return { detected: detected[0], fixed };
}

/**
 * Replaces berth's container by one made by hand with the same name and labels but `change`d, the
 * way a person would (`docker rm -f`, then `docker run`). berth waits `debounceMs` after an event
 * before it looks, so it sees the two steps as one change.
 */
async function recreateByHand(k: Kind, change: (opts: Dockerode.ContainerCreateOptions, info: Dockerode.ContainerInspectInfo) => void) {
  const c = await web(k);
  const info = await docker.getContainer(c.Id).inspect();
  const opts: Dockerode.ContainerCreateOptions = {
    name: info.Name.slice(1),
    Image: info.Config.Image,
    Env: info.Config.Env,
    Labels: info.Config.Labels,
    HostConfig: { ...info.HostConfig, PortBindings: info.HostConfig.PortBindings, Mounts: info.HostConfig.Mounts },
  };
  change(opts, info);
  await docker.getContainer(c.Id).remove({ force: true });
  const hand = await docker.createContainer(opts);
  await hand.start();
  return { before: c.Id, hand: hand.id };
}

describe('with selfHeal, each kind of drift is corrected and audited twice', () => {
  it('a stopped container', async () => {
    const c = await web('stopped');
    await docker.getContainer(c.Id).stop({ t: 1 });
    const { detected, fixed } = await corrected('stopped', c.Id);
    expect(detected).toMatchObject({ containerBefore: c.Id, service: 'web', host: 'test' });
    expect(detected.diff).toContain('-state: exited');
    expect(detected.diff).toContain('+state: running');
    const now = await web('stopped');
    expect(now.State).toBe('running');
    expect(fixed).toMatchObject({ containerBefore: c.Id, containerAfter: now.Id });
  });

  it('a killed container', async () => {
    const c = await web('killed');
    await docker.getContainer(c.Id).kill();
    const { detected, fixed } = await corrected('killed', c.Id);
    expect(detected.message).toMatch(/replace web#1 on test: not running \(exited\)/);
    expect(fixed.containerAfter).toBe((await web('killed')).Id);
  });

  it('a removed container', async () => {
    const c = await web('removed');
    await docker.getContainer(c.Id).remove({ force: true });
    const fixed = await waitFor(() => rows('removed', 'drift.corrected')[0], { what: 'the removed container to come back', timeoutMs: 30_000 });
    const [detected] = rows('removed', 'drift.detected');
    expect(detected.message).toBe('create web#1 on test: missing');
    expect(detected.diff).toContain('+image: berth-test/web:v1');
    expect(fixed.containerAfter).toBe((await web('removed')).Id);
  });

  it('a renamed container', async () => {
    const c = await web('renamed');
    await docker.getContainer(c.Id).rename({ name: `${stackOf('renamed')}-by-hand` });
    const { detected } = await corrected('renamed', c.Id);
    expect(detected.message).toContain(`renamed by hand to ${stackOf('renamed')}-by-hand`);
    expect((await web('renamed')).Names).toEqual([`/${stackOf('renamed')}-web-1`]);
  });

  it('recreated by hand with another image', async () => {
    const { hand } = await recreateByHand('image', (o) => (o.Image = IMAGES.webV2));
    const { detected } = await corrected('image', hand);
    expect(detected.message).toContain(`changed by hand: image: ${IMAGES.webV2} (wants ${IMAGES.webV1})`);
    expect(detected.diff).toContain(`-image: ${IMAGES.webV2}`);
    expect(detected.diff).toContain(`+image: ${IMAGES.webV1}`);
    expect((await web('image')).Image).toBe(IMAGES.webV1);
  });

  it('recreated by hand with another environment', async () => {
    const { hand } = await recreateByHand('env', (o) => (o.Env = [...(o.Env ?? []).filter((e) => !e.startsWith('MODE=')), 'MODE=hand']));
    const { detected } = await corrected('env', hand);
    expect(detected.message).toContain('environment MODE: hand (wants git)');
    expect(detected.diff).toContain('-  MODE: hand');
    expect(detected.diff).toContain('+  MODE: git');
  });

  it('recreated by hand with another port', async () => {
    const { hand } = await recreateByHand('port', (o) => (o.HostConfig = { ...o.HostConfig, PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '18089' }] } }));
    const { detected } = await corrected('port', hand);
    expect(detected.message).toMatch(/ports: 18089:80 \(wants 80\)/);
  });

  it('recreated by hand with another mount', async () => {
    const { hand } = await recreateByHand('mount', (o) => (o.HostConfig = { ...o.HostConfig, Mounts: [{ Type: 'tmpfs', Source: '', Target: '/data' }] }));
    const { detected } = await corrected('mount', hand);
    expect(detected.message).toMatch(/mounts: tmpfs:.*:\/data \(wants volume:.*_data:\/data\)/);
  });

  it("an extra container carrying berth's labels", async () => {
    const c = await web('extra');
    const info = await docker.getContainer(c.Id).inspect();
    const extra = await docker.createContainer({
      Image: IMAGES.webV1,
      name: `${stackOf('extra')}-web-2`,
      Labels: { ...info.Config.Labels, 'berth.slot': '2', 'com.docker.compose.container-number': '2' },
    });
    await extra.start();
    const { detected, fixed } = await corrected('extra', extra.id);
    expect(detected.message).toBe('remove web#2 on test: replica no longer wanted here');
    expect(fixed).toMatchObject({ kind: 'drift.corrected', containerBefore: extra.id });
    await expect(extra.inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await web('extra')).Id).toBe(c.Id);
  });
});

describe('what is not drift', () => {
  it('a container that exits by itself is left to its restart policy', async () => {
    const c = await web('restart');
    // PID 1 exits (code 0): `restart: always` brings it back; berth does nothing.
    const exec = await docker.getContainer(c.Id).exec({ Cmd: ['kill', '-TERM', '1'] });
    await exec.start({});
    await waitFor(async () => (await docker.getContainer(c.Id).inspect()).RestartCount > 0, { what: 'Docker to restart it' });
    // Give berth more than its restart grace to (wrongly) step in.
    await new Promise((r) => setTimeout(r, 5000));
    expect(rows('restart', 'drift.detected')).toEqual([]);
    expect((await web('restart')).Id).toBe(c.Id);
  });

  it('containers berth does not manage, stopped or removed by hand, cause no action', async () => {
    const before = engine.audit.query({ limit: 1000 }).rows.length;
    const other = await docker.createContainer({
      Image: IMAGES.webV1,
      name: `${prefix}-unmanaged`,
      Labels: { 'test.drift': prefix, 'com.docker.compose.project': stackOf('stopped') },
    });
    await other.start();
    await other.stop({ t: 1 });
    await other.remove();
    await new Promise((r) => setTimeout(r, 3000));
    expect(engine.audit.query({ limit: 1000 }).rows.length).toBe(before);
  });

  it('without selfHeal: the stack is OutOfSync with the diff, and nothing changes', async () => {
    const c = await web('noheal');
    await docker.getContainer(c.Id).stop({ t: 1 });
    const [detected] = await waitFor(() => (rows('noheal', 'drift.detected').length ? rows('noheal', 'drift.detected') : undefined), {
      what: 'the drift to be noticed',
      timeoutMs: 30_000,
    });
    expect(detected.message).toMatch(/replace web#1 on test: not running \(exited\); selfHeal is off: nothing changed/);
    expect(detected.diff).toContain('-state: exited');
    const [status] = await engine.status(stackOf('noheal'));
    expect(status).toMatchObject({ sync: 'OutOfSync', health: 'Degraded' });
    const now = await web('noheal');
    expect(now.Id).toBe(c.Id);
    expect(now.State).toBe('exited');
    expect(rows('noheal', 'drift.corrected')).toEqual([]);
  });
});

describe("a container on another's network (network_mode: service:)", () => {
  it('is created anew with the container it shares a network with, when drift repair recreates that one', async () => {
    const own = await ownStack(server, docker, 'peer');
    try {
      await own.commit(`services:
  web:
    image: ${IMAGES.webV1}
  side:
    image: ${IMAGES.webV1}
    network_mode: "service:web"
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`);
      expect((await own.sync('manual')).status).toBe('synced');
      const one = async (service: string) => (await docker.listContainers({ filters: { label: [`berth.stack=${own.stack}`, `berth.service=${service}`] } }))[0];
      const [web1, side1] = [await one('web'), await one('side')];
      await docker.getContainer(web1.Id).remove({ force: true });
      const pass = await own.sync('poll');
      expect(pass.status, pass.errors?.join('\n')).toBe('synced');
      const [web2, side2] = [await one('web'), await one('side')];
      expect(web2.Id).not.toBe(web1.Id);
      expect(side2.Id).not.toBe(side1.Id);
      // side reaches web's server on its own loopback: the network it has is web's new one
      const { output, exitCode } = await execIn(docker.getContainer(side2.Id), ['wget', '-qO-', 'http://127.0.0.1/']);
      expect(exitCode, output).toBe(0);
      expect(output.trim()).toBe('v1');
      const replaced = own.engine.audit.query({ stack: own.stack, kind: 'drift.detected', limit: 10 }).rows.map((r) => r.message);
      expect(replaced).toContain(`replace side#1 on test: the container whose network it shares (${own.stack}-web-1) is created anew`);
    } finally {
      await own.done();
    }
  });
});
