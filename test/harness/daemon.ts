// Private Docker daemons for tests: each runs in its own network namespace `berth-t<index>`,
// reachable from the test process at 10.231.<index>.2 (over a veth pair) and on a private unix
// socket. The user's own daemon (/var/run/docker.sock) is never touched. A daemon started with
// `tls` serves TCP with mutual TLS on port 2376 instead of plain TCP on 2375.
//
// Servers that the daemons themselves use (the test registry) listen on a host address
// 10.231.<index>.1 of an index of their own (`claimHostAddress`): every daemon routes 10.231.0.0/16
// to the host, so one address serves them all, whichever namespace each is in, and the test process
// reaches it too.
//
// Every index is owned by the process that started it (file `d<index>.owner` holding its pid), so
// that test runs going on at the same time do not tear down each other's daemons, while whatever a
// killed run left behind (its owner is dead) is reaped by the next `cleanupLeftovers()`.
import { execFile, spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { constants, closeSync, openSync, readFileSync } from 'node:fs';
import { access, link, mkdir, readdir, readFile, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';

/** Where the daemons keep their data, logs and sockets. */
export const TEST_ROOT = '/var/tmp/berth-test';
const NETNS_PREFIX = 'berth-t';
const HOST_VETH_PREFIX = 'bth';
const TCP_PORT = 2375;
const TLS_PORT = 2376;
const LOCK = join(TEST_ROOT, 'lock');
/** Where Docker looks for the CA of a registry (`<host>:<port>/ca.crt`), for every daemon on the machine. */
export const CERTS_D = '/etc/docker/certs.d';

/** The host's side of an index: a daemon's veth there, or a host address of its own. */
const hostAddressOf = (index: number) => `10.231.${index}.1`;

/** What tests need to reach a test daemon (also what the global setup provides to test files). */
export interface TestDockerInfo {
  socketPath: string;
  /** The daemon's address, reachable from the test process: containers' published ports answer here too. */
  address: string;
  /** Plain TCP (no TLS) at `address`; absent on a daemon started with `tls` (dockerd's TLS settings apply to all its TCP listeners). */
  tcpPort?: number;
  /** TCP with mutual TLS at `address`, on a daemon started with `tls`. */
  tlsPort?: number;
}

/** The daemon's side of mutual TLS: files of the CA that signs accepted client certificates, and its own certificate and key. */
export interface DaemonTls {
  ca: string;
  cert: string;
  key: string;
}

/** A running test daemon. */
export interface TestDaemon extends TestDockerInfo {
  index: number;
  /** Name of its network namespace, e.g. `berth-t1`. */
  name: string;
  /** Options for `new Dockerode(...)` (the unix socket). */
  dockerOptions: Dockerode.DockerOptions;
  /** dockerd's output. */
  logPath: string;
  /** Stops dockerd (SIGTERM, then SIGKILL after a bound) and removes its namespace, veth and folder. */
  stop(): Promise<void>;
}

export interface StartDaemonOptions {
  /** 1-250; by default the lowest index no live test run uses. */
  index?: number;
  /** How long to wait for the daemon to answer a ping (default 120 s). */
  startTimeoutMs?: number;
  /**
   * Serve TCP with mutual TLS (`--tlsverify`) on port 2376 at the daemon's address instead of plain
   * TCP on 2375; the unix socket stays plain. A function gets that address first, to make a server
   * certificate valid for it.
   */
  tls?: DaemonTls | ((address: string) => DaemonTls | Promise<DaemonTls>);
}

const execFileAsync = promisify(execFile);
const SETUP_HINT = 'run scripts/setup.sh (as root) to install what the tests need';

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { env: withSbinPath() })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} not found: ${SETUP_HINT}`, { cause: err });
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Runs a command whose failure only means "nothing to remove". */
async function tryRun(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args).catch(() => undefined);
}

function withSbinPath(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin` };
}

async function requireTools(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('The Docker test harness needs root (network namespaces, dockerd): run the tests as root.');
  const dirs = withSbinPath().PATH!.split(':').filter(Boolean);
  for (const tool of ['dockerd', 'ip', 'nsenter', 'umount']) {
    const found = await Promise.any(dirs.map((d) => access(join(d, tool), constants.X_OK))).then(
      () => true,
      () => false,
    );
    if (!found) throw new Error(`${tool} not found on PATH: ${SETUP_HINT}.`);
  }
}

/** Whether the process runs (a zombie, which init has not reaped yet, does not). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

const dirOf = (index: number) => join(TEST_ROOT, `d${index}`);
const ownerFile = (index: number) => join(TEST_ROOT, `d${index}.owner`);

/** Runs fn while holding the harness-wide lock (claims and clean-ups never interleave). */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(TEST_ROOT, { recursive: true });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await writeFile(LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readPid(LOCK);
      if (holder !== undefined && !isAlive(holder)) await unlink(LOCK).catch(() => undefined);
      else if (Date.now() > deadline) throw new Error(`Timed out waiting for ${LOCK} (held by pid ${holder}).`, { cause: err });
      else await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(LOCK).catch(() => undefined);
  }
}

/** Indexes that exist in any form: an owner file, a folder, a network namespace, a veth or a CA trusted for its host address. */
async function knownIndexes(): Promise<Set<number>> {
  const found = new Set<number>();
  const add = (re: RegExp, names: string[]) =>
    names.forEach((n) => {
      const m = re.exec(n);
      if (m) found.add(Number(m[1]));
    });
  add(/^d(\d+)(\.owner)?$/, await readdir(TEST_ROOT).catch(() => []));
  add(
    new RegExp(`^${NETNS_PREFIX}(\\d+)$`),
    (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]),
  );
  add(
    new RegExp(`^${HOST_VETH_PREFIX}(\\d+)$`),
    (await run('ip', ['-o', 'link', 'show'])).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? ''),
  );
  add(/^10\.231\.(\d+)\.1:\d+$/, await readdir(CERTS_D).catch(() => []));
  return found;
}

async function ownerAlive(index: number): Promise<boolean> {
  const owner = await readPid(ownerFile(index));
  return owner !== undefined && isAlive(owner);
}

/** Kills every process left in the cgroups the daemon's containers ran in, then removes those cgroups. */
async function killCgroups(name: string): Promise<void> {
  const roots = [join('/sys/fs/cgroup', name), ...(await readdir('/sys/fs/cgroup').catch(() => [])).map((c) => join('/sys/fs/cgroup', c, name))];
  const walk = async (dir: string): Promise<string[]> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const subs = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => walk(join(dir, e.name))));
    return entries.length ? [...subs.flat(), dir] : [];
  };
  const dirs = (await Promise.all(roots.map(walk))).flat(); // deepest first
  for (let attempt = 0; attempt < 20 && dirs.length; attempt++) {
    for (const dir of dirs) {
      for (const pid of (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean)) {
        signal(Number(pid), 'SIGKILL');
      }
    }
    for (const dir of [...dirs])
      if (
        await rmdir(dir).then(
          () => true,
          () => false,
        )
      )
        dirs.splice(dirs.indexOf(dir), 1);
    if (dirs.length) await sleep(100);
  }
}

/** Unmounts whatever is still mounted under dir (overlays, container netns and shm mounts). */
async function unmountUnder(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
      .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
      .sort((a, b) => b.length - a.length);
    if (!mounts.length) return;
    for (const m of mounts) await tryRun('umount', ['-l', m]);
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * The processes the harness started for an index that still run: those of the pid files in its
 * folder (`dockerd.pid`, `registry.pid`) and `known`. A pid file may be stale: only a process whose
 * command line names the folder is one of ours.
 */
async function harnessPids(dir: string, known?: number): Promise<number[]> {
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.pid'));
  const pids = [known, ...(await Promise.all(files.map((f) => readPid(join(dir, f)))))].filter((pid) => pid !== undefined);
  const ours = await Promise.all(
    [...new Set(pids)].map(async (pid) => ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes(`${dir}/`) ? [pid] : [])),
  );
  return ours.flat();
}

/**
 * Removes everything of one index: stops its dockerd or registry (SIGTERM, then SIGKILL), kills
 * what still runs in its network namespace and container cgroups, unmounts and deletes its folder,
 * and removes its network namespace, veth, trusted CAs and owner file.
 */
async function removeIndex(index: number, dockerdPid?: number): Promise<void> {
  const name = `${NETNS_PREFIX}${index}`;
  const dir = dirOf(index);
  const pids = await harnessPids(dir, dockerdPid);
  pids.forEach((pid) => signal(pid, 'SIGTERM'));
  await Promise.all(
    pids.map(async (pid) => {
      if (!(await waitForExit(pid, 30_000))) signal(pid, 'SIGKILL');
    }),
  );
  const netnsPids = (await run('ip', ['netns', 'pids', name]).catch(() => '')).split('\n').filter(Boolean).map(Number);
  netnsPids.forEach((p) => signal(p, 'SIGKILL'));
  await Promise.all(netnsPids.map((p) => waitForExit(p, 10_000)));
  await killCgroups(name);
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
  await tryRun('ip', ['netns', 'delete', name]);
  await tryRun('ip', ['link', 'delete', `${HOST_VETH_PREFIX}${index}`]);
  // Docker would go on trusting that CA for whatever listens there next.
  const trusted = new RegExp(`^${hostAddressOf(index).replaceAll('.', '\\.')}:\\d+$`);
  for (const entry of await readdir(CERTS_D).catch(() => [])) {
    if (trusted.test(entry)) await rm(join(CERTS_D, entry), { recursive: true, force: true });
  }
  await rm(ownerFile(index), { force: true });
}

/**
 * Removes what killed earlier test runs left behind: their dockerd and containers, network
 * namespaces `berth-t*`, veths `bth*` and folders under /var/tmp/berth-test. Daemons of test runs
 * that are still going on are left alone.
 */
export async function cleanupLeftovers(): Promise<void> {
  await requireTools();
  await withLock(async () => {
    for (const index of await knownIndexes()) {
      if (!(await ownerAlive(index))) await removeIndex(index);
    }
    for (const entry of await readdir(TEST_ROOT)) {
      if (entry.startsWith('claim-')) await rm(join(TEST_ROOT, entry), { force: true });
    }
  });
}

/** Claims the given index, or the lowest free one, for this process. */
async function claimIndex(wanted?: number): Promise<number> {
  return withLock(async () => {
    const known = await knownIndexes();
    for (let index = wanted ?? 1; index <= (wanted ?? 250); index++) {
      if (known.has(index) && (await ownerAlive(index))) continue;
      if (known.has(index)) await removeIndex(index); // a leftover: its owner is dead
      const tmp = join(TEST_ROOT, `claim-${process.pid}-${index}`);
      await writeFile(tmp, String(process.pid));
      try {
        await link(tmp, ownerFile(index));
        return index;
      } finally {
        await rm(tmp, { force: true });
      }
    }
    throw new Error(wanted ? `Test daemon index ${wanted} is in use by another test run (${ownerFile(wanted)}).` : 'No free test daemon index (1-250).');
  });
}

/** Resolves when a TCP connection to host:port succeeds, rejects when it fails. */
function canConnect(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port, timeout: 2000 }, () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
    socket.on('timeout', () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
  });
}

async function tail(file: string, lines = 40): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n');
}

/** Starts a private dockerd in its own network namespace and waits until it answers a ping. */
export async function startDaemon(options: StartDaemonOptions = {}): Promise<TestDaemon> {
  await requireTools();
  if (options.index !== undefined && !(Number.isInteger(options.index) && options.index >= 1 && options.index <= 250)) {
    throw new Error(`Test daemon index must be an integer 1-250, got ${options.index}.`);
  }
  const index = await claimIndex(options.index);
  const name = `${NETNS_PREFIX}${index}`;
  const dir = dirOf(index);
  const hostVeth = `${HOST_VETH_PREFIX}${index}`;
  const innerVeth = `btc${index}`;
  const address = `10.231.${index}.2`;
  const socketPath = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  let pid: number | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= removeIndex(index, pid));

  try {
    await mkdir(dir, { recursive: true });
    // Our own config, so that /etc/docker/daemon.json does not apply; small subnets from a big pool,
    // so that a daemon can hold hundreds of stack networks (Docker's defaults stop at about 30).
    await writeFile(join(dir, 'daemon.json'), `${JSON.stringify({ 'default-address-pools': [{ base: '10.64.0.0/10', size: 24 }] })}\n`);
    const tls = typeof options.tls === 'function' ? await options.tls(address) : options.tls;
    const tcpArgs = tls
      ? ['-H', `tcp://${address}:${TLS_PORT}`, '--tlsverify', '--tlscacert', tls.ca, '--tlscert', tls.cert, '--tlskey', tls.key]
      : ['-H', `tcp://${address}:${TCP_PORT}`, '--tls=false']; // said explicitly, or dockerd sleeps 15 s before it serves a plain TCP listener
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', innerVeth]);
    await run('ip', ['link', 'set', innerVeth, 'netns', name]);
    await run('ip', ['addr', 'add', `${hostAddressOf(index)}/24`, 'dev', hostVeth]);
    await run('ip', ['link', 'set', hostVeth, 'up']);
    await run('ip', ['-n', name, 'addr', 'add', `${address}/24`, 'dev', innerVeth]);
    await run('ip', ['-n', name, 'link', 'set', innerVeth, 'up']);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    // The host addresses of other indexes (claimHostAddress) through the host; nothing else is routed.
    await run('ip', ['-n', name, 'route', 'add', '10.231.0.0/16', 'via', hostAddressOf(index)]);

    // nsenter, not `ip netns exec`: the latter remounts /sys and dockerd loses the cgroups.
    const log = openSync(logPath, 'a');
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${name}`,
        'dockerd',
        '-H',
        `unix://${socketPath}`,
        ...tcpArgs,
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        join(dir, 'x'), // short: unix socket paths are limited
        '--pidfile',
        join(dir, 'dockerd.pid'),
        '--config-file',
        join(dir, 'daemon.json'),
        '--containerd-namespace',
        name,
        '--containerd-plugins-namespace',
        `${name}-plugins`,
        '--exec-opt',
        'native.cgroupdriver=cgroupfs',
        '--cgroup-parent',
        `/${name}`,
      ],
      { stdio: ['ignore', log, log], env: withSbinPath() },
    );
    closeSync(log);
    pid = child.pid;
    let exited: string | undefined;
    child.on('exit', (code, signal) => {
      exited = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    });
    child.on('error', (err) => {
      exited = `could not be started (${err.message})`;
    });

    const docker = new Dockerode({ socketPath });
    const overTcp = new Dockerode({ host: address, port: TCP_PORT });
    // The TLS listener wants a client certificate the harness does not have: that it accepts connections is enough.
    const tcpReady = () => (tls ? canConnect(address, TLS_PORT) : overTcp.ping());
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`dockerd for test daemon ${name} ${exited}. Last lines of ${logPath}:\n${await tail(logPath)}`);
      const ok = await Promise.all([docker.ping(), tcpReady()]).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline)
        throw new Error(`dockerd for test daemon ${name} did not answer within ${timeoutMs / 1000} s. Last lines of ${logPath}:\n${await tail(logPath)}`);
      await sleep(200);
    }
    child.unref();
    const ports = tls ? { tlsPort: TLS_PORT } : { tcpPort: TCP_PORT };
    return { index, name, socketPath, address, ...ports, dockerOptions: { socketPath }, logPath, stop };
  } catch (err) {
    const message = (err as Error).message;
    const logTail = message.includes(logPath) ? '' : await tail(logPath, 20);
    await stop().catch(() => undefined);
    throw new Error(`Could not start test daemon ${name}: ${message}${logTail ? `\nLast lines of dockerd's log:\n${logTail}` : ''}`, { cause: err });
  }
}

/** An address of the host's own, for a server that the test daemons use (see claimHostAddress). */
export interface HostAddress {
  index: number;
  /** 10.231.<index>.1: every test daemon reaches it (through its veth), and so does the test process. */
  address: string;
  /** The index's folder under TEST_ROOT, for the server's files; a `<name>.pid` file there names its process. */
  dir: string;
  /** Stops the process of each pid file in `dir`, removes the folder, the address and the CAs Docker trusts for it. */
  release(): Promise<void>;
}

/**
 * Claims an index for a server that the test daemons use, such as the test registry, and puts its
 * address 10.231.<index>.1 on the host. It is reaped like a daemon's index: a killed run's server
 * (found by its pid file), folder, address and trusted CAs go at the next `cleanupLeftovers()`.
 */
export async function claimHostAddress(): Promise<HostAddress> {
  await requireTools();
  const index = await claimIndex();
  const address = hostAddressOf(index);
  const dir = dirOf(index);
  const hostVeth = `${HOST_VETH_PREFIX}${index}`;
  let released: Promise<void> | undefined;
  const release = () => (released ??= removeIndex(index));
  try {
    await mkdir(dir, { recursive: true });
    // A veth pair with both ends on the host holds the address (a dummy link would do, but not every
    // kernel has that module); its name makes it an index's like a daemon's veth, for the clean-up.
    await run('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', `btc${index}`]);
    await run('ip', ['addr', 'add', `${address}/32`, 'dev', hostVeth]);
    await run('ip', ['link', 'set', `btc${index}`, 'up']);
    await run('ip', ['link', 'set', hostVeth, 'up']);
  } catch (err) {
    await release().catch(() => undefined);
    throw new Error(`Could not set up host address ${address}: ${(err as Error).message}`, { cause: err });
  }
  return { index, address, dir, release };
}
