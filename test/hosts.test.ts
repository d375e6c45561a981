// Hosts: the hostCheck config, the host monitor's state machine, `berth hosts` against the three
// shared test daemons and a private daemon with mutual TLS, and HostMonitor's transitions against a
// host that stops and resumes answering.
import { proxyTo } from './harness/proxy.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ConfigError, loadConfig, parseDuration, parsePoll } from '../src/config.ts';
import { formatBytes } from '../src/cli/hosts.ts';
import type { HostSummary } from '../src/engine/ops.ts';
import { HostMonitor, nextStatus, type HostStatus, type Probe } from '../src/observe/hosts.ts';
import { runCli, testHosts, writeConfig, type TestHost } from './harness/berth.ts';
import { startDaemon, type TestDaemon } from './harness/daemon.ts';
import { uniqueName, waitFor } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { makeCerts, type TestCerts } from './harness/tls.ts';

const dockers = inject('dockers');

describe('hostCheck config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-hostcheck-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const file = join(dir, `${uniqueName('c')}.yaml`);
    writeFileSync(file, yaml);
    return loadConfig(file);
  };

  test('defaults to a check every 10 s, bounded by 5 s, lost after 1 min', () => {
    expect(load('hosts: [{ name: a, endpoint: "unix:///x.sock" }]\n').hostCheck).toEqual({ intervalMs: 10_000, graceMs: 60_000, timeoutMs: 5_000 });
  });

  test('takes durations like the poll intervals', () => {
    const config = load('hostCheck: { interval: 2s, gracePeriod: 1m30s, timeout: 1s }\n');
    expect(config.hostCheck).toEqual({ intervalMs: 2_000, graceMs: 90_000, timeoutMs: 1_000 });
  });

  test.each([
    ['hostCheck: { interval: soon }', /hostCheck\.interval: 'soon' is not a duration/],
    ['hostCheck: { timeout: 0s }', /hostCheck\.timeout: '0s' is shorter than one second/],
    ['hostCheck: { grace: 1m }', /:1:\d+: hostCheck: must NOT have additional properties 'grace'/],
  ])('refuses %s', (yaml, message) => {
    expect(() => load(`${yaml}\n`)).toThrow(ConfigError);
    expect(() => load(`${yaml}\n`)).toThrow(message);
  });

  test.each([
    ['30s', 30_000],
    ['3m', 180_000],
    ['1h30m', 5_400_000],
  ])('parseDuration(%s) = %d ms, and polls take the same', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(parsePoll(text)).toEqual({ kind: 'interval', ms });
  });

  test('polls still take cron expressions, durations do not', () => {
    expect(parsePoll('*/5 * * * *')).toEqual({ kind: 'cron', expression: '*/5 * * * *' });
    expect(() => parseDuration('*/5 * * * *', 'x')).toThrow(/x: '\*\/5 \* \* \* \*' is not a duration/);
  });

  test.each([
    [512, '512B'],
    [1536, '1.5KiB'],
    [8 * 1024 ** 3, '8.0GiB'],
  ])('formatBytes(%d) = %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('nextStatus (the state machine)', () => {
  const host = { name: 'h', endpoint: 'unix:///x.sock', labels: {} };
  const up: Probe = { ok: true, version: '27.0', apiVersion: '1.46', cpus: 4, memoryBytes: 1024 };
  const down: Probe = { ok: false, error: 'connection refused' };
  const GRACE = 60_000;

  /** Feeds probes at the given times (ms) and returns the states and since (as ms) after each. */
  function run(steps: Array<[number, Probe]>): Array<[string, number]> {
    let status: HostStatus | undefined;
    return steps.map(([now, probe]) => {
      status = nextStatus(status, host, probe, now, GRACE);
      return [status.state, Date.parse(status.since)];
    });
  }

  test.each<[string, Array<[number, Probe]>, Array<[string, number]>]>([
    ['first answer: up', [[1000, up]], [['up', 1000]]],
    ['first failure: unreachable', [[1000, down]], [['unreachable', 1000]]],
    [
      'up stays up since it first answered',
      [
        [1000, up],
        [2000, up],
      ],
      [
        ['up', 1000],
        ['up', 1000],
      ],
    ],
    [
      'unreachable within the grace period stays unreachable since the first failure',
      [
        [1000, up],
        [2000, down],
        [2000 + GRACE - 1, down],
      ],
      [
        ['up', 1000],
        ['unreachable', 2000],
        ['unreachable', 2000],
      ],
    ],
    [
      'unreachable for the grace period: lost',
      [
        [1000, up],
        [2000, down],
        [2000 + GRACE, down],
        [3000 + GRACE, down],
      ],
      [
        ['up', 1000],
        ['unreachable', 2000],
        ['lost', 2000 + GRACE],
        ['lost', 2000 + GRACE],
      ],
    ],
    [
      'back up from unreachable and from lost',
      [
        [0, down],
        [1000, up],
        [2000, down],
        [2000 + GRACE, down],
        [3000 + GRACE, up],
      ],
      [
        ['unreachable', 0],
        ['up', 1000],
        ['unreachable', 2000],
        ['lost', 2000 + GRACE],
        ['up', 3000 + GRACE],
      ],
    ],
  ])('%s', (_, steps, expected) => {
    expect(run(steps)).toEqual(expected);
  });

  test('keeps what it last saw of a host that stops answering, and says why', () => {
    const before = nextStatus(undefined, host, up, 1000, GRACE);
    const after = nextStatus(before, host, down, 2000, GRACE);
    expect(after).toMatchObject({ state: 'unreachable', version: '27.0', cpus: 4, error: 'connection refused' });
    expect(nextStatus(after, host, up, 3000, GRACE).error).toBeUndefined();
  });
});

/** Runs `berth hosts --json` on a config with these hosts: the report of each, and exit 0 only when all are up (1 and which are not otherwise). */
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
    return new Map(reports.map((r) => [r.name, r]));
  } finally {
    cfg.cleanup();
  }
}

test('the harness shares three distinct daemons, each with the test images', async () => {
  expect(dockers).toHaveLength(3);
  expect(dockers[0]).toEqual(inject('docker'));
  const clients = dockers.map((d) => new Dockerode({ socketPath: d.socketPath }));
  // not by ID: dockerd 20.10 derives it from /etc/docker/key.json, which all the daemons share
  const roots = await Promise.all(clients.map(async (c) => (await c.info()).DockerRootDir as string));
  expect(new Set(roots).size).toBe(3);
  for (const c of clients) expect((await c.getImage(IMAGES.webV1).inspect()).RepoTags).toContain(IMAGES.webV1);
});

describe('berth hosts', () => {
  const labels: Array<Record<string, string>> = [{ role: 'web', zone: 'a' }, { role: 'web', zone: 'b' }, { role: 'db' }];

  test('lists the three test daemons up, with their version, CPUs, memory, managed containers and labels', async () => {
    const hosts = testHosts(labels);
    const facts = await Promise.all(
      dockers.map(async (d) => {
        const docker = new Dockerode({ socketPath: d.socketPath });
        const [info, version] = await Promise.all([docker.info(), docker.version()]);
        return { version: version.Version, apiVersion: version.ApiVersion, cpus: info.NCPU as number, memoryBytes: info.MemTotal as number };
      }),
    );
    const reports = await hostsJson(hosts);
    expect([...reports.keys()]).toEqual(['d1', 'd2', 'd3']);
    hosts.forEach((h, i) => {
      const r = reports.get(h.name)!;
      expect(r).toMatchObject({ state: 'up', endpoint: h.endpoint, labels: labels[i], ...facts[i] });
      expect(r.error).toBeUndefined();
      expect(Number.isInteger(r.containers) && r.containers! >= 0).toBe(true); // other test files use these daemons too
    });

    const cfg = writeConfig([], { hosts });
    try {
      const table = await runCli(['--config', cfg.file, 'hosts']);
      expect(table.code).toBe(0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0].split(/\s+/)).toEqual(['NAME', 'ENDPOINT', 'STATE', 'VERSION', 'CPUS', 'MEMORY', 'CONTAINERS', 'LABELS']);
      expect(lines).toHaveLength(4);
      expect(lines[1].split(/\s+/)).toEqual([
        'd1',
        hosts[0].endpoint,
        'up',
        facts[0].version,
        String(facts[0].cpus),
        formatBytes(facts[0].memoryBytes),
        expect.stringMatching(/^\d+$/),
        'role=web,zone=a',
      ]);
      expect(lines[3]).toMatch(/^d3\s.*\sup\s.*\srole=db$/);
    } finally {
      cfg.cleanup();
    }
  });

  describe('with a private daemon that serves mutual TLS', () => {
    let daemon: TestDaemon;
    let certs: TestCerts;
    let foreign: TestCerts;
    let dir: string;
    let endpoint: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'berth-hosts-tls-'));
      daemon = await startDaemon({
        tls: async (address) => {
          certs = await makeCerts(join(dir, 'ca'), { ips: [address] });
          return { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey };
        },
      });
      foreign = await makeCerts(join(dir, 'foreign'), { ips: [daemon.address] });
      endpoint = `tcp://${daemon.address}:${daemon.tlsPort}`;
    });
    afterAll(async () => {
      await daemon?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const tlsHost = (name: string, c: { ca: string; cert: string; key: string }): TestHost => ({ name, endpoint, tls: c });

    test('is up over tcp://ADDR:2376 with the right certificates, and counts its berth-managed containers', async () => {
      const local = new Dockerode(daemon.dockerOptions);
      const host = tlsHost('secure', { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
      const before = (await hostsJson([host])).get('secure')!;
      expect(before).toMatchObject({ state: 'up', endpoint, apiVersion: (await local.version()).ApiVersion, containers: 0 });

      // one managed container (created, not even started) and one that is not berth's
      await local.loadImage(await new Dockerode({ socketPath: dockers[0].socketPath }).getImage(IMAGES.base).get());
      await local.createContainer({ name: uniqueName('managed'), Image: IMAGES.base, Cmd: ['true'], Labels: { 'berth.managed': 'true' } });
      await local.createContainer({ name: uniqueName('other'), Image: IMAGES.base, Cmd: ['true'], Labels: { 'berth.managed': 'false' } });
      expect((await hostsJson([host])).get('secure')).toMatchObject({ state: 'up', containers: 1 });
    });

    test('a client certificate from another CA is refused: unreachable with a TLS error, and berth exits 1', async () => {
      const reports = await hostsJson([
        tlsHost('foreign-client', { ca: certs.ca, cert: foreign.clientCert, key: foreign.clientKey }),
        tlsHost('foreign-server-ca', { ca: foreign.ca, cert: certs.clientCert, key: certs.clientKey }),
        { name: 'plain', endpoint },
      ]);
      expect(reports.get('plain')).toMatchObject({ state: 'unreachable', error: 'the host speaks TLS: give it tls: { ca, cert, key } in the config' });
      expect(reports.get('foreign-client')).toMatchObject({
        state: 'unreachable',
        error: expect.stringMatching(/^TLS handshake failed \(.*certificate.*\): the host did not accept berth's client certificate/),
      });
      expect(reports.get('foreign-server-ca')).toMatchObject({
        state: 'unreachable',
        error: expect.stringMatching(/^TLS: the host's certificate is not trusted/),
      });
      expect(reports.get('foreign-client')!.containers).toBeUndefined();
    });

    test('a host on a closed port is unreachable; the table says why', async () => {
      const closed = `tcp://${daemon.address}:9`; // nothing listens there in the daemon's network namespace
      const cfg = writeConfig([], {
        hosts: [
          { name: 'closed', endpoint: closed },
          { name: 'secure', endpoint, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } },
        ],
      });
      try {
        const result = await runCli(['--config', cfg.file, 'hosts']);
        expect(result.code).toBe(1); // a host not up: scripts can tell
        expect(result.stderr).toBe('1 of 2 host(s) not up: closed unreachable\n');
        const lines = result.stdout.trimEnd().split('\n');
        expect(lines[1]).toMatch(/^closed\s+\S+\s+unreachable\s+-\s+-\s+-\s+-\s+-$/);
        expect(lines[2]).toMatch(/^secure\s+\S+\s+up\s/);
        expect(lines.at(-1)).toBe(
          `closed: unreachable: connection refused at ${daemon.address}:9: nothing listens there (is dockerd running, and listening on that port?)`,
        );
      } finally {
        cfg.cleanup();
      }
    });
  });
});

describe('HostMonitor', () => {
  test('goes up -> unreachable -> lost -> up as a host stops answering for the grace period and comes back', async () => {
    const proxy = await proxyTo(dockers[0].socketPath);
    const docker = new Dockerode({ host: '127.0.0.1', port: proxy.port });
    const seen: string[] = [];
    const monitor = new HostMonitor(
      new Map([['p', { name: 'p', docker }]]),
      { intervalMs: 50, graceMs: 300, timeoutMs: 2000, hosts: [{ name: 'p', endpoint: `tcp://127.0.0.1:${proxy.port}`, labels: { zone: 'a' } }] },
      (before, after) => seen.push(`${before?.state ?? 'none'} -> ${after.state}`),
    );
    const state = () => monitor.status()[0]?.state;
    try {
      monitor.start();
      await waitFor(() => state() === 'up', { what: 'the host to be up' });
      expect(monitor.status()[0]).toMatchObject({ name: 'p', labels: { zone: 'a' }, endpoint: `tcp://127.0.0.1:${proxy.port}` });
      await proxy.stop();
      await waitFor(() => state() === 'lost', { what: 'the host to be lost' });
      expect(monitor.status()[0].error).toMatch(/connection refused at 127\.0\.0\.1:\d+/);
      await proxy.resume();
      await waitFor(() => state() === 'up', { what: 'the host to be up again' });
    } finally {
      monitor.stop();
      await proxy.stop();
    }
    expect(seen).toEqual(['none -> up', 'up -> unreachable', 'unreachable -> lost', 'lost -> up']);
  });

  test('a host that accepts connections but never answers is unreachable once the timeout passes', async () => {
    const proxy = await proxyTo(dockers[0].socketPath);
    const docker = new Dockerode({ host: '127.0.0.1', port: proxy.port });
    const hosts = new Map([
      ['slow', { name: 'slow', docker }],
      ['fine', { name: 'fine', docker: new Dockerode({ socketPath: dockers[1].socketPath }) }],
    ]);
    const monitor = new HostMonitor(hosts, {
      intervalMs: 60_000,
      graceMs: 60_000,
      timeoutMs: 300,
      hosts: [{ name: 'slow', endpoint: `https://berth:s3cret@127.0.0.1:${proxy.port}`, labels: {} }],
    });
    try {
      expect((await monitor.check()).map((s) => s.state)).toEqual(['up', 'up']);
      await proxy.hang();
      const [slow, fine] = await monitor.check();
      expect(slow).toMatchObject({ name: 'slow', state: 'unreachable', error: 'no answer within 300 ms' });
      expect(slow.endpoint).not.toContain('s3cret');
      expect(fine).toMatchObject({ name: 'fine', state: 'up', endpoint: '', labels: {} });
    } finally {
      await proxy.stop();
    }
  });
});
