/**
 * Who may use the API: bearer tokens from the engine config (`auth.tokens`; docs/config.md, "API
 * tokens"), each with a name and a role, viewer < operator < admin. Reading needs viewer, acting
 * operator. Tokens are read once at start, compared in constant time, and never logged or stored:
 * what is recorded is the token's name. With no token configured, berth listens on loopback only
 * and every request is `local`, an admin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError, readSecretFile, type BerthConfig } from '../config.ts';

export type Role = 'viewer' | 'operator' | 'admin';

/** Who a request comes from: a token's name and role. */
export interface Principal {
  name: string;
  role: Role;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may do what needs `needed`. */
export function allows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** The principal of every request when no token is configured (loopback only). */
export const LOCAL_ADMIN: Principal = { name: 'local', role: 'admin' };

/** sha256 of a token: every compared value has the same length, whatever the token's. */
const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** The configured tokens, as digests: `identify` finds a presented token's principal. */
export class Tokens {
  readonly #entries: Array<Principal & { digest: Buffer }>;

  private constructor(entries: Array<Principal & { digest: Buffer }>) {
    this.#entries = entries;
  }

  /**
   * Reads every token file of the config. A file that cannot be read or is empty, or two entries
   * with the same token, stop the server (ConfigError naming the file or the names, never a token).
   */
  static load(auth: BerthConfig['auth']): Tokens {
    const entries = auth.tokens.map((t) => {
      const token = readSecretFile(t.tokenFile, `the API token ${t.name}`);
      if (!token) throw new ConfigError(`the API token ${t.name} in ${t.tokenFile} is empty: put a long random string there (openssl rand -hex 32)`);
      return { name: t.name, role: t.role, digest: digest(token) };
    });
    entries.forEach((e, i) => {
      const twin = entries.findIndex((o) => o.digest.equals(e.digest));
      if (twin !== i) throw new ConfigError(`the API tokens ${entries[twin]!.name} and ${e.name} are the same: give each its own token`);
    });
    return new Tokens(entries);
  }

  /** No token configured: every request is LOCAL_ADMIN. */
  get open(): boolean {
    return this.#entries.length === 0;
  }

  /** The principal whose token this is, or undefined. Compares with every token, in constant time each. */
  identify(token: string): Principal | undefined {
    const presented = digest(token);
    let found: Principal | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(presented, e.digest) && !found) found = { name: e.name, role: e.role };
    }
    return found;
  }
}

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none, null when the header is not a bearer one. */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Whether a host (`listen`'s) is a loopback address, reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** `host:port` as in the config's `listen` (no host: 127.0.0.1). */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i) || '127.0.0.1', port: Number(listen.slice(i + 1)) };
}

/**
 * Refuses a config that would open the API to the network without a token: with no `auth.tokens`,
 * `listen` must be a loopback address (ConfigError saying what to do otherwise).
 */
export function checkListen(config: Pick<BerthConfig, 'auth' | 'listen' | 'source'>): void {
  if (config.auth.tokens.length > 0) return;
  if (isLoopback(parseListen(config.listen).host)) return;
  throw new ConfigError(
    `${config.source}: listen is ${config.listen}, but no API token is configured: anyone who reaches that address could sync, roll back and pause stacks. ` +
      `Add auth.tokens (name, role, tokenFile) to the config, or listen on 127.0.0.1`,
  );
}
