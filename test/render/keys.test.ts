// Every key of the Compose schema's service definition: honoured (what it becomes in Docker's
// create options or in the ServiceSpec), of no effect, or refused with a located message. A key
// of the schema without a row fails the test, so none can be forgotten.
import { describe, expect, test } from 'vitest';
import schema from '../../src/render/compose-spec.json' with { type: 'json' };
import type { RenderOptions, RepoPolicy, ServiceSpec } from '../../src/model.ts';
import { formatError } from '../../src/render/index.ts';
import { placeStack } from '../../src/schedule/place.ts';
import type { DesiredContainer } from '../../src/schedule/container.ts';
import { render } from './helpers.ts';

interface Row {
  /** the key's sample, written under `services.web` (which has `image: nginx`) */
  yaml: string;
  /** more of the file after the service: other services (indented 2) or top-level keys */
  rest?: string;
  /** other files of the repo */
  files?: Record<string, string>;
  /** the stack's `profiles:` in a berth.yaml */
  profiles?: string[];
  /** the repo's policy, for keys it gates (with `gatedBy`) */
  policy?: Partial<RepoPolicy>;
  /**
   * the policy setting the sample needs ('policy.capabilities'): without `policy` the sample is
   * refused, located, naming this setting; with it, honoured. A sample the strict policy refuses
   * fails its row unless the row says so here, so a gated key cannot be forgotten.
   */
  gatedBy?: string;
  /** honoured: what web's first replica's create options must contain */
  create?: object;
  /** honoured: what web's ServiceSpec must contain */
  spec?: Partial<ServiceSpec>;
  /** accepted with no effect: the container is exactly the one without the key */
  noEffect?: true;
  /** refused: the one error */
  refused?: string;
  /** honoured: the container's name */
  name?: string;
}

const at = (key: string, line = 4, col = 5) => `app/compose.yaml:${line}:${col}: services.web.${key}`;
const YET = (key: string) => `${at(key)}: not supported by berth yet`;
const WHY = (key: string, why: string) => `${at(key)}: not supported by berth: ${why}`;
const WINDOWS = 'for Windows containers only (berth runs Linux containers)';

const ROWS: Record<string, Row> = {
  annotations: {
    yaml: 'annotations: { com.example.team: web }',
    policy: { annotations: true },
    gatedBy: 'policy.annotations',
    create: { HostConfig: { Annotations: { 'com.example.team': 'web' } } },
  },
  attach: { yaml: 'attach: false', noEffect: true },
  blkio_config: {
    yaml: 'blkio_config:\n  weight: 300\n  weight_device: [{ path: /dev/sda, weight: 400 }]\n  device_read_bps: [{ path: /dev/sda, rate: 1mb }]\n  device_write_iops: [{ path: /dev/sda, rate: 30 }]',
    create: {
      HostConfig: {
        BlkioWeight: 300,
        BlkioWeightDevice: [{ Path: '/dev/sda', Weight: 400 }],
        BlkioDeviceReadBps: [{ Path: '/dev/sda', Rate: 2 ** 20 }],
        BlkioDeviceWriteIOps: [{ Path: '/dev/sda', Rate: 30 }],
      },
    },
  },
  build: {
    yaml: 'build: .',
    files: { 'app/Dockerfile': 'FROM busybox\n' },
    spec: { pullPolicy: 'missing', build: expect.objectContaining({ context: 'app', dockerfile: 'Dockerfile' }) as ServiceSpec['build'] },
    create: { Image: 'nginx' },
  },
  cap_add: {
    yaml: 'cap_add: [net_admin, CAP_SYS_TIME]',
    policy: { capabilities: ['NET_ADMIN', 'SYS_TIME'] },
    gatedBy: 'policy.capabilities',
    create: { HostConfig: { CapAdd: ['NET_ADMIN', 'SYS_TIME'] } },
  },
  cap_drop: { yaml: 'cap_drop: [ALL]', create: { HostConfig: { CapDrop: ['ALL'] } } },
  cgroup: { yaml: 'cgroup: private', create: { HostConfig: { CgroupnsMode: 'private' } } },
  cgroup_parent: {
    yaml: 'cgroup_parent: batch.slice',
    policy: { cgroupParent: true },
    gatedBy: 'policy.cgroupParent',
    create: { HostConfig: { CgroupParent: 'batch.slice' } },
  },
  command: { yaml: 'command: sleep 5', create: { Cmd: ['sleep', '5'] } },
  configs: {
    yaml: 'configs: [c]',
    rest: 'configs:\n  c: { content: x }\n',
    spec: { files: [expect.objectContaining({ kind: 'config', target: '/c', mode: 0o444 })] as ServiceSpec['files'] },
  },
  container_name: { yaml: 'container_name: web1', spec: { containerName: 'web1' }, name: 'web1' },
  cpu_count: { yaml: 'cpu_count: 2', refused: WHY('cpu_count', WINDOWS) },
  cpu_percent: { yaml: 'cpu_percent: 50', refused: WHY('cpu_percent', WINDOWS) },
  cpu_shares: { yaml: 'cpu_shares: 512', create: { HostConfig: { CpuShares: 512 } } },
  cpu_quota: { yaml: 'cpu_quota: 50000', create: { HostConfig: { CpuQuota: 50000 } } },
  cpu_period: { yaml: 'cpu_period: 100ms', create: { HostConfig: { CpuPeriod: 100000 } } },
  cpu_rt_period: { yaml: 'cpu_rt_period: 1000000', create: { HostConfig: { CpuRealtimePeriod: 1000000 } } },
  cpu_rt_runtime: { yaml: 'cpu_rt_runtime: 400ms', create: { HostConfig: { CpuRealtimeRuntime: 400000 } } },
  cpus: { yaml: 'cpus: 0.5', create: { HostConfig: { NanoCpus: 5e8 } }, spec: { limits: { cpus: 0.5 } } },
  cpuset: { yaml: 'cpuset: "0-1"', create: { HostConfig: { CpusetCpus: '0-1' } } },
  credential_spec: { yaml: 'credential_spec: { file: c.json }', refused: WHY('credential_spec', WINDOWS) },
  depends_on: { yaml: 'depends_on: [db]', rest: '  db:\n    image: postgres\n', spec: { dependsOn: [{ service: 'db', condition: 'service_started' }] } },
  deploy: { yaml: 'deploy: { replicas: 2 }', spec: { replicas: 2 } },
  develop: { yaml: 'develop:\n  watch: [{ path: ./src, action: sync, target: /app }]', noEffect: true },
  device_cgroup_rules: {
    yaml: "device_cgroup_rules: ['c 1:3 mr']",
    policy: { devices: true },
    gatedBy: 'policy.devices',
    create: { HostConfig: { DeviceCgroupRules: ['c 1:3 mr'] } },
  },
  devices: {
    yaml: 'devices: [/dev/fuse, "/dev/sda:/dev/xvda:r", { source: /dev/kvm, permissions: rw }]',
    policy: { devices: true },
    gatedBy: 'policy.devices',
    create: {
      HostConfig: {
        Devices: [
          { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' },
          { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'r' },
          { PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rw' },
        ],
      },
    },
  },
  dns: { yaml: 'dns: 1.1.1.1', create: { HostConfig: { Dns: ['1.1.1.1'] } } },
  dns_opt: { yaml: 'dns_opt: [use-vc, "timeout:2"]', create: { HostConfig: { DnsOptions: ['use-vc', 'timeout:2'] } } },
  dns_search: { yaml: 'dns_search: [a.example, b.example]', create: { HostConfig: { DnsSearch: ['a.example', 'b.example'] } } },
  domainname: { yaml: 'domainname: example.com', create: { Domainname: 'example.com' } },
  entrypoint: { yaml: 'entrypoint: [/tini, --]', create: { Entrypoint: ['/tini', '--'] } },
  env_file: { yaml: 'env_file: web.env', files: { 'app/web.env': 'A=1\n' }, create: { Env: ['A=1'] } },
  environment: { yaml: 'environment: { A: "1" }', create: { Env: ['A=1'] } },
  expose: { yaml: 'expose: ["3000", "53/udp", 8000-8001]', create: { ExposedPorts: { '3000/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} } } },
  extends: { yaml: 'extends: base', rest: '  base:\n    image: busybox\n    environment: { FROM: base }\n', create: { Image: 'nginx', Env: ['FROM=base'] } },
  external_links: {
    yaml: 'external_links: [redis]',
    refused: WHY('external_links', "a stack's containers reach only what is on its networks (join an external network under networks: instead)"),
  },
  extra_hosts: {
    yaml: 'extra_hosts: ["db.local:10.0.0.2", "gw=host-gateway", "v6:[::1]"]',
    create: { HostConfig: { ExtraHosts: ['db.local:10.0.0.2', 'gw:host-gateway', 'v6:::1'] } },
  },
  gpus: {
    yaml: 'gpus: all',
    policy: { devices: true },
    gatedBy: 'policy.devices',
    create: { HostConfig: { DeviceRequests: [{ Driver: '', Count: -1, DeviceIDs: [], Capabilities: [['gpu']], Options: {} }] } },
  },
  group_add: { yaml: 'group_add: [audio, 1000]', create: { HostConfig: { GroupAdd: ['audio', '1000'] } } },
  healthcheck: {
    yaml: 'healthcheck: { test: [CMD, "true"], start_period: 10s, start_interval: 1s }',
    create: { Healthcheck: { Test: ['CMD', 'true'], StartPeriod: 10e9, StartInterval: 1e9 } },
  },
  hostname: { yaml: 'hostname: web1', create: { Hostname: 'web1' } },
  image: { yaml: '', create: { Image: 'nginx' } },
  init: { yaml: 'init: true', create: { HostConfig: { Init: true } } },
  ipc: { yaml: 'ipc: shareable', create: { HostConfig: { IpcMode: 'shareable' } } },
  isolation: { yaml: 'isolation: process', refused: WHY('isolation', WINDOWS) },
  label_file: { yaml: 'label_file: web.labels', refused: `${at('label_file')}: not supported by berth yet (write the labels under labels:)` },
  labels: { yaml: 'labels: { team: web }', create: { Labels: { team: 'web' } } },
  links: {
    yaml: 'links: [db]',
    rest: '  db:\n    image: postgres\n',
    refused: WHY('links', "every service already answers to its name on the stack's network (give other names with networks: { NAME: { aliases: [...] } })"),
  },
  logging: {
    yaml: 'logging: { driver: json-file, options: { max-size: 10m, max-file: 3 } }',
    create: { HostConfig: { LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } } } },
  },
  mac_address: { yaml: 'mac_address: "02:42:ac:11:00:02"', create: { MacAddress: '02:42:ac:11:00:02' } },
  mem_limit: { yaml: 'mem_limit: 256m', create: { HostConfig: { Memory: 256 * 2 ** 20 } } },
  mem_reservation: { yaml: 'mem_reservation: 128m', create: { HostConfig: { MemoryReservation: 128 * 2 ** 20 } } },
  mem_swappiness: { yaml: 'mem_swappiness: 10', create: { HostConfig: { MemorySwappiness: 10 } } },
  memswap_limit: { yaml: 'mem_limit: 256m\nmemswap_limit: 1g', create: { HostConfig: { Memory: 256 * 2 ** 20, MemorySwap: 2 ** 30 } } },
  models: { yaml: 'models: [m]', refused: WHY('models', 'models are run by Docker Model Runner, not as containers') },
  network_mode: { yaml: 'network_mode: none', create: { HostConfig: { NetworkMode: 'none' } }, spec: { networks: [], networkMode: 'none' } },
  networks: { yaml: 'networks: [front]', rest: 'networks: { front: {} }\n', create: { HostConfig: { NetworkMode: 'app_front' } } },
  oom_kill_disable: { yaml: 'oom_kill_disable: true', policy: { oom: true }, gatedBy: 'policy.oom', create: { HostConfig: { OomKillDisable: true } } },
  oom_score_adj: { yaml: 'oom_score_adj: 500', create: { HostConfig: { OomScoreAdj: 500 } } },
  pid: { yaml: 'pid: host', policy: { hostNamespaces: true }, gatedBy: 'policy.hostNamespaces', create: { HostConfig: { PidMode: 'host' } } },
  pids_limit: { yaml: 'pids_limit: 100', create: { HostConfig: { PidsLimit: 100 } } },
  platform: { yaml: 'platform: linux/amd64', create: { platform: 'linux/amd64' } },
  ports: { yaml: 'ports: ["8080:80"]', create: { HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] } } } },
  post_start: { yaml: 'post_start: [{ command: echo hi }]', refused: `${at('post_start')}: not supported by berth yet (lifecycle hooks)` },
  pre_stop: { yaml: 'pre_stop: [{ command: echo bye }]', refused: `${at('pre_stop')}: not supported by berth yet (lifecycle hooks)` },
  privileged: { yaml: 'privileged: true', policy: { privileged: true }, gatedBy: 'policy.privileged', create: { HostConfig: { Privileged: true } } },
  profiles: { yaml: 'profiles: [debug]', profiles: ['debug'], create: { Image: 'nginx' } },
  provider: { yaml: 'provider: { type: awesomecloud }', refused: WHY('provider', 'a provider service is run by a Compose plugin, not as a container') },
  pull_policy: { yaml: 'pull_policy: always', spec: { pullPolicy: 'always' }, create: { Image: 'nginx' } },
  pull_refresh_after: { yaml: 'pull_refresh_after: 1h', refused: YET('pull_refresh_after') },
  read_only: { yaml: 'read_only: true', create: { HostConfig: { ReadonlyRootfs: true } } },
  restart: { yaml: 'restart: always', create: { HostConfig: { RestartPolicy: { Name: 'always' } } } },
  runtime: { yaml: 'runtime: runc', policy: { runtimes: ['runc'] }, gatedBy: 'policy.runtimes', create: { HostConfig: { Runtime: 'runc' } } },
  scale: { yaml: 'scale: 3', spec: { replicas: 3 } },
  secrets: {
    yaml: 'secrets: [s]',
    rest: 'secrets:\n  s: { file: s.txt }\n',
    files: { 'app/s.txt': 'x' },
    spec: { files: [expect.objectContaining({ kind: 'secret', target: '/run/secrets/s', mode: 0o444 })] as ServiceSpec['files'] },
  },
  security_opt: { yaml: 'security_opt: ["no-new-privileges:true"]', create: { HostConfig: { SecurityOpt: ['no-new-privileges:true'] } } },
  shm_size: { yaml: 'shm_size: 64m', create: { HostConfig: { ShmSize: 64 * 2 ** 20 } } },
  stdin_open: { yaml: 'stdin_open: true', create: { OpenStdin: true } },
  stop_grace_period: { yaml: 'stop_grace_period: 1m', create: { StopTimeout: 60 } },
  stop_signal: { yaml: 'stop_signal: SIGINT', create: { StopSignal: 'SIGINT' } },
  storage_opt: { yaml: 'storage_opt: { size: 1G }', create: { HostConfig: { StorageOpt: { size: '1G' } } } },
  sysctls: { yaml: 'sysctls: { net.core.somaxconn: 1024 }', create: { HostConfig: { Sysctls: { 'net.core.somaxconn': '1024' } } } },
  tmpfs: { yaml: 'tmpfs: [/run, "/tmp:size=64m,mode=1777"]', create: { HostConfig: { Tmpfs: { '/run': '', '/tmp': 'size=64m,mode=1777' } } } },
  tty: { yaml: 'tty: true', create: { Tty: true } },
  ulimits: {
    yaml: 'ulimits: { nofile: { soft: 1024, hard: 4096 }, nproc: 512 }',
    create: {
      HostConfig: {
        Ulimits: [
          { Name: 'nofile', Soft: 1024, Hard: 4096 },
          { Name: 'nproc', Soft: 512, Hard: 512 },
        ],
      },
    },
  },
  use_api_socket: {
    yaml: 'use_api_socket: true',
    refused: WHY(
      'use_api_socket',
      "it hands the host's Docker API to the container: bind-mount the socket instead, where the repo's policy allows it (policy.bindMounts)",
    ),
  },
  user: { yaml: 'user: "1000:1000"', create: { User: '1000:1000' } },
  userns_mode: {
    yaml: 'userns_mode: host',
    policy: { hostNamespaces: true },
    gatedBy: 'policy.hostNamespaces',
    create: { HostConfig: { UsernsMode: 'host' } },
  },
  uts: { yaml: 'uts: host', policy: { hostNamespaces: true }, gatedBy: 'policy.hostNamespaces', create: { HostConfig: { UTSMode: 'host' } } },
  volumes: {
    yaml: 'volumes: [data:/data]',
    rest: 'volumes: { data: {} }\n',
    create: { HostConfig: { Mounts: [{ Type: 'volume', Source: 'app_data', Target: '/data', ReadOnly: false }] } },
  },
  volumes_from: {
    yaml: 'volumes_from: [db]',
    rest: '  db:\n    image: postgres\n',
    refused: WHY('volumes_from', "a service's replicas may run on other hosts than the other service's: share a named volume instead"),
  },
  working_dir: { yaml: 'working_dir: /app', create: { WorkingDir: '/app' } },
};

/** Rows for berth's own additions beyond the schema's service keys. */
const OWNED_ELSEWHERE: Record<string, Row> = {
  'x-berth': { yaml: 'x-berth: { schedule: "*/5 * * * *" }', spec: { job: { kind: 'schedule', schedule: '*/5 * * * *', timeoutMs: 600_000 } } },
  'deploy.mode: replicated-job': { yaml: 'deploy: { mode: replicated-job }', spec: { job: { kind: 'once', timeoutMs: 600_000 } } },
};

/**
 * More samples of keys whose other values a policy gates (or does not), named "KEY (what)": the
 * row above shows one value of the key, these the others the policy decides on.
 */
const VALUES: Record<string, Row> = {
  'cap_add (a capability Docker gives anyway)': { yaml: 'cap_add: [CHOWN, kill]', create: { HostConfig: { CapAdd: ['CHOWN', 'KILL'] } } },
  'cap_add (every capability)': {
    yaml: 'cap_add: [ALL]',
    policy: { capabilities: ['ALL'] },
    gatedBy: 'policy.capabilities',
    create: { HostConfig: { CapAdd: ['ALL'] } },
  },
  'security_opt (an AppArmor profile)': { yaml: 'security_opt: ["apparmor=web-profile"]', create: { HostConfig: { SecurityOpt: ['apparmor=web-profile'] } } },
  'security_opt (SELinux off)': {
    yaml: 'security_opt: ["label:disable"]',
    policy: { securityOpt: ['label=disable'] },
    gatedBy: 'policy.securityOpt',
    create: { HostConfig: { SecurityOpt: ['label:disable'] } },
  },
  'sysctls (kernel.msgmax)': {
    yaml: 'sysctls: { kernel.msgmax: 65536 }',
    policy: { sysctls: ['kernel.msgmax'] },
    gatedBy: 'policy.sysctls',
    create: { HostConfig: { Sysctls: { 'kernel.msgmax': '65536' } } },
  },
  'logging (local)': { yaml: 'logging: { driver: local }', create: { HostConfig: { LogConfig: { Type: 'local', Config: {} } } } },
  'logging (syslog)': {
    yaml: 'logging: { driver: syslog }',
    policy: { logDrivers: ['syslog'] },
    gatedBy: 'policy.logDrivers',
    create: { HostConfig: { LogConfig: { Type: 'syslog', Config: {} } } },
  },
  'oom_score_adj (below 0)': { yaml: 'oom_score_adj: -500', policy: { oom: true }, gatedBy: 'policy.oom', create: { HostConfig: { OomScoreAdj: -500 } } },
  'network_mode (host)': {
    yaml: 'network_mode: host',
    policy: { hostNetwork: true },
    gatedBy: 'policy.hostNetwork',
    create: { HostConfig: { NetworkMode: 'host' } },
  },
  'network_mode (container:NAME)': {
    yaml: 'network_mode: container:proxy',
    policy: { joinContainers: ['proxy'] },
    gatedBy: 'policy.joinContainers',
    create: { HostConfig: { NetworkMode: 'container:proxy' } },
  },
  'ipc (host)': { yaml: 'ipc: host', policy: { hostNamespaces: true }, gatedBy: 'policy.hostNamespaces', create: { HostConfig: { IpcMode: 'host' } } },
  'cgroup (host)': {
    yaml: 'cgroup: host',
    policy: { hostNamespaces: true },
    gatedBy: 'policy.hostNamespaces',
    create: { HostConfig: { CgroupnsMode: 'host' } },
  },
  'volumes (a bind mount)': {
    yaml: 'volumes: [/srv/web:/data]',
    policy: { bindMounts: ['/srv/'] },
    gatedBy: 'policy.bindMounts',
    create: { HostConfig: { Mounts: [expect.objectContaining({ Type: 'bind', Source: '/srv/web', Target: '/data' })] } },
  },
  'networks (ipv4_address, on a network with an ipam subnet)': {
    yaml: 'networks:\n  back:\n    ipv4_address: 10.5.0.10',
    rest: 'networks:\n  back:\n    ipam: { config: [{ subnet: 10.5.0.0/16 }] }\n',
    spec: { networks: [{ key: 'back', aliases: [], ipv4Address: '10.5.0.10' }] },
    create: { HostConfig: { NetworkMode: 'app_back' } },
  },
  'networks (ipv6_address and link_local_ips)': {
    yaml: 'networks:\n  back:\n    ipv6_address: "fd00:5::10"\n    link_local_ips: [169.254.8.8]',
    rest: 'networks:\n  back:\n    enable_ipv6: true\n    ipam: { config: [{ subnet: "fd00:5::/64" }] }\n',
    spec: { networks: [{ key: 'back', aliases: [], ipv6Address: 'fd00:5::10', linkLocalIps: ['169.254.8.8'] }] },
  },
  'networks (ipv4_address with two replicas)': {
    yaml: 'networks:\n  back:\n    ipv4_address: 10.5.0.10\ndeploy: { replicas: 2 }',
    rest: 'networks:\n  back:\n    ipam: { config: [{ subnet: 10.5.0.0/16 }] }\n',
    refused: `${at('networks.back.ipv4_address', 6, 9)}: a fixed address is one container's, but the service asks for 2 replicas: use one replica, or drop the address`,
  },
  'build (on the host network)': {
    yaml: 'build: { context: ., network: host }',
    files: { 'app/Dockerfile': 'FROM busybox\n' },
    policy: { hostNetwork: true },
    gatedBy: 'policy.hostNetwork',
    spec: { build: expect.objectContaining({ network: 'host' }) as ServiceSpec['build'] },
  },
};

const STRICT: RepoPolicy = { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [] };

function files(row: Row): Record<string, string> {
  const body = row.yaml.replace(/^/gm, '    ');
  const out: Record<string, string> = { 'app/compose.yaml': `services:\n  web:\n    image: nginx\n${body}\n${row.rest ?? ''}`, ...row.files };
  if (row.profiles) out['berth.yaml'] = `stacks:\n  - name: app\n    compose: app/compose.yaml\n    profiles: [${row.profiles.join(', ')}]\n`;
  return out;
}

/** Renders a row: its errors, or web's spec and its first replica's container. */
function renderRow(row: Row): { errors: string[]; web?: ServiceSpec; container?: DesiredContainer } {
  const options: RenderOptions = { policy: { ...STRICT, ...row.policy } };
  const result = render(files(row), options);
  const errors = [...result.errors, ...result.stacks.flatMap((s) => (s.ok ? [] : s.errors))].map(formatError);
  const stack = result.stacks.find((s) => s.def.name === 'app');
  if (errors.length || !stack?.ok) return { errors };
  const desired = placeStack('repo', stack.stack, [{ name: 'h1', labels: {}, state: 'up' }], 'c1', []);
  return {
    errors,
    web: stack.stack.services.find((s) => s.name === 'web'),
    container: desired.find((d) => d.service === 'web' && d.slot === 1),
  };
}

describe('every service key of the Compose schema', () => {
  const schemaKeys = Object.keys(schema.definitions.service.properties);

  test('has a row (so that none is forgotten), and every row is a key of the schema', () => {
    expect(schemaKeys.filter((k) => !(k in ROWS))).toEqual([]);
    expect(Object.keys(ROWS).filter((k) => !schemaKeys.includes(k))).toEqual([]);
  });

  const rows = Object.entries({ ...ROWS, ...OWNED_ELSEWHERE, ...VALUES });

  test('a row with a policy names the setting it needs, and the policy holds that setting', () => {
    const policyKey = (gatedBy: string) => gatedBy.replace(/^policy\./, '');
    expect(rows.filter(([, r]) => (r.policy === undefined) !== (r.gatedBy === undefined)).map(([k]) => k)).toEqual([]);
    expect(rows.filter(([, r]) => r.gatedBy && !(policyKey(r.gatedBy) in r.policy!)).map(([k]) => k)).toEqual([]);
  });

  test.each(rows.filter(([, r]) => r.gatedBy))('%s is refused without its policy, located and naming the setting', (name, row) => {
    const { errors } = renderRow({ ...row, policy: undefined });
    expect(errors.length).toBeGreaterThan(0);
    const key = name.split(' ')[0];
    const setting = row.gatedBy!.replace(/[.]/g, '\\.');
    for (const e of errors) {
      expect(e).toMatch(
        new RegExp(
          `^app/compose\\.yaml:\\d+:\\d+: services\\.web\\.${key}\\b.* is not allowed for this repo: allow it with ${setting}: .* on the repo in berth's config$`,
        ),
      );
    }
  });

  test.each(rows.filter(([, r]) => r.refused))('%s is refused with file:line:col and the key', (_, row) => {
    expect(renderRow(row).errors).toEqual([row.refused]);
  });

  test.each(rows.filter(([, r]) => r.create || r.spec || r.name))('%s is honoured', (_, row) => {
    const { errors, web, container } = renderRow(row);
    expect(errors).toEqual([]);
    if (row.spec) expect(web).toMatchObject(row.spec);
    if (row.create) expect(container?.create).toMatchObject(row.create);
    if (row.name) expect(container?.name).toBe(row.name);
  });

  test.each(rows.filter(([, r]) => r.noEffect))('%s is accepted with no effect', (_, row) => {
    const plain = renderRow({ yaml: '' }).container;
    const { errors, container } = renderRow(row);
    expect(errors).toEqual([]);
    expect(container?.specHash).toBe(plain?.specHash);
    expect(container?.create).toEqual(plain?.create);
  });
});

describe('every top-level key of the Compose schema', () => {
  const TOP: Record<string, { yaml: string; files?: Record<string, string>; refused?: string }> = {
    version: { yaml: 'version: "3.9"' },
    name: { yaml: 'name: app' },
    include: { yaml: 'include: [lib.yaml]', files: { 'app/lib.yaml': 'services:\n  lib:\n    image: busybox\n' } },
    services: { yaml: '' },
    networks: { yaml: 'networks: { front: {} }' },
    volumes: { yaml: 'volumes: { data: {} }' },
    models: {
      yaml: 'models:\n  m: { model: ai/smollm2 }',
      refused: 'app/compose.yaml:4:1: models: not supported by berth: models are run by Docker Model Runner, not as containers',
    },
    secrets: { yaml: 'secrets:\n  s: { file: ./s.txt }', files: { 'app/s.txt': 's' } },
    configs: { yaml: 'configs:\n  c: { file: ./c.txt }', files: { 'app/c.txt': 'c' } },
  };

  test('has a row for each', () => {
    expect(Object.keys(schema.properties).filter((k) => !(k in TOP))).toEqual([]);
  });

  test.each(Object.entries(TOP))('%s', (_, row) => {
    const result = render({ 'app/compose.yaml': `services:\n  web:\n    image: nginx\n${row.yaml}\n`, ...row.files });
    const errors = result.stacks.flatMap((s) => (s.ok ? [] : s.errors)).map(formatError);
    expect(errors).toEqual(row.refused ? [row.refused] : []);
  });
});
