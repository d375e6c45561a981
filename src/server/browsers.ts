/**
 * What keeps the web pages a user opens from driving berth (docs/api.md, "Browsers";
 * docs/config.md, "The API and browsers"), as pure functions of a request's headers:
 *
 * - the Host header must name berth (HostNames): a page whose name was made to resolve to
 *   127.0.0.1 (DNS rebinding) sends its own name, and is refused;
 * - an action must come from berth's own pages or from a client that is no browser (crossSite):
 *   another site's page sends its Origin, or Sec-Fetch-Site: cross-site/same-site;
 * - an API body must be JSON (isJson): an HTML form can send text/plain, urlencoded or multipart
 *   to any site, but application/json only after a CORS preflight, which berth never grants.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { BerthConfig } from '../config.ts';
import { isLoopback, parseListen } from './auth.ts';

/** The most of a header's value a message quotes (the header is the sender's, as long as it likes). */
export const QUOTED_MAX = 64;

/** A header value (or anything a sender chose) as a message quotes it: at most QUOTED_MAX characters. */
export function clip(value: string, max = QUOTED_MAX): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** Where a request arrived: the local end of its connection. */
export interface Arrival {
  /** the port berth accepted it on */
  port: number;
  /** the local address it came to (an IP) */
  address?: string;
}

/** A Host header (or an allowedHosts entry) split: the name in lower case (IPv6 bracketed), the port when it has one. */
export function splitHost(host: string): { name: string; port?: string } {
  const h = host.trim().toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(h);
  if (!m) return { name: h };
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, port: m[2] };
}

/** An IP as a Host header holds it: IPv6 bracketed, an IPv4 address mapped into IPv6 as IPv4. */
function ipAsHost(address: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIP(address) === 4) return address;
  if (isIP(address) === 6) return `[${address.toLowerCase()}]`;
  return undefined;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The names berth answers to (the Host header), from the engine config:
 *
 * - the host of `listen` (not 0.0.0.0) and, listening on loopback, localhost, 127.0.0.1 and [::1],
 *   each on the port the request arrived at;
 * - the IP address the request arrived at, on that port (a name made to resolve to it is refused,
 *   the address itself is no page's own name: so `curl http://10.0.0.5:8080` and a Prometheus
 *   scraping by address work when berth listens on 0.0.0.0);
 * - the host of `publicUrl` (also with its scheme's default port written out);
 * - every `allowedHosts` entry: `name` on any port, `name:port` on that one.
 *
 * Listening on 0.0.0.0 with neither publicUrl nor allowedHosts, any Host is taken (`open`): berth
 * cannot know the names it is reached by, and it has tokens there (checkListen).
 */
export class HostNames {
  /** any Host is taken */
  readonly open: boolean;
  /** publicUrl or allowedHosts is set: the names are the operator's, and webhooks are held to them too */
  readonly configured: boolean;
  /** names taken on the port the request arrived at */
  readonly #onPort: string[];
  /** exact `name[:port]` values */
  readonly #exact = new Set<string>();
  /** names taken on any port (or with none) */
  readonly #anyPort = new Set<string>();

  constructor(config: Pick<BerthConfig, 'listen' | 'publicUrl' | 'allowedHosts'>) {
    const listenHost = parseListen(config.listen).host.toLowerCase();
    this.configured = config.publicUrl !== undefined || config.allowedHosts.length > 0;
    this.open = WILDCARDS.has(listenHost) && !this.configured;
    this.#onPort = WILDCARDS.has(listenHost) ? [] : [splitHost(listenHost).name];
    if (isLoopback(listenHost)) this.#onPort.push(...LOOPBACK_NAMES);
    if (config.publicUrl !== undefined) {
      const url = new URL(config.publicUrl);
      this.#exact.add(url.host);
      if (!url.port) this.#exact.add(`${url.hostname}:${url.protocol === 'https:' ? 443 : 80}`);
    }
    for (const entry of config.allowedHosts) {
      const { name, port } = splitHost(entry);
      if (port) this.#exact.add(`${name}:${port}`);
      else this.#anyPort.add(name);
    }
  }

  /** Whether berth answers to `host` (a Host header) for a request that arrived `at`. */
  allows(host: string | undefined, at: Arrival): boolean {
    if (this.open) return true;
    if (!host) return false;
    const { name, port } = splitHost(host);
    if (this.#anyPort.has(name)) return true;
    if (this.#exact.has(port === undefined ? name : `${name}:${port}`)) return true;
    // berth serves plain HTTP: a Host without a port is one on port 80
    const samePort = port === undefined ? at.port === 80 : port === String(at.port);
    if (!samePort) return false;
    const local = at.address === undefined ? undefined : ipAsHost(at.address);
    return this.#onPort.includes(name) || name === local;
  }
}

/**
 * Why a request comes from another site's page, or undefined when it does not: an `Origin` that
 * is none of berth's own (`http://` + the Host it was sent to, or publicUrl's origin), or a
 * `Sec-Fetch-Site` other than `same-origin` and `none` (`same-site` included: a page on another
 * port of localhost is another site's). A client that is no browser (the CLI, curl) sends neither.
 */
export function crossSite(headers: IncomingHttpHeaders, publicOrigin?: string): string | undefined {
  const site = first(headers['sec-fetch-site'])?.trim().toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${clip(site)} request (Sec-Fetch-Site)`;
  const origin = first(headers.origin)?.trim().toLowerCase();
  if (origin === undefined) return undefined;
  const own = [headers.host && `http://${headers.host.trim().toLowerCase()}`, publicOrigin?.toLowerCase()];
  return own.includes(origin) ? undefined : `a request from a page of ${clip(origin)} (Origin)`;
}

/** Whether a request has a body: a Content-Length other than 0, or a chunked one. */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length.trim() !== '0') || headers['transfer-encoding'] !== undefined;
}

/** Whether a Content-Type is JSON's: `application/json`, with parameters (`; charset=utf-8`) or not. */
export function isJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
