/**
 * Which stacks a snapshot holds: as listed by `berth.yaml` at its root, or, without one, one
 * stack per folder that holds a Compose file (docs/manifests.md, "Which stacks").
 */
import { posix } from 'node:path';
import type { HostSelector, SourceError, StackDef, SyncPolicy } from '../model.ts';
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

/** The stacks of a snapshot, or the repo-wide errors that keep any from being known. */
export function listStacks(files: ReadonlyMap<string, Uint8Array>): { errors: SourceError[]; stacks: StackDef[] } {
  const bytes = files.get(MANIFEST);
  return bytes ? readManifest(bytes, files) : discover(files);
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
 * Without berth.yaml: one stack per folder holding a Compose file, named after the folder
 * (lower-cased). Hidden folders (a segment starting with ".") are skipped. A Compose file at the
 * root has no folder name to go by and needs a berth.yaml.
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
    if (dir === '.') fail(`a Compose file at the root needs a ${MANIFEST} that names its stack`);
    else if (!STACK_NAME.test(name)) {
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
