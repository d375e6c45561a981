import { describe, expect, test } from 'vitest';
import type { RenderOptions, ServiceSpec } from '../../src/model.ts';
import { STRICT_POLICY } from '../../src/render/index.ts';
import { ANY_BIND, errorsOf, render, serviceOf, stackOf } from './helpers.ts';

/** Compose's defaults for update_config and rollback_config. */
const UPDATE_DEFAULTS = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' } as const;

/** A compose file with one service "web" (image nginx) plus `body` under it. */
const web = (body: string, rest = '') => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n${rest}`;

describe('normalising each supported key', () => {
  test.each<[string, string, Partial<ServiceSpec>, Record<string, string>?]>([
    [
      'defaults',
      '',
      {
        name: 'web',
        image: 'nginx',
        environment: {},
        ports: [],
        volumes: [],
        labels: {},
        restart: 'no',
        dependsOn: [],
        pullPolicy: 'missing',
        files: [],
        networks: [{ key: 'default', aliases: [] }],
        mode: 'replicated',
        replicas: 1,
        placement: { constraints: [], spread: [] },
        reservations: {},
        limits: {},
        update: UPDATE_DEFAULTS,
        rollback: UPDATE_DEFAULTS,
      },
    ],
    ['command as a string, split like a shell', `command: sh -c 'echo "a b"' x\\ y "q\\"t"`, { command: ['sh', '-c', 'echo "a b"', 'x y', 'q"t'] }],
    ['command as a list', 'command: [sh, -c, "echo a && echo b"]', { command: ['sh', '-c', 'echo a && echo b'] }],
    ['entrypoint as a string', 'entrypoint: /bin/tini --', { entrypoint: ['/bin/tini', '--'] }],
    [
      'environment as a list; a bare KEY sets nothing',
      'environment: [B=2, A=1, EMPTY=, BARE, EQ=x=y]',
      { environment: { A: '1', B: '2', EMPTY: '', EQ: 'x=y' } },
    ],
    ['environment as a map', 'environment: { B: 2, A: true, F: 1.5, NUL: null, S: "s" }', { environment: { A: 'true', B: '2', F: '1.5', S: 's' } }],
    [
      'env_file, then environment over it (an env_file interpolates from itself, then .env)',
      'env_file: [a.env, { path: ../shared/b.env }, { path: none.env, required: false }]\nenvironment: { B: from-env }',
      { environment: { A: 'a', B: 'from-env', C: 'c-dot' } },
      { 'app/a.env': 'A=a\nB=from-a\n', 'shared/b.env': 'C=c-${A}\n', 'app/.env': 'A=dot' },
    ],
    ['env_file as a string', 'env_file: a.env', { environment: { X: '1' } }, { 'app/a.env': 'X=1' }],
    ['labels as a list', 'labels: [b=2, a=1, flag]', { labels: { a: '1', b: '2', flag: '' } }],
    ['labels as a map', 'labels: { com.example.x: y, n: 1 }', { labels: { 'com.example.x': 'y', n: '1' } }],
    [
      'ports, short syntax',
      'ports: [80, "81", "8080:82", "127.0.0.1:8443:443/udp", "[::1]:9090:90/sctp", "127.0.0.1::83", "8000-8010:84"]',
      {
        ports: [
          { target: 80, protocol: 'tcp' },
          { target: 81, protocol: 'tcp' },
          { target: 82, published: '8080', protocol: 'tcp' },
          { target: 443, published: '8443', hostIp: '127.0.0.1', protocol: 'udp' },
          { target: 90, published: '9090', hostIp: '::1', protocol: 'sctp' },
          { target: 83, hostIp: '127.0.0.1', protocol: 'tcp' },
          { target: 84, published: '8000-8010', protocol: 'tcp' },
        ],
      },
    ],
    [
      'port ranges expand to one port each',
      'ports: ["7000-7001:9000-9001", "6000-6001"]',
      {
        ports: [
          { target: 9000, published: '7000', protocol: 'tcp' },
          { target: 9001, published: '7001', protocol: 'tcp' },
          { target: 6000, protocol: 'tcp' },
          { target: 6001, protocol: 'tcp' },
        ],
      },
    ],
    [
      'ports, long syntax',
      'ports:\n  - { target: 80, published: 8080, host_ip: 0.0.0.0, protocol: udp, mode: host }\n  - { target: "${P}" }',
      {
        ports: [
          { target: 80, published: '8080', hostIp: '0.0.0.0', protocol: 'udp' },
          { target: 81, protocol: 'tcp' },
        ],
      },
      { 'app/.env': 'P=81' },
    ],
    [
      'volumes, short syntax',
      'volumes: [data:/data, "data2:/ro:ro", /anon, "/srv/x:/x:rw", "/etc/y:/y:ro"]',
      {
        volumes: [
          { type: 'volume', source: 'data', target: '/data', readOnly: false },
          { type: 'volume', source: 'data2', target: '/ro', readOnly: true },
          { type: 'volume', target: '/anon', readOnly: false },
          { type: 'bind', source: '/srv/x', target: '/x', readOnly: false },
          { type: 'bind', source: '/etc/y', target: '/y', readOnly: true },
        ],
      },
    ],
    [
      'volumes, long syntax',
      'volumes:\n  - { type: bind, source: /srv, target: /srv, read_only: true }\n  - { type: volume, source: data, target: /data }\n  - { type: volume, target: /anon }\n  - { type: tmpfs, target: /tmp }',
      {
        volumes: [
          { type: 'bind', source: '/srv', target: '/srv', readOnly: true },
          { type: 'volume', source: 'data', target: '/data', readOnly: false },
          { type: 'volume', target: '/anon', readOnly: false },
          { type: 'tmpfs', target: '/tmp', readOnly: false },
        ],
      },
    ],
    [
      'networks as a list',
      'networks: [front, default]',
      {
        networks: [
          { key: 'front', aliases: [] },
          { key: 'default', aliases: [] },
        ],
      },
    ],
    [
      'networks as a map with aliases',
      'networks:\n  front: { aliases: [www, web2] }\n  back:',
      {
        networks: [
          { key: 'front', aliases: ['www', 'web2'] },
          { key: 'back', aliases: [] },
        ],
      },
    ],
    [
      'healthcheck with a string test and durations',
      'healthcheck: { test: curl -f http://localhost, interval: 1m30s, timeout: 500ms, start_period: 1.5s, retries: 3 }',
      { healthcheck: { test: ['CMD-SHELL', 'curl -f http://localhost'], intervalNs: 90e9, timeoutNs: 500e6, startPeriodNs: 1.5e9, retries: 3 } },
    ],
    [
      'healthcheck with a list test',
      'healthcheck: { test: [CMD, pg_isready], retries: "5", interval: "0" }',
      { healthcheck: { test: ['CMD', 'pg_isready'], retries: 5, intervalNs: 0 } },
    ],
    ['healthcheck disabled', 'healthcheck: { disable: true }', { healthcheck: { test: ['NONE'] } }],
    ["healthcheck without test keeps the image's", 'healthcheck: { interval: 10s }', { healthcheck: { test: [], intervalNs: 10e9 } }],
    [
      'restart, user, working_dir, stop_signal',
      'restart: on-failure:3\nuser: "1000:1000"\nworking_dir: /app\nstop_signal: SIGINT',
      { restart: 'on-failure:3', user: '1000:1000', workingDir: '/app', stopSignal: 'SIGINT' },
    ],
    ['restart: no stays a string', 'restart: no', { restart: 'no' }],
    ['stop_grace_period in whole seconds', 'stop_grace_period: 1m30s', { stopGracePeriodSeconds: 90 }],
    ['stop_grace_period below a second', 'stop_grace_period: 500ms', { stopGracePeriodSeconds: 0 }],
    ['deploy.replicas, interpolated', 'deploy: { mode: replicated, replicas: "${N}" }', { replicas: 3 }, { 'app/.env': 'N=3' }],
    ['deploy.replicas 0', 'deploy: { replicas: 0 }', { replicas: 0 }],
    ['x- keys and version are ignored', 'x-note: hi', {}],
  ])('%s', (_, body, expected, extra = {}) => {
    const compose = web(body, 'version: "3.9"\nname: app\nx-top: { a: 1 }\nnetworks: { front: {}, back: {} }\nvolumes: { data: {}, data2: {} }\n');
    expect(serviceOf(compose, { 'app/a.env': '', ...extra }, ANY_BIND)).toMatchObject(expected);
  });

  test('environment keys and labels come out sorted', () => {
    const s = serviceOf(web('environment: { Z: 1, A: 2, M: 3 }\nlabels: [z=1, a=2]'));
    expect(Object.keys(s.environment)).toEqual(['A', 'M', 'Z']);
    expect(Object.keys(s.labels)).toEqual(['a', 'z']);
  });

  test('depends_on as a list and a map; services in start order, otherwise file order', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': `services:
  web:
    image: web
    depends_on: { api: { condition: service_healthy }, cache: { condition: service_started } }
  api:
    image: api
    depends_on: [db]
  cache:
    image: redis
  db:
    image: postgres
    deploy: { mode: replicated-job }
  job:
    image: job
    depends_on:
      db: { condition: service_completed_successfully }
`,
      },
      'app',
    );
    expect(stack.services.map((s) => s.name)).toEqual(['cache', 'db', 'api', 'web', 'job']);
    expect(stack.services.find((s) => s.name === 'web')?.dependsOn).toEqual([
      { service: 'api', condition: 'service_healthy' },
      { service: 'cache', condition: 'service_started' },
    ]);
    expect(stack.services.find((s) => s.name === 'api')?.dependsOn).toEqual([{ service: 'db', condition: 'service_started' }]);
  });

  test('YAML anchors and merge keys', () => {
    const s = serviceOf(`x-base: &base
  restart: always
  environment: { A: "1" }
services:
  web:
    <<: *base
    image: nginx
`);
    expect(s).toMatchObject({ restart: 'always', environment: { A: '1' } });
  });
});

/** A policy that lists the outside networks and volumes the first case names. */
const OUTSIDE: RenderOptions = { policy: { ...STRICT_POLICY, externalNetworks: ['outside', 'custom-*'], externalVolumes: ['shared-data', 'real-ext'] } };

describe('networks and volumes of a stack', () => {
  test('names, external, driver, labels; the implicit default network', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': `services:
  web:
    image: nginx
    volumes: [data:/data, shared:/shared, ext:/ext]
  worker:
    image: w
    networks: [back, outside]
networks:
  back: { driver: overlay, labels: [tier=back] }
  outside: { external: true }
  unused: { name: custom-net, labels: { a: b } }
volumes:
  data:
  shared: { name: shared-data, driver: local }
  ext: { external: "true", name: real-ext }
`,
      },
      'app',
      OUTSIDE,
    );
    expect(stack.networks).toEqual([
      { key: 'default', name: 'app_default', external: false, labels: {} },
      { key: 'back', name: 'app_back', external: false, driver: 'overlay', labels: { tier: 'back' } },
      { key: 'outside', name: 'outside', external: true, labels: {}, reach: 'policy' },
      { key: 'unused', name: 'custom-net', external: false, labels: { a: 'b' }, reach: 'policy' },
    ]);
    expect(stack.volumes).toEqual([
      { key: 'data', name: 'app_data', external: false, labels: {} },
      { key: 'shared', name: 'shared-data', external: false, driver: 'local', labels: {}, reach: 'policy' },
      { key: 'ext', name: 'real-ext', external: true, labels: {}, reach: 'policy' },
    ]);
    expect(stack.services[0].networks).toEqual([{ key: 'default', aliases: [] }]);
  });

  test('no default network when no service uses it; a declared default is used as declared', () => {
    const only = stackOf({ 'app/compose.yaml': 'services:\n  w:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n' }, 'app');
    expect(only.networks.map((n) => n.key)).toEqual(['n']);
    const declared = stackOf({ 'app/compose.yaml': 'services:\n  w:\n    image: x\nnetworks:\n  default: { name: app_shared }\n' }, 'app');
    expect(declared.networks).toEqual([{ key: 'default', name: 'app_shared', external: false, labels: {}, reach: 'repo' }]);
  });

  test("a name of its own reaches the repo's own stacks' names, or what the policy lists; nothing else", () => {
    const files = (resources: string) => ({
      'app/compose.yaml': `services:\n  w:\n    image: x\n    networks: [n]\n    volumes: [v:/v]\n${resources}`,
      'other/compose.yaml': 'services:\n  o:\n    image: x\n',
    });
    // another stack of the same repo
    const own = stackOf(files('networks:\n  n: { external: true, name: other_default }\nvolumes:\n  v: { name: other_data }\n'), 'app');
    expect(own.networks.map((n) => [n.name, n.reach])).toEqual([['other_default', 'repo']]);
    expect(own.volumes.map((v) => [v.name, v.reach])).toEqual([['other_data', 'repo']]);
    // a stack this repo does not define, a name of nobody's stack, Docker's own networks
    expect(errorsOf(files('networks:\n  n: { external: true, name: billing_default }\nvolumes:\n  v: { external: true }\n'))).toEqual([
      `app/compose.yaml:7:3: networks.n: the network billing_default is not one of this repo's stacks' (<stack>_...): reaching it is not allowed for this repo: allow it with policy.externalNetworks: ["billing_default"] on the repo in berth's config`,
      `app/compose.yaml:9:3: volumes.v: the volume v is not one of this repo's stacks' (<stack>_...): reaching it is not allowed for this repo: allow it with policy.externalVolumes: ["v"] on the repo in berth's config`,
    ]);
    for (const name of ['host', 'none', 'bridge']) {
      expect(errorsOf(files(`networks:\n  n: { external: true, name: ${name} }\nvolumes:\n  v:\n`))).toEqual([
        `app/compose.yaml:7:3: networks.n: the network ${name} is Docker's own: use network_mode: ${name} on the services instead`,
      ]);
    }
    // listed by name or prefix
    const listed = { policy: { ...STRICT_POLICY, externalNetworks: ['proxy', 'billing_*'], externalVolumes: ['backups'] } };
    const allowed = stackOf(
      files('networks:\n  n: { external: true, name: billing_default }\nvolumes:\n  v: { external: true, name: backups }\n'),
      'app',
      listed,
    );
    expect([...allowed.networks, ...allowed.volumes].map((r) => r.reach)).toEqual(['policy', 'policy']);
  });
});

describe('merging compose files in order', () => {
  test('Compose merge rules', () => {
    const files = {
      'berth.yaml': 'stacks:\n  - name: shop\n    compose: [shop/compose.yaml, shop/prod/override.yaml]\n',
      'shop/.env': 'TAG=2\n',
      'shop/base.env': 'FROM_BASE=1\n',
      'shop/prod/prod.env': 'FROM_PROD=1\n',
      'shop/compose.yaml': `services:
  web:
    image: web:1
    command: [serve, --debug]
    environment: [A=1, B=1]
    env_file: base.env
    labels: { a: "1", b: "1" }
    ports: ["80:80", "443:443"]
    volumes: [data:/data, /srv/logs:/logs]
    networks: { front: { aliases: [www] } }
    depends_on: [db]
    healthcheck: { test: [CMD, check], interval: 10s, retries: 3 }
    restart: always
    deploy: { replicas: 2 }
  db:
    image: postgres
networks:
  front: { labels: { a: "1" } }
volumes:
  data:
`,
      'shop/prod/override.yaml': `services:
  web:
    image: web:\${TAG}
    command: serve
    environment: { B: "2", C: "3" }
    env_file: [prod.env]
    labels: [b=2]
    ports: ["80:80", "8080:8080"]
    volumes: [/srv/data:/data]
    networks: { front: { aliases: [w2] }, back: }
    depends_on: { cache: { condition: service_healthy } }
    healthcheck: { test: "check2", timeout: 1s }
  cache:
    image: redis
networks:
  front: { labels: { b: "2" }, driver: bridge }
  back:
`,
    };
    const stack = stackOf(files, 'shop', ANY_BIND);
    expect(stack.composeFiles).toEqual(['shop/compose.yaml', 'shop/prod/override.yaml']);
    expect(stack.services.map((s) => s.name)).toEqual(['db', 'cache', 'web']);
    const w = stack.services.find((s) => s.name === 'web');
    expect(w).toEqual({
      name: 'web',
      image: 'web:2',
      command: ['serve'],
      environment: { A: '1', B: '2', C: '3', FROM_BASE: '1', FROM_PROD: '1' },
      labels: { a: '1', b: '2' },
      ports: [
        { target: 80, published: '80', protocol: 'tcp' },
        { target: 443, published: '443', protocol: 'tcp' },
        { target: 8080, published: '8080', protocol: 'tcp' },
      ],
      volumes: [
        { type: 'bind', source: '/srv/data', target: '/data', readOnly: false },
        { type: 'bind', source: '/srv/logs', target: '/logs', readOnly: false },
      ],
      networks: [
        { key: 'front', aliases: ['www', 'w2'] },
        { key: 'back', aliases: [] },
      ],
      dependsOn: [
        { service: 'db', condition: 'service_started' },
        { service: 'cache', condition: 'service_healthy' },
      ],
      pullPolicy: 'missing',
      files: [],
      healthcheck: { test: ['CMD-SHELL', 'check2'], intervalNs: 10e9, timeoutNs: 1e9, retries: 3 },
      restart: 'always',
      mode: 'replicated',
      replicas: 2,
      placement: { constraints: [], spread: [] },
      reservations: {},
      limits: {},
      update: UPDATE_DEFAULTS,
      rollback: UPDATE_DEFAULTS,
    });
    expect(stack.networks).toEqual([
      { key: 'default', name: 'shop_default', external: false, labels: {} },
      { key: 'front', name: 'shop_front', external: false, driver: 'bridge', labels: { a: '1', b: '2' } },
      { key: 'back', name: 'shop_back', external: false, labels: {} },
    ]);
  });
});

describe('refusals', () => {
  const one = (compose: string, extra: Record<string, string> = {}) => errorsOf({ 'app/compose.yaml': compose, ...extra }, ANY_BIND);
  test.each<[string, string, string[]]>([
    [
      'an unsupported service key',
      web('credential_spec: { file: x }\nvolumes_from: [db]'),
      [
        'app/compose.yaml:4:5: services.web.credential_spec: not supported by berth: for Windows containers only (berth runs Linux containers)',
        "app/compose.yaml:5:5: services.web.volumes_from: not supported by berth: a service's replicas may run on other hosts than the other service's: share a named volume instead",
      ],
    ],
    [
      'an unsupported nested key',
      web('deploy:\n  replicas: 2\n  restart_policy: { condition: any }\nhealthcheck: { test: x, start_interval: 1s }'),
      ['app/compose.yaml:6:7: services.web.deploy.restart_policy: not supported by berth yet'],
    ],
    [
      'unsupported keys of networks, volumes, env_file, ports',
      web(
        'env_file: [{ path: a.env, format: raw }]\nports: [{ target: 80, app_protocol: http }]',
        'networks:\n  n: { internal: true }\nvolumes:\n  v: { driver_opts: { type: nfs } }\n',
      ),
      [
        'app/compose.yaml:4:31: services.web.env_file[0].format: not supported by berth yet',
        'app/compose.yaml:5:27: services.web.ports[0].app_protocol: not supported by berth yet',
        'app/compose.yaml:7:8: networks.n.internal: not supported by berth yet',
        'app/compose.yaml:9:8: volumes.v.driver_opts: not supported by berth yet',
      ],
    ],
    [
      'a typo under x-berth',
      web('x-berth: { shedule: "* * * * *" }'),
      ["app/compose.yaml:4:16: services.web.x-berth.shedule: unknown key (did you mean 'schedule'?)"],
    ],
    ['a typo, with a suggestion', web('enviroment: { A: 1 }'), ["app/compose.yaml:4:5: services.web: unknown key 'enviroment' (did you mean 'environment'?)"]],
    ['a typo far from any key', web('flavour: vanilla'), ["app/compose.yaml:4:5: services.web: unknown key 'flavour'"]],
    ['a typo at the top level', 'servces:\n  web:\n    image: x\n', ["app/compose.yaml:1:1: unknown key 'servces' (did you mean 'services'?)"]],
    [
      'a typo in a long-syntax volume',
      web('volumes:\n  - { type: bind, sorce: /a, target: /b }'),
      ["app/compose.yaml:5:23: services.web.volumes[0]: unknown key 'sorce' (did you mean 'source'?)"],
    ],
    [
      'a wrong type',
      web('ports: "80:80"\nenvironment: A=1'),
      ['app/compose.yaml:4:12: services.web.ports: must be a list', 'app/compose.yaml:5:18: services.web.environment: must be a mapping or a list'],
    ],
    [
      'a bind mount of a home folder',
      web('volumes: [{ type: bind, source: ~/x, target: /x }]'),
      [
        "app/compose.yaml:4:15: services.web.volumes[0]: '~/x' is a path in someone's home folder, which remote hosts do not share: use a path relative to the compose file (a file or folder of the repository, copied into the container), an absolute host path, or a named volume",
      ],
    ],
    [
      'a relative bind mount of what the repository does not have',
      web('volumes: ["./data:/data"]'),
      [
        "app/compose.yaml:4:15: services.web.volumes[0]: 'app/data' is not a file or folder of the repository; berth copies repo files into the container, and keeps data in named volumes (declare one under the top-level volumes:)",
      ],
    ],
    [
      'a relative bind mount outside the repository',
      web('volumes: ["../../x:/x"]'),
      ["app/compose.yaml:4:15: services.web.volumes[0]: '../../x' points outside the repository"],
    ],
    [
      'unsupported mount options and types',
      web('volumes: ["/a:/a:z", { type: npipe, source: x, target: /x }]'),
      [
        "app/compose.yaml:4:15: services.web.volumes[0]: mount option 'z' is not supported by berth yet (only ro, rw)",
        "app/compose.yaml:4:26: services.web.volumes[1]: type 'npipe' is not supported by berth yet (bind, volume, tmpfs)",
      ],
    ],
    ['a missing image', 'services:\n  web:\n    restart: always\n', ['app/compose.yaml:2:3: services.web: needs image: or build:']],
    ['an empty image', web('').replace('image: nginx', 'image: ${IMG}'), ['app/compose.yaml:3:12: services.web.image: is empty (is a variable unset?)']],
    [
      'an undeclared network',
      web('networks: [front, back]', 'networks: { front: {} }\n'),
      ["app/compose.yaml:4:23: services.web.networks[1]: network 'back' is not declared under the top-level networks:"],
    ],
    [
      'an undeclared network in map form',
      web('networks:\n  back: { aliases: [b] }'),
      ["app/compose.yaml:5:7: services.web.networks.back: network 'back' is not declared under the top-level networks:"],
    ],
    [
      'two mounts at one target',
      web('volumes: [/a:/data, /b:/data]'),
      ['app/compose.yaml:4:25: services.web.volumes[1]: another mount already uses the target /data'],
    ],
    [
      'an undeclared volume',
      web('volumes: [data:/data]'),
      ["app/compose.yaml:4:15: services.web.volumes[0]: volume 'data' is not declared under the top-level volumes:"],
    ],
    [
      'depends_on an unknown service',
      web('depends_on: [dbb]', '  db:\n    image: pg\n'),
      ["app/compose.yaml:4:18: services.web.depends_on[0]: 'dbb' is not a service of this stack (did you mean 'db'?)"],
    ],
    [
      'a depends_on cycle',
      'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: { a: { condition: service_started } }\n',
      ['app/compose.yaml:4:18: services.a.depends_on[0]: dependency cycle: a -> b -> a'],
    ],
    ['depending on itself', web('depends_on: [web]'), ['app/compose.yaml:4:18: services.web.depends_on[0]: dependency cycle: web -> web']],
    [
      "a name other than the stack's",
      web('', 'name: other\n'),
      ["app/compose.yaml:5:7: name: the project name 'other' must be the stack's name 'app' (or leave name: out)"],
    ],
    [
      'bad values',
      web(
        'restart: sometimes\nstop_grace_period: 10 s\nports: ["80:80:80:80x", "1-3:4-5", 70000]\ndeploy: { mode: every-node, replicas: many }\nhealthcheck: { test: [curl], interval: 5x }',
      ),
      [
        "app/compose.yaml:4:14: services.web.restart: 'sometimes' is not a restart policy (no, always, on-failure[:N], unless-stopped)",
        "app/compose.yaml:5:24: services.web.stop_grace_period: '10 s' is not a duration (like 30s, 1m30s or 500ms)",
        "app/compose.yaml:6:13: services.web.ports[0]: '80:80:80:80x' is not a port mapping ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])",
        "app/compose.yaml:6:29: services.web.ports[1]: '1-3:4-5': the host and container port ranges must be the same length",
        'app/compose.yaml:6:40: services.web.ports[2]: 70000 is not a port number',
        "app/compose.yaml:7:21: services.web.deploy.mode: 'every-node' is not a deploy mode (replicated, global, replicated-job or global-job)",
        "app/compose.yaml:7:43: services.web.deploy.replicas: 'many' is not a number of replicas",
        'app/compose.yaml:8:26: services.web.healthcheck.test: a list must start with CMD, CMD-SHELL or NONE',
        "app/compose.yaml:8:44: services.web.healthcheck.interval: '5x' is not a duration (like 30s, 1m30s or 500ms)",
      ],
    ],
    [
      'a port mode other than host',
      web('ports: [{ target: 80, mode: ingress }]'),
      ["app/compose.yaml:4:13: services.web.ports[0]: mode 'ingress' is not supported by berth yet (ports are published on the host that runs each container)"],
    ],
    [
      'a missing env_file',
      web('env_file: [missing.env]'),
      ['app/compose.yaml:4:16: services.web.env_file[0]: app/missing.env does not exist in the repository'],
    ],
    [
      'an env_file outside the repo',
      web('env_file: ../../x.env'),
      ["app/compose.yaml:4:15: services.web.env_file: '../../x.env' points outside the repository"],
    ],
    [
      'a YAML syntax error',
      'services:\n  web:\n    image: [x\n',
      ['app/compose.yaml:4:1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ],
    ['duplicate keys', 'services:\n  web:\n    image: x\n    image: y\n', ['app/compose.yaml:4:5: Map keys must be unique']],
    ['an empty file', '', ['app/compose.yaml: must be a mapping']],
  ])('%s', (_, compose, expected) => {
    expect(one(compose)).toEqual(expected);
  });

  test('an error in a value merged in with << points into the anchor', () => {
    expect(one('x-base: &base\n  restart: sometimes\nservices:\n  web:\n    <<: *base\n    image: x\n')).toEqual([
      "app/compose.yaml:2:12: services.web.restart: 'sometimes' is not a restart policy (no, always, on-failure[:N], unless-stopped)",
    ]);
  });

  test('an env_file with a syntax error is located in that file', () => {
    expect(one(web('env_file: bad.env'), { 'app/bad.env': 'OK=1\nA="open\n' })).toEqual(['app/bad.env:2:3: A: the double quote is never closed']);
  });

  test('errors in a second compose file name that file', () => {
    const files = {
      'berth.yaml': 'stacks:\n  - name: app\n    compose: [a.yaml, b.yaml]\n',
      'a.yaml': 'services:\n  web:\n    image: x\n',
      'b.yaml': 'services:\n  web:\n    networks: [nope]\n',
    };
    expect(errorsOf(files)).toEqual(["b.yaml:3:16: services.web.networks[0]: network 'nope' is not declared under the top-level networks:"]);
  });

  test('image may come from a later file; without it the error is at the first definition', () => {
    const files = (second: string) => ({
      'berth.yaml': 'stacks:\n  - name: app\n    compose: [a.yaml, b.yaml]\n',
      'a.yaml': 'x-pad: 1\nservices:\n  web:\n    restart: always\n',
      'b.yaml': `services:\n  web:\n${second}`,
    });
    expect(errorsOf(files('    image: x\n'))).toEqual([]);
    expect(errorsOf(files('    user: root\n'))).toEqual(['a.yaml:3:3: services.web: needs image: or build:']);
  });
});

describe('one broken stack', () => {
  test('does not stop the others from rendering', () => {
    const result = render({
      'good/compose.yaml': 'services:\n  web:\n    image: nginx\n',
      'bad/compose.yaml': 'services:\n  web:\n    image: nginx\n    build: .\n',
      'ugly/compose.yaml': 'services: [\n',
    });
    expect(result.errors).toEqual([]);
    expect(result.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['bad', false],
      ['good', true],
      ['ugly', false],
    ]);
    const good = result.stacks[1];
    expect(good.ok && good.stack.services.map((s) => s.image)).toEqual(['nginx']);
  });
});
