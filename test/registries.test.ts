// Registry credentials as the engine config gives them (src/apply/registries.ts): which registry an
// image is pulled from, which credentials go with it, Docker's own config file and its credential
// helpers (a real script on PATH stands in for docker-credential-NAME), and secrets kept out of
// every message. No Docker here: the pulls with them are tested against a real registry.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { imageKey, normalizeRegistry, Registries, registryOf, runCredentialHelper } from '../src/apply/registries.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-registries-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string, mode = 0o600) => {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  return path;
};

const PASSWORD = 's3cret-Pa55word';
const TOKEN = 'identity-T0ken-xyz';

describe('the registry of an image', () => {
  it.each([
    ['nginx', 'docker.io'],
    ['nginx:1.27', 'docker.io'],
    ['library/nginx', 'docker.io'],
    ['acme/web:1.4', 'docker.io'],
    ['docker.io/acme/web', 'docker.io'],
    ['index.docker.io/library/nginx', 'docker.io'],
    ['ghcr.io/acme/web:1.4', 'ghcr.io'],
    ['GHCR.io/acme/web', 'ghcr.io'],
    ['registry.example.com:5000/team/app@sha256:abcd', 'registry.example.com:5000'],
    ['localhost/app', 'localhost'],
    ['localhost:5000/app:2', 'localhost:5000'],
    ['10.0.0.5:5000/app', '10.0.0.5:5000'],
  ])('%s is pulled from %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry);
  });

  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['https://ghcr.io', 'ghcr.io'],
    ['http://reg.local:5000/v2/', 'reg.local:5000'],
  ])('a Docker config key %s is %s', (address, registry) => {
    expect(normalizeRegistry(address)).toBe(registry);
  });

  it.each([
    ['nginx', 'docker.io/library/nginx:latest'],
    ['library/nginx:latest', 'docker.io/library/nginx:latest'],
    ['docker.io/library/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/nginx@sha256:' + 'a'.repeat(64), 'docker.io/library/nginx:latest'],
    ['acme/web:1.4', 'docker.io/acme/web:1.4'],
    ['GHCR.io/acme/web:1.4', 'ghcr.io/acme/web:1.4'],
    ['reg:5000/team/app', 'reg:5000/team/app:latest'],
    ['localhost:5000/app:2@sha256:' + 'b'.repeat(64), 'localhost:5000/app:2'],
  ])('the image %s is %s as a key', (image, key) => {
    expect(imageKey(image)).toBe(key);
  });
});

describe('credentials from registries:', () => {
  it('gives a host its username and password, the first entry that knows the registry winning; others pull anonymously', async () => {
    const regs = Registries.load([
      { host: 'ghcr.io', username: 'deploy-bot', passwordFile: file('ghcr', `${PASSWORD}\n`) },
      { host: 'ghcr.io', username: 'second', passwordFile: file('ghcr2', 'other') },
      { host: 'docker.io', username: 'hubuser', passwordFile: file('hub', 'hubpass') },
    ]);
    const ghcr = await regs.credentialFor('ghcr.io/acme/web:1.4');
    expect(ghcr).toMatchObject({ registry: 'ghcr.io', source: 'registries[0]', username: 'deploy-bot' });
    expect(ghcr!.authconfig()).toEqual({ username: 'deploy-bot', password: PASSWORD, serveraddress: 'ghcr.io' });
    expect((await regs.credentialFor('nginx'))!.authconfig()).toEqual({
      username: 'hubuser',
      password: 'hubpass',
      serveraddress: 'https://index.docker.io/v1/',
    });
    expect(await regs.credentialFor('quay.io/x/y')).toBeUndefined();
  });

  it('keeps the secret out of JSON, inspection and logs', async () => {
    const regs = Registries.load([{ host: 'ghcr.io', username: 'deploy-bot', passwordFile: file('ghcr3', PASSWORD) }]);
    const c = (await regs.credentialFor('ghcr.io/a/b'))!;
    for (const shown of [JSON.stringify(c), JSON.stringify({ c }), inspect(c, { depth: 5 }), String(c)]) expect(shown).not.toContain(PASSWORD);
  });

  it('reads Docker config files: auths (base64 user:password, username and password, identity tokens), credHelpers, credsStore', async () => {
    const helper = file(
      'docker-credential-berthtest',
      `#!/bin/sh
read server
case "$server" in
  helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"helper-user","Secret":"${PASSWORD}"}' ;;
  store.example.com) echo '{"ServerURL":"store.example.com","Username":"<token>","Secret":"${TOKEN}"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
      0o755,
    );
    chmodSync(helper, 0o755);
    const config = file(
      'config.json',
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from(`hub:${PASSWORD}`).toString('base64') },
          'reg.example.com:5000': { username: 'u', password: 'p' },
          'tok.example.com': { identitytoken: TOKEN },
        },
        credHelpers: { 'helped.example.com': 'berthtest' },
        credsStore: 'berthtest',
      }),
    );
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      const regs = Registries.load([{ dockerConfigFile: config }]);
      expect((await regs.credentialFor('library/nginx'))!.authconfig()).toMatchObject({ username: 'hub', password: PASSWORD });
      expect((await regs.credentialFor('reg.example.com:5000/app'))!.authconfig()).toEqual({
        username: 'u',
        password: 'p',
        serveraddress: 'reg.example.com:5000',
      });
      expect((await regs.credentialFor('tok.example.com/app'))!.authconfig()).toEqual({ identitytoken: TOKEN, serveraddress: 'tok.example.com' });
      const helped = (await regs.credentialFor('helped.example.com/app'))!;
      expect(helped).toMatchObject({ username: 'helper-user', source: `registries[0] (${config}, credential helper berthtest)` });
      expect(helped.authconfig()).toMatchObject({ password: PASSWORD });
      // credsStore answers for what auths and credHelpers do not name; an identity token comes as user <token>
      expect((await regs.credentialFor('store.example.com/app'))!.authconfig()).toEqual({ identitytoken: TOKEN, serveraddress: 'store.example.com' });
      // "credentials not found" from the store: anonymous
      expect(await regs.credentialFor('quay.io/x/y')).toBeUndefined();
    } finally {
      process.env.PATH = path;
    }
  });

  it('a helper that is missing or answers nonsense fails with its name and no output', async () => {
    await expect(runCredentialHelper('berth-nonexistent-helper', 'x.example.com')).rejects.toThrow(
      /docker-credential-berth-nonexistent-helper is not on berth's PATH/,
    );
    file('docker-credential-berthbad', `#!/bin/sh\necho "not json ${PASSWORD}"\n`, 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      const err = await runCredentialHelper('berthbad', 'x.example.com').catch((e: Error) => e);
      expect(String(err)).toMatch(/docker-credential-berthbad answered something that is not a credential/);
      expect(String(err)).not.toContain(PASSWORD);
    } finally {
      process.env.PATH = path;
    }
  });

  it('stops at start with the file named, never its content, when a file cannot be used', () => {
    expect(() => Registries.load([{ host: 'ghcr.io', username: 'u', passwordFile: join(dir, 'missing') }])).toThrow(
      new ConfigError(`cannot read the password of registry ghcr.io (registries[0]) from ${join(dir, 'missing')}: ENOENT`),
    );
    expect(() => Registries.load([{ host: 'ghcr.io', username: 'u', passwordFile: file('empty', '\n') }])).toThrow(
      /the password file .*empty of registry ghcr.io \(registries\[0\]\) is empty/,
    );
    const broken = file('broken.json', `{"auths": {"x": {"auth": "${PASSWORD}"`);
    const err = (() => {
      try {
        Registries.load([{ dockerConfigFile: broken }]);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toBe(`the Docker config file ${broken} (registries[0]) is not JSON`);
    const notBasic = file('notbasic.json', JSON.stringify({ auths: { 'r.example.com': { auth: Buffer.from(PASSWORD).toString('base64') } } }));
    expect(() => Registries.load([{ dockerConfigFile: notBasic }])).toThrow(
      `${notBasic} (registries[0]): auths.r.example.com.auth is not base64 of user:password`,
    );
  });
});

describe('registries: in the engine config', () => {
  const config = (yaml: string) => loadConfig(file(`berth-${Math.random().toString(36).slice(2)}.yaml`, yaml));

  it('takes host, username and passwordFile, or dockerConfigFile, paths relative to the config', () => {
    const c = config('registries:\n  - host: GHCR.io\n    username: bot\n    passwordFile: secrets/ghcr\n  - dockerConfigFile: /root/.docker/config.json\n');
    expect(c.registries).toEqual([
      { host: 'ghcr.io', username: 'bot', passwordFile: join(dir, 'secrets/ghcr') },
      { dockerConfigFile: '/root/.docker/config.json' },
    ]);
    expect(config('hosts:\n  - name: a\n    endpoint: unix:///x.sock\n').registries).toEqual([]);
  });

  it.each([
    ['registries:\n  - host: ghcr.io\n    username: bot\n', /registries\[0\]: passwordFile missing: an entry is host, username and passwordFile/],
    ['registries:\n  - dockerConfigFile: c.json\n    host: ghcr.io\n', /registries\[0\]: dockerConfigFile stands alone/],
    ['registries:\n  - host: https://ghcr.io\n    username: u\n    passwordFile: p\n', /:2:11: registries\.0\.host: must match pattern/],
    ['registries:\n  - host: ghcr.io\n    password: hunter2\n', /:3:5: registries\.0: must NOT have additional properties 'password'/],
    [
      'registries:\n  - host: reg:5000\n    username: u\n    passwordFile: p\n    caFile: ca.pem\n',
      /registries\[0\]\.caFile: berth sends no request to a registry .* \/etc\/docker\/certs\.d\/reg:5000\/ca\.crt/,
    ],
  ])('refuses %j with where it is', (yaml, message) => {
    expect(() => config(yaml)).toThrow(message);
  });
});
