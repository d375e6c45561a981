// The engine config's errors, located where they are written (pure: files only, no Docker).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** The message loading `yaml` as a config fails with. */
function refusal(yaml: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, yaml);
  try {
    loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.replaceAll(`${file}:`, 'FILE:');
  }
  throw new Error('the config loaded');
}

describe('an unknown key in the engine config', () => {
  test.each([
    ['at the top level, on the first line', 'reops: []\n', "FILE:1:1: (top level): must NOT have additional properties 'reops'"],
    [
      'at the top level, further down',
      'dataDir: ./data\nlisten: 127.0.0.1:8080\n\nrepo:\n  - name: a\n',
      "FILE:4:1: (top level): must NOT have additional properties 'repo'",
    ],
    ['indented in a flow mapping', 'hostCheck: { interval: 10s, grace: 1m }\n', "FILE:1:29: hostCheck: must NOT have additional properties 'grace'"],
    [
      'in a list item, on its own line',
      'repos:\n  - name: a\n    url: /x\n    brnach: dev\n',
      "FILE:4:5: repos.0: must NOT have additional properties 'brnach'",
    ],
  ])('%s is shown at its own line and column', (_, yaml, message) => {
    expect(refusal(yaml)).toBe(message);
  });

  test('each of several is shown at its own place', () => {
    expect(refusal('dataDir: ./d\nfoo: 1\nlimits:\n  api: 10\n  bar: 2\n').split('\n')).toEqual([
      "FILE:2:1: (top level): must NOT have additional properties 'foo'",
      "FILE:5:3: limits: must NOT have additional properties 'bar'",
    ]);
  });

  test('other errors stay at the value', () => {
    expect(refusal('dataDir: ./d\nhostConcurrency: many\n')).toBe('FILE:2:18: hostConcurrency: must be integer');
  });
});
