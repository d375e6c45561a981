/**
 * Registry credentials (the engine config's `registries:`, docs/config.md): which credentials go
 * with an image's pull, as the X-Registry-Auth of that pull on the host that pulls it, so that no
 * host needs `docker login`. Password files and Docker config files are read at start (a file that
 * cannot be read stops berth, naming the file); credential helpers (`docker-credential-NAME`) are
 * run when a pull needs them. A secret is held sealed: it reaches the daemon's header and nothing
 * else, not a log line, an error or an audit row.
 */
import { execFile } from 'node:child_process';
import type Dockerode from 'dockerode';
import { ConfigError, readSecretFile, type RegistryConfig } from '../config.ts';

/** Docker Hub, as image references name it when they name no registry. */
const DOCKER_HUB = 'docker.io';

/** The address Docker's own tools give Docker Hub's credentials under. */
const DOCKER_HUB_AUTH_SERVER = 'https://index.docker.io/v1/';

/**
 * The registry of an image reference, as Docker reads it: the first path component when it looks
 * like a host (has a dot or a port, or is `localhost`), else Docker Hub (`nginx`, `library/nginx`,
 * `acme/web`). Docker Hub's other names (index.docker.io, registry-1.docker.io) are Docker Hub.
 */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  const first = slash < 0 ? '' : image.slice(0, slash);
  const host = first && (first.includes('.') || first.includes(':') || first === 'localhost') ? first.toLowerCase() : DOCKER_HUB;
  return normalizeRegistry(host);
}

/**
 * An image reference as a key, so that two spellings of one image compare equal: the registry
 * (normalised as above), the repository (Docker Hub's single names under `library/`), and the tag
 * (`latest` when none); a digest is dropped. `nginx`, `docker.io/library/nginx:latest` and
 * `index.docker.io/library/nginx` are all `docker.io/library/nginx:latest`.
 */
export function imageKey(image: string): string {
  const name = image.replace(/@sha256:[0-9a-f]+$/i, '');
  const colon = name.lastIndexOf(':');
  const [repo, tag] = colon > name.lastIndexOf('/') ? [name.slice(0, colon), name.slice(colon + 1)] : [name, 'latest'];
  const registry = registryOf(repo);
  // a registry other than Docker Hub is always written as the first component; Docker Hub may be
  let path = registry === DOCKER_HUB ? repo.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//i, '') : repo.slice(repo.indexOf('/') + 1);
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  return `${registry}/${path}:${tag}`;
}

/** A registry as a key: Docker config's `https://index.docker.io/v1/` and `http://reg:5000/v2/` become `docker.io` and `reg:5000`. */
export function normalizeRegistry(address: string): string {
  const host = address
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

/** Credentials for one registry, the secret sealed: JSON and loggers see `<sealed>`. */
export class Credential {
  readonly registry: string;
  /** where they came from, for messages: `registries[0]`, `registries[1] (credHelper ecr-login)` */
  readonly source: string;
  readonly username: string;
  readonly #secret: string;
  /** the secret is an identity token (an OAuth refresh token), not a password */
  readonly #token: boolean;

  constructor(registry: string, source: string, username: string, secret: string, { token = false } = {}) {
    this.registry = registry;
    this.source = source;
    this.username = username;
    this.#secret = secret;
    this.#token = token;
  }

  /** What dockerode sends as the pull's X-Registry-Auth. */
  authconfig(): Dockerode.AuthConfig {
    const serveraddress = this.registry === DOCKER_HUB ? DOCKER_HUB_AUTH_SERVER : this.registry;
    return this.#token
      ? ({ identitytoken: this.#secret, serveraddress } as unknown as Dockerode.AuthConfig)
      : { username: this.username, password: this.#secret, serveraddress };
  }

  toJSON(): object {
    return { registry: this.registry, source: this.source, username: this.username, secret: '<sealed>' };
  }
}

/** What one entry of `registries:` knows. */
interface Entry {
  source: string;
  /** the credentials of the registry, or undefined when the entry does not know it */
  lookup(registry: string): Promise<Credential | undefined>;
}

/** Runs `docker-credential-NAME get` (a credential helper), as Docker's CLI does; undefined when it knows no credentials for the registry. */
export type HelperRunner = (helper: string, serverUrl: string) => Promise<{ Username: string; Secret: string } | undefined>;

/** How long a credential helper's answer is kept: a helper may be slow (it can call a cloud API) and its tokens are valid for hours. */
const HELPER_CACHE_MS = 5 * 60_000;

export class Registries {
  readonly #entries: Entry[];

  private constructor(entries: Entry[]) {
    this.#entries = entries;
  }

  /** No registry credentials: every pull is anonymous. */
  static none(): Registries {
    return new Registries([]);
  }

  /** Reads every password, CA and Docker config file now: ConfigError naming the file (never its content) when one cannot be used. */
  static load(configs: readonly RegistryConfig[], runHelper: HelperRunner = runCredentialHelper): Registries {
    return new Registries(
      configs.map((c, i): Entry => {
        const source = `registries[${i}]`;
        if ('dockerConfigFile' in c) return dockerConfigEntry(c.dockerConfigFile, source, runHelper);
        const password = readSecretFile(c.passwordFile, `the password of registry ${c.host} (${source})`);
        if (!password) throw new ConfigError(`the password file ${c.passwordFile} of registry ${c.host} (${source}) is empty`);
        const credential = new Credential(normalizeRegistry(c.host), source, c.username, password);
        return { source, lookup: async (registry) => (registry === credential.registry ? credential : undefined) };
      }),
    );
  }

  /** The credentials for pulling `image`: the first entry that knows its registry; undefined pulls anonymously. */
  async credentialFor(image: string): Promise<Credential | undefined> {
    const registry = registryOf(image);
    for (const e of this.#entries) {
      const found = await e.lookup(registry);
      if (found) return found;
    }
    return undefined;
  }
}

/** The shape of Docker's config.json that berth reads. */
interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** An entry for Docker's own config file: `credHelpers` first, then `auths`, then `credsStore` (as Docker's CLI reads it). */
function dockerConfigEntry(file: string, source: string, runHelper: HelperRunner): Entry {
  let parsed: DockerConfigFile;
  try {
    parsed = JSON.parse(readSecretFile(file, `the Docker config file (${source})`)) as DockerConfigFile;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`the Docker config file ${file} (${source}) is not JSON`); // the parser's message could quote a secret
  }
  const auths = new Map<string, Credential>();
  for (const [address, a] of Object.entries(parsed.auths ?? {})) {
    const registry = normalizeRegistry(address);
    const what = `${source} (${file}, auths.${address})`;
    if (a.identitytoken) {
      auths.set(registry, new Credential(registry, what, a.username ?? '', a.identitytoken, { token: true }));
      continue;
    }
    let { username, password } = a;
    if (a.auth) {
      const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new ConfigError(`${file} (${source}): auths.${address}.auth is not base64 of user:password`);
      [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    }
    if (username && password) auths.set(registry, new Credential(registry, what, username, password));
  }
  const helpers = new Map(Object.entries(parsed.credHelpers ?? {}).map(([address, helper]) => [normalizeRegistry(address), helper]));
  const cache = new Map<string, { at: number; found: Promise<Credential | undefined> }>();
  const fromHelper = (helper: string, registry: string): Promise<Credential | undefined> => {
    const key = `${helper} ${registry}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < HELPER_CACHE_MS) return hit.found;
    const what = `${source} (${file}, credential helper ${helper})`;
    const serverUrl = registry === DOCKER_HUB ? DOCKER_HUB_AUTH_SERVER : registry;
    const found = runHelper(helper, serverUrl).then((c) =>
      c ? new Credential(registry, what, c.Username === '<token>' ? '' : c.Username, c.Secret, { token: c.Username === '<token>' }) : undefined,
    );
    found.catch(() => cache.delete(key)); // a helper that failed is asked again next time
    cache.set(key, { at: Date.now(), found });
    return found;
  };
  return {
    source,
    lookup: async (registry) => {
      const helper = helpers.get(registry);
      if (helper) return fromHelper(helper, registry);
      const inline = auths.get(registry);
      if (inline) return inline;
      return parsed.credsStore ? fromHelper(parsed.credsStore, registry) : undefined;
    },
  };
}

/** A credential helper's protocol: the server URL on stdin, `{ ServerURL, Username, Secret }` on stdout; "credentials not found" is no answer. */
export const runCredentialHelper: HelperRunner = (helper, serverUrl) =>
  new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = execFile(program, ['get'], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) {
        try {
          const answer = JSON.parse(stdout) as { Username?: string; Secret?: string };
          if (typeof answer.Secret === 'string') return resolve({ Username: answer.Username ?? '', Secret: answer.Secret });
        } catch {
          // said below, without its output (it may hold a secret)
        }
        return reject(new Error(`${program} answered something that is not a credential`));
      }
      // the helpers' protocol defines this answer (errCredentialsNotFoundMessage of docker-credential-helpers)
      if (/credentials not found/i.test(`${stdout}${stderr}`)) return resolve(undefined);
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        new Error(code === 'ENOENT' ? `${program} is not on berth's PATH` : `${program} get failed (${err.killed ? 'timed out' : `exit ${String(code)}`})`),
      );
    });
    child.stdin?.on('error', () => undefined); // a helper that is missing or exits without reading: said by the callback above
    child.stdin?.end(serverUrl);
  });
