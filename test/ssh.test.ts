// Docker hosts over ssh://user@host:port: the known_hosts check (pure), the `ssh` config block, and
// then a real sshd in the first test daemon's network namespace, whose `docker system dial-stdio`
// reaches that daemon: `berth hosts` (up, wrong key, unknown and changed host key, closed port) and
// a sync by the engine through it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import type { HostSummary } from '../src/engine/ops.ts';
import { connect } from '../src/observe/docker.ts';
import { checkHostKey, fingerprint, knownHostsName, type HostKeyCheck } from '../src/observe/ssh.ts';
import { runCli, testEngine, writeConfig, type TestHost } from './harness/berth.ts';
import { removeContainers, uniqueName } from './harness/docker.ts';
import { startGitServer, type GitServer } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';

const execFileAsync = promisify(execFile);

// A key and its line hashed by `ssh-keygen -H` for [example.org]:2222, and its `ssh-keygen -l` fingerprint.
const KEY_B64 = 'AAAAC3NzaC1lZDI1NTE5AAAAILZlonBl+uf8w+bSIHxD4rAIwNySvEURYelSd90Aopcf';
const KEY = Buffer.from(KEY_B64, 'base64');
const HASHED = '|1|oKZy5eWWQwyaDPsZysP5DVPpw4M=|EF0HMWgo0CtW+Def4Ijai5iMipI=';
const KEY_FINGERPRINT = 'SHA256:aWiK2tB2LF6PZbChKEe//8zO4TSulsxGDuDRSyU23DM';
/** Another ed25519 key (the same bytes but the last) and an RSA-typed blob. */
const OTHER_B64 = Buffer.concat([KEY.subarray(0, -1), Buffer.from([KEY.at(-1)! ^ 1])]).toString('base64');
const RSA_B64 = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(8, 7)]).toString('base64');

describe('checkHostKey (known_hosts)', () => {
  test.each<[string, string, number, HostKeyCheck]>([
    ['a plain name on port 22', `example.org ssh-ed25519 ${KEY_B64}`, 22, 'known'],
    ['a plain name does not stand for another port', `example.org ssh-ed25519 ${KEY_B64}`, 2222, 'unknown'],
    ['[host]:port for another port', `[example.org]:2222 ssh-ed25519 ${KEY_B64}`, 2222, 'known'],
    ['a list of names, in any case', `other.org,EXAMPLE.org ssh-ed25519 ${KEY_B64} comment`, 22, 'known'],
    ['a name hashed by ssh-keygen -H', `${HASHED} ssh-ed25519 ${KEY_B64}`, 2222, 'known'],
    ['a hashed name is only that name', `${HASHED} ssh-ed25519 ${KEY_B64}`, 22, 'unknown'],
    ['wildcards', `*.org,exa?ple.com ssh-ed25519 ${KEY_B64}`, 22, 'known'],
    ['a negation vetoes a wildcard', `!example.org,*.org ssh-ed25519 ${KEY_B64}`, 22, 'unknown'],
    ['comments and blank lines', `# example.org ssh-ed25519 ${KEY_B64}\n\n  \nexample.org ssh-ed25519 ${KEY_B64}\n`, 22, 'known'],
    ['another key of the same type: changed', `example.org ssh-ed25519 ${OTHER_B64}`, 22, 'changed'],
    ['a key of another type only: unknown', `example.org ssh-rsa ${RSA_B64}`, 22, 'unknown'],
    ['another line with the key wins over a changed one', `example.org ssh-ed25519 ${OTHER_B64}\nexample.org ssh-ed25519 ${KEY_B64}`, 22, 'known'],
    ['@revoked', `example.org ssh-ed25519 ${KEY_B64}\n@revoked * ssh-ed25519 ${KEY_B64}`, 22, 'revoked'],
    ['@cert-authority lines are not used', `@cert-authority *.org ssh-ed25519 ${KEY_B64}`, 22, 'unknown'],
    ['an empty file', '', 22, 'unknown'],
  ])('%s', (_, text, port, expected) => {
    expect(checkHostKey(text, 'example.org', port, KEY)).toBe(expected);
  });

  test('names and fingerprints as OpenSSH does', () => {
    expect(knownHostsName('example.org', 22)).toBe('example.org');
    expect(knownHostsName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222');
    expect(fingerprint(KEY)).toBe(KEY_FINGERPRINT);
  });
});

/** Makes an ed25519 key pair without passphrase; returns the private key's path. */
async function keygen(file: string, passphrase = ''): Promise<string> {
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'berth-test', '-f', file]);
  return file;
}

/** The base64 body of an OpenSSH private key file: what must never appear in an output. */
const keyBody = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');

describe('the ssh config block', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-ssh-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = (hosts: string) => {
    const file = join(dir, `${uniqueName('c')}.yaml`);
    writeFileSync(file, `hosts:\n${hosts}`);
    return loadConfig(file);
  };

  test('resolves keyFile and knownHostsFile against the config file; knownHostsFile defaults to ~/.ssh/known_hosts', () => {
    const config = load(
      [
        '  - { name: a, endpoint: "ssh://deploy@h:2222", ssh: { keyFile: keys/id, knownHostsFile: keys/known_hosts } }',
        '  - { name: b, endpoint: "ssh://h", ssh: { keyFile: /abs/id } }',
        '  - { name: c, endpoint: "ssh://h", ssh: { keyFile: id, insecureIgnoreHostKey: true } }',
        '',
      ].join('\n'),
    );
    expect(config.hosts.map((h) => h.ssh)).toEqual([
      { keyFile: join(dir, 'keys/id'), knownHostsFile: join(dir, 'keys/known_hosts') },
      { keyFile: '/abs/id', knownHostsFile: join(homedir(), '.ssh/known_hosts') },
      { keyFile: join(dir, 'id'), insecureIgnoreHostKey: true },
    ]);
  });

  test.each([
    ['{ name: a, endpoint: "ssh://root@h" }', /hosts\.a: an ssh:\/\/ endpoint needs ssh: \{ keyFile \}/],
    ['{ name: a, endpoint: "unix:///x.sock", ssh: { keyFile: id } }', /hosts\.a: ssh is only for an ssh:\/\/ endpoint/],
    ['{ name: a, endpoint: "ssh://root:pw@h", ssh: { keyFile: id } }', /hosts\.a: berth does not log in with a password/],
    [
      '{ name: a, endpoint: "ssh://h", ssh: { keyFile: id, knownHostsFile: kh, insecureIgnoreHostKey: true } }',
      /hosts\.a\.ssh: knownHostsFile and insecureIgnoreHostKey: true contradict/,
    ],
    ['{ name: a, endpoint: "ssh://h", ssh: { knownHostsFile: kh } }', /:2:\d+: hosts\.0\.ssh: must have required property 'keyFile'/],
    ['{ name: a, endpoint: "ssh://h", ssh: { keyFile: id, key: x } }', /hosts\.0\.ssh: must NOT have additional properties 'key'/],
    ['{ name: a, endpoint: "ssh://h", ssh: { keyFile: id, insecureIgnoreHostKey: "yes" } }', /hosts\.0\.ssh\.insecureIgnoreHostKey: must be boolean/],
  ])('refuses %s', (host, message) => {
    expect(() => load(`  - ${host}\n`)).toThrow(ConfigError);
    expect(() => load(`  - ${host}\n`)).toThrow(message);
  });

  test('connect() refuses a key file it cannot use with a config error naming the file, never its content', async () => {
    const host = (keyFile: string) => ({ name: 'x', endpoint: 'ssh://root@127.0.0.1:1', labels: {}, ssh: { keyFile, knownHostsFile: join(dir, 'kh') } });
    const garbage = join(dir, 'garbage');
    writeFileSync(garbage, '-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETbutbroken\n-----END OPENSSH PRIVATE KEY-----\n');
    const locked = await keygen(join(dir, 'locked'), 'a passphrase');
    const missing = join(dir, 'missing');
    const message = (file: string) => {
      try {
        connect(host(file));
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('connect() accepted the key');
    };
    expect(message(missing)).toBe(`host x: cannot read ssh.keyFile ${missing}: ENOENT`);
    expect(message(garbage)).toMatch(new RegExp(`^host x: ssh.keyFile ${garbage} is not a private key berth can use: `));
    expect(message(garbage)).not.toContain('TOPSECRET');
    expect(message(locked)).toBe(
      `host x: ssh.keyFile ${locked} is not a private key berth can use: it is protected by a passphrase, which berth does not support`,
    );
    expect(message(locked)).not.toContain(keyBody(locked).slice(0, 40));
  });
});

/** The pids of a process's descendants (through /proc), so that they can be killed with it. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const stat = (() => {
      try {
        return readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        return '';
      }
    })();
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const walk = (p: number) =>
    (children.get(p) ?? []).forEach((c) => {
      found.push(c);
      walk(c);
    });
  walk(pid);
  return found;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port, timeout: 1000 }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * An sshd (as root, with its own config, host key and authorized_keys under `dir`) in the network
 * namespace of the first test daemon, at its address; sessions get DOCKER_HOST set to that daemon's
 * socket, so that the `docker system dial-stdio` berth runs there talks to it (but for logins with
 * `brokenDockerKey`, whose dial-stdio is sent to a socket that does not exist).
 */
async function startSshd(dir: string, authorizedKey: string, brokenDockerKey: string) {
  const docker = inject('dockers')[0];
  const index = /^10\.231\.(\d+)\.2$/.exec(docker.address)?.[1]; // the harness: namespace berth-t<N> at 10.231.<N>.2
  if (!index) throw new Error(`unexpected test daemon address ${docker.address}`);
  const address = docker.address;
  const port = 2222; // free: the namespace is the daemon's own (dockerd listens on 2375 there)
  const hostKey = await keygen(join(dir, 'ssh_host_ed25519_key'));
  writeFileSync(
    join(dir, 'authorized_keys'),
    [
      readFileSync(`${authorizedKey}.pub`, 'utf8').trim(),
      `command="DOCKER_HOST=unix:///nonexistent.sock docker system dial-stdio" ${readFileSync(`${brokenDockerKey}.pub`, 'utf8').trim()}`,
      '',
    ].join('\n'),
  );
  const version = Number(/OpenSSH_(\d+\.\d+)/.exec((await execFileAsync('/usr/sbin/sshd', ['-V']).catch((e: { stderr: string }) => e)).stderr)?.[1] ?? 0);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress ${address}:${port}`,
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 100',
      `SetEnv DOCKER_HOST=unix://${docker.socketPath}`,
      'LogLevel VERBOSE',
      // OpenSSH 9.8+ shuts out an address for a while after failed logins; the tests fail logins on purpose
      ...(version >= 9.8 ? ['PerSourcePenalties no'] : []),
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation folder
  const logPath = join(dir, 'sshd.log');
  const log = openSync(logPath, 'a');
  const child: ChildProcess = spawn('nsenter', [`--net=/run/netns/berth-t${index}`, '/usr/sbin/sshd', '-D', '-e', '-f', config], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited = false;
  child.on('exit', () => (exited = true));
  const stop = async () => {
    if (!child.pid) return;
    for (const pid of [child.pid, ...descendants(child.pid)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    while (!exited && existsSync(`/proc/${child.pid}`)) await sleep(50);
  };
  const deadline = Date.now() + 30_000;
  while (!(await canConnect(address, port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`sshd did not start: ${readFileSync(logPath, 'utf8')}`);
    }
    await sleep(100);
  }
  const hostKeyLine = readFileSync(`${hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  return { address, port, hostKeyLine, hostKeyFingerprint: fingerprint(Buffer.from(hostKeyLine.split(' ')[1], 'base64')), logPath, stop };
}

describe('a Docker host over ssh:// (a real sshd)', () => {
  let dir: string;
  let sshd: Awaited<ReturnType<typeof startSshd>>;
  let clientKey: string;
  let otherKey: string;
  let brokenDockerKey: string;
  let knownHosts: string;
  let endpoint: string;
  const d1 = () => new Dockerode({ socketPath: inject('dockers')[0].socketPath });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-ssh-'));
    clientKey = await keygen(join(dir, 'id_berth'));
    otherKey = await keygen(join(dir, 'id_other'));
    brokenDockerKey = await keygen(join(dir, 'id_broken_docker'));
    sshd = await startSshd(dir, clientKey, brokenDockerKey);
    endpoint = `ssh://root@${sshd.address}:${sshd.port}`;
    knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `# berth test\n[${sshd.address}]:${sshd.port} ${sshd.hostKeyLine}\n`);
  });
  afterAll(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `berth hosts --json` on these hosts: exit 1 when one is not up (naming it), and never a private key shown. */
  async function hostsJson(hosts: TestHost[]): Promise<Map<string, HostSummary>> {
    const cfg = writeConfig([], { hosts });
    try {
      const result = await runCli(['--config', cfg.file, 'hosts', '--json']);
      const reports = JSON.parse(result.stdout) as HostSummary[];
      const down = reports.filter((r) => r.state !== 'up');
      expect(result.code).toBe(down.length ? 1 : 0);
      expect(result.stderr).toBe(
        down.length ? `${down.length} of ${reports.length} host(s) not up: ${down.map((r) => `${r.name} ${r.state}`).join(', ')}\n` : '',
      );
      for (const key of [clientKey, otherKey, brokenDockerKey]) expect(result.stdout + result.stderr).not.toContain(keyBody(key).slice(20, 60));
      return new Map(reports.map((r) => [r.name, r]));
    } finally {
      cfg.cleanup();
    }
  }

  test("berth hosts: up with the daemon's version; a wrong key, an unknown or changed host key, a closed port and a host whose docker fails each say why", async () => {
    const emptyKnownHosts = join(dir, 'known_hosts.empty');
    writeFileSync(emptyKnownHosts, '');
    const otherHostKey = await keygen(join(dir, 'other_host_key'));
    const changedKnownHosts = join(dir, 'known_hosts.changed');
    writeFileSync(changedKnownHosts, `[${sshd.address}]:${sshd.port} ${readFileSync(`${otherHostKey}.pub`, 'utf8')}`);

    const reports = await hostsJson([
      { name: 'good', endpoint, labels: { via: 'ssh' }, ssh: { keyFile: clientKey, knownHostsFile: knownHosts } },
      { name: 'wrong-key', endpoint, ssh: { keyFile: otherKey, knownHostsFile: knownHosts } },
      { name: 'unknown-host', endpoint, ssh: { keyFile: clientKey, knownHostsFile: emptyKnownHosts } },
      { name: 'changed-host', endpoint, ssh: { keyFile: clientKey, knownHostsFile: changedKnownHosts } },
      { name: 'closed', endpoint: `ssh://root@${sshd.address}:1`, ssh: { keyFile: clientKey, knownHostsFile: knownHosts } },
      { name: 'no-docker', endpoint, ssh: { keyFile: brokenDockerKey, knownHostsFile: knownHosts } },
    ]);
    const version = await d1().version();
    expect(reports.get('good')).toMatchObject({ state: 'up', endpoint, labels: { via: 'ssh' }, version: version.Version, apiVersion: version.ApiVersion });
    expect(reports.get('good')!.error).toBeUndefined();
    expect(reports.get('good')!.containers).toEqual(expect.any(Number));

    expect(reports.get('wrong-key')).toMatchObject({
      state: 'unreachable',
      error: `SSH login as root@${sshd.address}:${sshd.port} refused: the host did not accept the key of ssh.keyFile (its public key must be in ~root/.ssh/authorized_keys there)`,
    });
    const name = `[${sshd.address}]:${sshd.port}`;
    expect(reports.get('unknown-host')).toMatchObject({ state: 'unreachable' });
    expect(reports.get('unknown-host')!.error).toBe(
      `the SSH host key of ${name} is unknown: its fingerprint is ${sshd.hostKeyFingerprint} (ssh-ed25519) and ${emptyKnownHosts} does not list it. ` +
        `If that is the host's key (check on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add this line to ${emptyKnownHosts}: ${name} ${sshd.hostKeyLine}`,
    );
    expect(reports.get('changed-host')).toMatchObject({ state: 'unreachable' });
    expect(reports.get('changed-host')!.error).toMatch(
      new RegExp(
        `^the SSH host key of \\[${sshd.address.replaceAll('.', '\\.')}\\]:${sshd.port} changed: it is now ${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')} \\(ssh-ed25519\\), not the key ${changedKnownHosts} lists for it\\. Someone may be intercepting the connection`,
      ),
    );
    expect(reports.get('closed')).toMatchObject({
      state: 'unreachable',
      error: `connection refused at ${sshd.address}:1: nothing listens there (is sshd running, and listening on that port?)`,
    });

    expect(reports.get('no-docker')).toMatchObject({
      state: 'unreachable',
      error:
        `docker system dial-stdio failed on root@${sshd.address}:${sshd.port}: failed to open the raw stream connection: dial unix /nonexistent.sock: connect: no such file or directory ` +
        '(the docker CLI must be installed there, and user root allowed to use the Docker daemon)',
    });

    // the line the message offers is what it takes
    writeFileSync(emptyKnownHosts, `${reports.get('unknown-host')!.error!.split(': ').at(-1)}\n`);
    expect(
      (await hostsJson([{ name: 'unknown-host', endpoint, ssh: { keyFile: clientKey, knownHostsFile: emptyKnownHosts } }])).get('unknown-host'),
    ).toMatchObject({ state: 'up' });
  });

  describe('the engine syncs a stack through it', () => {
    let server: GitServer;
    let stack: string;
    let cfg: ReturnType<typeof writeConfig> | undefined;
    let engine: ReturnType<typeof testEngine> | undefined;

    beforeAll(async () => {
      server = await startGitServer();
      stack = uniqueName('overssh').replaceAll('-', '');
    });
    afterAll(async () => {
      engine?.close();
      await removeContainers(d1(), { 'berth.stack': stack });
      cfg?.cleanup();
      await server?.close();
    });

    test('a one-service stack deployed through ssh:// runs on the daemon behind it', async () => {
      const repo = await server.createRepo(uniqueName('ssh-repo'));
      const sha = await repo.commit({
        'berth.yaml': `stacks:\n  - name: ${stack}\n    compose: [app/compose.yaml]\n`,
        'app/compose.yaml': `services:\n  web:\n    image: ${IMAGES.webV1}\n`,
      });
      cfg = writeConfig([{ name: repo.name, url: repo.url }], {
        hosts: [{ name: 'remote', endpoint, ssh: { keyFile: clientKey, knownHostsFile: knownHosts } }],
      });
      engine = testEngine(cfg.file);
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
      expect(pass.error).toBeUndefined();
      expect(pass.unreachable ?? []).toEqual([]);
      expect(pass.stacks.map((s) => [s.stack, s.status])).toEqual([[stack, 'synced']]);

      const containers = await d1().listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      expect(containers).toHaveLength(1);
      expect(containers[0]).toMatchObject({ State: 'running', Image: IMAGES.webV1 });
      expect(containers[0].Labels).toMatchObject({ 'berth.managed': 'true', 'berth.service': 'web', 'berth.commit': sha, 'berth.repo': repo.name });

      // a second pass finds it all in place over SSH too: nothing to do
      const again = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
      expect(again.stacks.map((s) => [s.stack, s.status])).toEqual([[stack, 'unchanged']]);
      expect((await d1().listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).map((c) => c.Id)).toEqual([containers[0].Id]);
    });
  });
});
