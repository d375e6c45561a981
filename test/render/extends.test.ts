// extends: and include:, rendered from inline repos.
import { describe, expect, test } from 'vitest';
import { STRICT_POLICY } from '../../src/render/index.ts';
import { errorsOf, stackOf } from './helpers.ts';

describe('extends', () => {
  test('a service of the same file: the base merged under the extending one', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': `services:
  base:
    image: busybox
    environment: { A: base, B: base }
    cap_add: [CHOWN]
    healthcheck: { test: [CMD, check], interval: 5s }
  web:
    extends: base
    image: nginx
    environment: { B: web }
    cap_add: [NET_ADMIN]
    healthcheck: { timeout: 1s }
`,
      },
      'app',
      { policy: { ...STRICT_POLICY, capabilities: ['NET_ADMIN'] } },
    );
    const web = stack.services.find((s) => s.name === 'web');
    expect(web).toMatchObject({
      image: 'nginx',
      environment: { A: 'base', B: 'web' },
      healthcheck: { test: ['CMD', 'check'], intervalNs: 5e9, timeoutNs: 1e9 },
      extras: { hostConfig: { CapAdd: ['CHOWN', 'NET_ADMIN'] } },
    });
  });

  test('a service of another file (relative to the extending one), read with the same variables', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': 'services:\n  web:\n    extends: { file: ../common/base.yaml, service: base }\n    environment: { OWN: "1" }\n',
        'common/base.yaml': 'services:\n  base:\n    image: "nginx:${TAG}"\n    env_file: base.env\n',
        'common/base.env': 'FROM_FILE=yes\n',
        'app/.env': 'TAG=1.27\n',
      },
      'app',
    );
    expect(stack.services).toMatchObject([{ name: 'web', image: 'nginx:1.27', environment: { FROM_FILE: 'yes', OWN: '1' } }]);
  });

  test('a chain: web extends mid extends root, across files', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': 'services:\n  web:\n    extends: { file: mid.yaml, service: mid }\n    labels: { level: web }\n',
        'app/mid.yaml':
          'services:\n  mid:\n    extends: root\n    labels: { level: mid, mid: "yes" }\n  root:\n    image: busybox\n    labels: { level: root, root: "yes" }\n',
      },
      'app',
    );
    expect(stack.services).toMatchObject([{ name: 'web', image: 'busybox', labels: { level: 'web', mid: 'yes', root: 'yes' } }]);
  });

  test.each<[string, Record<string, string>, string[]]>([
    [
      'a cycle',
      { 'app/compose.yaml': 'services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: a\n' },
      ['app/compose.yaml:6:14: services.b.extends: extends cycle: a -> b -> a'],
    ],
    [
      'extending itself',
      { 'app/compose.yaml': 'services:\n  a:\n    image: x\n    extends: a\n' },
      ['app/compose.yaml:4:14: services.a.extends: extends cycle: a -> a'],
    ],
    [
      'a cycle across files',
      {
        'app/compose.yaml': 'services:\n  a:\n    image: x\n    extends: { file: other.yaml, service: b }\n',
        'app/other.yaml': 'services:\n  b:\n    extends: { file: compose.yaml, service: a }\n',
      },
      ['app/other.yaml:3:14: services.b.extends: extends cycle: a -> b -> a'],
    ],
    [
      'an unknown service, with a hint',
      { 'app/compose.yaml': 'services:\n  base:\n    image: x\n  web:\n    extends: bsae\n' },
      ["app/compose.yaml:5:14: services.web.extends: service 'bsae' is not defined in app/compose.yaml (did you mean 'base'?)"],
    ],
    [
      'a file that does not exist',
      { 'app/compose.yaml': 'services:\n  web:\n    extends: { file: nope.yaml, service: base }\n' },
      ['app/compose.yaml:3:14: services.web.extends: app/nope.yaml does not exist in the repository'],
    ],
    [
      'a file outside the repository',
      { 'app/compose.yaml': 'services:\n  web:\n    image: x\n    extends: { file: ../../x.yaml, service: base }\n' },
      ["app/compose.yaml:4:22: services.web.extends.file: '../../x.yaml' must be a path inside the repository, relative to the compose file"],
    ],
    [
      "an error inside the base points into the base's file",
      {
        'app/compose.yaml': 'services:\n  web:\n    extends: { file: base.yaml, service: base }\n',
        'app/base.yaml': 'services:\n  base:\n    image: x\n    restart: sometimes\n    sysctls: [bad]\n',
      },
      [
        "app/base.yaml:4:14: services.base.restart: 'sometimes' is not a restart policy (no, always, on-failure[:N], unless-stopped)",
        "app/base.yaml:5:15: services.base.sysctls[0]: 'bad' is not a sysctl (KEY=VALUE)",
      ],
    ],
    [
      'a refused key inside the base',
      {
        'app/compose.yaml': 'services:\n  web:\n    extends: { file: base.yaml, service: base }\n',
        'app/base.yaml': 'services:\n  base:\n    image: x\n    links: [db]\n',
      },
      [
        "app/base.yaml:4:5: services.base.links: not supported by berth: every service already answers to its name on the stack's network (give other names with networks: { NAME: { aliases: [...] } })",
      ],
    ],
    [
      'a missing image is reported at the extending service',
      { 'app/compose.yaml': 'services:\n  base:\n    restart: always\n  web:\n    extends: base\n' },
      ['app/compose.yaml:2:3: services.base: needs image: or build:', 'app/compose.yaml:4:3: services.web: needs image: or build:'],
    ],
  ])('%s', (_, files, expected) => {
    expect(errorsOf(files)).toEqual(expected);
  });
});

describe('include', () => {
  test("the included files' services, networks and volumes join the stack; each include has its own .env", () => {
    const stack = stackOf(
      {
        'app/compose.yaml':
          'include:\n  - ../db/compose.yaml\n  - { path: [../cache/a.yaml, ../cache/b.yaml], env_file: ../cache/cache.env }\nservices:\n  web:\n    image: nginx\n    depends_on: [db, cache]\n',
        'db/compose.yaml':
          'services:\n  db:\n    image: "postgres:${PG}"\n    volumes: [data:/var/lib/postgresql/data]\n    networks: [back]\nvolumes:\n  data: {}\nnetworks:\n  back: {}\n',
        'db/.env': 'PG=17\n',
        'cache/a.yaml': 'services:\n  cache:\n    image: "redis:${R}"\n',
        'cache/b.yaml': 'services:\n  cache:\n    environment: { MODE: b }\n',
        'cache/cache.env': 'R=7\n',
      },
      'app',
    );
    expect(stack.services.map((s) => [s.name, s.image])).toEqual([
      ['db', 'postgres:17'],
      ['cache', 'redis:7'],
      ['web', 'nginx'],
    ]);
    expect(stack.services[1].environment).toEqual({ MODE: 'b' });
    expect(stack.networks.map((n) => n.name)).toEqual(['app_default', 'app_back']);
    expect(stack.volumes.map((v) => v.name)).toEqual(['app_data']);
  });

  test('includes nest', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': 'include: [lib/compose.yaml]\nservices:\n  web:\n    image: nginx\n',
        'app/lib/compose.yaml': 'include: [deeper.yaml]\nservices:\n  lib:\n    image: x\n',
        'app/lib/deeper.yaml': 'services:\n  deep:\n    image: y\n',
      },
      'app',
    );
    expect(stack.services.map((s) => s.name).sort()).toEqual(['deep', 'lib', 'web']);
  });

  test.each<[string, Record<string, string>, string[]]>([
    [
      'a service both included and defined here',
      {
        'app/compose.yaml': 'include: [lib.yaml]\nservices:\n  web:\n    image: nginx\n',
        'app/lib.yaml': 'services:\n  other:\n    image: x\n  web:\n    image: y\n',
      },
      ["app/compose.yaml:3:3: services.web: service 'web' is also defined by app/lib.yaml:4:3 (included): a service can be defined in one place only"],
    ],
    [
      'a service in two includes',
      {
        'app/compose.yaml': 'include: [a.yaml, b.yaml]\nservices:\n  web:\n    image: nginx\n',
        'app/a.yaml': 'services:\n  db:\n    image: x\n',
        'app/b.yaml': 'services:\n  db:\n    image: y\n',
      },
      ["app/b.yaml:2:3: services.db: service 'db' is also defined by app/a.yaml:2:3 (included): a service can be defined in one place only"],
    ],
    [
      'a file that does not exist',
      { 'app/compose.yaml': 'include: [nope.yaml]\nservices:\n  web:\n    image: nginx\n' },
      ['app/compose.yaml:1:11: include[0]: app/nope.yaml does not exist in the repository'],
    ],
    [
      'a cycle',
      {
        'app/compose.yaml': 'include: [a.yaml]\nservices:\n  web:\n    image: nginx\n',
        'app/a.yaml': 'include: [compose.yaml]\nservices:\n  a:\n    image: x\n',
      },
      ['app/a.yaml:1:11: include[0]: include cycle: app/compose.yaml -> app/a.yaml -> app/compose.yaml'],
    ],
    [
      'a path outside the repository',
      { 'app/compose.yaml': 'include:\n  - path: ../../x.yaml\nservices:\n  web:\n    image: nginx\n' },
      ["app/compose.yaml:2:11: include[0].path: '../../x.yaml' must be a path inside the repository, relative to the compose file"],
    ],
    [
      'an error in an included file is located there',
      {
        'app/compose.yaml': 'include: [lib.yaml]\nservices:\n  web:\n    image: nginx\n',
        'app/lib.yaml': 'services:\n  lib:\n    image: x\n    restart: sometimes\n',
      },
      ["app/lib.yaml:4:14: services.lib.restart: 'sometimes' is not a restart policy (no, always, on-failure[:N], unless-stopped)"],
    ],
  ])('%s', (_, files, expected) => {
    expect(errorsOf(files)).toEqual(expected);
  });
});
