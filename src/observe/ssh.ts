/**
 * Docker over SSH, as the docker CLI does it: every connection to the Docker API is an SSH login
 * (with the host's `ssh.keyFile`, its host key checked against `ssh.knownHostsFile`) that runs
 * `docker system dial-stdio` on the host, which relays the API of the host's daemon.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { ConfigError, type SshConfig } from '../config.ts';

const require = createRequire(import.meta.url);
// Required, not imported: an ES import of node:http reads all its exports, and its WebSocket,
// CloseEvent and MessageEvent load Node's undici (~10 MB resident) that berth never uses.
const { Agent } = require('node:http') as typeof import('node:http');
/** ssh2, loaded when a host first needs it (its WebAssembly and crypto cost memory a berth without ssh:// hosts does not need). */
const ssh2 = (): typeof import('ssh2') => require('ssh2') as typeof import('ssh2');

/** The host key is not the one the known hosts file lists for the host (or none is listed): the message says what to do. */
export class SshHostKeyError extends Error {
  readonly code = 'BERTH_SSH_HOST_KEY';
}

/** Where and as whom berth logs in. */
export interface SshTarget {
  hostname: string;
  port: number;
  username: string;
}

/**
 * An http.Agent for dockerode (its `agent` option, with `protocol: 'http'`) whose every
 * connection is an SSH login running `docker system dial-stdio` on the host. A login costs a few
 * hundred milliseconds, so connections are kept alive between requests (an idle one closes after
 * 30 s and never keeps berth from exiting), at most 8 at once (sshd's default MaxStartups drops
 * logins beyond 10 at a time). The private key is read and checked here, so that a bad key is a
 * ConfigError; neither its content nor more than the parser's reason ever shows in an error.
 * Failures are errors that name user@host:port and say what to check.
 */
export class DialStdioAgent extends Agent {
  private readonly config: ConnectConfig;
  private readonly target: SshTarget;
  /** user@host:port, for messages */
  private readonly where: string;

  constructor(hostName: string, ssh: SshConfig, target: SshTarget) {
    super({ keepAlive: true, timeout: 30_000, maxSockets: 8, maxFreeSockets: 4 });
    this.target = target;
    this.where = `${target.username}@${target.hostname}:${target.port}`;
    const file = ssh.knownHostsFile;
    this.config = {
      username: target.username,
      privateKey: readPrivateKey(hostName, ssh.keyFile),
      readyTimeout: 15_000,
      ...(ssh.insecureIgnoreHostKey || !file ? {} : { hostVerifier: (key: Buffer) => verifyHostKey(file, target.hostname, target.port, key) }),
    };
  }

  override createConnection(_options: unknown, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const client = new (ssh2().Client)();
    const sock = netConnect({ host: this.target.hostname, port: this.target.port, noDelay: true });
    let settled = false;
    const settle = (err: Error | null, stream?: Duplex) => {
      if (settled) return;
      settled = true;
      if (err) client.end();
      callback?.(err, stream as Duplex);
    };
    client.once('ready', () => {
      client.exec('docker system dial-stdio', (err, channel) => {
        if (err) return settle(new Error(`SSH to ${this.where}: the host would not run docker system dial-stdio (${err.message})`, { cause: err }));
        channel.once('close', () => client.end());
        settle(null, this.relay(channel, sock));
      });
    });
    client.on('error', (err) => settle(this.explain(err)));
    client.on('close', () => settle(new Error(`SSH to ${this.where}: the connection closed before docker system dial-stdio started`)));
    client.connect({ ...this.config, sock });
    return undefined;
  }

  /**
   * The channel as the socket of an HTTP request. What dial-stdio says on stderr means it failed
   * (it is silent while it relays): the request fails with that, instead of a bare "socket hang
   * up" when the channel ends (OpenSSH sends stderr before the end of the output).
   */
  private relay(channel: ClientChannel, sock: Socket): Duplex {
    let stderr = '';
    channel.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 1000) stderr += chunk.toString('utf8');
    });
    channel.on('error', () => undefined); // an error after node:http let go of the channel must not crash berth
    channel.prependListener('end', () => {
      const said = stderr.trim().split('\n')[0];
      if (said) {
        channel.emit(
          'error',
          new Error(
            `docker system dial-stdio failed on ${this.where}: ${said} (the docker CLI must be installed there, and user ${this.target.username} allowed to use the Docker daemon)`,
          ),
        );
      }
    });
    // what node:http calls on a socket, done on the SSH connection's (one channel each)
    sock.on('timeout', () => channel.emit('timeout'));
    return Object.assign(channel, {
      setKeepAlive: () => channel,
      setNoDelay: () => channel,
      setTimeout: (ms: number) => (sock.setTimeout(ms), channel),
      ref: () => (sock.ref(), channel),
      unref: () => (sock.unref(), channel),
    });
  }

  /** An ssh2 error (it says at which `level` it failed) as one line a person can act on. */
  private explain(err: Error & { level?: string; code?: string }): Error {
    const line = (message: string) => new Error(message, { cause: err });
    if (err instanceof SshHostKeyError) return err;
    const address = `${this.target.hostname}:${this.target.port}`;
    switch (err.level) {
      case 'client-authentication':
        return line(
          `SSH login as ${this.where} refused: the host did not accept the key of ssh.keyFile (its public key must be in ~${this.target.username}/.ssh/authorized_keys there)`,
        );
      case 'client-timeout':
        return line(
          `no SSH handshake with ${this.where} within ${(this.config.readyTimeout ?? 0) / 1000} s: is the host reachable, and sshd listening on that port?`,
        );
      case 'client-socket':
        if (err.code === 'ECONNREFUSED') return line(`connection refused at ${address}: nothing listens there (is sshd running, and listening on that port?)`);
        return line(`cannot reach sshd at ${address}: ${err.message}`);
      default:
        return line(`SSH to ${this.where} failed: ${err.message}`);
    }
  }
}

/** The private key of ssh.keyFile, checked: a file that is missing or holds no usable key is a ConfigError naming the file. */
function readPrivateKey(hostName: string, keyFile: string): Buffer {
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(keyFile);
  } catch (err) {
    throw new ConfigError(`host ${hostName}: cannot read ssh.keyFile ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const parsed = ssh2().utils.parseKey(privateKey);
  if (parsed instanceof Error || !parsed.isPrivateKey()) {
    const passphrase = parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message);
    const reason = passphrase
      ? 'it is protected by a passphrase, which berth does not support'
      : parsed instanceof Error
        ? parsed.message
        : 'it holds no private key';
    throw new ConfigError(`host ${hostName}: ssh.keyFile ${keyFile} is not a private key berth can use: ${reason}`);
  }
  return privateKey;
}

/** Accepts the host key when the known hosts file lists it for the host, else throws an SshHostKeyError that says what to do. */
function verifyHostKey(file: string, hostname: string, port: number, key: Buffer): true {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new SshHostKeyError(`cannot read the SSH known hosts file ${file} (${code ?? 'error'}), so the host's key cannot be checked`);
  }
  const check = checkHostKey(text, hostname, port, key);
  if (check === 'known') return true;
  const name = knownHostsName(hostname, port);
  const type = keyType(key);
  const what = `${fingerprint(key)} (${type})`;
  if (check === 'revoked') throw new SshHostKeyError(`the SSH host key of ${name}, ${what}, is marked @revoked in ${file}`);
  if (check === 'changed') {
    throw new SshHostKeyError(
      `the SSH host key of ${name} changed: it is now ${what}, not the key ${file} lists for it. Someone may be intercepting the connection; ` +
        `if the host's key really changed (check on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), replace its line in ${file}`,
    );
  }
  throw new SshHostKeyError(
    `the SSH host key of ${name} is unknown: its fingerprint is ${what} and ${file} does not list it. ` +
      `If that is the host's key (check on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add this line to ${file}: ${name} ${type} ${key.toString('base64')}`,
  );
}

export type HostKeyCheck = 'known' | 'unknown' | 'changed' | 'revoked';

/**
 * Whether an OpenSSH known_hosts text lists this key (the raw public key blob) for the host:
 * `known`; `revoked` when a `@revoked` line holds it; `changed` when the host has another key of
 * the same type; else `unknown`. Host patterns may be plain, `[host]:port`, hashed (`|1|salt|hash`),
 * with `*` and `?` wildcards and `!` negations; `@cert-authority` lines are not supported (ignored).
 */
export function checkHostKey(knownHosts: string, hostname: string, port: number, key: Buffer): HostKeyCheck {
  const name = knownHostsName(hostname, port).toLowerCase();
  const type = keyType(key);
  let result: HostKeyCheck = 'unknown';
  for (const line of knownHosts.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === '' || fields[0].startsWith('#')) continue;
    const marker = fields[0].startsWith('@') ? fields.shift() : undefined;
    const [patterns, lineType, base64] = fields;
    if (!base64 || marker === '@cert-authority' || !hostMatches(patterns, name)) continue;
    const same = sameBytes(Buffer.from(base64, 'base64'), key);
    if (marker === '@revoked') {
      if (same) return 'revoked';
    } else if (same) {
      result = 'known';
    } else if (lineType === type && result === 'unknown') {
      result = 'changed';
    }
  }
  return result;
}

/** How known_hosts names a host: `host` on port 22, else `[host]:port`. */
export function knownHostsName(hostname: string, port: number): string {
  return port === 22 ? hostname : `[${hostname}]:${port}`;
}

/** The key's fingerprint as ssh-keygen -l shows it: `SHA256:` and the unpadded base64 of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a public key blob starts with (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...). */
function keyType(key: Buffer): string {
  return key.length >= 4 ? key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1') : '?';
}

/** Whether a comma-separated list of host patterns matches the (lowercase) name; any matching `!pattern` vetoes. */
function hostMatches(patterns: string, name: string): boolean {
  let matched = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    const p = negated ? pattern.slice(1) : pattern;
    if (!patternMatches(p, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function patternMatches(pattern: string, name: string): boolean {
  const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(pattern);
  if (hashed) {
    const hash = createHmac('sha1', Buffer.from(hashed[1], 'base64')).update(name).digest();
    return sameBytes(hash, Buffer.from(hashed[2], 'base64'));
  }
  const re = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${re}$`).test(name);
}

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
