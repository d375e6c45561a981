// renderSnapshot with the previous result: the stacks whose inputs did not change are taken from it as they are; the result is the same as a render from scratch.
import { describe, expect, test } from 'vitest';
import { renderSnapshot } from '../../src/render/index.ts';
import type { RenderResult, Snapshot } from '../../src/model.ts';

const snapshot = (files: Record<string, string>, modes: Record<string, number> = {}): Snapshot => ({
  repo: 'test',
  commit: { sha: 'abc', author: 'a', email: 'a@x', message: 'm', time: 0 },
  files: new Map(Object.entries(files).map(([path, text]) => [path, new TextEncoder().encode(text)])),
  modes: new Map(Object.entries(modes)),
});

const web = (image: string, extra = '') => `services:\n  web:\n    image: ${image}\n${extra}`;

const base: Record<string, string> = {
  'a/compose.yaml': web('nginx:${TAG}', '    environment: [X=1]\n'),
  'a/.env': 'TAG=1\n',
  'b/compose.yaml': 'include: [../lib/cache.yaml]\n' + web('b'),
  'lib/cache.yaml': 'services:\n  cache:\n    image: redis\n',
  'c/compose.yaml': 'services:\n  web:\n    extends: { file: ../common/base.yaml, service: base }\n',
  'common/base.yaml': 'services:\n  base:\n    image: base:1\n',
  'd/compose.yaml': 'services:\n  web:\n    build: .\n',
  'd/Dockerfile': 'FROM scratch\n',
  'e/compose.yaml': 'include: [../missing/more.yaml]\n' + web('e'),
};

/** The stacks rendered again (not taken from `before`), by name. */
const renderedAgain = (before: RenderResult, after: RenderResult) =>
  after.stacks.filter((s) => before.stacks.find((o) => o.def.name === s.def.name) !== s).map((s) => s.def.name);

describe('renderSnapshot with the previous result', () => {
  test.each([
    ['nothing changes', {}, {}, []],
    ["a stack's compose file", { 'a/compose.yaml': web('nginx:${TAG}', '    environment: [X=2]\n') }, {}, ['a']],
    ["a stack's .env", { 'a/.env': 'TAG=2\n' }, {}, ['a']],
    ['a file another folder includes', { 'lib/cache.yaml': 'services:\n  cache:\n    image: redis:7\n' }, {}, ['b']],
    ['a file another folder extends', { 'common/base.yaml': 'services:\n  base:\n    image: base:2\n' }, {}, ['c']],
    ['a missing include appears', { 'missing/more.yaml': 'services:\n  x:\n    image: x\n' }, {}, ['d', 'e']], // d lists the files: a new path anywhere
    ['a file in a build context', { 'd/app.sh': 'echo hi\n' }, {}, ['d']],
    ['a file nobody reads, in a folder of its own', { 'docs/README.md': 'hello\n' }, {}, ['d']],
    ["a build context file's mode", {}, { 'd/Dockerfile': 0o100755 }, ['d']],
    ['the same bytes in a new buffer', { 'a/compose.yaml': base['a/compose.yaml'] }, {}, []],
  ] as Array<[string, Record<string, string>, Record<string, number>, string[]]>)('%s', (_what, changes, modes, again) => {
    const before = renderSnapshot(snapshot(base));
    const next = snapshot({ ...base, ...changes }, modes);
    const after = renderSnapshot(next, {}, before);
    expect(renderedAgain(before, after)).toEqual(again);
    expect(after).toEqual(renderSnapshot(next));
  });

  test("berth.yaml's definition of a stack renders it again; a stack gone from it is gone", () => {
    const manifest = (autoA: boolean) =>
      `stacks:\n  - { name: a, compose: a/compose.yaml, sync: { auto: ${autoA} } }\n  - { name: b, compose: b/compose.yaml }\n  - { name: c, compose: c/compose.yaml }\n`;
    const before = renderSnapshot(snapshot({ ...base, 'berth.yaml': manifest(true) }));
    const after = renderSnapshot(snapshot({ ...base, 'berth.yaml': manifest(false) }), {}, before);
    expect(renderedAgain(before, after)).toEqual(['a']);
    expect(after.stacks.find((s) => s.def.name === 'a')?.def.sync.auto).toBe(false);
    const fewer = renderSnapshot(snapshot({ ...base, 'berth.yaml': 'stacks:\n  - { name: b, compose: b/compose.yaml }\n' }), {}, after);
    expect(fewer.stacks.map((s) => s.def.name)).toEqual(['b']);
    expect(renderedAgain(after, fewer)).toEqual([]);
  });

  test('a stack with errors is taken as it was while its files stay the same, and renders again once they change', () => {
    const broken = { ...base, 'a/compose.yaml': 'services:\n  web:\n    image: [\n' };
    const before = renderSnapshot(snapshot(broken));
    expect(before.stacks.find((s) => s.def.name === 'a')?.ok).toBe(false);
    const same = renderSnapshot(snapshot({ ...broken, 'b/compose.yaml': 'include: [../lib/cache.yaml]\n' + web('b:2') }), {}, before);
    expect(renderedAgain(before, same)).toEqual(['b']);
    const fixed = renderSnapshot(snapshot(base), {}, same);
    expect(renderedAgain(same, fixed)).toEqual(['a', 'b']);
    expect(fixed.stacks.filter((s) => !s.ok).map((s) => s.def.name)).toEqual(['e']); // e's include is missing throughout
  });
});
