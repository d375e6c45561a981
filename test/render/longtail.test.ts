// The Compose long tail (passthrough.ts), profiles, extends, include and the repo policy, as tables.
import { describe, expect, test } from 'vitest';
import type { DockerExtras, RenderOptions, RepoPolicy, ServiceSpec } from '../../src/model.ts';
import { placeStack, PlacementError, type HostInfo } from '../../src/schedule/place.ts';
import { errorsOf, serviceOf, stackOf } from './helpers.ts';

const web = (body: string, rest = '') => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n${rest}`;
const STRICT: RepoPolicy = { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [] };
const allow = (p: Partial<RepoPolicy>): RenderOptions => ({ policy: { ...STRICT, ...p } });
/** Two compose files of stack "app", merged in order (profile b active). */
const twoFiles = (a: string, b: string) => ({
  'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/compose.yaml, app/override.yaml]\n    profiles: [b]\n',
  'app/compose.yaml': a,
  'app/override.yaml': b,
});
const extrasOf = (s: ServiceSpec): Omit<DockerExtras, 'view'> | undefined =>
  s.extras && { config: s.extras.config, hostConfig: s.extras.hostConfig, platform: s.extras.platform };

describe('short and long forms', () => {
  test.each<[string, string, Partial<DockerExtras>]>([
    [
      'sysctls as a list',
      'sysctls: [net.ipv4.ip_forward=1, "kernel.msgmax=65536"]',
      { hostConfig: { Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '65536' } } },
    ],
    ['sysctls as a map', 'sysctls: { net.ipv4.ip_forward: 1 }', { hostConfig: { Sysctls: { 'net.ipv4.ip_forward': '1' } } }],
    [
      'ulimits: one number or soft and hard',
      'ulimits: { nproc: 65535, nofile: { soft: 20000, hard: 40000 }, core: -1 }',
      {
        hostConfig: {
          Ulimits: [
            { Name: 'core', Soft: -1, Hard: -1 },
            { Name: 'nofile', Soft: 20000, Hard: 40000 },
            { Name: 'nproc', Soft: 65535, Hard: 65535 },
          ],
        },
      },
    ],
    ['tmpfs as a string', 'tmpfs: /run', { hostConfig: { Tmpfs: { '/run': '' } } }],
    ['dns and dns_search as strings', 'dns: 8.8.8.8\ndns_search: example.com', { hostConfig: { Dns: ['8.8.8.8'], DnsSearch: ['example.com'] } }],
    [
      'extra_hosts as a map, one or more addresses',
      'extra_hosts: { db: 10.0.0.2, multi: [10.0.0.3, "::1"] }',
      { hostConfig: { ExtraHosts: ['db:10.0.0.2', 'multi:10.0.0.3', 'multi:::1'] } },
    ],
    ['extra_hosts duplicates dropped', 'extra_hosts: ["a:1.1.1.1", "a=1.1.1.1"]', { hostConfig: { ExtraHosts: ['a:1.1.1.1'] } }],
    [
      'devices, long form with defaults',
      'devices: [{ source: /dev/ttyUSB0 }]',
      { hostConfig: { Devices: [{ PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' }] } },
    ],
    [
      'gpus, long form',
      'gpus: [{ driver: nvidia, device_ids: ["0", "1"], capabilities: [compute] }]',
      { hostConfig: { DeviceRequests: [{ Driver: 'nvidia', Count: 0, DeviceIDs: ['0', '1'], Capabilities: [['compute', 'gpu']], Options: {} }] } },
    ],
    [
      'gpus, a count',
      'gpus: [{ count: 2 }]',
      { hostConfig: { DeviceRequests: [{ Driver: '', Count: 2, DeviceIDs: [], Capabilities: [['gpu']], Options: {} }] } },
    ],
    ['booleans and sizes as interpolated strings', 'init: "${T}"\nshm_size: "${S}"', { hostConfig: { Init: true, ShmSize: 2 ** 30 } }],
    [
      "logging without a driver: the daemon's, with options",
      'logging: { options: { tag: web } }',
      { hostConfig: { LogConfig: { Type: '', Config: { tag: 'web' } } } },
    ],
    ['memswap_limit -1: unlimited swap', 'memswap_limit: -1', { hostConfig: { MemorySwap: -1 } }],
    ['capabilities in any case, with or without CAP_', 'cap_add: [cap_chown, Chown]', { hostConfig: { CapAdd: ['CHOWN'] } }],
  ])('%s', (_, body, expected) => {
    const s = serviceOf(web(body), { 'app/.env': 'T=true\nS=1g' }, allow({ privileged: true, sysctls: ['kernel.msgmax'] }));
    expect(extrasOf(s)).toMatchObject(expected);
  });

  test('nothing set: no extras, so the spec hash of an existing service stays as it was', () => {
    expect(serviceOf(web('')).extras).toBeUndefined();
  });

  test('expose adds to the ports that ports: exposes', () => {
    const stack = stackOf({ 'app/compose.yaml': web('ports: ["8080:80"]\nexpose: ["9000", "80"]') }, 'app');
    const [d] = placeStack('r', stack, [{ name: 'h1', labels: {}, state: 'up' }], 'c1', []);
    expect(d.create.ExposedPorts).toEqual({ '80/tcp': {}, '9000/tcp': {} });
  });

  test('the readable view names them as Compose does', () => {
    expect(serviceOf(web('cap_add: [NET_ADMIN]\nshm_size: 1m\nlogging: { driver: local }'), {}, allow({ capabilities: ['NET_ADMIN'] })).extras?.view).toEqual({
      cap_add: ['NET_ADMIN'],
      shm_size: 2 ** 20,
      logging: { driver: 'local', options: {} },
    });
  });
});

describe('merging across two files', () => {
  test.each<[string, string, string, Partial<ServiceSpec>]>([
    [
      'lists append without duplicates',
      'cap_add: [NET_ADMIN, SYS_TIME]\ndns: [1.1.1.1]\nexpose: ["80"]',
      'cap_add: [SYS_TIME, CHOWN]\ndns: 8.8.8.8\nexpose: ["80", "81"]',
      {
        extras: expect.objectContaining({
          hostConfig: expect.objectContaining({ CapAdd: ['NET_ADMIN', 'SYS_TIME', 'CHOWN'], Dns: ['1.1.1.1', '8.8.8.8'] }),
          config: { ExposedPorts: { '80/tcp': {}, '81/tcp': {} } },
        }),
      },
    ],
    [
      'maps merge key by key',
      'sysctls: { a.b: 1, c.d: 2 }\nulimits: { nofile: 10, nproc: 5 }\nstorage_opt: { size: 1G }',
      'sysctls: [c.d=3]\nulimits: { nofile: { soft: 20, hard: 30 } }',
      {
        extras: expect.objectContaining({
          hostConfig: expect.objectContaining({
            Sysctls: { 'a.b': '1', 'c.d': '3' },
            Ulimits: [
              { Name: 'nofile', Soft: 20, Hard: 30 },
              { Name: 'nproc', Soft: 5, Hard: 5 },
            ],
            StorageOpt: { size: '1G' },
          }),
        }),
      },
    ],
    [
      'single values: the later file wins',
      'hostname: a\ninit: true\nshm_size: 1m',
      'hostname: b\ninit: false',
      { extras: expect.objectContaining({ config: { Hostname: 'b' }, hostConfig: { Init: false, ShmSize: 2 ** 20 } }) },
    ],
    [
      'logging options merge under the same driver',
      'logging: { driver: json-file, options: { max-size: 1m, max-file: 2 } }',
      'logging: { options: { max-file: 5 } }',
      { extras: expect.objectContaining({ hostConfig: { LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '5' } } } }) },
    ],
    [
      'another logging driver starts afresh',
      'logging: { driver: json-file, options: { max-size: 1m } }',
      'logging: { driver: syslog, options: { tag: web } }',
      { extras: expect.objectContaining({ hostConfig: { LogConfig: { Type: 'syslog', Config: { tag: 'web' } } } }) },
    ],
    [
      'blkio_config: weight replaced, devices merged by path',
      'blkio_config: { weight: 100, device_read_bps: [{ path: /dev/sda, rate: 1k }, { path: /dev/sdb, rate: 2k }] }',
      'blkio_config: { device_read_bps: [{ path: /dev/sdb, rate: 3k }] }',
      {
        extras: expect.objectContaining({
          hostConfig: {
            BlkioWeight: 100,
            BlkioDeviceReadBps: [
              { Path: '/dev/sda', Rate: 1024 },
              { Path: '/dev/sdb', Rate: 3072 },
            ],
          },
        }),
      },
    ],
    ['scale and mem_limit from either file', 'scale: 2', 'mem_limit: 1g', { replicas: 2, limits: { memoryBytes: 2 ** 30 } }],
    ['profiles append (b is active)', 'profiles: [a]', 'profiles: [b]', { name: 'web' }],
  ])('%s', (_, a, b, expected) => {
    // what the policy would refuse (NET_ADMIN, SYS_TIME, the sysctls a.b and c.d, syslog) is allowed: this is about merging
    const policy = allow({ capabilities: ['NET_ADMIN', 'SYS_TIME'], sysctls: ['*'], logDrivers: ['syslog'] });
    const stack = stackOf(twoFiles(web(a), `services:\n  web:\n${b.replace(/^/gm, '    ')}\n`), 'app', policy);
    expect(stack.services[0]).toMatchObject(expected);
  });
});

describe('bad values, located', () => {
  const one = (body: string, rest = '') =>
    errorsOf({ 'app/compose.yaml': web(body, rest) }, allow({ privileged: true, hostNetwork: true, hostNamespaces: true }));
  test.each<[string, string, string[]]>([
    [
      'sysctls list entry without =',
      'sysctls: [net.core.somaxconn]',
      ["app/compose.yaml:4:15: services.web.sysctls[0]: 'net.core.somaxconn' is not a sysctl (KEY=VALUE)"],
    ],
    [
      'a soft ulimit above the hard one',
      'ulimits: { nofile: { soft: 10, hard: 5 } }',
      ['app/compose.yaml:4:24: services.web.ulimits.nofile: the soft limit 10 is above the hard limit 5'],
    ],
    [
      'a ulimit that is no number',
      'ulimits: { nofile: lots }',
      ['app/compose.yaml:4:24: services.web.ulimits.nofile: must be a number, or soft and hard numbers (-1: unlimited)'],
    ],
    [
      'a relative tmpfs path',
      'tmpfs: [run]',
      ["app/compose.yaml:4:13: services.web.tmpfs[0]: 'run' must be an absolute path in the container (like /run or /tmp:size=64m)"],
    ],
    [
      'an extra host without an address',
      'extra_hosts: [db]',
      ["app/compose.yaml:4:19: services.web.extra_hosts[0]: 'db' is not a host entry (HOST:IP or HOST=IP)"],
    ],
    [
      'an extra host with a name for an address',
      'extra_hosts: { db: server }',
      ["app/compose.yaml:4:24: services.web.extra_hosts.db: 'server' is not an IP address (or host-gateway) for db"],
    ],
    [
      'a device with a relative path',
      'devices: ["dev/sda:/dev/sda"]',
      [
        "app/compose.yaml:4:15: services.web.devices[0]: 'dev/sda:/dev/sda' is not a device (HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], absolute paths, permissions of r, w, m)",
      ],
    ],
    [
      'a device with bad permissions',
      'devices: ["/dev/sda:/dev/sda:x"]',
      [
        "app/compose.yaml:4:15: services.web.devices[0]: '/dev/sda:/dev/sda:x' is not a device (HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], absolute paths, permissions of r, w, m)",
      ],
    ],
    [
      'an expose that is no port',
      'expose: ["http"]',
      ["app/compose.yaml:4:14: services.web.expose[0]: 'http' is not a port or range to expose (like 80, 8000-8010 or 53/udp)"],
    ],
    [
      'sizes, booleans and numbers',
      'shm_size: big\ninit: maybe\noom_score_adj: "2000"\nmem_swappiness: 101\ncpu_period: soon\ncpus: lots',
      [
        "app/compose.yaml:4:15: services.web.shm_size: 'big' is not a size (like 64m, 1g or 1073741824)",
        'app/compose.yaml:5:11: services.web.init: must be true or false',
        "app/compose.yaml:6:20: services.web.oom_score_adj: '2000' is not an OOM score adjustment from -1000 to 1000",
        "app/compose.yaml:7:21: services.web.mem_swappiness: '101' is not a swappiness from 0 to 100",
        "app/compose.yaml:8:17: services.web.cpu_period: 'soon' is not a number of microseconds or a duration (like 400ms)",
        "app/compose.yaml:9:11: services.web.cpus: 'lots' is not a number of CPUs (like 0.5 or 2)",
      ],
    ],
    [
      'modes berth does not know',
      'network_mode: weird\npid: private\nipc: service:db\nuts: private\nplatform: "linux amd64"',
      [
        "app/compose.yaml:4:19: services.web.network_mode: 'weird' is not a network mode (host, none, bridge, service:NAME or container:NAME)",
        "app/compose.yaml:5:10: services.web.pid: 'private' is not a PID mode berth supports (host or container:NAME)",
        "app/compose.yaml:6:10: services.web.ipc: 'service:db' is not an IPC mode berth supports (none, private, shareable, host or container:NAME)",
        "app/compose.yaml:7:10: services.web.uts: 'private' is not a UTS mode berth supports (host)",
        "app/compose.yaml:8:15: services.web.platform: 'linux amd64' is not a platform (os[/arch[/variant]], like linux/amd64)",
      ],
    ],
    [
      'a seccomp profile file',
      'security_opt: ["seccomp=./profile.json"]',
      [
        "app/compose.yaml:4:20: services.web.security_opt[0]: 'seccomp=./profile.json': berth passes no seccomp profile file to Docker (only seccomp=unconfined, under the repo's policy)",
      ],
    ],
    [
      'a bad device cgroup rule',
      "device_cgroup_rules: ['x 1:3 r']",
      ["app/compose.yaml:4:27: services.web.device_cgroup_rules[0]: 'x 1:3 r' is not a device cgroup rule (like 'c 1:3 mr')"],
    ],
    ['a bad MAC address', 'mac_address: 02:42', ["app/compose.yaml:4:18: services.web.mac_address: '02:42' is not a MAC address"]],
    [
      'a blkio device without a path',
      'blkio_config: { device_read_bps: [{ path: sda, rate: 1k }] }',
      ['app/compose.yaml:4:47: services.web.blkio_config.device_read_bps[0].path: must be the absolute path of a device (like /dev/sda)'],
    ],
    [
      'mem_limit other than deploy.resources.limits.memory',
      'mem_limit: 1g\ndeploy: { resources: { limits: { memory: 2g } } }',
      ['app/compose.yaml:4:16: services.web.mem_limit: 1073741824 differs from deploy.resources.limits.memory (2147483648): give one of them'],
    ],
    [
      'cpus other than deploy.resources.limits.cpus',
      'cpus: 1\ndeploy: { resources: { limits: { cpus: "0.5" } } }',
      ['app/compose.yaml:4:11: services.web.cpus: 1 differs from deploy.resources.limits.cpus (0.5): give one of them'],
    ],
    ['the same value in both is fine', 'cpus: 0.5\nmem_reservation: 1m\ndeploy: { resources: { limits: { cpus: "0.5" }, reservations: { memory: 1m } } }', []],
    [
      'scale other than deploy.replicas',
      'scale: 2\ndeploy: { replicas: 3 }',
      ['app/compose.yaml:4:12: services.web.scale: 2 differs from deploy.replicas (3): give one of them'],
    ],
    [
      'scale with mode: global',
      'scale: 2\ndeploy: { mode: global }',
      ['app/compose.yaml:4:12: services.web.scale: cannot be used with mode: global (a global service runs one replica on each eligible host)'],
    ],
  ])('%s', (_, body, expected) => {
    expect(one(body)).toEqual(expected);
  });
});

describe('network_mode', () => {
  const one = (compose: string) => errorsOf({ 'app/compose.yaml': compose }, allow({ hostNetwork: true }));
  test.each<[string, string, string[]]>([
    [
      "bridge, Docker's default network, with networks:",
      web('network_mode: bridge\nnetworks: [default]'),
      ['app/compose.yaml:4:19: services.web.network_mode: cannot be used together with networks: (with a network_mode the service joins no stack network)'],
    ],
    [
      'with networks:',
      web('network_mode: none\nnetworks: [default]'),
      ['app/compose.yaml:4:19: services.web.network_mode: cannot be used together with networks: (with a network_mode the service joins no stack network)'],
    ],
    [
      'host with ports',
      web('network_mode: host\nports: ["80:80"]'),
      ["app/compose.yaml:5:13: services.web.ports[0]: ports cannot be published with network_mode: host (the service's ports are the host's already)"],
    ],
    [
      'service: with ports, hostname and dns',
      `${web('network_mode: service:db\nports: ["80"]\nhostname: x\ndns: 1.1.1.1')}  db:\n    image: pg\n`,
      [
        'app/compose.yaml:5:13: services.web.ports[0]: ports cannot be published with network_mode: service:db (the container has no network of its own to publish from)',
        "app/compose.yaml:6:15: services.web.hostname: cannot be used with network_mode: service:db (the network is another container's)",
        "app/compose.yaml:7:10: services.web.dns: cannot be used with network_mode: service:db (the network is another container's)",
      ],
    ],
    [
      'service: of an unknown service',
      `${web('network_mode: service:dbb')}  db:\n    image: pg\n`,
      ["app/compose.yaml:4:19: services.web.network_mode: 'dbb' is not a service of this stack (did you mean 'db'?)"],
    ],
    ['service: of itself', web('network_mode: service:web'), ['app/compose.yaml:4:19: services.web.network_mode: a service cannot share its own network']],
    [
      'service: of a service that depends on it',
      `${web('network_mode: service:db')}  db:\n    image: pg\n    depends_on: [web]\n`,
      ['app/compose.yaml:4:19: services.web.network_mode: dependency cycle: web -> db -> web'],
    ],
    [
      'with start-first',
      web('network_mode: host\ndeploy: { update_config: { order: start-first } }'),
      [
        'app/compose.yaml:4:19: services.web.network_mode: cannot be used with order: start-first (the old and the new replica would share one network, and its ports)',
      ],
    ],
  ])('%s', (_, compose, expected) => {
    expect(one(compose)).toEqual(expected);
  });

  test("bridge: Docker's default bridge network, no stack network", () => {
    const s = serviceOf(web('network_mode: bridge\nports: ["80"]'));
    expect(s).toMatchObject({ networks: [], networkMode: 'bridge', ports: [{ target: 80, protocol: 'tcp' }] });
  });

  test('service:NAME starts after NAME and joins no stack network', () => {
    const stack = stackOf({ 'app/compose.yaml': `services:\n  vpn:\n    image: nginx\n    network_mode: service:db\n  db:\n    image: pg\n` }, 'app');
    expect(stack.services.map((s) => s.name)).toEqual(['db', 'vpn']);
    expect(stack.services[1]).toMatchObject({ networks: [], networkMode: 'service:db', dependsOn: [{ service: 'db', condition: 'service_started' }] });
    expect(stack.networks.map((n) => n.key)).toEqual(['default']); // db's
  });

  const hosts = (...names: string[]): HostInfo[] => names.map((name) => ({ name, labels: {}, state: 'up' }));
  const sidecar = (dbDeploy: string, vpnDeploy: string) =>
    stackOf(
      {
        'app/compose.yaml': `services:\n  db:\n    image: pg\n    deploy: ${dbDeploy}\n  vpn:\n    image: x\n    network_mode: service:db\n    deploy: ${vpnDeploy}\n`,
      },
      'app',
    );

  test('service:NAME is placed only where NAME has a replica, and joins its container there', () => {
    const placed = placeStack('r', sidecar('{ placement: { constraints: [node.hostname == b] } }', '{ replicas: 2 }'), hosts('a', 'b', 'c'), 'c1', []);
    expect(placed.map((d) => `${d.name}@${d.host} ${d.create.HostConfig?.NetworkMode}`)).toEqual([
      'app-db-1@b app_default',
      'app-vpn-1@b container:app-db-1',
      'app-vpn-2@b container:app-db-1',
    ]);
  });

  test("its spec hash follows NAME's, so that it is recreated with NAME", () => {
    const hashes = (dbDeploy: string) => placeStack('r', sidecar(dbDeploy, '{}'), hosts('a'), 'c1', []).map((d) => d.specHash);
    const [db1, vpn1] = hashes('{ resources: { limits: { memory: 1g } } }');
    const [db2, vpn2] = hashes('{ resources: { limits: { memory: 2g } } }');
    expect(db1).not.toBe(db2);
    expect(vpn1).not.toBe(vpn2);
  });

  test('a global service:NAME goes to each host of NAME only', () => {
    const placed = placeStack('r', sidecar('{ replicas: 2 }', '{ mode: global }'), hosts('a', 'b', 'c'), 'c1', []);
    expect(placed.map((d) => `${d.service}@${d.host}`)).toEqual(['db@a', 'db@b', 'vpn@a', 'vpn@b']);
  });

  test('no replica of NAME anywhere is a placement error naming why', () => {
    expect(() => placeStack('r', sidecar('{ replicas: 0 }', '{}'), hosts('a'), 'c1', [])).toThrow(
      new PlacementError('service vpn: cannot place replica 1 of 1: host a: runs no replica of db (network_mode: service:db)'),
    );
  });
});

describe('profiles', () => {
  const files = (profiles: string | undefined, compose: string) => ({
    'berth.yaml': `stacks:\n  - name: app\n    compose: app/compose.yaml\n${profiles ? `    profiles: ${profiles}\n` : ''}`,
    'app/compose.yaml': compose,
  });
  const COMPOSE =
    'services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug, all]\n  tools:\n    image: busybox\n    profiles: [tools]\n';
  test.each<[string, string | undefined, string[]]>([
    ['none active: only services without profiles', undefined, ['web']],
    ['one active', '[debug]', ['web', 'debug']],
    ["any of a service's profiles activates it", '[all, tools]', ['web', 'debug', 'tools']],
    ['an unknown profile activates nothing', '[nope]', ['web']],
  ])('%s', (_, profiles, services) => {
    expect(stackOf(files(profiles, COMPOSE), 'app').services.map((s) => s.name)).toEqual(services);
  });

  test('profiles in berth.yaml must be a list of names', () => {
    expect(errorsOf(files('debug', COMPOSE))).toEqual(['berth.yaml:4:15: stacks[0].profiles: must be a list']);
  });

  test('depending on a service that is not deployed is an error', () => {
    const compose = COMPOSE.replace('    image: nginx\n', '    image: nginx\n    depends_on: [debug]\n    network_mode: service:tools\n');
    expect(errorsOf(files(undefined, compose))).toEqual([
      "app/compose.yaml:5:19: services.web.network_mode: 'tools' is not deployed: none of its profiles (tools) is active for this stack (profiles: in berth.yaml)",
      "app/compose.yaml:4:18: services.web.depends_on[0]: 'debug' is not deployed: none of its profiles (debug, all) is active for this stack (profiles: in berth.yaml)",
    ]);
  });
});
