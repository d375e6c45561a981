/**
 * Which stacks a snapshot holds: as listed by `berth.yaml` at its root; without one, the Compose
 * file at the root as the one stack; without that either, one stack per folder that holds a
 * Compose file (docs/manifests.md, "Which stacks").
 */
import { posix } from 'node:path';
import { isAlias, isMap, isScalar } from 'yaml';
import type { HostSelector, SourceError, StackDef, SyncPolicy } from '../model.ts';
import { parseDotenv } from './dotenv.ts';
import { interpolate } from './interpolate.ts';
import { decode, errorAt, parseYaml, type Path } from './positions.ts';
import { makeValidator } from './validate.ts';

export const MANIFEST = 'berth.yaml';

/** Compose file names looked for in each folder, first found wins. */
export const COMPOSE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export const STACK_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const NAME_RULE = 'lower-case letters, digits, _ and -, starting with a letter or digit';

const DEFAULT_SYNC: SyncPolicy = { auto: true, prune: true, selfHeal: true };

const validateManifest = makeValidator({
  type: 'object',
  additionalProperties: false,
  required: ['stacks'],
  properties: {
    stacks: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'compose'],
        properties: {
          name: { type: 'string' },
          compose: { oneOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }] },
          hosts: {
            type: 'object',
            additionalProperties: false,
            properties: {
              labels: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
              names: { type: 'array', items: { type: 'string' } },
            },
          },
          sync: {
            type: 'object',
            additionalProperties: false,
            properties: { auto: { type: 'boolean' }, prune: { type: 'boolean' }, selfHeal: { type: 'boolean' } },
          },
          profiles: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        },
      },
    },
  },
});

interface ManifestStack {
  name: string;
  compose: string | string[];
  hosts?: { labels?: Record<string, string | number | boolean>; names?: string[] };
  sync?: Partial<SyncPolicy>;
  profiles?: string[];
}

/** How a snapshot says what its stacks are: a berth.yaml, a Compose file at the root (one stack), or one Compose file per folder. */
export type StackSource = { kind: 'manifest'; file: string } | { kind: 'root'; file: string } | { kind: 'folders' };

/** Where a snapshot's stacks come from (berth.yaml wins, then a Compose file at the root, the first of COMPOSE_NAMES). */
export function stackSource(files: ReadonlyMap<string, Uint8Array>): StackSource {
  if (files.has(MANIFEST)) return { kind: 'manifest', file: MANIFEST };
  const root = COMPOSE_NAMES.find((name) => files.has(name));
  return root ? { kind: 'root', file: root } : { kind: 'folders' };
}

/**
 * The stacks of a snapshot, or the repo-wide errors that keep any from being known. `repo`, the
 * repo's name in the engine config, names the stack of a Compose file at the root that has no
 * `name:` of its own.
 */
export function listStacks(files: ReadonlyMap<string, Uint8Array>, repo: string): { errors: SourceError[]; stacks: StackDef[] } {
  const source = stackSource(files);
  if (source.kind === 'manifest') return readManifest(files.get(MANIFEST)!, files);
  if (source.kind === 'root') return rootStack(source.file, files, repo);
  return discover(files);
}

function readManifest(bytes: Uint8Array, files: ReadonlyMap<string, Uint8Array>): { errors: SourceError[]; stacks: StackDef[] } {
  const decoded = decode(MANIFEST, bytes);
  if ('error' in decoded) return { errors: [decoded.error], stacks: [] };
  const { source, errors: syntax } = parseYaml(MANIFEST, decoded.text);
  if (syntax.length) return { errors: syntax, stacks: [] };
  const data = source.doc.toJS() as { stacks: ManifestStack[] };
  const schema = validateManifest(data, source);
  if (schema.length) return { errors: schema, stacks: [] };

  const errors: SourceError[] = [];
  const fail = (path: Path, message: string, key = false) => void errors.push(errorAt(source, path, message, { key }));
  const seen = new Set<string>();
  const stacks = data.stacks.map((s, i): StackDef => {
    if (!STACK_NAME.test(s.name)) fail(['stacks', i, 'name'], `'${s.name}' is not a valid stack name (${NAME_RULE})`);
    else if (seen.has(s.name)) fail(['stacks', i, 'name'], `stack name '${s.name}' is used twice`);
    seen.add(s.name);
    const compose = Array.isArray(s.compose) ? s.compose : [s.compose];
    const composeFiles = compose.map((file, j) => {
      const path = Array.isArray(s.compose) ? ['stacks', i, 'compose', j] : ['stacks', i, 'compose'];
      return composePath(file, path, files, fail);
    });
    const def: StackDef = { name: s.name, composeFiles, hosts: hosts(s, i, fail), sync: { ...DEFAULT_SYNC, ...s.sync } };
    if (s.profiles) def.profiles = s.profiles;
    return def;
  });
  return errors.length ? { errors, stacks: [] } : { errors, stacks };
}

function composePath(file: string, path: Path, files: ReadonlyMap<string, Uint8Array>, fail: (p: Path, m: string) => void): string {
  const normal = posix.normalize(file);
  if (file.startsWith('/') || normal === '..' || normal.startsWith('../')) {
    fail(path, `'${file}' must be a path inside the repository, relative to ${MANIFEST}`);
  } else if (!files.has(normal)) {
    fail(path, `${normal} does not exist in the repository`);
  }
  return normal;
}

function hosts(s: ManifestStack, i: number, fail: (p: Path, m: string, key?: boolean) => void): HostSelector {
  const h = s.hosts;
  if (!h) return { kind: 'all' };
  if (h.labels && h.names) fail(['stacks', i, 'hosts'], 'give either labels or names, not both');
  if (h.labels) return { kind: 'labels', labels: Object.fromEntries(Object.entries(h.labels).map(([k, v]) => [k, String(v)])) };
  if (h.names) return { kind: 'names', names: h.names };
  fail(['stacks', i, 'hosts'], 'give labels or names (or leave hosts out for all hosts)');
  return { kind: 'all' };
}

/**
 * Without berth.yaml, a Compose file at the root is the repo's one stack, as `docker compose up`
 * at the root makes one project of it (other folders' Compose files are files it may `include:`,
 * not stacks of their own). It is named as Compose names its project: by its top-level `name:`
 * (interpolated from the root's `.env`; empty counts as not set), else after the repo. Whatever
 * keeps the name from being known (the file does not parse, the name is no valid stack name) is a
 * repo-wide error: a stack named otherwise would have the stack of the last good name pruned.
 */
function rootStack(file: string, files: ReadonlyMap<string, Uint8Array>, repo: string): { errors: SourceError[]; stacks: StackDef[] } {
  const project = projectName(file, files);
  if ('errors' in project) return { errors: project.errors, stacks: [] };
  if (project.name === undefined && !STACK_NAME.test(repo)) {
    const why = `the repo's name '${repo}' does not make a valid stack name (${NAME_RULE}): give the Compose file a top-level name:, or list the stack in a ${MANIFEST}`;
    return { errors: [{ file, line: 0, col: 0, message: why }], stacks: [] };
  }
  return { errors: [], stacks: [{ name: project.name ?? repo, composeFiles: [file], hosts: { kind: 'all' }, sync: { ...DEFAULT_SYNC } }] };
}

/**
 * The top-level `name:` of a Compose file at the root, interpolated from the root's `.env` and
 * checked as a stack name; undefined when it has none (or it interpolates to nothing).
 */
export function projectName(file: string, files: ReadonlyMap<string, Uint8Array>): { name: string | undefined } | { errors: SourceError[] } {
  const decoded = decode(file, files.get(file) ?? new Uint8Array());
  if ('error' in decoded) return { errors: [decoded.error] };
  const { source, errors: syntax } = parseYaml(file, decoded.text);
  if (syntax.length) return { errors: syntax };
  const fail = (message: string) => ({ errors: [errorAt(source, ['name'], message)] });
  const top = source.doc.contents;
  const written: unknown = isMap(top) ? top.get('name', true) : undefined;
  const node = isAlias(written) ? written.resolve(source.doc) : written;
  if (node === undefined) return { name: undefined };
  if (!isScalar(node) || typeof node.value !== 'string') return fail('the project name must be a string');
  const env = node.value.includes('$') ? dotenv('.env', files) : { vars: new Map<string, string>(), errors: [] };
  if (env.errors.length) return { errors: env.errors };
  const value = interpolate(node.value, (v) => env.vars.get(v));
  if ('error' in value) return fail(value.error);
  if (value.value === '') return { name: undefined };
  if (!STACK_NAME.test(value.value)) return fail(`the project name '${value.value}' is not a valid stack name (${NAME_RULE})`);
  return { name: value.value };
}

/** A dotenv file of the snapshot (none: no variables), with its errors located in it. */
function dotenv(path: string, files: ReadonlyMap<string, Uint8Array>): { vars: Map<string, string>; errors: SourceError[] } {
  const bytes = files.get(path);
  if (!bytes) return { vars: new Map(), errors: [] };
  const decoded = decode(path, bytes);
  if ('error' in decoded) return { vars: new Map(), errors: [decoded.error] };
  const parsed = parseDotenv(decoded.text);
  return { vars: parsed.vars, errors: parsed.errors.map((e) => ({ file: path, ...e })) };
}

/**
 * Without berth.yaml or a Compose file at the root: one stack per folder holding a Compose file,
 * named after the folder (lower-cased). Hidden folders (a segment starting with ".") are skipped.
 */
function discover(files: ReadonlyMap<string, Uint8Array>): { errors: SourceError[]; stacks: StackDef[] } {
  const byFolder = new Map<string, string>();
  for (const path of [...files.keys()].sort()) {
    const dir = posix.dirname(path);
    const rank = COMPOSE_NAMES.indexOf(posix.basename(path));
    if (rank < 0 || dir.split('/').some((seg) => seg.startsWith('.') && seg !== '.')) continue;
    const current = byFolder.get(dir);
    if (current === undefined || rank < COMPOSE_NAMES.indexOf(posix.basename(current))) byFolder.set(dir, path);
  }
  const errors: SourceError[] = [];
  const stacks: StackDef[] = [];
  const folderOf = new Map<string, string>();
  for (const [dir, file] of [...byFolder].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const fail = (message: string) => errors.push({ file, line: 0, col: 0, message });
    const name = posix.basename(dir).toLowerCase();
    if (!STACK_NAME.test(name)) {
      fail(`the folder '${dir}' does not make a valid stack name (${NAME_RULE}); rename it or list the stack in a ${MANIFEST}`);
    } else if (folderOf.has(name)) {
      fail(`the folders '${folderOf.get(name)}' and '${dir}' would both be stack '${name}'; rename one or list the stacks in a ${MANIFEST}`);
    } else {
      folderOf.set(name, dir);
      stacks.push({ name, composeFiles: [file], hosts: { kind: 'all' }, sync: { ...DEFAULT_SYNC } });
    }
  }
  return errors.length ? { errors, stacks: [] } : { errors, stacks };
}
