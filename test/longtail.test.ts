// The Compose long tail against a real daemon: a stack using a representative set of the keys
// passed through to Docker, deployed by the engine from a real git remote; `docker inspect` (and
// the container itself) shows each option applied, and changing one of them rolls the container.
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.ts';
import { testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

const TOKEN = 'longtail-test-token-5e6f';
// sh as PID 1 that ends at once on SIGTERM, binding no port
const IDLE = `["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`;

let server: GitServer;
let docker: Dockerode;

beforeAll(async () => {
  server = await startGitServer({ token: TOKEN });
  docker = testDocker();
});
afterAll(async () => {
  await server?.close();
});

function compose(somaxconn: number): string {
  return `services:
  web:
    image: ${IMAGES.webV1}
    hostname: web-host
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    sysctls: { net.core.somaxconn: ${somaxconn} }
    ulimits: { nofile: { soft: 1024, hard: 2048 } }
    tmpfs: ["/run:size=1m"]
    extra_hosts: ["db.example:10.1.2.3"]
    dns: [10.0.0.53]
    init: true
    read_only: true
    shm_size: 16m
    labels: { team: web }
    logging: { driver: json-file, options: { max-size: 1m, max-file: "2" } }
  sidecar:
    image: ${IMAGES.base}
    command: ${IDLE}
    network_mode: service:web
  offline:
    image: ${IMAGES.base}
    platform: linux/amd64
    command: ${IDLE}
    network_mode: none
`;
}

/** The stack's managed containers, inspected, by service name. */
async function inspectAll(stack: string): Promise<Map<string, Dockerode.ContainerInspectInfo>> {
  const list = await docker.listContainers({ all: true, filters: { label: ['berth.managed=true', `berth.stack=${stack}`] } });
  const infos = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
  return new Map(infos.map((i) => [i.Config.Labels['berth.service'], i]));
}

/** Runs a command in a container and returns what it printed. */
async function run(id: string, cmd: string[]): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const buf = Buffer.concat(chunks);
  let out = '';
  for (let i = 0; i + 8 <= buf.length; i += 8 + buf.readUInt32BE(i + 4)) out += buf.subarray(i + 8, i + 8 + buf.readUInt32BE(i + 4)).toString();
  return out.trim();
}

describe('the long tail on a real daemon', () => {
  let repo: RemoteRepo;
  let stack: string;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;

  beforeAll(async () => {
    stack = uniqueName('tail').replaceAll('-', '');
    repo = await server.createRepo(uniqueName('longtail'));
    // NET_ADMIN is beyond Docker's default capabilities: the repo's policy allows it
    cfg = writeConfig([{ name: repo.name, url: repo.url, token: TOKEN, settings: { policy: { capabilities: ['NET_ADMIN'] } } }]);
    engine = testEngine(cfg.file);
  });
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  it('applies each option, and a change of one rolls the container (and the one sharing its network)', async () => {
    const berthYaml = `stacks:\n  - name: ${stack}\n    compose: [app/compose.yaml]\n`;
    await repo.commit({ 'berth.yaml': berthYaml, 'app/compose.yaml': compose(1024) }, { message: 'long tail' });
    const pass1 = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass1.stacks.map((s) => [s.stack, s.status, s.errors])).toEqual([[stack, 'synced', undefined]]);

    const first = await inspectAll(stack);
    expect([...first.keys()].sort()).toEqual(['offline', 'sidecar', 'web']);
    const web = first.get('web')!;
    expect(web.State.Running).toBe(true);
    expect(web.Config.Hostname).toBe('web-host');
    expect(web.Config.Labels).toMatchObject({ team: 'web' });
    expect(web.HostConfig).toMatchObject({
      CapAdd: ['NET_ADMIN'],
      CapDrop: ['MKNOD'],
      Sysctls: { 'net.core.somaxconn': '1024' },
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      Tmpfs: { '/run': 'size=1m' },
      ExtraHosts: ['db.example:10.1.2.3'],
      Dns: ['10.0.0.53'],
      Init: true,
      ReadonlyRootfs: true,
      ShmSize: 16 * 2 ** 20,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
      NetworkMode: `${stack}_default`,
    });
    // ...and the container lives by them
    expect(await run(web.Id, ['cat', '/proc/sys/net/core/somaxconn'])).toBe('1024');
    expect(await run(web.Id, ['grep', 'Max open files', '/proc/1/limits'])).toMatch(/^Max open files\s+1024\s+2048\s+files$/);
    expect(await run(web.Id, ['hostname'])).toBe('web-host');
    expect(await run(web.Id, ['grep', 'db.example', '/etc/hosts'])).toMatch(/^10\.1\.2\.3\s+db\.example$/);
    expect(await run(web.Id, ['sh', '-c', 'touch /x 2>&1 || echo read-only'])).toContain('read-only');
    expect(await run(web.Id, ['sh', '-c', 'touch /run/x && echo writable'])).toBe('writable');

    // sidecar shares web's network: web's server answers on its loopback
    const sidecar = first.get('sidecar')!;
    expect(sidecar.HostConfig.NetworkMode).toMatch(new RegExp(`^container:(${stack}-web-1|${web.Id})$`));
    // (web's server may still be starting: the engine waits for health only where a dependent asks for it)
    const served = (id: string) =>
      waitFor(async () => (await run(id, ['wget', '-q', '-O-', 'http://127.0.0.1/'])).includes('v1'), { what: "web's page through the shared network" });
    await served(sidecar.Id);
    // offline has no network but loopback
    const offline = first.get('offline')!;
    expect(offline.HostConfig.NetworkMode).toBe('none');
    expect(Object.keys(offline.NetworkSettings.Networks)).toEqual(['none']);

    // The same commit again changes nothing: the hashes of what runs match, and nothing looks hand-made.
    const again = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(again.stacks[0].status).toBe('unchanged');

    // One option changes: web rolls, sidecar with it (it shares web's network), offline stays.
    await repo.commit({ 'app/compose.yaml': compose(2048) }, { message: 'more backlog' });
    const pass2 = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass2.stacks[0].status).toBe('synced');
    const second = await inspectAll(stack);
    expect(second.get('web')!.Id).not.toBe(web.Id);
    expect(second.get('web')!.Config.Labels['berth.spec-hash']).not.toBe(web.Config.Labels['berth.spec-hash']);
    expect(second.get('web')!.HostConfig.Sysctls).toEqual({ 'net.core.somaxconn': '2048' });
    expect(await run(second.get('web')!.Id, ['cat', '/proc/sys/net/core/somaxconn'])).toBe('2048');
    expect(second.get('sidecar')!.Id).not.toBe(sidecar.Id);
    await served(second.get('sidecar')!.Id);
    expect(second.get('offline')!.Id).toBe(offline.Id);
    const replaced = engine.audit.query({ stack, kind: 'container.replaced' }).rows;
    expect(replaced.map((r) => r.service).sort()).toEqual(['sidecar', 'web']);
    expect(replaced.find((r) => r.service === 'web')?.diff).toContain('+  net.core.somaxconn: "2048"');
    const newHash = second.get('web')!.Config.Labels['berth.spec-hash'];
    expect(replaced.find((r) => r.service === 'sidecar')?.diff).toContain(`+network_mode: service:web (the network of ${stack}-web-1, spec ${newHash})`);
  });

  it('an image that is not for the platform asked, and cannot be pulled for it, fails the sync with why', async () => {
    const arm = `${stack}arm`;
    const armRepo = await server.createRepo(uniqueName('longtail-arm'));
    const armCfg = writeConfig([{ name: armRepo.name, url: armRepo.url, token: TOKEN }]);
    const armEngine = testEngine(armCfg.file);
    try {
      const compose = `services:\n  one:\n    image: ${IMAGES.base}\n    platform: linux/arm64\n    command: ${IDLE}\n`;
      await armRepo.commit({ 'berth.yaml': `stacks:\n  - name: ${arm}\n    compose: [arm/compose.yaml]\n`, 'arm/compose.yaml': compose });
      const pass = await armEngine.syncRepo(armRepo.name, { trigger: 'manual', actor: 'test' });
      expect(pass.stacks.map((s) => s.status)).toEqual(['failed']);
      expect(pass.stacks[0].errors?.join('\n')).toContain(`pull ${IMAGES.base} for linux/arm64 on test (it has ${IMAGES.base} for linux/amd64): `);
    } finally {
      armEngine.close();
      armCfg.cleanup();
    }
  });
});
