// The berth command as a person runs it: exit codes, messages, no stack traces, and nothing a
// repo holds that could drive the terminal.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeConfig } from './harness/berth.ts';
import { startGitServer, git, type GitServer } from './harness/git-server.ts';
import { testDocker, uniqueName, removeContainers } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { seedExamplesRepo } from '../src/source/seed.ts';
import { GitSource } from '../src/source/git.ts';
import { renderSnapshot } from '../src/render/index.ts';
import { printable } from '../src/cli/text.ts';
import { formatReplicasTable, formatStatusTable } from '../src/cli/status.ts';
import { formatHostsTable } from '../src/cli/hosts.ts';

const EXAMPLES = resolve(import.meta.dirname, '../examples');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'berth-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const noStackTrace = (s: string) => expect(s).not.toMatch(/\n\s+at /);

/** Control characters a terminal acts on: all of C0 but tab and newline, DEL, C1. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('text from a repo, a host or a server, as the CLI prints it', () => {
  it.each([
    ['plain text', 'plain text', 'plain text'],
    ['clear \x1b[2Jscreen', 'clear [2Jscreen', 'clear [2Jscreen'],
    ['title \x1b]0;pwned\x07 set', 'title ]0;pwned set', 'title ]0;pwned set'],
    ['line one\r\nline two\ttabbed', 'line one\nline two\ttabbed', 'line one line two tabbed'],
    ['fake\rover', 'fakeover', 'fakeover'],
    ['c1 \u009b2J and del \u007f', 'c1 2J and del ', 'c1 2J and del '],
    ['unicode stays: é ✓ 日本', 'unicode stays: é ✓ 日本', 'unicode stays: é ✓ 日本'],
  ])('%j', (text, lines, oneLine) => {
    expect(printable(text)).toBe(lines);
    expect(printable(text, { oneLine: true })).toBe(oneLine);
  });

  it('status and hosts tables: every cell one line without control characters, columns still aligned', () => {
    const state = {
      name: 'web',
      repo: 'apps',
      sync: 'OutOfSync' as const,
      health: 'Degraded' as const,
      condition: 'Failed' as const,
      reason: 'render failed:\n\x1b[2Jimage \x1b[31mred\x1b[0m',
      replicas: [{ service: 'web', slot: 1, host: 'h1', state: 'running', image: 'evil\x1b[2J:1' }],
    };
    const status = formatStatusTable([state], Date.parse('2026-12-02T10:00:00Z'));
    expect(status).not.toMatch(CONTROL);
    expect(status.split('\n').slice(-2)).toEqual(['web: render failed:', '  [2Jimage [31mred[0m']);
    const replicas = formatReplicasTable(state).split('\n');
    expect(replicas[1]).toMatch(/ evil\[2J:1 /);
    expect(replicas[0]!.indexOf('CONTAINER')).toBe(replicas[1]!.lastIndexOf(' -') + 1);
    const hosts = formatHostsTable([
      {
        name: 'h1',
        endpoint: 'tcp://h1:2376',
        state: 'unreachable',
        since: '2026-12-02T10:00:00Z',
        labels: { zone: 'a\x1b[2J' },
        error: 'refused\x1b[2J\nby peer',
      },
    ]);
    expect(hosts).not.toMatch(CONTROL);
    expect(hosts).toContain('zone=a[2J');
    expect(hosts).toContain('h1: unreachable: refused[2J\nby peer');
  });
});

describe('berth validate', () => {
  it('accepts the bundled examples', async () => {
    const r = await runCli(['validate', EXAMPLES]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('a repo of stack folders (no berth.yaml): 2 stack(s): hello, pair\nok: 2 stack(s), 3 service(s)\n');
  });

  it('takes a folder holding one Compose file as a single stack, and says which it took', async () => {
    const dir = join(tmp, 'Single.App');
    mkdirSync(join(dir, 'db'), { recursive: true });
    writeFileSync(join(dir, 'docker-compose.yml'), 'include: [db/compose.yaml]\nservices:\n  web:\n    image: nginx\n');
    writeFileSync(join(dir, 'db/compose.yaml'), 'services:\n  db:\n    image: postgres\n');
    const byFolder = await runCli(['validate', dir]);
    expect(byFolder.stderr).toBe('');
    expect(byFolder.code).toBe(0);
    expect(byFolder.stdout).toBe(
      'a single stack (docker-compose.yml): singleapp (no name: in docker-compose.yml: named after the folder here, after the repo by berth serve)\nok: 1 stack(s), 2 service(s)\n',
    );
    const config = join(tmp, 'single.yaml');
    writeFileSync(config, 'repos:\n  - name: shop\n    url: /nowhere\n');
    const byRepo = await runCli(['--config', config, 'validate', dir, '--repo', 'shop']);
    expect(byRepo.stdout).toBe(
      'a single stack (docker-compose.yml): shop (no name: in docker-compose.yml: named after the repo)\nok: 1 stack(s), 2 service(s)\n',
    );
    writeFileSync(join(dir, 'compose.yaml'), 'name: web\nservices:\n  web:\n    image: nginx\n    ports: [80]\n');
    const named = await runCli(['validate', dir]);
    expect(named.stdout).toBe('a single stack (compose.yaml): web\nok: 1 stack(s), 1 service(s)\n');
    writeFileSync(join(dir, 'compose.yaml'), 'name: Web\nservices:\n  web:\n    image: nginx\n');
    const bad = await runCli(['validate', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe(
      "a single stack (compose.yaml)\ncompose.yaml:1:7: name: the project name 'Web' is not a valid stack name (lower-case letters, digits, _ and -, starting with a letter or digit)\n",
    );
    writeFileSync(join(dir, 'berth.yaml'), 'stacks:\n  - name: a\n    compose: db/compose.yaml\n  - name: b\n    compose: docker-compose.yml\n');
    const listed = await runCli(['validate', dir]);
    expect(listed.stdout).toBe('a repo with berth.yaml: 2 stack(s): a, b\nok: 2 stack(s), 3 service(s)\n');
    noStackTrace(bad.stderr);
  });

  it('reports each error as file:line:col: message and exits 1', async () => {
    const dir = join(tmp, 'broken');
    mkdirSync(join(dir, 'web'), { recursive: true });
    mkdirSync(join(dir, 'db'), { recursive: true });
    writeFileSync(join(dir, 'web/compose.yaml'), 'services:\n  web:\n    image: nginx\n    enviroment:\n      A: b\n');
    writeFileSync(join(dir, 'db/compose.yaml'), 'services:\n  db:\n    image: postgres\n    build: .\n');
    const r = await runCli(['validate', dir]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^web\/compose\.yaml:4:5: .*enviroment.*environment/),
        expect.stringMatching(/^db\/compose\.yaml:4:12: services\.db\.build: db\/Dockerfile does not exist in the repository/),
      ]),
    );
    noStackTrace(r.stderr);
  });

  it("checks against the strict policy, or a repo's policy with --config and --repo", async () => {
    const dir = join(tmp, 'privileged');
    mkdirSync(join(dir, 'agent'), { recursive: true });
    writeFileSync(join(dir, 'agent/compose.yaml'), 'services:\n  agent:\n    image: busybox\n    privileged: true\n    volumes: [/srv/agent:/data]\n');
    const config = join(tmp, 'policy.yaml');
    writeFileSync(
      config,
      'repos:\n  - name: ops\n    url: /nowhere\n    policy: { privileged: true, bindMounts: [/srv/] }\n  - name: apps\n    url: /nowhere\n',
    );
    const strict = await runCli(['validate', dir]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(
      "agent/compose.yaml:4:17: services.agent.privileged: a privileged container is not allowed for this repo: allow it with policy.privileged: true on the repo in berth's config",
    );
    expect(strict.stdout).toContain('agent/compose.yaml:5:15: services.agent.volumes[0]: a bind mount of /srv/agent is not allowed for this repo');
    const ops = await runCli(['--config', config, 'validate', dir, '--repo', 'ops']);
    expect(ops.stdout).toBe('a repo of stack folders (no berth.yaml): 1 stack(s): agent\nok: 1 stack(s), 1 service(s)\n');
    expect(ops.code).toBe(0);
    const apps = await runCli(['validate', dir, '--config', config, '--repo', 'apps']);
    expect(apps.code).toBe(1);
    const unknown = await runCli(['validate', dir, '--config', config, '--repo', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`no repo 'nope' in ${config} (its repos: ops, apps)`);
    writeFileSync(config, 'repos:\n  - name: ops\n    url: /nowhere\n    policy: { bindMounts: [srv] }\n');
    const bad = await runCli(['validate', dir, '--config', config, '--repo', 'ops']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${config}:4:28: repos.0.policy.bindMounts.0: must match pattern "^/"`);
  });

  it('says so when the folder does not exist', async () => {
    const r = await runCli(['validate', join(tmp, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such folder');
  });
});

describe('bad config and unreachable repos', () => {
  it('a bad config file is a clear error naming file, line and key, exit 2', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, 'hosts:\n  - name: local\n    endpoint: unix:///var/run/docker.sock\n    lables: { a: b }\n');
    const r = await runCli(['--config', file, 'sync']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:4:5: hosts.0: must NOT have additional properties 'lables'`);
    expect(r.stderr).toContain('lables');
    noStackTrace(r.stderr);
  });

  it('broken YAML in the config points at the line', async () => {
    const file = join(tmp, 'bad2.yaml');
    writeFileSync(file, 'hosts: [\n');
    const r = await runCli(['--config', file, 'diff']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${file}:\\d+:\\d+: `));
    noStackTrace(r.stderr);
  });

  it('an unreachable repo is a clear error and a non-zero exit', async () => {
    const cfg = writeConfig([{ name: 'gone', url: 'http://127.0.0.1:9/nothing.git' }]);
    try {
      const r = await runCli(['--config', cfg.file, 'sync']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/repo gone.*127\.0\.0\.1:9/);
      noStackTrace(r.stderr);
    } finally {
      cfg.cleanup();
    }
  });
});

describe('berth diff and sync against the test daemon', () => {
  let server: GitServer;
  beforeAll(async () => {
    server = await startGitServer();
  });
  afterAll(async () => server?.close());

  it('diff shows the plan and changes nothing; after a sync it is clean', async () => {
    const docker = testDocker();
    const stack = uniqueName('diff').replaceAll('-', '');
    const repo = await server.createRepo(uniqueName('diffrepo'));
    await repo.commit({ [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    environment: { COLOR: blue }\n` });
    const cfg = writeConfig([{ name: repo.name, url: repo.url }]);
    try {
      const planned = await runCli(['--config', cfg.file, 'diff']);
      expect(planned.code, planned.stderr).toBe(1);
      expect(planned.stdout).toContain(`# create web#1 on test: missing`);
      expect(planned.stdout).toContain(`+++ b/${stack}/web`);
      expect(planned.stdout).toContain(`+  COLOR: blue`);
      expect(await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).toEqual([]);

      const synced = await runCli(['--config', cfg.file, 'sync']);
      expect(synced.code, synced.stderr).toBe(0);
      expect(synced.stdout).toMatch(new RegExp(`${stack}: synced \\(1 container change\\(s\\), sync \\d+\\)`));

      const clean = await runCli(['--config', cfg.file, 'diff', '--stack', stack]);
      expect(clean.code, clean.stdout).toBe(0);
      expect(clean.stdout).toContain(`# ${stack}: in sync`);

      const audit = await runCli(['--config', cfg.file, 'audit', '--stack', stack]);
      expect(audit.code).toBe(0);
      expect(audit.stdout).toContain('container.created');

      // a commit whose message and author would clear the terminal, retitle it and ring its bell,
      // and a Compose file whose error quotes a key made of the same
      const tricky = '\x1b[2J\x1b]0;pwned\x07';
      await repo.commit(
        { [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    environment: { COLOR: green }\n` },
        { message: `deploy ${tricky}now\r\nsecond line`, author: { name: `Mallory${tricky}`, email: 'm@example.com' } },
      );
      const retitled = await runCli(['--config', cfg.file, 'diff']);
      expect(retitled.code, retitled.stderr).toBe(1);
      expect(retitled.stdout).toContain(`@ ${(await repo.head()).slice(0, 7)} deploy [2J]0;pwnednow (Mallory[2J]0;pwned)`);
      const resynced = await runCli(['--config', cfg.file, 'sync']);
      expect(resynced.code, resynced.stderr).toBe(0);
      // YAML's own escapes: the key holds ESC and BEL once parsed
      await repo.commit(
        { [`${stack}/compose.yaml`]: `services:\n  web:\n    image: ${IMAGES.webV1}\n    "bad\\e[2J\\e]0;pwned\\akey": 1\n` },
        { message: tricky },
      );
      const invalid = await runCli(['--config', cfg.file, 'diff']);
      expect(invalid.code).toBe(2);
      expect(invalid.stdout).toMatch(new RegExp(`# ${stack}: invalid\\n.*bad\\[2J\\]0;pwnedkey`));
      for (const r of [retitled, resynced, invalid]) expect(r.stdout + r.stderr, r.stdout).not.toMatch(CONTROL);
    } finally {
      await removeContainers(docker, { 'berth.stack': stack });
      cfg.cleanup();
    }
  });
});

describe('the embedded default', () => {
  it('seeds the bundled examples as a git repo that renders and follows new commits', async () => {
    const dir = join(tmp, 'examples-repo');
    expect(await seedExamplesRepo(dir, EXAMPLES)).toBe(true);
    expect(await seedExamplesRepo(dir, EXAMPLES)).toBe(false);
    const source = new GitSource({ name: 'examples', url: dir, branch: 'main' }, join(tmp, 'cache'));
    const first = await source.update();
    const rendered = renderSnapshot(await source.snapshot(first.sha));
    expect(rendered.errors).toEqual([]);
    expect(rendered.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['hello', true],
      ['pair', true],
    ]);
    // What the README tells a newcomer to do: edit, commit, and berth sees the new commit.
    writeFileSync(join(dir, 'hello/compose.yaml'), 'services:\n  web:\n    image: berth-demo/web:v2\n');
    await git(['-c', 'user.name=New Comer', '-c', 'user.email=new@example.com', 'commit', '-qam', 'hello v2'], dir);
    const second = await source.update();
    expect(second).toMatchObject({ author: 'New Comer', message: 'hello v2' });
    const again = renderSnapshot(await source.snapshot(second.sha));
    const hello = again.stacks.find((s) => s.def.name === 'hello');
    expect(hello?.ok && hello.stack.services[0].image).toBe('berth-demo/web:v2');
  });
});
