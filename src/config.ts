/**
 * The engine's own config, berth.config.yaml (docs/config.md): hosts and their credentials, repos
 * and their tokens, limits. Everything that must not live in the watched repos.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import cron from 'node-cron';
import { LineCounter, parseDocument, isMap, isNode, isScalar } from 'yaml';
import { INPUT_LIMITS, type InputLimits, type RepoPolicy } from './model.ts';
import { checkTargets, NOTIFICATIONS_SCHEMA, type NotificationTarget, type RawTarget } from './notify/config.ts';

export interface TlsConfig {
  ca: string;
  cert: string;
  key: string;
}

/** How berth logs in to an `ssh://user@host[:port]` host (paths are absolute once loaded). */
export interface SshConfig {
  /** the private key berth logs in with (unencrypted, OpenSSH or PEM format) */
  keyFile: string;
  /** an OpenSSH known_hosts file that must list the host's key; default ~/.ssh/known_hosts of berth's user; absent only with insecureIgnoreHostKey */
  knownHostsFile?: string;
  /** accept whatever key the host shows (no protection against a man in the middle) */
  insecureIgnoreHostKey?: boolean;
}

export interface HostConfig {
  name: string;
  /** unix:///var/run/docker.sock, tcp://h:2376 (with tls), ssh://user@h[:port] (with ssh) */
  endpoint: string;
  labels: Record<string, string>;
  tls?: TlsConfig;
  ssh?: SshConfig;
}

export interface RepoConfig {
  name: string;
  /** http(s) URL, or a local path to a git repo */
  url: string;
  branch: string;
  path?: string;
  auth?: { tokenFile?: string; username?: string };
  /** PEM file of the CA to trust for an https:// url, besides the system's */
  caFile?: string;
  /** an interval (30s, 3m, 1h) or a cron expression */
  poll: string;
  webhookSecretFile?: string;
  /**
   * Where the repo's secrets and configs may come from besides the repo: `dir`, a folder on the
   * engine's machine holding `external: true` ones (one file each, named like the secret);
   * `environment`, the engine's environment variables the repo may read (names, or prefixes ending in *).
   */
  secrets?: { dir?: string; environment: string[] };
  /** what the repo's Compose files may ask of the hosts beyond an ordinary container; default nothing */
  policy?: RepoPolicy;
}

/**
 * Credentials for pulling from a registry (paths absolute once loaded): a `host` with a username
 * and a password or token file, or Docker's own config file (its `auths`, `credHelpers` and
 * `credsStore`). The first entry that knows an image's registry gives its credentials.
 */
export type RegistryConfig = { host: string; username: string; passwordFile: string } | { dockerConfigFile: string };

export interface BerthConfig {
  /** where the config came from, for messages; "(embedded default)" without a file */
  source: string;
  dataDir: string;
  listen: string;
  hosts: HostConfig[];
  repos: RepoConfig[];
  auth: { tokens: Array<{ name: string; role: 'viewer' | 'operator' | 'admin'; tokenFile: string }> };
  /** how many hosts are reconciled at once */
  hostConcurrency: number;
  /** how often a full resync inspects every managed container, the backstop behind Docker events (ms) */
  resyncMs: number;
  /** how hosts are watched: a check every intervalMs, each bounded by timeoutMs; unreachable for graceMs makes a host lost */
  hostCheck: HostCheckConfig;
  /**
   * requests a minute one client address may make to /api/v1 and to /webhooks (each over 429), and
   * how many event streams (GET /api/v1/events) it may hold open at once; how many logs may be
   * followed at once (all clients together) and how many bytes of lines one logs answer holds
   * before it follows; and how much a commit may ask of the engine (InputLimits, docs/config.md "Limits")
   */
  limits: { api: number; webhooks: number; eventStreams: number; logFollowers: number; logBytes: number } & InputLimits;
  /** credentials for the registries images are pulled from (src/apply/registries.ts) */
  registries: RegistryConfig[];
  /** how often, at most, a followed image's tag (x-berth.watch-image) is resolved between its repo's passes (ms) */
  imagePollMs: number;
  /** the Ed25519 private key (PEM, PKCS#8) the engine signs the audit log's checkpoints with; none: no checkpoints (src/audit/anchor.ts) */
  auditKeyFile?: string;
  /** a file each checkpoint is also appended to, one JSON line each (best on another disk); needs auditKeyFile */
  auditAnchorFile?: string;
  /** the secret of `POST /webhooks/registry` (a registry's push notifications); none: that webhook takes nothing */
  registryWebhookSecretFile?: string;
  /**
   * the address people and forges reach berth at (`https://berth.example.com`), behind a proxy
   * perhaps: its host is a Host berth answers to, its origin one the API takes actions from
   * (docs/config.md, "The API and browsers")
   */
  publicUrl?: string;
  /** more names berth answers to (the Host header), `host` (any port) or `host:port`, lower case */
  allowedHosts: string[];
  /** who is told what berth did: webhooks, chat services, forges' commit statuses (docs/notifications.md) */
  notifications: NotificationTarget[];
  /** PostgreSQL instead of the SQLite file in dataDir: several engines share it, one leads (docs/how-it-works.md, "Running two engines") */
  database?: DatabaseConfig;
}

/** `database:` (docs/config.md, "Database"). */
export interface DatabaseConfig {
  /** `postgres://user@host:port/name`, without a password */
  url?: string;
  /** a file holding the whole URL (with its password) instead of `url` */
  urlFile?: string;
  /** a file holding the password */
  passwordFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string; rejectUnauthorized: boolean };
  /** how long one statement may keep the engine waiting */
  timeoutMs: number;
  /** how long a leader's lease lasts unrenewed: another engine takes over after it */
  leaseMs: number;
}

export interface HostCheckConfig {
  intervalMs: number;
  graceMs: number;
  timeoutMs: number;
}

/** A config that cannot be used, with a message a person can act on (no stack trace). */
export class ConfigError extends Error {}

const NAME = '^[a-z0-9][a-z0-9_.-]*$';
const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1 },
    listen: { type: 'string', pattern: '^[^:]*:[0-9]+$' },
    hostConcurrency: { type: 'integer', minimum: 1 },
    resync: { type: 'string' },
    imagePoll: { type: 'string' },
    auditKeyFile: { type: 'string', minLength: 1 },
    auditAnchorFile: { type: 'string', minLength: 1 },
    registryWebhookSecretFile: { type: 'string', minLength: 1 },
    publicUrl: { type: 'string', minLength: 1 },
    // a host name, an IPv4 address or a bracketed IPv6 one, with a port or not: what a Host header holds
    allowedHosts: { type: 'array', items: { type: 'string', pattern: '^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]+)?$' } },
    notifications: NOTIFICATIONS_SCHEMA,
    database: {
      anyOf: [
        { type: 'string', pattern: '^postgres(ql)?://' },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            url: { type: 'string', pattern: '^postgres(ql)?://' },
            urlFile: { type: 'string', minLength: 1 },
            passwordFile: { type: 'string', minLength: 1 },
            tls: {
              type: 'object',
              additionalProperties: false,
              properties: {
                caFile: { type: 'string', minLength: 1 },
                certFile: { type: 'string', minLength: 1 },
                keyFile: { type: 'string', minLength: 1 },
                rejectUnauthorized: { type: 'boolean' },
              },
            },
            timeout: { type: 'string' },
            lease: { type: 'string' },
          },
        },
      ],
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        api: { type: 'integer', minimum: 1 },
        webhooks: { type: 'integer', minimum: 1 },
        eventStreams: { type: 'integer', minimum: 1 },
        logFollowers: { type: 'integer', minimum: 1 },
        logBytes: { type: 'integer', minimum: 1024 },
        replicas: { type: 'integer', minimum: 1 },
        stackContainers: { type: 'integer', minimum: 1 },
        repoContainers: { type: 'integer', minimum: 1 },
        blobSize: { type: 'integer', minimum: 1 },
        snapshotSize: { type: 'integer', minimum: 1 },
        fetchSize: { type: 'integer', minimum: 1 },
        yamlSize: { type: 'integer', minimum: 1 },
        yamlAliases: { type: 'integer', minimum: 0 },
        buildContext: { type: 'integer', minimum: 1 },
      },
    },
    hostCheck: {
      type: 'object',
      additionalProperties: false,
      properties: { interval: { type: 'string' }, gracePeriod: { type: 'string' }, timeout: { type: 'string' } },
    },
    hosts: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'endpoint'],
        properties: {
          name: { type: 'string', pattern: NAME },
          endpoint: { type: 'string', pattern: '^(unix|tcp|ssh|http|https)://' },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          tls: {
            type: 'object',
            additionalProperties: false,
            required: ['ca', 'cert', 'key'],
            properties: { ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } },
          },
          ssh: {
            type: 'object',
            additionalProperties: false,
            required: ['keyFile'],
            properties: {
              keyFile: { type: 'string', minLength: 1 },
              knownHostsFile: { type: 'string', minLength: 1 },
              insecureIgnoreHostKey: { type: 'boolean' },
            },
          },
        },
      },
    },
    repos: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url'],
        properties: {
          name: { type: 'string', pattern: NAME },
          url: { type: 'string', minLength: 1 },
          branch: { type: 'string', minLength: 1 },
          path: { type: 'string' },
          poll: { type: 'string', minLength: 1 },
          webhookSecretFile: { type: 'string' },
          caFile: { type: 'string' },
          secrets: {
            type: 'object',
            additionalProperties: false,
            properties: {
              dir: { type: 'string', minLength: 1 },
              environment: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*\\*?$' } },
            },
          },
          policy: {
            type: 'object',
            additionalProperties: false,
            properties: {
              privileged: { type: 'boolean' },
              hostNetwork: { type: 'boolean' },
              hostNamespaces: { type: 'boolean' },
              bindMounts: { type: 'array', items: { type: 'string', pattern: '^/' } },
              joinContainers: { type: 'array', items: { type: 'string', minLength: 1 } },
              externalNetworks: { type: 'array', items: { type: 'string', minLength: 1 } },
              externalVolumes: { type: 'array', items: { type: 'string', minLength: 1 } },
              capabilities: { type: 'array', items: { type: 'string', pattern: '^([A-Za-z_]+\\*?|\\*)$' } },
              securityOpt: { type: 'array', items: { type: 'string', minLength: 1 } },
              devices: { type: 'boolean' },
              cgroupParent: { type: 'boolean' },
              oom: { type: 'boolean' },
              runtimes: { type: 'array', items: { type: 'string', pattern: '^([\\w.-]+\\*?|\\*)$' } },
              sysctls: { type: 'array', items: { type: 'string', pattern: '^([A-Za-z0-9_./-]+\\*?|\\*)$' } },
              logDrivers: { type: 'array', items: { type: 'string', minLength: 1 } },
              annotations: { type: 'boolean' },
            },
          },
          auth: {
            type: 'object',
            additionalProperties: false,
            properties: { tokenFile: { type: 'string' }, username: { type: 'string' } },
          },
        },
      },
    },
    registries: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          // host[:port] as in an image reference, no scheme or path
          host: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]+)?$' },
          username: { type: 'string', minLength: 1 },
          passwordFile: { type: 'string', minLength: 1 },
          dockerConfigFile: { type: 'string', minLength: 1 },
          caFile: { type: 'string' }, // refused with the reason (registry() below)
        },
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tokens: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'role', 'tokenFile'],
            properties: {
              name: { type: 'string' },
              role: { enum: ['viewer', 'operator', 'admin'] },
              tokenFile: { type: 'string' },
            },
          },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(schema);

/** Reads and checks a config file; every problem is reported as `file:line:col: message`. */
export function loadConfig(file: string): BerthConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const where = (offset: number | undefined): string => {
    if (offset === undefined) return `${file}`;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${where(e.pos[0])}: ${e.message.split('\n')[0]}`).join('\n'));
  }
  const raw: unknown = doc.toJS() ?? {};
  if (!validate(raw)) {
    const lines = (validate.errors ?? []).map((e) => {
      const path = e.instancePath
        .split('/')
        .slice(1)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const node = doc.getIn(path, true);
      const unknown = e.keyword === 'additionalProperties' ? String(e.params.additionalProperty) : undefined;
      // an unknown key is shown where it is written, not where the mapping holding it starts
      const keyNode = unknown !== undefined && isMap(node) ? node.items.find((p) => isScalar(p.key) && String(p.key.value) === unknown)?.key : undefined;
      const at = isNode(keyNode) ? keyNode.range?.[0] : isNode(node) ? node.range?.[0] : undefined;
      const key = e.instancePath.slice(1).replaceAll('/', '.') || '(top level)';
      const extra = unknown !== undefined ? ` '${unknown}'` : '';
      return `${where(at)}: ${key}: ${e.message}${extra}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  const base = dirname(resolve(file));
  const locate = (path: Array<string | number>) => {
    const node = doc.getIn(path, true);
    return where(isNode(node) ? node.range?.[0] : undefined);
  };
  return normalize(raw as RawConfig, base, file, locate);
}

type RawConfig = Partial<
  Omit<
    BerthConfig,
    'source' | 'hosts' | 'repos' | 'hostCheck' | 'resyncMs' | 'limits' | 'registries' | 'imagePollMs' | 'allowedHosts' | 'notifications' | 'database'
  >
> & {
  database?: string | RawDatabase;
  notifications?: RawTarget[];
  allowedHosts?: string[];
  imagePoll?: string;
  registries?: Array<{ host?: string; username?: string; passwordFile?: string; dockerConfigFile?: string; caFile?: string }>;
  limits?: Partial<BerthConfig['limits']>;
  hostCheck?: { interval?: string; gracePeriod?: string; timeout?: string };
  resync?: string;
  hosts?: Array<Partial<HostConfig> & { name: string; endpoint: string }>;
  repos?: Array<Partial<RepoConfig> & { name: string; url: string }>;
};

function normalize(raw: RawConfig, base: string, source: string, locate: (path: Array<string | number>) => string = () => source): BerthConfig {
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const hosts = (raw.hosts ?? []).map((h) => ({
    name: h.name,
    endpoint: h.endpoint,
    labels: h.labels ?? {},
    tls: h.tls && { ca: rel(h.tls.ca), cert: rel(h.tls.cert), key: rel(h.tls.key) },
    ssh: sshConfig(h, rel, `${source}: hosts.${h.name}`),
  }));
  const repos = (raw.repos ?? []).map((r) => ({
    name: r.name,
    url: /^[a-z][a-z0-9+.-]*:\/\//i.test(r.url) ? r.url : rel(r.url),
    branch: r.branch ?? 'main',
    path: r.path,
    poll: r.poll ?? '3m',
    auth: r.auth && { ...r.auth, tokenFile: r.auth.tokenFile && rel(r.auth.tokenFile) },
    webhookSecretFile: r.webhookSecretFile && rel(r.webhookSecretFile),
    caFile: r.caFile && rel(r.caFile),
    secrets: r.secrets && { dir: r.secrets.dir && rel(r.secrets.dir), environment: r.secrets.environment ?? [] },
    policy: { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [], ...r.policy },
  }));
  for (const [what, list] of [
    ['hosts', hosts],
    ['repos', repos],
  ] as const) {
    const seen = new Set<string>();
    for (const item of list) {
      if (seen.has(item.name)) throw new ConfigError(`${source}: ${what}: the name '${item.name}' is used twice`);
      seen.add(item.name);
    }
  }
  for (const r of repos) parsePoll(r.poll, `${source}: repos.${r.name}.poll`);
  const publicUrlValue = raw.publicUrl === undefined ? undefined : publicUrl(raw.publicUrl, `${source}: publicUrl`);
  const notifications = checkTargets(raw.notifications ?? [], { repos, publicUrl: publicUrlValue, rel });
  if (notifications.problems.length) throw new ConfigError(notifications.problems.map((p) => `${locate(p.path)}: ${p.message}`).join('\n'));
  return {
    source,
    dataDir: raw.dataDir !== undefined ? rel(raw.dataDir) : (defaultDataDir() ?? rel('./data')),
    listen: raw.listen ?? '127.0.0.1:8080',
    hosts: hosts.length > 0 ? hosts : [localHost()],
    repos,
    auth: { tokens: (raw.auth?.tokens ?? []).map((t) => ({ ...t, tokenFile: rel(t.tokenFile) })) },
    hostConcurrency: raw.hostConcurrency ?? 8,
    resyncMs: parseDuration(raw.resync ?? '10m', `${source}: resync`),
    hostCheck: hostCheck(raw.hostCheck ?? {}, `${source}: hostCheck`),
    limits: { ...LIMITS, ...raw.limits },
    registries: (raw.registries ?? []).map((r, i) => registry(r, rel, `${source}: registries[${i}]`)),
    imagePollMs: parseDuration(raw.imagePoll ?? '5m', `${source}: imagePoll`),
    ...auditFiles(raw, rel, source),
    registryWebhookSecretFile: raw.registryWebhookSecretFile && rel(raw.registryWebhookSecretFile),
    ...(publicUrlValue === undefined ? {} : { publicUrl: publicUrlValue }),
    allowedHosts: (raw.allowedHosts ?? []).map((h) => h.toLowerCase()),
    notifications: notifications.targets,
    ...(raw.database !== undefined ? { database: database(raw.database, rel, `${source}: database`) } : {}),
  };
}

type RawDatabase = {
  url?: string;
  urlFile?: string;
  passwordFile?: string;
  tls?: Partial<NonNullable<DatabaseConfig['tls']>>;
  timeout?: string;
  lease?: string;
};

/** `database:`, a URL or its long form, checked: one of url and urlFile, and no password written in the config. */
function database(raw: string | RawDatabase, rel: (p: string) => string, where: string): DatabaseConfig {
  const d = typeof raw === 'string' ? { url: raw } : raw;
  if ((d.url === undefined) === (d.urlFile === undefined)) throw new ConfigError(`${where}: give url or urlFile (one of them)`);
  if (d.url !== undefined) {
    let u: URL;
    try {
      u = new URL(d.url);
    } catch {
      throw new ConfigError(`${where}: '${d.url.replace(/:[^:@/]*@/, ':***@')}' is not a URL (postgres://user@host:5432/name)`);
    }
    if (u.password) throw new ConfigError(`${where}: the URL holds a password: put it in a file and name it with passwordFile (or the whole URL with urlFile)`);
    if (!u.hostname || u.pathname.length < 2) throw new ConfigError(`${where}: ${d.url} names no host or no database (postgres://user@host:5432/name)`);
  }
  const leaseMs = parseDuration(d.lease ?? '10s', `${where}.lease`);
  if (leaseMs < 2000) throw new ConfigError(`${where}.lease: ${d.lease} is too short: at least 2s (it is renewed every fifth of it)`);
  return {
    ...(d.url !== undefined ? { url: d.url } : {}),
    ...(d.urlFile !== undefined ? { urlFile: rel(d.urlFile) } : {}),
    ...(d.passwordFile !== undefined ? { passwordFile: rel(d.passwordFile) } : {}),
    ...(d.tls
      ? {
          tls: {
            ...(d.tls.caFile ? { caFile: rel(d.tls.caFile) } : {}),
            ...(d.tls.certFile ? { certFile: rel(d.tls.certFile) } : {}),
            ...(d.tls.keyFile ? { keyFile: rel(d.tls.keyFile) } : {}),
            rejectUnauthorized: d.tls.rejectUnauthorized ?? true,
          },
        }
      : {}),
    timeoutMs: parseDuration(d.timeout ?? '5s', `${where}.timeout`),
    leaseMs,
  };
}

/** auditKeyFile and auditAnchorFile, absolute; an anchor file holds signed checkpoints, so it needs the key that signs them. */
function auditFiles(raw: RawConfig, rel: (p: string) => string, source: string): Pick<BerthConfig, 'auditKeyFile' | 'auditAnchorFile'> {
  if (raw.auditAnchorFile !== undefined && raw.auditKeyFile === undefined) {
    throw new ConfigError(`${source}: auditAnchorFile holds signed checkpoints: give auditKeyFile too (the key that signs them; berth init makes one)`);
  }
  return {
    ...(raw.auditKeyFile !== undefined ? { auditKeyFile: rel(raw.auditKeyFile) } : {}),
    ...(raw.auditAnchorFile !== undefined ? { auditAnchorFile: rel(raw.auditAnchorFile) } : {}),
  };
}

/** `publicUrl`: an http(s) URL with a host, and nothing a browser's address of berth would not have (credentials, query, fragment). */
function publicUrl(value: string, where: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${where}: '${value}' is not a URL: give the address browsers and forges reach berth at, such as https://berth.example.com`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${where}: '${value}' must be an http:// or https:// URL`);
  if (url.username || url.password || url.search || url.hash)
    throw new ConfigError(`${where}: '${value}' must hold no user, password, query or fragment: the address of berth only`);
  return url.href.replace(/\/$/, '');
}

/** A registries entry: a host with its username and password file, or a Docker config file alone. */
function registry(r: NonNullable<RawConfig['registries']>[number], rel: (p: string) => string, where: string): RegistryConfig {
  const { host, username, passwordFile, dockerConfigFile } = r;
  if (r.caFile !== undefined)
    throw new ConfigError(
      `${where}.caFile: berth sends no request to a registry (the hosts pull, and resolve digests), so a registry's CA goes to each Docker host: /etc/docker/certs.d/${host ?? 'HOST:PORT'}/ca.crt (docs/config.md, "Registries")`,
    );
  if (dockerConfigFile !== undefined) {
    if (host ?? username ?? passwordFile)
      throw new ConfigError(`${where}: dockerConfigFile stands alone: give host, username and passwordFile in an entry of their own`);
    return { dockerConfigFile: rel(dockerConfigFile) };
  }
  const missing = (['host', 'username', 'passwordFile'] as const).filter((k) => r[k] === undefined);
  if (missing.length) throw new ConfigError(`${where}: ${missing.join(', ')} missing: an entry is host, username and passwordFile, or dockerConfigFile alone`);
  return { host: host!.toLowerCase(), username: username!, passwordFile: rel(passwordFile!) };
}

/**
 * The defaults: 300 API requests and 60 webhook deliveries a minute, and 10 open event streams,
 * per client address; 10 logs followed at once and 10 MiB of lines per logs answer; and what one
 * commit may ask of the engine (INPUT_LIMITS).
 */
export const LIMITS: BerthConfig['limits'] = { api: 300, webhooks: 60, eventStreams: 10, logFollowers: 10, logBytes: 10 * 1024 * 1024, ...INPUT_LIMITS };

/** The defaults: a check every 10 s, bounded by 5 s; a host unreachable for 1 min is lost. */
const HOST_CHECK: HostCheckConfig = { intervalMs: 10_000, graceMs: 60_000, timeoutMs: 5_000 };

function hostCheck(raw: NonNullable<RawConfig['hostCheck']>, where: string): HostCheckConfig {
  const ms = (value: string | undefined, key: string, fallback: number) => (value === undefined ? fallback : parseDuration(value, `${where}.${key}`));
  return {
    intervalMs: ms(raw.interval, 'interval', HOST_CHECK.intervalMs),
    graceMs: ms(raw.gracePeriod, 'gracePeriod', HOST_CHECK.graceMs),
    timeoutMs: ms(raw.timeout, 'timeout', HOST_CHECK.timeoutMs),
  };
}

/**
 * The ssh block of a host, checked against its endpoint: an ssh:// endpoint needs one (and no
 * password in the URL); the host's key must be in knownHostsFile (default ~/.ssh/known_hosts)
 * unless insecureIgnoreHostKey says otherwise.
 */
function sshConfig(h: { endpoint: string; ssh?: SshConfig }, rel: (p: string) => string, where: string): SshConfig | undefined {
  const isSsh = h.endpoint.startsWith('ssh://');
  if (!isSsh) {
    if (h.ssh) throw new ConfigError(`${where}: ssh is only for an ssh:// endpoint, not ${h.endpoint}`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(h.endpoint);
  } catch {
    throw new ConfigError(`${where}: '${h.endpoint}' is not a valid ssh://user@host[:port] endpoint`);
  }
  if (url.password) throw new ConfigError(`${where}: berth does not log in with a password: drop it from the endpoint and give ssh: { keyFile }`);
  if (url.pathname && url.pathname !== '/') throw new ConfigError(`${where}: an ssh:// endpoint has no path: ssh://user@host[:port]`);
  if (!h.ssh) throw new ConfigError(`${where}: an ssh:// endpoint needs ssh: { keyFile } (the private key berth logs in with)`);
  const { keyFile, knownHostsFile, insecureIgnoreHostKey } = h.ssh;
  if (insecureIgnoreHostKey && knownHostsFile)
    throw new ConfigError(`${where}.ssh: knownHostsFile and insecureIgnoreHostKey: true contradict each other; keep one`);
  if (insecureIgnoreHostKey) return { keyFile: rel(keyFile), insecureIgnoreHostKey };
  return { keyFile: rel(keyFile), knownHostsFile: rel(knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts')) };
}

function localHost(): HostConfig {
  return { name: 'local', endpoint: 'unix:///var/run/docker.sock', labels: {} };
}

export type PollSchedule = { kind: 'interval'; ms: number } | { kind: 'cron'; expression: string };

/** `30s`, `3m`, `1h` (also combined, `1h30m`) or a cron expression of 5 or 6 fields. */
export function parsePoll(value: string, where = 'poll'): PollSchedule {
  if (durationMs(value) !== undefined) return { kind: 'interval', ms: parseDuration(value, where) };
  if (cron.validate(value.trim())) return { kind: 'cron', expression: value.trim() };
  throw new ConfigError(`${where}: '${value}' is neither an interval (30s, 3m, 1h) nor a cron expression`);
}

/** A duration of at least one second, `30s`, `3m`, `1h` (also combined, `1h30m`), in milliseconds. */
export function parseDuration(value: string, where = 'duration'): number {
  const ms = durationMs(value);
  if (ms === undefined) throw new ConfigError(`${where}: '${value}' is not a duration (30s, 3m, 1h, 1h30m)`);
  if (ms < 1000) throw new ConfigError(`${where}: '${value}' is shorter than one second`);
  return ms;
}

/** The milliseconds of `1h30m`-style text, or undefined when it is not one. */
function durationMs(value: string): number | undefined {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value.trim());
  if (!m || value.trim() === '') return undefined;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

/**
 * The data folder of a config that names none, when $BERTH_DATA_DIR says it (relative to the working
 * folder): the container image sets it to its volume, so that the config folder may be mounted
 * read-only (docs/config.md). Else undefined: `data` beside the config file (the embedded default: in the working folder).
 */
function defaultDataDir(): string | undefined {
  const dir = process.env.BERTH_DATA_DIR;
  return dir ? resolve(dir) : undefined;
}

/**
 * The embedded default: the local Docker socket as the one host and the bundled examples as the
 * repo, seeded into a git repo under the data folder so that a newcomer can commit a change there
 * and watch it converge.
 */
export function defaultConfig(dataDir = defaultDataDir() ?? resolve('data')): BerthConfig {
  return {
    source: '(embedded default)',
    dataDir,
    listen: '127.0.0.1:8080',
    hosts: [localHost()],
    repos: [{ name: 'examples', url: resolve(dataDir, 'examples'), branch: 'main', poll: '5s' }],
    auth: { tokens: [] },
    hostConcurrency: 8,
    resyncMs: 600_000,
    hostCheck: { ...HOST_CHECK },
    limits: { ...LIMITS },
    registries: [],
    imagePollMs: 300_000,
    allowedHosts: [],
    notifications: [],
  };
}

/** The config named by --config or BERTH_CONFIG, else ./berth.config.yaml when present, else the embedded default. */
export function resolveConfig(flag?: string): BerthConfig {
  const file = flag ?? process.env.BERTH_CONFIG;
  if (file) return loadConfig(file);
  if (existsSync('berth.config.yaml')) return loadConfig('berth.config.yaml');
  return defaultConfig();
}

/** Reads a secret file (token, webhook secret), trimmed. The message names the file, never the content. */
export function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read ${what} from ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}
