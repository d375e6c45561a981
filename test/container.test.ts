// The container a replica should be: Docker's create options and the spec hash (pure).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { desiredContainer, maskEnv } from '../src/schedule/container.ts';
import type { RenderedStack, ServiceSpec, UpdateConfig } from '../src/model.ts';

const update: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' };
const svc = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name: 'web',
  image: 'nginx:1',
  environment: { MODE: 'a', DB_PASSWORD: 's3cret' },
  ports: [{ target: 80, published: '8080', protocol: 'tcp' }],
  volumes: [{ type: 'volume', source: 'data', target: '/data', readOnly: false }],
  networks: [
    { key: 'default', aliases: [] },
    { key: 'back', aliases: ['www'] },
  ],
  labels: {},
  restart: 'unless-stopped',
  mode: 'replicated',
  replicas: 1,
  placement: { constraints: [], spread: [] },
  reservations: {},
  limits: {},
  update,
  rollback: update,
  dependsOn: [],
  pullPolicy: 'missing',
  files: [],
  ...over,
});
const stack = (s: ServiceSpec): RenderedStack => ({
  name: 'shop',
  composeFiles: ['compose.yaml'],
  hosts: { kind: 'all' },
  sync: { auto: true, prune: true, selfHeal: true },
  services: [s],
  networks: [
    { key: 'default', name: 'shop_default', external: false, labels: {} },
    { key: 'back', name: 'shop_back', external: false, labels: {} },
  ],
  volumes: [{ key: 'data', name: 'shop_data', external: false, labels: {} }],
  contents: new Map(),
  contexts: new Map(),
});
const make = (s: ServiceSpec, commit = 'c1') => desiredContainer('repo', stack(s), s, 2, 'h1', commit);

describe('desiredContainer', () => {
  it('turns the service into create options, networks with aliases, and labels', () => {
    const d = make(
      svc({
        stopSignal: 'SIGINT',
        stopGracePeriodSeconds: 20,
        limits: { cpus: 0.5, memoryBytes: 256 * 2 ** 20, pids: 100 },
        reservations: { cpus: 0.25, memoryBytes: 2 ** 20 },
      }),
    );
    expect(d.name).toBe('shop-web-2');
    expect(d.create).toMatchObject({
      Image: 'nginx:1',
      Env: ['MODE=a', 'DB_PASSWORD=s3cret'],
      StopSignal: 'SIGINT',
      StopTimeout: 20,
      ExposedPorts: { '80/tcp': {} },
      HostConfig: {
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
        Mounts: [{ Type: 'volume', Source: 'shop_data', Target: '/data', ReadOnly: false }],
        RestartPolicy: { Name: 'unless-stopped' },
        NetworkMode: 'shop_default',
        NanoCpus: 5e8,
        Memory: 256 * 2 ** 20,
        PidsLimit: 100,
        MemoryReservation: 2 ** 20,
      },
    });
    expect(d.networks).toEqual([
      { network: 'shop_default', aliases: ['web'] },
      { network: 'shop_back', aliases: ['web', 'www'] },
    ]);
    expect(d.create.Labels).toMatchObject({
      'berth.managed': 'true',
      'berth.slot': '2',
      'berth.commit': 'c1',
      'com.docker.compose.project': 'shop',
      'com.docker.compose.container-number': '2',
      'berth.reserve.cpus': '0.25',
      'berth.reserve.memory': String(2 ** 20),
    });
  });

  it('hashes what shapes the container and nothing else', () => {
    const base = make(svc()).specHash;
    expect(make(svc(), 'another-commit').specHash).toBe(base);
    expect(make(svc({ environment: { MODE: 'b', DB_PASSWORD: 's3cret' } })).specHash).not.toBe(base);
    expect(make(svc({ environment: { MODE: 'a', DB_PASSWORD: 'rotated' } })).specHash).not.toBe(base);
    expect(
      make(
        svc({
          networks: [
            { key: 'default', aliases: [] },
            { key: 'back', aliases: ['api'] },
          ],
        }),
      ).specHash,
    ).not.toBe(base);
    expect(make(svc({ stopSignal: 'SIGQUIT' })).specHash).not.toBe(base);
    // How a service is rolled out is not part of the container.
    expect(make(svc({ update: { ...update, order: 'start-first' } })).specHash).toBe(base);
  });

  it('writes the readable view as Compose does: durations, sizes, short ports and volumes, no defaults', () => {
    const view = make(
      svc({
        restart: 'no',
        ports: [
          { target: 80, published: '8080', protocol: 'tcp' },
          { target: 53, protocol: 'udp' },
        ],
        volumes: [
          { type: 'volume', source: 'data', target: '/data', readOnly: true },
          { type: 'bind', source: '/srv/x', target: '/x', readOnly: false },
        ],
        healthcheck: { test: ['CMD', 'true'], intervalNs: 2e9, timeoutNs: 500e6, startPeriodNs: 90e9, retries: 3 },
        stopGracePeriodSeconds: 30,
        limits: { memoryBytes: 512 * 1024 ** 2, cpus: 0.5 },
      }),
    ).view;
    expect(view).toContain('ports:\n  - 8080:80\n  - 53/udp\n');
    expect(view).toContain('volumes:\n  - shop_data:/data:ro\n  - /srv/x:/x\n');
    expect(view).toContain('healthcheck:\n  test:\n    - CMD\n    - "true"\n  interval: 2s\n  timeout: 500ms\n  start_period: 1m30s\n  retries: 3\n');
    expect(view).toContain('stop_grace_period: 30s\n');
    expect(view).toContain('limits:\n    cpus: 0.5\n    memory: 512M\n');
    expect(view).not.toMatch(/restart|Ns:|\/tcp/);
    expect(make(svc({ healthcheck: { test: ['NONE'] } })).view).toContain('healthcheck:\n  disable: true\n');
  });

  it('never shows secret-looking values in the readable view', () => {
    const view = make(svc()).view;
    expect(view).toContain('MODE: a');
    expect(view).not.toContain('s3cret');
    expect(view).toMatch(/DB_PASSWORD: <masked sha256:[0-9a-f]{12}>/);
    expect(maskEnv({ API_TOKEN: 'x', GITHUB_AUTH: 'y', PATH: '/bin' })).toEqual({
      API_TOKEN: expect.stringMatching(/^<masked/),
      GITHUB_AUTH: expect.stringMatching(/^<masked/),
      PATH: '/bin',
    });
  });

  it("masks by value too: a URL with a password, and the content of one of the service's secrets, whatever the name", () => {
    const secretHash = createHash('sha256').update('hunter22-x\n').digest('hex');
    expect(
      maskEnv(
        { DATABASE_URL: 'postgres://app:hunter2@db/app', SENTRY_DSN: 'https://key@sentry.io/1', COPY: 'hunter22-x', HOME: '/root' },
        new Set([secretHash]),
      ),
    ).toEqual({
      DATABASE_URL: expect.stringMatching(/^<masked sha256:/),
      SENTRY_DSN: 'https://key@sentry.io/1', // a user without a password is no credential
      COPY: expect.stringMatching(/^<masked sha256:/),
      HOME: '/root',
    });
  });
});
