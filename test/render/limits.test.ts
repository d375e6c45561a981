import { describe, expect, it } from 'vitest';
import type { RenderOptions, RenderResult, UnreadFile } from '../../src/model.ts';
import { formatError, renderSnapshot } from '../../src/render/index.ts';
import { errorsOf, render, stackOf } from './helpers.ts';

const web = (deploy: string) => `services:\n  web:\n    image: nginx\n    deploy: ${deploy}\n`;
const errors = (r: RenderResult) => [...r.errors, ...r.stacks.flatMap((s) => (s.ok ? [] : s.errors))].map(formatError);

describe('limits.replicas', () => {
  it('refuses replicas over the limit at the key, naming it', () => {
    expect(errorsOf({ 'app/compose.yaml': web('{ replicas: 101 }') })).toEqual([
      'app/compose.yaml:4:25: services.web.deploy.replicas: 101 replicas is over limits.replicas (100) of the engine config',
    ]);
    expect(stackOf({ 'app/compose.yaml': web('{ replicas: 100 }') }, 'app').services[0].replicas).toBe(100);
    expect(stackOf({ 'app/compose.yaml': web('{ replicas: 500 }') }, 'app', { limits: { replicas: 500, stackContainers: 500 } }).services[0].replicas).toBe(
      500,
    );
  });
});

describe('limits.stackContainers', () => {
  const options: RenderOptions = { limits: { stackContainers: 100 } };

  it('counts the replicas of a stack, refused at the service asking the most', () => {
    const compose = `services:\n  a:\n    image: x\n    deploy: { replicas: 40 }\n  b:\n    image: x\n    deploy: { replicas: 70 }\n`;
    expect(errorsOf({ 'app/compose.yaml': compose }, options)).toEqual([
      'app/compose.yaml:7:25: services.b.deploy.replicas: the stack asks for 110 containers, over limits.stackContainers (100) of the engine config',
    ]);
    expect(errorsOf({ 'app/compose.yaml': compose.replace('70', '60') }, options)).toEqual([]);
  });

  it('counts a global service once on each configured host its stack and constraints pick', () => {
    const hosts = Array.from({ length: 30 }, (_, i) => ({ name: `h${i}`, labels: { zone: i < 20 ? 'a' : 'b' } }));
    const compose = (constraint: string) =>
      `services:\n  agent:\n    image: x\n    deploy: { mode: global${constraint} }\n  web:\n    image: x\n    deploy: { replicas: 90 }\n`;
    // 90 replicas and 20 hosts in zone a: 110
    expect(errorsOf({ 'app/compose.yaml': compose(', placement: { constraints: [node.labels.zone == a] }') }, { ...options, hosts })).toEqual([
      'app/compose.yaml:7:25: services.web.deploy.replicas: the stack asks for 110 containers, over limits.stackContainers (100) of the engine config',
    ]);
    expect(errorsOf({ 'app/compose.yaml': compose(', placement: { constraints: [node.labels.zone == b] }') }, { ...options, hosts })).toEqual([]);
    // every host without a constraint; the stack's hosts: selector narrows them
    expect(errorsOf({ 'app/compose.yaml': compose('') }, { ...options, hosts })).toEqual([
      'app/compose.yaml:7:25: services.web.deploy.replicas: the stack asks for 120 containers, over limits.stackContainers (100) of the engine config',
    ]);
    const manifest = (zone: string) => `stacks:\n  - name: app\n    compose: app/compose.yaml\n    hosts: { labels: { zone: ${zone} } }\n`;
    expect(errorsOf({ 'berth.yaml': manifest('b'), 'app/compose.yaml': compose('') }, { ...options, hosts })).toEqual([]);
    expect(errorsOf({ 'berth.yaml': manifest('a'), 'app/compose.yaml': compose('') }, { ...options, hosts })).toHaveLength(1);
  });
});

describe('limits.repoContainers', () => {
  it('refuses the stack that would take the repo over, in the order the repo lists them; the others render', () => {
    const files = {
      'a/compose.yaml': web('{ replicas: 50 }'),
      'b/compose.yaml': web('{ replicas: 60 }'),
      'c/compose.yaml': web('{ replicas: 10 }'),
    };
    const result = render(files, { limits: { repoContainers: 100 } });
    expect(result.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
    expect(errors(result)).toEqual([
      'b/compose.yaml: stack b asks for 60 containers; with the 50 of the stacks listed before it the repo would run 110, over limits.repoContainers (100) of the engine config',
    ]);
  });
});

describe('YAML: limits.yamlSize and limits.yamlAliases', () => {
  it('refuses a Compose file over limits.yamlSize before parsing it', () => {
    const big = web('{ replicas: 1 }') + `x-pad: "${'x'.repeat(2000)}"\n`;
    expect(errorsOf({ 'app/compose.yaml': big }, { limits: { yamlSize: 1024 } })).toEqual(['app/compose.yaml: 2 KiB, over limits.yamlSize (1 KiB)']);
    expect(errorsOf({ 'app/compose.yaml': big })).toEqual([]);
  });

  it('refuses berth.yaml over limits.yamlSize for the whole repo', () => {
    const manifest = `stacks:\n  - name: app\n# ${'x'.repeat(2000)}\n`;
    expect(errorsOf({ 'berth.yaml': manifest, 'app/compose.yaml': web('{}') }, { limits: { yamlSize: 1024 } })).toEqual([
      'berth.yaml: 2 KiB, over limits.yamlSize (1 KiB)',
    ]);
  });

  it('refuses a "billion laughs" at its first alias, naming limits.yamlAliases', () => {
    let lol = '  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let i = 1; i < 9; i++)
      lol += `  l${i}: &l${i} [${Array(9)
        .fill(`*l${i - 1}`)
        .join(', ')}]\n`;
    const compose = `services:\n  web:\n    image: nginx\nx-lol:\n${lol}`;
    expect(errorsOf({ 'app/compose.yaml': compose })).toEqual([
      'app/compose.yaml:6:12: its aliases expand to more than limits.yamlAliases (10000) allows of the engine config',
    ]);
  });

  it('keeps anchors and aliases within the limit working', () => {
    const compose = 'x-base: &base\n  image: nginx\nservices:\n  a: *base\n  b: *base\n';
    expect(stackOf({ 'app/compose.yaml': compose }, 'app', { limits: { yamlAliases: 10 } }).services.map((s) => s.image)).toEqual(['nginx', 'nginx']);
    expect(errorsOf({ 'app/compose.yaml': compose }, { limits: { yamlAliases: 1 } })).toEqual([
      // at the first alias: where the expansion starts
      'app/compose.yaml:4:6: its aliases expand to more than limits.yamlAliases (1) allows of the engine config',
    ]);
  });
});

describe('limits.buildContext', () => {
  it('refuses a build context over the limit at the build: key', () => {
    const files = {
      'app/compose.yaml': 'services:\n  web:\n    build: ./src\n',
      'app/src/Dockerfile': 'FROM scratch\n',
      'app/src/data.bin': 'x'.repeat(3000),
    };
    expect(errorsOf(files, { limits: { buildContext: 2048 } })).toEqual([
      "app/compose.yaml:3:5: services.web.build: the build context 'app/src' holds 2.9 KiB, over limits.buildContext (2 KiB) of the engine config",
    ]);
    // what .dockerignore leaves out is not sent, so it does not count
    expect(errorsOf({ ...files, 'app/src/.dockerignore': 'data.bin\n' }, { limits: { buildContext: 2048 } })).toEqual([]);
  });
});

describe('files a snapshot did not read (over limits.blobSize or limits.snapshotSize)', () => {
  const snapshot = (files: Record<string, string>, unread: Record<string, UnreadFile>) =>
    renderSnapshot({
      repo: 'test',
      commit: { sha: 'abc', author: 'a', email: 'a@x', message: 'm', time: 0 },
      files: new Map(Object.entries(files).map(([p, t]) => [p, new TextEncoder().encode(t)])),
      unread: new Map(Object.entries(unread)),
    });
  const big: UnreadFile = { size: 20 << 20, limit: 'blobSize' };

  it('refuses the stack that reads one, located at the file; the other stacks render', () => {
    const result = snapshot(
      {
        'shop/compose.yaml': 'services:\n  web:\n    image: nginx\n    configs: [site]\nconfigs:\n  site:\n    file: ./site.conf\n',
        'blog/compose.yaml': 'services:\n  web:\n    image: nginx\n',
      },
      { 'shop/site.conf': big, 'assets/video.mp4': big },
    );
    expect(result.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['blog', true],
      ['shop', false],
    ]);
    expect(errors(result)).toEqual(['shop/site.conf: 20 MiB, over limits.blobSize (10 MiB): berth does not read a file this big']);
  });

  it('refuses a build whose context holds one, and a Compose file that is one (its stack still listed)', () => {
    const result = snapshot(
      { 'app/compose.yaml': 'services:\n  web:\n    build: .\n', 'app/Dockerfile': 'FROM scratch\n' },
      { 'app/blob.bin': { size: 5 << 20, limit: 'snapshotSize' }, 'huge/compose.yaml': big },
    );
    expect(result.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['app', false],
      ['huge', false],
    ]);
    expect(errors(result)).toEqual([
      "app/blob.bin: not read: the commit's files passed limits.snapshotSize (100 MiB) before it (it has 5 MiB); berth reads the smallest files first",
      'huge/compose.yaml: 20 MiB, over limits.blobSize (10 MiB): berth does not read a file this big',
    ]);
  });

  it('refuses the whole repo when berth.yaml is one', () => {
    expect(errors(snapshot({ 'app/compose.yaml': web('{}') }, { 'berth.yaml': big }))).toEqual([
      'berth.yaml: 20 MiB, over limits.blobSize (10 MiB): berth does not read a file this big',
    ]);
  });
});
