/**
 * `build:` and `pull_policy:`: read from one file (checked, located), and once the stack's files
 * are merged, resolved against the commit's tree: the context's files (minus .dockerignore), and
 * a hash over them and every build option, which names the image built from them.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import ignoreModule from '@balena/dockerignore';
import type { BuildSpec, ContextFile, PullPolicy, SourceError } from '../model.ts';
import { siteError, siteOf, type At, type Path, type Site, type YamlSource } from './positions.ts';
import { normalPath, obj, parseBytes, scalarText, sizeText, toBool, type Obj } from './values.ts';

/** One file's `build:` (after merging, the stack's). */
export interface BuildPart {
  at: Site;
  /** snapshot-relative context folder ('.' for the root) */
  context?: At<string>;
  dockerfile?: At<string>;
  inline?: string;
  args: Map<string, string>;
  target?: string;
  labels: Map<string, string>;
  noCache?: boolean;
  pull?: boolean;
  network?: string;
  /** where `network` is written (a build on the host's network falls under policy.hostNetwork) */
  networkAt?: Site;
  shmSizeBytes?: number;
  extraHosts: string[];
  cacheFrom: string[];
  tags: string[];
}

type Fail = (path: Path, message: string, key?: boolean) => void;

const PULL_POLICIES: Record<string, PullPolicy> = { always: 'always', missing: 'missing', if_not_present: 'missing', never: 'never', build: 'build' };

/** `pull_policy:` of one service. */
export function pullPolicy(v: unknown, path: Path, fail: Fail): PullPolicy | undefined {
  if (v === undefined) return undefined;
  const policy = PULL_POLICIES[scalarText(v)];
  if (!policy) fail(path, `'${scalarText(v)}' is not supported by berth (always, missing, never, build)`);
  return policy;
}

/** Compose's list-or-map of `KEY=VALUE` (args, labels, extra_hosts as a map) as pairs; bare keys get no value. */
function pairs(v: unknown): [string, string | undefined][] {
  if (Array.isArray(v)) {
    return v.map((item) => {
      const text = scalarText(item);
      const eq = text.indexOf('=');
      return eq < 0 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
    });
  }
  return Object.entries(obj(v)).map(([k, val]) => [k, val === null ? undefined : scalarText(val)]);
}

/** A service's `build:` in one file: a context path, or the long form. */
export function buildPart(src: YamlSource, v: unknown, path: Path, fail: Fail): BuildPart | undefined {
  if (v === undefined) return undefined;
  const b: Obj = typeof v === 'string' ? { context: v } : obj(v);
  const part: BuildPart = { at: siteOf(src, path, { key: true }), args: new Map(), labels: new Map(), extraHosts: [], cacheFrom: [], tags: [] };
  const contextPath = typeof v === 'string' ? path : [...path, 'context'];
  if (b.context !== undefined) {
    const given = scalarText(b.context);
    const resolved = normalPath(posix.join(posix.dirname(src.file), given));
    if (/^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(given))
      fail(contextPath, `'${given}' is a remote context: berth builds from the commit's own tree (a folder of the repository)`);
    else if (given.startsWith('/')) fail(contextPath, `'${given}' must be a folder relative to the compose file (berth builds from the repository)`);
    else if (resolved === '..' || resolved.startsWith('../')) fail(contextPath, `'${given}' points outside the repository`);
    else part.context = { value: resolved, at: siteOf(src, contextPath) };
  }
  if (typeof b.dockerfile === 'string') {
    const df = posix.normalize(b.dockerfile);
    if (df.startsWith('/') || df.startsWith('../')) fail([...path, 'dockerfile'], `'${b.dockerfile}' must be a path inside the build context`);
    else part.dockerfile = { value: df, at: siteOf(src, [...path, 'dockerfile']) };
  }
  if (typeof b.dockerfile_inline === 'string') part.inline = b.dockerfile_inline;
  if (part.dockerfile && part.inline !== undefined) fail([...path, 'dockerfile_inline'], 'cannot be set together with dockerfile');
  for (const [k, val] of pairs(b.args)) if (val !== undefined) part.args.set(k, val);
  for (const [k, val] of pairs(b.labels)) {
    if (k.startsWith('berth.'))
      fail([...path, 'labels'], `the label ${k} is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`);
    else part.labels.set(k, val ?? '');
  }
  if (typeof b.target === 'string') part.target = b.target;
  for (const [key, field] of [
    ['no_cache', 'noCache'],
    ['pull', 'pull'],
  ] as const) {
    if (b[key] === undefined) continue;
    const flag = toBool(b[key]);
    if (flag === undefined) fail([...path, key], 'must be true or false');
    else part[field] = flag;
  }
  if (typeof b.network === 'string') {
    part.network = b.network;
    part.networkAt = siteOf(src, [...path, 'network']);
  }
  if (b.shm_size !== undefined) {
    const bytes = parseBytes(scalarText(b.shm_size));
    if (bytes === undefined) fail([...path, 'shm_size'], `'${scalarText(b.shm_size)}' is not a size (like 64m)`);
    else part.shmSizeBytes = bytes;
  }
  part.extraHosts = pairs(b.extra_hosts).map(([k, val]) => (val === undefined ? k : `${k}:${val}`));
  part.cacheFrom = (Array.isArray(b.cache_from) ? b.cache_from : []).map(scalarText);
  part.tags = (Array.isArray(b.tags) ? b.tags : []).map(scalarText);
  return part;
}

/** Compose's merge of two files' `build:`: set fields of the later file win, args and labels merge key by key. */
export function mergeBuild(base: BuildPart | undefined, over: BuildPart | undefined): BuildPart | undefined {
  if (!base || !over) return over ?? base;
  const set = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)));
  return {
    ...base,
    ...set,
    at: base.at,
    args: new Map([...base.args, ...over.args]),
    labels: new Map([...base.labels, ...over.labels]),
  };
}

// a CommonJS module whose types say `export default`: Node hands the function itself to a default import
const dockerignore = ignoreModule as unknown as typeof ignoreModule.default;

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const sortedRecord = (m: Map<string, string>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * The build of one service against the commit's tree: its context files (without what
 * .dockerignore excludes; the Dockerfile and .dockerignore always go), and its spec with the hash
 * of those files and options. Undefined, with errors, when the context or Dockerfile is missing.
 */
export function resolveBuild(
  part: BuildPart,
  files: ReadonlyMap<string, Uint8Array>,
  modes: ReadonlyMap<string, number> | undefined,
  errors: SourceError[],
  maxBytes = Infinity,
): { spec: BuildSpec; context: ContextFile[] } | undefined {
  const dir = part.context?.value ?? '.';
  const prefix = dir === '.' ? '' : `${dir}/`;
  const inContext = [...files.keys()].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
  if (inContext.length === 0) {
    errors.push(siteError(part.context?.at ?? part.at, `the build context '${dir}' is not a folder of the repository`));
    return undefined;
  }
  const dockerfile = part.inline !== undefined ? '.berth.Dockerfile' : (part.dockerfile?.value ?? 'Dockerfile');
  if (part.inline === undefined && !files.has(prefix + dockerfile)) {
    errors.push(siteError(part.dockerfile?.at ?? part.context?.at ?? part.at, `${prefix}${dockerfile} does not exist in the repository`));
    return undefined;
  }
  const ignoreFile = files.get(`${prefix}.dockerignore`);
  const ignore = dockerignore().add(ignoreFile ? new TextDecoder().decode(ignoreFile).split(/\r?\n/) : []);
  const keep = (p: string) => p === dockerfile || p === '.dockerignore' || !ignore.ignores(p);
  const context: ContextFile[] = inContext
    .filter(keep)
    .sort()
    .map((p) => ({ path: p, content: files.get(prefix + p) as Uint8Array, mode: modes?.get(prefix + p) ?? 0o100644 }));
  if (part.inline !== undefined) context.push({ path: dockerfile, content: new TextEncoder().encode(part.inline), mode: 0o100644 });
  const bytes = context.reduce((n, f) => n + f.content.byteLength, 0);
  if (bytes > maxBytes) {
    // every build of it would send this much to a Docker daemon
    errors.push(
      siteError(part.at, `the build context '${dir}' holds ${sizeText(bytes)}, over limits.buildContext (${sizeText(maxBytes)}) of the engine config`),
    );
    return undefined;
  }
  const options = {
    dockerfile,
    args: sortedRecord(part.args),
    target: part.target,
    labels: sortedRecord(part.labels),
    noCache: part.noCache ?? false,
    pull: part.pull ?? false,
    network: part.network,
    shmSizeBytes: part.shmSizeBytes,
    extraHosts: part.extraHosts,
    cacheFrom: part.cacheFrom,
    tags: part.tags,
  };
  const digest = createHash('sha256').update(JSON.stringify(options));
  for (const f of context) digest.update(`\0${f.path}\0${f.mode}\0${sha256(f.content)}`);
  const spec: BuildSpec = { context: dir === '.' ? '' : dir, ...options, hash: digest.digest('hex') };
  if (part.inline !== undefined) spec.inline = part.inline;
  return { spec, context };
}

/** The name berth gives what it built: the image's repository (or `<stack>-<service>`) tagged with the build's hash. */
export function builtImageRef(image: string, hash: string): string {
  return `${imageRepository(image)}:berth-${hash.slice(0, 12)}`;
}

/** `registry:5000/org/app:1.2@sha256:...` -> `registry:5000/org/app`. */
export function imageRepository(image: string): string {
  const name = image.split('@')[0];
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(0, colon) : name;
}
