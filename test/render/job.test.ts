// Jobs in the manifests: deploy.mode replicated-job / global-job and x-berth { schedule, hook, timeout } (pure).
import { describe, expect, test } from 'vitest';
import type { ServiceSpec } from '../../src/model.ts';
import { errorsOf, serviceOf, stackOf } from './helpers.ts';

/** A compose file with one service "web" (image nginx) plus `body` under it. */
const web = (body: string) => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n`;
const TEN_MIN = 600_000;

describe('jobs: rendered', () => {
  test.each<[string, string, Pick<ServiceSpec, 'mode' | 'replicas' | 'job'>]>([
    ['a service is no job', '', { mode: 'replicated', replicas: 1, job: undefined }],
    [
      'replicated-job: once, replicas containers',
      'deploy: { mode: replicated-job, replicas: 3 }',
      { mode: 'replicated', replicas: 3, job: { kind: 'once', timeoutMs: TEN_MIN } },
    ],
    ['global-job: once, one per host', 'deploy: { mode: global-job }', { mode: 'global', replicas: 0, job: { kind: 'once', timeoutMs: TEN_MIN } }],
    [
      'a schedule makes a one-replica job of a replicated service',
      'x-berth: { schedule: "*/5 * * * *" }',
      { mode: 'replicated', replicas: 1, job: { kind: 'schedule', schedule: '*/5 * * * *', timeoutMs: TEN_MIN } },
    ],
    [
      'a schedule with seconds, on every host',
      'deploy: { mode: global }\nx-berth: { schedule: "*/10 * * * * *", timeout: 5s }',
      { mode: 'global', replicas: 0, job: { kind: 'schedule', schedule: '*/10 * * * * *', timeoutMs: 5000 } },
    ],
    [
      'a schedule on a replicated-job',
      'deploy: { mode: replicated-job }\nx-berth: { schedule: "0 3 * * *" }',
      { mode: 'replicated', replicas: 1, job: { kind: 'schedule', schedule: '0 3 * * *', timeoutMs: TEN_MIN } },
    ],
    [
      'a pre-sync hook with a timeout',
      'x-berth: { hook: pre-sync, timeout: 1m30s }',
      { mode: 'replicated', replicas: 1, job: { kind: 'pre-sync', timeoutMs: 90_000 } },
    ],
    [
      'a post-sync hook, replicas: 1 and restart: no allowed',
      'restart: "no"\ndeploy: { replicas: 1 }\nx-berth: { hook: post-sync }',
      { mode: 'replicated', replicas: 1, job: { kind: 'post-sync', timeoutMs: TEN_MIN } },
    ],
    ['an empty x-berth changes nothing', 'x-berth: {}', { mode: 'replicated', replicas: 1, job: undefined }],
  ])('%s', (_, body, expected) => {
    const { mode, replicas, job } = serviceOf(web(body));
    expect({ mode, replicas, job }).toEqual(expected);
  });

  test("x-berth merges key by key over the stack's files, and a later file can make a service a job", () => {
    const stack = stackOf(
      {
        'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/compose.yaml, app/compose.prod.yaml]\n',
        'app/compose.yaml': 'services:\n  backup:\n    image: x\n    x-berth: { schedule: "0 * * * *", timeout: 1m }\n  seed:\n    image: x\n',
        'app/compose.prod.yaml': 'services:\n  backup:\n    x-berth: { schedule: "0 3 * * *" }\n  seed:\n    deploy: { mode: replicated-job }\n',
      },
      'app',
    );
    expect(stack.services.map((s) => [s.name, s.job])).toEqual([
      ['backup', { kind: 'schedule', schedule: '0 3 * * *', timeoutMs: 60_000 }],
      ['seed', { kind: 'once', timeoutMs: TEN_MIN }],
    ]);
  });

  test('a service may wait for a job, and for a pre-sync hook, to complete', () => {
    const stack = stackOf(
      {
        'app/compose.yaml': `services:
  web:
    image: x
    depends_on:
      migrate: { condition: service_completed_successfully }
      seed: { condition: service_completed_successfully }
  migrate:
    image: x
    x-berth: { hook: pre-sync }
  seed:
    image: x
    deploy: { mode: replicated-job }
`,
      },
      'app',
    );
    expect(stack.services.map((s) => s.name)).toEqual(['migrate', 'seed', 'web']);
  });
});

describe('x-berth.watch-image', () => {
  test('marks a service whose registry tag is followed; false or absent does not', () => {
    expect(serviceOf(web('x-berth: { watch-image: true }')).watchImage).toBe(true);
    expect(serviceOf(web('x-berth: { watch-image: false }')).watchImage).toBeUndefined();
    expect(serviceOf(web('')).watchImage).toBeUndefined();
  });

  test.each<[string, string, string]>([
    [
      'not a boolean',
      web('x-berth: { watch-image: yes please }'),
      "app/compose.yaml:4:29: services.web.x-berth.watch-image: 'yes please' is not true or false",
    ],
    [
      'a service berth builds',
      `services:\n  web:\n    build: .\n    x-berth: { watch-image: true }\n`,
      'app/compose.yaml:4:29: services.web.x-berth.watch-image: berth builds this service: there is no registry tag to follow',
    ],
    [
      'pull_policy: never',
      web('pull_policy: never\nx-berth: { watch-image: true }'),
      "app/compose.yaml:5:29: services.web.x-berth.watch-image: pull_policy: never runs the host's own image: there is no registry tag to follow",
    ],
  ])('is refused for %s, located', (_what, compose, error) => {
    expect(errorsOf({ 'app/compose.yaml': compose, 'app/Dockerfile': 'FROM scratch\n' })).toContain(error);
  });
});

describe('jobs: refusals, located', () => {
  const one = (compose: string) => errorsOf({ 'app/compose.yaml': compose });
  test.each<[string, string, string[]]>([
    [
      'x-berth is not a mapping',
      web('x-berth: nightly'),
      ['app/compose.yaml:4:14: services.web.x-berth: must be a mapping (with schedule, hook, timeout or watch-image)'],
    ],
    [
      'an unknown key, with a suggestion',
      web('x-berth: { hooks: pre-sync }'),
      ["app/compose.yaml:4:16: services.web.x-berth.hooks: unknown key (did you mean 'hook'?)"],
    ],
    [
      'an unknown key far from any',
      web('x-berth:\n  replicas: 2'),
      ['app/compose.yaml:5:7: services.web.x-berth.replicas: unknown key (x-berth has schedule, hook, timeout and watch-image)'],
    ],
    [
      'a bad cron expression',
      web('x-berth: { schedule: "every 5 minutes" }'),
      [
        'app/compose.yaml:4:26: services.web.x-berth.schedule: \'every 5 minutes\' is not a cron expression (5 fields, or 6 with seconds first, like "*/5 * * * *")',
      ],
    ],
    [
      'a cron field out of range',
      web('x-berth: { schedule: "0 25 * * *" }'),
      ['app/compose.yaml:4:26: services.web.x-berth.schedule: \'0 25 * * *\' is not a cron expression (5 fields, or 6 with seconds first, like "*/5 * * * *")'],
    ],
    [
      'an unknown hook',
      web('x-berth: { hook: pre-deploy }'),
      ["app/compose.yaml:4:22: services.web.x-berth.hook: 'pre-deploy' is not a hook (pre-sync or post-sync)"],
    ],
    [
      'a bad timeout',
      web('deploy: { mode: replicated-job }\nx-berth: { timeout: 0s }'),
      ["app/compose.yaml:5:25: services.web.x-berth.timeout: '0s' is not a duration above zero (like 30s, 5m or 1h)"],
    ],
    [
      'schedule and hook together',
      web('x-berth: { schedule: "* * * * *", hook: pre-sync }'),
      ['app/compose.yaml:4:45: services.web.x-berth.hook: cannot be set together with x-berth.schedule (a hook runs at sync, a scheduled job on its schedule)'],
    ],
    [
      'a timeout on a service that is no job',
      web('x-berth: { timeout: 5m }'),
      [
        'app/compose.yaml:4:25: services.web.x-berth.timeout: only applies to jobs (deploy.mode: replicated-job or global-job, x-berth.schedule or x-berth.hook)',
      ],
    ],
    [
      'a restart policy on a job',
      web('restart: on-failure:3\ndeploy: { mode: replicated-job }'),
      [
        "app/compose.yaml:4:14: services.web.restart: 'on-failure:3' cannot be used on a job: its containers run to completion and are never restarted (use restart: no, or leave it out)",
      ],
    ],
    [
      'a hook with replicas',
      web('deploy: { replicas: 2 }\nx-berth: { hook: post-sync }'),
      ['app/compose.yaml:4:25: services.web.deploy.replicas: a hook runs one container: replicas must be 1, not 2'],
    ],
    [
      'a global hook',
      web('deploy: { mode: global }\nx-berth: { hook: pre-sync }'),
      ['app/compose.yaml:5:22: services.web.x-berth.hook: a hook runs one container: it cannot be used with deploy.mode: global'],
    ],
    [
      'waiting for a service to complete',
      `services:\n  web:\n    image: x\n    depends_on: { db: { condition: service_completed_successfully } }\n  db:\n    image: x\n`,
      [
        "app/compose.yaml:4:19: services.web.depends_on.db: 'db' is not a job: service_completed_successfully waits for it to run to completion (make it one with deploy.mode: replicated-job)",
      ],
    ],
    [
      'waiting for a scheduled job or a post-sync hook to complete',
      `services:
  web:
    image: x
    depends_on:
      backup: { condition: service_completed_successfully }
      notify: { condition: service_completed_successfully }
  backup:
    image: x
    x-berth: { schedule: "0 3 * * *" }
  notify:
    image: x
    x-berth: { hook: post-sync }
`,
      [
        "app/compose.yaml:5:7: services.web.depends_on.backup: 'backup' is a scheduled job: it runs on its schedule, not at sync, so nothing can wait for it to complete",
        "app/compose.yaml:6:7: services.web.depends_on.notify: 'notify' is a post-sync hook: it runs after every service, so nothing can wait for it to complete",
      ],
    ],
  ])('%s', (_, compose, expected) => {
    expect(one(compose)).toEqual(expected);
  });

  test('a restart policy set in one file refuses the job another file makes of the service', () => {
    expect(
      errorsOf({
        'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/compose.yaml, app/cron.yaml]\n',
        'app/compose.yaml': 'services:\n  backup:\n    image: x\n    restart: always\n',
        'app/cron.yaml': 'services:\n  backup:\n    x-berth: { schedule: "0 3 * * *" }\n',
      }),
    ).toEqual([
      "app/compose.yaml:4:14: services.backup.restart: 'always' cannot be used on a job: its containers run to completion and are never restarted (use restart: no, or leave it out)",
    ]);
  });
});
