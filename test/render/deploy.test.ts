import { describe, expect, it, test } from 'vitest';
import type { ServiceSpec } from '../../src/model.ts';
import { constraint } from '../../src/render/deploy.ts';
import { errorsOf, serviceOf, stackOf } from './helpers.ts';

/** A compose file with one service "web" (image nginx) plus `body` under it. */
const web = (body: string) => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n`;

type Deploy = Pick<ServiceSpec, 'mode' | 'replicas' | 'placement' | 'reservations' | 'limits' | 'update' | 'rollback'>;
const deployOf = (s: ServiceSpec): Deploy => {
  const { mode, replicas, placement, reservations, limits, update, rollback } = s;
  return { mode, replicas, placement, reservations, limits, update, rollback };
};

const UPDATE = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' } as const;
const DEFAULTS: Deploy = {
  mode: 'replicated',
  replicas: 1,
  placement: { constraints: [], spread: [] },
  reservations: {},
  limits: {},
  update: UPDATE,
  rollback: UPDATE,
};
const MiB = 1024 ** 2;

describe('deploy: normalised, everything not given at its default', () => {
  test.each<[string, string, Partial<Deploy>, Record<string, string>?]>([
    ['no deploy', '', {}],
    ['an empty deploy', 'deploy:', {}],
    ['replicated with replicas', 'deploy: { mode: replicated, replicas: 3 }', { replicas: 3 }],
    ['global has no replica count', 'deploy: { mode: global }', { mode: 'global', replicas: 0 }],
    ['replicated-job is placed as replicated (the job: job.test.ts)', 'deploy: { mode: replicated-job, replicas: 2 }', { replicas: 2 }],
    ['global-job is placed as global', 'deploy: { mode: global-job }', { mode: 'global', replicas: 0 }],
    [
      'constraints: == and !=, spaces optional, field names in any case, duplicates dropped',
      [
        'deploy:',
        '  placement:',
        '    constraints:',
        '      - node.hostname == web-1',
        '      - node.labels.zone!=eu-1',
        '      - "Node.ID==abc "',
        '      - NODE.LABELS.Disk  ==  fast ssd',
        '      - node.hostname==web-1',
      ].join('\n'),
      {
        placement: {
          constraints: [
            { field: 'node.hostname', op: '==', value: 'web-1' },
            { field: 'node.labels.zone', op: '!=', value: 'eu-1' },
            { field: 'node.id', op: '==', value: 'abc' },
            { field: 'node.labels.Disk', op: '==', value: 'fast ssd' },
          ],
          spread: [],
        },
      },
    ],
    [
      'max_replicas_per_node and spread preferences in order, duplicates dropped',
      'deploy:\n  replicas: 4\n  placement:\n    max_replicas_per_node: "2"\n    preferences: [{ spread: node.labels.zone }, { spread: Node.Labels.rack }, { spread: node.labels.zone }]',
      { replicas: 4, placement: { constraints: [], maxReplicasPerNode: 2, spread: ['node.labels.zone', 'node.labels.rack'] } },
    ],
    [
      'resources: cpus as a string or a number, memory in Compose units',
      'deploy:\n  resources:\n    reservations: { cpus: "0.5", memory: 512m }\n    limits: { cpus: 2, memory: 1GB, pids: 100 }',
      { reservations: { cpus: 0.5, memoryBytes: 512 * MiB }, limits: { cpus: 2, memoryBytes: 1024 * MiB, pids: 100 } },
    ],
    [
      'resources: memory as plain bytes and in k',
      'deploy:\n  resources:\n    reservations: { memory: "1048576" }\n    limits: { memory: 1024k }',
      { reservations: { memoryBytes: MiB }, limits: { memoryBytes: MiB } },
    ],
    [
      'resources: zero (and pids -1) is no limit, so not set',
      'deploy:\n  resources:\n    reservations: { cpus: 0 }\n    limits: { cpus: "0", memory: "0", pids: -1 }',
      {},
    ],
    [
      'resources, interpolated',
      'deploy: { resources: { limits: { cpus: "${CPUS}", memory: "${MEM}" } } }',
      { limits: { cpus: 1.5, memoryBytes: 1536 } },
      { 'app/.env': 'CPUS=1.5\nMEM=1.5k' },
    ],
    [
      'update_config, every key; rollback_config keeps its own defaults',
      'deploy:\n  update_config: { parallelism: 2, delay: 10s, failure_action: rollback, monitor: 1m, max_failure_ratio: 0.25, order: start-first }',
      { update: { parallelism: 2, delayMs: 10_000, failureAction: 'rollback', monitorMs: 60_000, maxFailureRatio: 0.25, order: 'start-first' } },
    ],
    [
      'update_config: parallelism 0 is all at once',
      'deploy:\n  update_config: { parallelism: 0, failure_action: continue }',
      { update: { ...UPDATE, parallelism: 0, failureAction: 'continue' } },
    ],
    [
      'rollback_config, every key (as strings); update_config keeps its defaults',
      'deploy:\n  rollback_config: { parallelism: "3", delay: 500ms, failure_action: continue, monitor: 1.5s, max_failure_ratio: "1", order: start-first }',
      { rollback: { parallelism: 3, delayMs: 500, failureAction: 'continue', monitorMs: 1500, maxFailureRatio: 1, order: 'start-first' } },
    ],
    ['x- keys under deploy are ignored', 'deploy:\n  x-note: 1\n  placement: { x-a: 1 }\n  resources: { limits: { x-b: 1 } }\n  update_config: { x-c: 1 }', {}],
  ])('%s', (_, body, expected, extra = {}) => {
    expect(deployOf(serviceOf(web(body), extra))).toEqual({ ...DEFAULTS, ...expected });
  });
});

describe('deploy: refusals', () => {
  const one = (body: string) => errorsOf({ 'app/compose.yaml': web(body) });
  test.each<[string, string, string[]]>([
    [
      'an unknown mode',
      'deploy: { mode: daemon }',
      ["app/compose.yaml:4:21: services.web.deploy.mode: 'daemon' is not a deploy mode (replicated, global, replicated-job or global-job)"],
    ],
    [
      'replicas with mode: global-job',
      'deploy: { mode: global-job, replicas: 2 }',
      ['app/compose.yaml:4:43: services.web.deploy.replicas: cannot be used with mode: global-job (a global service runs one replica on each eligible host)'],
    ],
    [
      'replicas and max_replicas_per_node with mode: global',
      'deploy:\n  mode: global\n  replicas: 2\n  placement: { max_replicas_per_node: 1 }',
      [
        'app/compose.yaml:6:17: services.web.deploy.replicas: cannot be used with mode: global (a global service runs one replica on each eligible host)',
        'app/compose.yaml:7:43: services.web.deploy.placement.max_replicas_per_node: cannot be used with mode: global (a global service runs one replica on each eligible host)',
      ],
    ],
    [
      'a constraint on a field berth does not know, at its list item',
      'deploy:\n  placement:\n    constraints:\n      - node.hostname == a\n      - node.role == manager\n      - engine.labels.x != y',
      [
        "app/compose.yaml:8:13: services.web.deploy.placement.constraints[1]: the field 'node.role' is not supported by berth yet (constraints can use node.hostname, node.id and node.labels.<key>)",
        "app/compose.yaml:9:13: services.web.deploy.placement.constraints[2]: the field 'engine.labels.x' is not supported by berth yet (constraints can use node.hostname, node.id and node.labels.<key>)",
      ],
    ],
    [
      'constraints that do not parse',
      'deploy: { placement: { constraints: ["zone=a", "node.labels.a == b@c", "== x"] } }',
      [
        "app/compose.yaml:4:42: services.web.deploy.placement.constraints[0]: 'zone=a' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)",
        "app/compose.yaml:4:52: services.web.deploy.placement.constraints[1]: 'node.labels.a == b@c' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)",
        "app/compose.yaml:4:76: services.web.deploy.placement.constraints[2]: '== x' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)",
      ],
    ],
    [
      'max_replicas_per_node below 1',
      'deploy: { placement: { max_replicas_per_node: 0 } }',
      ["app/compose.yaml:4:51: services.web.deploy.placement.max_replicas_per_node: '0' is not a number of replicas per host (1 or more)"],
    ],
    [
      'preferences other than spread over a node label',
      'deploy:\n  placement:\n    preferences:\n      - spread: node.hostname\n      - x-note: 1',
      [
        "app/compose.yaml:7:21: services.web.deploy.placement.preferences[0].spread: spreading over 'node.hostname' is not supported by berth yet (only node.labels.<key>)",
        'app/compose.yaml:8:13: services.web.deploy.placement.preferences[1]: a preference needs spread: node.labels.<key>',
      ],
    ],
    [
      'bad resource values',
      'deploy:\n  resources:\n    reservations: { cpus: lots, memory: 1x }\n    limits: { cpus: -1, pids: -2 }',
      [
        "app/compose.yaml:6:31: services.web.deploy.resources.reservations.cpus: 'lots' is not a number of CPUs (like 0.5 or 2)",
        "app/compose.yaml:6:45: services.web.deploy.resources.reservations.memory: '1x' is not an amount of memory (like 512m, 1g or 1073741824)",
        "app/compose.yaml:7:25: services.web.deploy.resources.limits.cpus: '-1' is not a number of CPUs (like 0.5 or 2)",
        "app/compose.yaml:7:35: services.web.deploy.resources.limits.pids: '-2' is not a number of processes (0 or -1: no limit)",
      ],
    ],
    [
      'devices and generic_resources',
      'deploy:\n  resources:\n    reservations:\n      devices: [{ capabilities: [gpu] }]\n      generic_resources: []',
      [
        'app/compose.yaml:7:11: services.web.deploy.resources.reservations.devices: not supported by berth yet',
        'app/compose.yaml:8:11: services.web.deploy.resources.reservations.generic_resources: not supported by berth yet',
      ],
    ],
    [
      'pids is a limit only',
      'deploy: { resources: { reservations: { pids: 10 } } }',
      ["app/compose.yaml:4:44: services.web.deploy.resources.reservations: unknown key 'pids'"],
    ],
    [
      'an order the schema does not know (the schema is checked first, so values are not read)',
      'deploy:\n  update_config: { parallelism: -1, delay: 5x, failure_action: stop, monitor: soon, max_failure_ratio: 1.5, order: sideways }',
      ['app/compose.yaml:5:120: services.web.deploy.update_config.order: must be one of: start-first, stop-first'],
    ],
    [
      'bad update_config values',
      'deploy:\n  update_config: { parallelism: -1, delay: 5x, failure_action: stop, monitor: soon, max_failure_ratio: 1.5 }',
      [
        "app/compose.yaml:5:37: services.web.deploy.update_config.parallelism: '-1' is not a number of replicas at a time (0: all at once)",
        "app/compose.yaml:5:48: services.web.deploy.update_config.delay: '5x' is not a duration (like 30s, 1m30s or 500ms)",
        "app/compose.yaml:5:68: services.web.deploy.update_config.failure_action: 'stop' is not a failure action of update_config (pause, continue or rollback)",
        "app/compose.yaml:5:83: services.web.deploy.update_config.monitor: 'soon' is not a duration (like 30s, 1m30s or 500ms)",
        "app/compose.yaml:5:108: services.web.deploy.update_config.max_failure_ratio: '1.5' is not a ratio from 0 to 1",
      ],
    ],
    [
      'failure_action: rollback in rollback_config',
      'deploy: { rollback_config: { failure_action: rollback } }',
      ["app/compose.yaml:4:50: services.web.deploy.rollback_config.failure_action: 'rollback' is not a failure action of rollback_config (pause or continue)"],
    ],
    [
      'deploy keys berth does not honour yet',
      'deploy:\n  endpoint_mode: dnsrr\n  labels: { a: b }\n  restart_policy: { condition: any }',
      [
        'app/compose.yaml:5:7: services.web.deploy.endpoint_mode: not supported by berth yet',
        'app/compose.yaml:6:7: services.web.deploy.labels: not supported by berth yet',
        'app/compose.yaml:7:7: services.web.deploy.restart_policy: not supported by berth yet',
      ],
    ],
  ])('%s', (_, body, expected) => {
    expect(one(body)).toEqual(expected);
  });
});

describe('deploy: merging compose files', () => {
  const two = (a: string, b: string) => ({
    'berth.yaml': 'stacks:\n  - name: app\n    compose: [a.yaml, b.yaml]\n',
    'a.yaml': `services:\n  web:\n    image: x\n    deploy:\n${a.replace(/^/gm, '      ')}\n`,
    'b.yaml': `services:\n  web:\n    deploy:\n${b.replace(/^/gm, '      ')}\n`,
  });

  test('sub-keys merge as mappings; constraints and preferences append without duplicates', () => {
    const files = two(
      [
        'replicas: 2',
        'placement:',
        '  constraints: [node.labels.zone == a, node.hostname != h1]',
        '  preferences: [{ spread: node.labels.zone }]',
        '  max_replicas_per_node: 1',
        'resources:',
        '  reservations: { cpus: "0.5", memory: 256m }',
        '  limits: { memory: 1g }',
        'update_config: { parallelism: 2, delay: 5s }',
        'rollback_config: { order: start-first }',
      ].join('\n'),
      [
        'replicas: 3',
        'placement:',
        '  constraints: [node.hostname!=h1, node.labels.disk == ssd]',
        '  preferences: [{ spread: node.labels.rack }, { spread: node.labels.zone }]',
        'resources:',
        '  reservations: { memory: 512m }',
        '  limits: { cpus: 1 }',
        'update_config: { order: start-first }',
      ].join('\n'),
    );
    expect(deployOf(stackOf(files, 'app').services[0])).toEqual({
      mode: 'replicated',
      replicas: 3,
      placement: {
        constraints: [
          { field: 'node.labels.zone', op: '==', value: 'a' },
          { field: 'node.hostname', op: '!=', value: 'h1' },
          { field: 'node.labels.disk', op: '==', value: 'ssd' },
        ],
        maxReplicasPerNode: 1,
        spread: ['node.labels.zone', 'node.labels.rack'],
      },
      reservations: { cpus: 0.5, memoryBytes: 512 * MiB },
      limits: { cpus: 1, memoryBytes: 1024 * MiB },
      update: { ...UPDATE, parallelism: 2, delayMs: 5000, order: 'start-first' },
      rollback: { ...UPDATE, order: 'start-first' },
    });
  });

  test("a later file's zero lifts an earlier limit", () => {
    const files = two('resources: { limits: { cpus: 2, memory: 1g, pids: 10 } }', 'resources: { limits: { cpus: 0, pids: -1 } }');
    expect(deployOf(stackOf(files, 'app').services[0]).limits).toEqual({ memoryBytes: 1024 * MiB });
  });

  test('a later file may make a service global; replicas left from an earlier file are then an error there', () => {
    expect(errorsOf(two('replicas: 2', 'mode: global'))).toEqual([
      'a.yaml:5:17: services.web.deploy.replicas: cannot be used with mode: global (a global service runs one replica on each eligible host)',
    ]);
    expect(errorsOf(two('mode: global', 'replicas: 2'))).toEqual([
      'b.yaml:4:17: services.web.deploy.replicas: cannot be used with mode: global (a global service runs one replica on each eligible host)',
    ]);
    expect(deployOf(stackOf(two('mode: global', 'mode: replicated'), 'app').services[0])).toMatchObject({ mode: 'replicated', replicas: 1 });
  });
});

describe('constraint', () => {
  test.each<[string, unknown]>([
    ['node.hostname==a', { field: 'node.hostname', op: '==', value: 'a' }],
    ['\tnode.id   !=  x-1 ', { field: 'node.id', op: '!=', value: 'x-1' }],
    ['node.labels.Zone == EU West', { field: 'node.labels.Zone', op: '==', value: 'EU West' }],
    ['node.labels.path == /srv/*', { field: 'node.labels.path', op: '==', value: '/srv/*' }],
    ['node.labels.a==b!=c', "'node.labels.a==b!=c' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)"],
    ['node.hostname ==', "'node.hostname ==' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)"],
    ['node.hostname = a', "'node.hostname = a' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)"],
    [
      'node.platform.os == linux',
      "the field 'node.platform.os' is not supported by berth yet (constraints can use node.hostname, node.id and node.labels.<key>)",
    ],
  ])('%j', (text, expected) => {
    expect(constraint(text)).toEqual(expected);
  });
});

describe('deploy: start-first needs a free port', () => {
  it('refuses a published host port with order start-first, at the port', () => {
    const compose = (order: string, key = 'update_config') =>
      `services:\n  web:\n    image: nginx\n    ports:\n      - "8080:80"\n    deploy:\n      ${key}: { order: ${order} }\n`;
    expect(errorsOf({ 'app/compose.yaml': compose('start-first') })).toEqual([
      'app/compose.yaml:5:9: services.web.ports[0]: host port 8080 cannot be published with deploy.update_config.order: start-first: the old and the new replica would need it at once on the same host (use stop-first, or publish no fixed host port)',
    ]);
    expect(errorsOf({ 'app/compose.yaml': compose('start-first', 'rollback_config') })[0]).toContain('deploy.rollback_config.order: start-first');
    expect(errorsOf({ 'app/compose.yaml': compose('stop-first') })).toEqual([]);
    expect(serviceOf('services:\n  web:\n    image: nginx\n    ports: ["80"]\n    deploy:\n      update_config: { order: start-first }\n').update.order).toBe(
      'start-first',
    );
  });
});
