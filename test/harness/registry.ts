// A private Docker registry for tests: distribution's `docker-registry` over HTTPS (a certificate of
// a private CA), with basic auth from an htpasswd file and its storage in its own index's folder
// under TEST_ROOT. It listens on a host address of its own (claimHostAddress in daemon.ts), so every
// test daemon reaches it by the same name, and so image references are the same on every host.
// While it runs, Docker on this machine trusts its CA through /etc/docker/certs.d/<host>/ca.crt;
// a killed run's registry, storage and trust are reaped by the next cleanupLeftovers(), like its daemons.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { stringify } from 'yaml';
import { CERTS_D, claimHostAddress, type TestDockerInfo } from './daemon.ts';
import { makeCerts } from './tls.ts';

/** What tests need to use the registry (also what the global setup provides to test files, with the images it pushed). */
export interface TestRegistryInfo {
  /** `10.231.<index>.1:<port>`: how image references start (`<host>/private/web:1`), and Docker's `serveraddress`. */
  host: string;
  /** `https://<host>` */
  url: string;
  username: string;
  password: string;
  /** No user's password: for tests of a wrong password. */
  wrongPassword: string;
  /** The private CA that signed the registry's certificate (PEM), and its file. */
  caPem: string;
  caFile: string;
}

/** A running test registry. */
export interface TestRegistry extends TestRegistryInfo {
  /** The registry's output. */
  logPath: string;
  /** Stops the registry and removes its storage, its address and Docker's trust in its CA. */
  stop(): Promise<void>;
}

/** An image in the registry. */
export interface PushedImage {
  /** `<host>/<name>:<tag>` */
  ref: string;
  /** The manifest digest the registry serves for it (`sha256:...`): what a daemon that pulls it lists in RepoDigests. */
  digest: string;
}

export interface StartRegistryOptions {
  /** How long to wait for the registry to listen (default 30 s). */
  startTimeoutMs?: number;
  /** Where the registry sends its push and pull notifications (its `notifications.endpoints`), with these fixed headers. */
  notify?: { url: string; headers?: Record<string, string> };
}

const SETUP_HINT = 'run scripts/setup.sh (as root) to install docker-registry, apache2-utils and openssl';

/** The manifest types a client of this registry may get (Docker's v2 and OCI, single images and lists). */
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];

/** One line of an htpasswd file, bcrypt (`htpasswd -B`); the password goes on stdin, not on a command line. */
function htpasswdLine(username: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('htpasswd', ['-B', '-i', '-n', username], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new Error(`htpasswd not found: ${SETUP_HINT}.`, { cause: e }) : e));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`htpasswd exited with code ${code}: ${err.trim()}`))));
    child.stdin.end(password);
  });
}

async function tail(file: string, lines = 20): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Starts a registry on a host address of its own, on a port the system picks (the registry logs
 * it), and makes Docker trust its CA. Each start has a new user and password.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const claim = await claimHostAddress();
  const { dir, address } = claim;
  const logPath = join(dir, 'registry.log');
  try {
    // EC keys: RSA ones would cost the global setup most of a second of CPU while it builds.
    const certs = await makeCerts(join(dir, 'certs'), { ips: [address], keyType: 'ec' });
    const username = `berth-${randomBytes(3).toString('hex')}`;
    const password = randomBytes(18).toString('base64url');
    const wrongPassword = randomBytes(18).toString('base64url');
    await writeFile(join(dir, 'htpasswd'), `${await htpasswdLine(username, password)}\n`);
    const config = {
      version: '0.1',
      log: { level: 'info', formatter: 'text', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: join(dir, 'storage') },
        delete: { enabled: true },
        // Uploads are never left half done for long here; the purge would only cost a walk of the storage.
        maintenance: { uploadpurging: { enabled: false } },
      },
      // Port 0: the system picks a free one, which the registry logs ("listening on ADDRESS:PORT").
      http: { addr: `${address}:0`, secret: randomBytes(16).toString('hex'), tls: { certificate: certs.serverCert, key: certs.serverKey } },
      auth: { htpasswd: { realm: 'berth-test-registry', path: join(dir, 'htpasswd') } },
      ...(options.notify && {
        notifications: {
          endpoints: [
            {
              name: 'test',
              url: options.notify.url,
              headers: Object.fromEntries(Object.entries(options.notify.headers ?? {}).map(([k, v]) => [k, [v]])),
              timeout: '5s',
              threshold: 3,
              backoff: '1s',
            },
          ],
        },
      }),
    };
    // The folder's path in the command line is what tells the clean-up that this process is the harness's.
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, stringify(config));

    const log = openSync(logPath, 'a');
    const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', log, log] });
    closeSync(log);
    let exited: string | undefined;
    child.on('exit', (code, signal) => {
      exited = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      exited = err.code === 'ENOENT' ? `could not be started: docker-registry not found (${SETUP_HINT})` : `could not be started (${err.message})`;
    });
    if (child.pid !== undefined) await writeFile(join(dir, 'registry.pid'), String(child.pid));

    const listening = new RegExp(`listening on ${address.replaceAll('.', '\\.')}:(\\d+)`);
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let port: string | undefined;
    while (!(port = listening.exec(await readFile(logPath, 'utf8').catch(() => ''))?.[1])) {
      if (exited) throw new Error(`docker-registry ${exited}.`);
      if (Date.now() > deadline) throw new Error(`docker-registry did not listen within ${timeoutMs / 1000} s.`);
      await sleep(50);
    }
    child.unref();

    const host = `${address}:${port}`;
    await mkdir(join(CERTS_D, host), { recursive: true });
    await copyFile(certs.ca, join(CERTS_D, host, 'ca.crt'));
    const info: TestRegistryInfo = {
      host,
      url: `https://${host}`,
      username,
      password,
      wrongPassword,
      caPem: await readFile(certs.ca, 'utf8'),
      caFile: certs.ca,
    };
    // Over the CA, as the daemons will: refused without credentials, let in with them.
    const anonymous = await registryRequest(info, '/v2/', { auth: false });
    const authorised = await registryRequest(info, '/v2/');
    if (anonymous.status !== 401 || authorised.status !== 200) {
      throw new Error(`GET /v2/ answered ${anonymous.status} without credentials and ${authorised.status} with them (expected 401 and 200).`);
    }
    return { ...info, logPath, stop: claim.release };
  } catch (err) {
    const logTail = await tail(logPath);
    await claim.release().catch(() => undefined);
    throw new Error(`Could not start the test registry at ${address}: ${(err as Error).message}${logTail ? `\nLast lines of its log:\n${logTail}` : ''}`, {
      cause: err,
    });
  }
}

/** Only what a test file gets (the global setup provides it): the fields of TestRegistryInfo. */
export function registryInfo(registry: TestRegistryInfo): TestRegistryInfo {
  const { host, url, username, password, wrongPassword, caPem, caFile } = registry;
  return { host, url, username, password, wrongPassword, caPem, caFile };
}

/** dockerode's `authconfig` for the registry's user (with another password, to test a wrong one). */
export function registryAuth(registry: TestRegistryInfo, password = registry.password): { username: string; password: string; serveraddress: string } {
  return { username: registry.username, password, serveraddress: registry.host };
}

export interface RegistryAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTPS request to the registry (trusting its CA only), with the user's basic auth unless `auth` is false. */
export function registryRequest(
  registry: TestRegistryInfo,
  path: string,
  { method = 'GET', headers = {}, auth = true }: { method?: string; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<RegistryAnswer> {
  const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, registry.url),
      { method, ca: registry.caPem, agent: false, timeout: 10_000, headers: { ...(auth ? { Authorization: basic } : {}), ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${registry.url}${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** `name:tag` or `<host>/name:tag` -> { name, tag } (tag `latest` when none). */
function splitRef(registry: TestRegistryInfo, ref: string): { name: string; tag: string } {
  const path = ref.startsWith(`${registry.host}/`) ? ref.slice(registry.host.length + 1) : ref;
  const colon = path.lastIndexOf(':');
  return colon > path.lastIndexOf('/') ? { name: path.slice(0, colon), tag: path.slice(colon + 1) } : { name: path, tag: 'latest' };
}

/**
 * The digest of the manifest the registry serves for `ref` (`name:tag` or `<host>/name:tag`), from
 * its Docker-Content-Digest header; fails when the registry has no such tag.
 */
export async function manifestDigest(registry: TestRegistryInfo, ref: string): Promise<string> {
  const { name, tag } = splitRef(registry, ref);
  const path = `/v2/${name}/manifests/${tag}`;
  const answer = await registryRequest(registry, path, { headers: { Accept: MANIFEST_TYPES.join(', ') } });
  const digest = answer.headers['docker-content-digest'];
  if (answer.status !== 200 || typeof digest !== 'string') {
    throw new Error(
      `GET ${registry.url}${path} answered ${answer.status}${answer.status === 200 ? ' without a Docker-Content-Digest' : `: ${answer.body.trim()}`}`,
    );
  }
  return digest;
}

/**
 * Pushes a local image of a daemon (one of IMAGES in images.ts) to the registry as `ref` (`name:tag`
 * or `<host>/name:tag`), then removes the tag it needed from that daemon again: the daemons keep
 * none of the registry's references, as hosts that never pulled them.
 */
export async function pushImage(registry: TestRegistryInfo, daemon: TestDockerInfo, localImage: string, ref: string): Promise<PushedImage> {
  const { name, tag } = splitRef(registry, ref);
  const repo = `${registry.host}/${name}`;
  const full = `${repo}:${tag}`;
  const docker = new Dockerode({ socketPath: daemon.socketPath });
  await docker.getImage(localImage).tag({ repo, tag });
  try {
    const stream = await docker.getImage(repo).push({ tag, authconfig: registryAuth(registry) });
    const output = await new Promise<{ error?: string }[]>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : resolve(out)));
    });
    const failed = output.find((o) => o.error);
    if (failed) throw new Error(`Pushing ${localImage} as ${full} failed: ${failed.error}`);
  } finally {
    // The local image keeps its own tag, so this only untags (and forgets the digest the push recorded).
    await docker
      .getImage(full)
      .remove()
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  }
  return { ref: full, digest: await manifestDigest(registry, full) };
}

/**
 * Pushes another local image under a tag the registry already has, for tests of a tag that moves;
 * fails when the tag is missing or the image is the one it already names. Shared tags are used by
 * other test files at the same time: move only tags of your own (see uniqueName in docker.ts).
 */
export async function moveTag(
  registry: TestRegistryInfo,
  daemon: TestDockerInfo,
  localImage: string,
  ref: string,
): Promise<PushedImage & { previousDigest: string }> {
  const previousDigest = await manifestDigest(registry, ref);
  const pushed = await pushImage(registry, daemon, localImage, ref);
  if (pushed.digest === previousDigest) throw new Error(`${pushed.ref} already named ${localImage} (${previousDigest}): the tag did not move.`);
  return { ...pushed, previousDigest };
}
