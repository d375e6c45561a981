import { describe, expect, test } from 'vitest';
import type { StackDef } from '../../src/model.ts';
import { formatError, renderSnapshot } from '../../src/render/index.ts';
import { errorsOf, render } from './helpers.ts';

const SVC = 'services:\n  web:\n    image: nginx\n';
const defs = (files: Record<string, string>): StackDef[] => {
  const result = render(files);
  expect(result.errors).toEqual([]);
  return result.stacks.map((s) => s.def);
};
const DEFAULTS = { hosts: { kind: 'all' as const }, sync: { auto: true, prune: true, selfHeal: true } };

describe('discovery without berth.yaml', () => {
  test.each<[string, Record<string, string>, Partial<StackDef>[]]>([
    [
      'one stack per folder, sorted by folder',
      { 'b/compose.yaml': SVC, 'a/compose.yml': SVC },
      [
        { name: 'a', composeFiles: ['a/compose.yml'], ...DEFAULTS } as Partial<StackDef>,
        { name: 'b', composeFiles: ['b/compose.yaml'], ...DEFAULTS } as Partial<StackDef>,
      ],
    ],
    [
      'the first of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml',
      {
        'a/docker-compose.yml': SVC,
        'a/docker-compose.yaml': SVC,
        'b/compose.yml': SVC,
        'b/docker-compose.yaml': SVC,
      },
      [
        { name: 'a', composeFiles: ['a/docker-compose.yaml'] },
        { name: 'b', composeFiles: ['b/compose.yml'] },
      ],
    ],
    ['named after the innermost folder, lower-cased', { 'apps/Shop/compose.yaml': SVC }, [{ name: 'shop', composeFiles: ['apps/Shop/compose.yaml'] }]],
    ['hidden folders and other files are ignored', { '.devcontainer/compose.yaml': SVC, 'a/compose.yaml.bak': SVC, 'README.md': '#' }, []],
  ])('%s', (_, files, expected) => {
    expect(defs(files)).toMatchObject(expected);
  });

  test.each([
    [
      'a folder that is no stack name',
      { 'my.app/compose.yaml': SVC },
      "my.app/compose.yaml: the folder 'my.app' does not make a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit); rename it or list the stack in a berth.yaml",
    ],
    [
      'two folders with one name',
      { 'x/web/compose.yaml': SVC, 'y/Web/compose.yaml': SVC },
      "y/Web/compose.yaml: the folders 'x/web' and 'y/Web' would both be stack 'web'; rename one or list the stacks in a berth.yaml",
    ],
  ])('%s is a repo-wide error', (_, files, message) => {
    const result = render(files);
    expect(result.stacks).toEqual([]);
    expect(errorsOf(files)).toEqual([message]);
  });
});

describe('a Compose file at the root, without berth.yaml', () => {
  // the repo is called 'test' in these snapshots (the repo's name in the engine config)
  test.each<[string, Record<string, string>, Partial<StackDef>[]]>([
    ['is one stack, named after the repo', { 'compose.yaml': SVC }, [{ name: 'test', composeFiles: ['compose.yaml'], ...DEFAULTS }]],
    ["named by its top-level name:, Compose's project name", { 'compose.yaml': `name: shop\n${SVC}` }, [{ name: 'shop', composeFiles: ['compose.yaml'] }]],
    [
      'its name: interpolated from the .env beside it',
      { 'compose.yaml': `name: \${PROJECT:-fallback}-\${STAGE}\n${SVC}`, '.env': 'PROJECT=shop\nSTAGE=prod\n' },
      [{ name: 'shop-prod' }],
    ],
    ['a default in name: without a .env', { 'compose.yaml': `name: \${PROJECT:-fallback}\n${SVC}` }, [{ name: 'fallback' }]],
    ['a name: that interpolates to nothing counts as none', { 'compose.yaml': `name: \${UNSET}\n${SVC}` }, [{ name: 'test' }]],
    ['compose.yml', { 'compose.yml': SVC }, [{ name: 'test', composeFiles: ['compose.yml'] }]],
    ['docker-compose.yaml', { 'docker-compose.yaml': SVC }, [{ name: 'test', composeFiles: ['docker-compose.yaml'] }]],
    ['docker-compose.yml', { 'docker-compose.yml': SVC }, [{ name: 'test', composeFiles: ['docker-compose.yml'] }]],
    [
      "the first in Compose's order when there are several",
      { 'docker-compose.yml': `name: d\n${SVC}`, 'compose.yml': `name: c\n${SVC}`, 'docker-compose.yaml': `name: e\n${SVC}` },
      [{ name: 'c', composeFiles: ['compose.yml'] }],
    ],
    ['compose.yaml before docker-compose.yml', { 'docker-compose.yml': SVC, 'compose.yaml': SVC }, [{ composeFiles: ['compose.yaml'] }]],
    [
      'the only stack: Compose files in folders are files it may include, not stacks',
      { 'compose.yaml': `name: app\ninclude: [db/compose.yaml]\n${SVC}`, 'db/compose.yaml': 'services:\n  db:\n    image: postgres\n' },
      [{ name: 'app', composeFiles: ['compose.yaml'] }],
    ],
  ])('%s', (_, files, expected) => {
    expect(defs(files)).toEqual(expected.map((e) => expect.objectContaining(e)));
  });

  test('renders with what it includes', () => {
    const result = render({ 'compose.yaml': `name: app\ninclude: [db/compose.yaml]\n${SVC}`, 'db/compose.yaml': 'services:\n  db:\n    image: postgres\n' });
    const [stack] = result.stacks;
    expect(stack?.ok && stack.stack.services.map((s) => s.name).sort()).toEqual(['db', 'web']);
  });

  test('berth.yaml wins over it', () => {
    const files = { 'berth.yaml': 'stacks:\n  - name: listed\n    compose: compose.yaml\n', 'compose.yaml': `name: listed\n${SVC}`, 'a/compose.yaml': SVC };
    expect(defs(files)).toEqual([{ name: 'listed', composeFiles: ['compose.yaml'], ...DEFAULTS }]);
  });

  test('a repo name that is no stack name needs a name:', () => {
    const encoded = new Map([['compose.yaml', new TextEncoder().encode(SVC)]]);
    const commit = { sha: 'abc', author: 'a', email: 'a@x', message: 'm', time: 0 };
    const result = renderSnapshot({ repo: 'my.app', commit, files: encoded });
    expect(result.stacks).toEqual([]);
    expect(result.errors.map(formatError)).toEqual([
      "compose.yaml: the repo's name 'my.app' does not make a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit): give the Compose file a top-level name:, or list the stack in a berth.yaml",
    ]);
    const named = renderSnapshot({ repo: 'my.app', commit, files: new Map([['compose.yaml', new TextEncoder().encode(`name: myapp\n${SVC}`)]]) });
    expect(named.stacks.map((s) => s.def.name)).toEqual(['myapp']);
  });

  test.each([
    [
      'a name: that is no stack name',
      { 'compose.yaml': `name: My App\n${SVC}` },
      "compose.yaml:1:7: name: the project name 'My App' is not a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit)",
    ],
    [
      'one that becomes none once interpolated',
      { 'compose.yaml': `services:\n  web:\n    image: nginx\nname: \${STAGE}.shop\n`, '.env': 'STAGE=prod\n' },
      "compose.yaml:4:7: name: the project name 'prod.shop' is not a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit)",
    ],
    [
      'a required variable unset',
      { 'compose.yaml': `name: \${PROJECT:?set PROJECT in .env}\n${SVC}` },
      'compose.yaml:1:7: name: required variable PROJECT is missing a value: set PROJECT in .env',
    ],
    ['a name that is no string', { 'compose.yaml': `name: [a]\n${SVC}` }, 'compose.yaml:1:7: name: the project name must be a string'],
    ['a YAML syntax error', { 'compose.yaml': 'services:\n  web:\n   image: [nginx\n' }, expect.stringMatching(/^compose\.yaml:\d+:\d+: /)],
    ['a .env it cannot read', { 'compose.yaml': `name: \${X}\n${SVC}`, '.env': 'X="open\n' }, expect.stringMatching(/^\.env:1:\d+: /)],
  ])('%s is a repo-wide error: the name, and so the stack, is not known', (_, files, message) => {
    const result = render(files);
    expect(result.stacks).toEqual([]);
    expect(result.errors.map(formatError)).toEqual([message]);
  });

  test('a Compose file at the root too big to read is a repo-wide error', () => {
    const result = render({ 'compose.yaml': `name: app\n${SVC}# ${'x'.repeat(200)}\n` }, { limits: { yamlSize: 100 } });
    expect(result.stacks).toEqual([]);
    expect(result.errors.map(formatError)).toEqual([expect.stringMatching(/^compose\.yaml: .* over limits\.yamlSize/)]);
  });
});

describe('berth.yaml', () => {
  test('lists stacks with hosts, sync and several compose files', () => {
    const files = {
      'berth.yaml': [
        'stacks:',
        '  - name: shop',
        '    compose: [shop/compose.yaml, ./shop/compose.prod.yaml]',
        '    hosts: { labels: { role: web, zone: 1 } }',
        '    sync: { prune: false }',
        '  - name: db',
        '    compose: db.yaml',
        '    hosts: { names: [a, b] }',
        '  - name: root',
        '    compose: compose.yaml',
      ].join('\n'),
      'shop/compose.yaml': SVC,
      'shop/compose.prod.yaml': SVC,
      'db.yaml': SVC,
      'compose.yaml': SVC,
      'other/compose.yaml': SVC, // not listed, so not a stack
    };
    expect(defs(files)).toEqual([
      {
        name: 'shop',
        composeFiles: ['shop/compose.yaml', 'shop/compose.prod.yaml'],
        hosts: { kind: 'labels', labels: { role: 'web', zone: '1' } },
        sync: { auto: true, prune: false, selfHeal: true },
      },
      { name: 'db', composeFiles: ['db.yaml'], hosts: { kind: 'names', names: ['a', 'b'] }, sync: DEFAULTS.sync },
      { name: 'root', composeFiles: ['compose.yaml'], ...DEFAULTS },
    ]);
  });

  test('an empty list is no stacks', () => {
    expect(defs({ 'berth.yaml': 'stacks: []\n', 'a/compose.yaml': SVC })).toEqual([]);
  });

  test.each([
    ['a typo', 'stacks:\n  - name: a\n    compose: a.yaml\n    sycn: {}\n', ["berth.yaml:4:5: stacks[0]: unknown key 'sycn' (did you mean 'sync'?)"]],
    ['an unknown top-level key', 'stack: []\n', ["berth.yaml:1:1: unknown key 'stack' (did you mean 'stacks'?)"]],
    ['missing stacks', '{}\n', ["berth.yaml:1:1: missing required key 'stacks'"]],
    ['a missing compose key', 'stacks:\n  - name: a\n', ["berth.yaml:2:5: stacks[0]: missing required key 'compose'"]],
    [
      'a bad name',
      'stacks:\n  - name: Shop\n    compose: a.yaml\n',
      ["berth.yaml:2:11: stacks[0].name: 'Shop' is not a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit)"],
    ],
    [
      'a duplicate name',
      'stacks:\n  - name: a\n    compose: a.yaml\n  - name: a\n    compose: a.yaml\n',
      ["berth.yaml:4:11: stacks[1].name: stack name 'a' is used twice"],
    ],
    [
      'a missing compose file',
      'stacks:\n  - name: a\n    compose: [a.yaml, nope.yaml]\n',
      ['berth.yaml:3:23: stacks[0].compose[1]: nope.yaml does not exist in the repository'],
    ],
    [
      'a path outside the repo',
      'stacks:\n  - name: a\n    compose: ../a.yaml\n',
      ["berth.yaml:3:14: stacks[0].compose: '../a.yaml' must be a path inside the repository, relative to berth.yaml"],
    ],
    [
      'both labels and names',
      'stacks:\n  - name: a\n    compose: a.yaml\n    hosts: { labels: {}, names: [] }\n',
      ['berth.yaml:4:12: stacks[0].hosts: give either labels or names, not both'],
    ],
    [
      'an empty hosts',
      'stacks:\n  - name: a\n    compose: a.yaml\n    hosts: {}\n',
      ['berth.yaml:4:12: stacks[0].hosts: give labels or names (or leave hosts out for all hosts)'],
    ],
    ['a wrong type', 'stacks:\n  - name: a\n    compose: a.yaml\n    sync: { auto: "yes" }\n', ['berth.yaml:4:19: stacks[0].sync.auto: must be true or false']],
    ['compose neither string nor list', 'stacks:\n  - name: a\n    compose: {a: 1}\n', ['berth.yaml:3:14: stacks[0].compose: must be a string or a list']],
    ['a YAML syntax error', 'stacks:\n  - name: a\n   compose: x\n', ['berth.yaml:3:1: Sequence item without - indicator']],
  ])('%s is a repo-wide error', (_, manifest, expected) => {
    const files = { 'berth.yaml': manifest, 'a.yaml': SVC };
    expect(render(files).stacks).toEqual([]);
    expect(errorsOf(files)).toEqual(expected);
  });
});
