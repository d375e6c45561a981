// `berth init --repo URL`: the starter engine config that makes the first run two commands
// (`berth init --repo URL`, then `berth serve`), through the CLI; and its text from plain data.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, test } from 'vitest';
import { loadAuditSigner } from '../src/audit/anchor.ts';
import { loadConfig } from '../src/config.ts';
import { repoNameOf, starterConfig } from '../src/cli/init.ts';
import { runCli } from './harness/berth.ts';

describe('berth init --repo', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-init-repo-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const init = (args: string[], global: string[] = []) => runCli([...global, 'init', ...args], { cwd: dir, env: { BERTH_CONFIG: '' } });

  it('writes a commented config that loads: the local socket, the repo, the API on loopback, the audit key', async () => {
    const r = await init(['--repo', 'https://git.example.com/acme/Shop.git']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^created audit\.key: the Ed25519 key/);
    expect(lines[2]).toBe(
      'created berth.config.yaml: the local Docker socket as the host, repo shop (https://git.example.com/acme/Shop.git, branch main), the API on 127.0.0.1:8080 (no tokens: loopback only), dataDir ./data, auditKeyFile audit.key',
    );
    expect(lines[3]).toMatch(/^next: .*\bserve$/);
    const config = loadConfig(join(dir, 'berth.config.yaml'));
    expect(config).toMatchObject({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:8080',
      auth: { tokens: [] },
      auditKeyFile: join(dir, 'audit.key'),
      hosts: [{ name: 'local', endpoint: 'unix:///var/run/docker.sock' }],
      repos: [{ name: 'shop', url: 'https://git.example.com/acme/Shop.git', branch: 'main', poll: '1m' }],
    });
    expect(config.repos[0]!.auth).toBeUndefined();
    expect(loadAuditSigner(join(dir, 'audit.key')).keyId).toMatch(/^[0-9a-f]{16}$/);
    const text = readFileSync(join(dir, 'berth.config.yaml'), 'utf8');
    // each key said; the settings a person adds next are there, commented out
    expect(text).toMatch(/^# berth's engine config \(docs\/config\.md has every key\)/);
    expect(text).toContain('# on loopback only');
    expect(text).toContain('# auth: { tokens: [');
    expect(text).toContain('# top-level name: is deployed as the stack of this name');
    expect(text).toContain('    # auth: { tokenFile: /run/secrets/git-token }');
    expect(text).toContain('    # path: deploy/');
  });

  it('takes --branch, and a local path made absolute', async () => {
    mkdirSync(join(dir, 'etc'));
    const r = await init(['--repo', '../my.app', '--branch', 'release'], ['--config', 'etc/berth.yaml']);
    expect(r.code, r.stderr).toBe(0);
    const config = loadConfig(join(dir, 'etc', 'berth.yaml'));
    expect(config.repos).toMatchObject([{ name: 'my-app', url: join(dir, '..', 'my.app'), branch: 'release' }]);
    expect(config.auditKeyFile).toBe(join(dir, 'etc', 'audit.key'));
    expect(r.stdout).toMatch(/next: .*--config etc\/berth\.yaml serve$/m);
  });

  it('refuses to overwrite an existing config, unless --force, which keeps the audit key', async () => {
    expect((await init(['--repo', 'https://x/one.git'])).code).toBe(0);
    const text = readFileSync(join(dir, 'berth.config.yaml'), 'utf8');
    const key = readFileSync(join(dir, 'audit.key'), 'utf8');

    const again = await init(['--repo', 'https://x/two.git']);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('berth.config.yaml exists: berth init does not overwrite it (--force replaces it');
    expect(readFileSync(join(dir, 'berth.config.yaml'), 'utf8')).toBe(text);

    const forced = await init(['--repo', 'https://x/two.git', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('kept audit.key: berth init never replaces a key');
    expect(forced.stdout).toContain('replaced berth.config.yaml: ');
    expect(readFileSync(join(dir, 'audit.key'), 'utf8')).toBe(key);
    expect(loadConfig(join(dir, 'berth.config.yaml')).repos).toMatchObject([{ name: 'two', url: 'https://x/two.git' }]);
  });

  it('--force replaces a config that does not load, and keeps the key it named', async () => {
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'berth.config.yaml'), 'auditKeyFile: keys/k.pem\nrepos: [\n');
    const broken = await init(['--repo', 'https://x/a.git']);
    expect(broken.code).toBe(1);
    const forced = await init(['--repo', 'https://x/a.git', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(loadConfig(join(dir, 'berth.config.yaml')).auditKeyFile).toBe(join(dir, 'audit.key'));

    writeFileSync(join(dir, 'berth.config.yaml'), 'auditKeyFile: keys/k.pem\n');
    const kept = await init(['--repo', 'https://x/a.git', '--force']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toContain('created keys/k.pem: ');
    expect(loadConfig(join(dir, 'berth.config.yaml')).auditKeyFile).toBe(join(dir, 'keys', 'k.pem'));
  });
});

describe('the starter config', () => {
  test.each([
    ['https://github.com/acme/shop.git', 'shop'],
    ['https://github.com/acme/My.Shop.git/', 'my-shop'],
    ['/srv/git/Platform', 'platform'],
    ['../app.git', 'app'],
    ['https://host/repo?ref=x', 'repo'],
    ['https://host/_', 'app'],
  ])('names the repo of %s %s', (url, name) => {
    expect(repoNameOf(url)).toBe(name);
  });

  it('quotes what YAML would read otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-starter-'));
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, starterConfig({ repo: { name: 'a', url: '/srv/my repo: #1', branch: 'yes' }, keyFile: 'audit.key' }));
      expect(loadConfig(file).repos).toMatchObject([{ url: '/srv/my repo: #1', branch: 'yes' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
