/**
 * render: a snapshot of a repo (files at one commit) to the stacks it describes, fully rendered,
 * or to errors located as `file:line:col: message`. Pure: no file system, Docker or network, and
 * nothing from the process environment (interpolation reads only the stack's .env), so a commit
 * renders the same wherever berth runs; the only outside values are the secrets and configs the
 * engine hands in through `options`.
 */
import type { RenderOptions, RenderResult, Snapshot, SourceError, StackDef, StackRender, UnreadFile } from '../model.ts';
import { limitsOf, unreadError, withinRepoLimit, yamlSizeError } from './limits.ts';
import { listStacks, MANIFEST, stackSource } from './manifest.ts';
import { renderStack } from './stack.ts';

export { COMPOSE_NAMES, MANIFEST, projectName, STACK_NAME, stackSource, type StackSource } from './manifest.ts';
export { STRICT_POLICY } from './policy.ts';

/**
 * Renders every stack of a snapshot. Errors in the stack listing (berth.yaml, the name of a
 * Compose file at the root, or folder discovery) are repo-wide and leave `stacks` empty; a stack's own errors stay in its entry and
 * do not keep the other stacks from rendering. `options.policy` is what the repo may ask of the
 * hosts (default: nothing beyond an ordinary container).
 *
 * `previous`, the result of an earlier snapshot of the same repo rendered with the same options:
 * a stack whose definition is the same and whose render read the same files (each file it looked
 * at has the same bytes, or is still missing; and when it listed the repo's files, such as a build
 * context, the same file names) is taken from it as it is, without rendering again. A push that
 * changes one stack's folder renders that stack only, wherever its `include:`s and `extends:` lead.
 */
export function renderSnapshot(snapshot: Snapshot, options: RenderOptions = {}, previous?: RenderResult): RenderResult {
  const limits = limitsOf(options);
  const unread = snapshot.unread ?? new Map<string, UnreadFile>();
  // the files not read (over a limit) are listed with no content: a stack reading one is refused, the others render
  const all = unread.size ? new WithUnread(snapshot.files, unread) : snapshot.files;
  // what names the stacks (berth.yaml, or a Compose file at the root and its .env) must be read whole, or no stack is known
  const source = stackSource(all);
  const naming = source.kind === 'manifest' ? [MANIFEST] : source.kind === 'root' ? [source.file, '.env'] : [];
  for (const file of naming) {
    const u = unread.get(file);
    const tooBig = u || file === '.env' ? undefined : yamlSizeError(file, snapshot.files.get(file)?.byteLength ?? 0, limits);
    if (u || tooBig) return { errors: [u ? unreadError(file, u, limits) : tooBig!], stacks: [] };
  }
  const { errors, stacks } = listStacks(all, snapshot.repo);
  const names = stacks.map((d) => d.name);
  const before = new Map(previous?.stacks.map((s) => [s.def.name, s]));
  const paths = lazy(() => [...all.keys()].sort().join('\n'));
  const rendered = stacks.map((def): StackRender => {
    const old = before.get(def.name);
    const reads = old && readsOf.get(old);
    // a render that looked at the repo's stacks (which networks and volumes it may name) is not reused once they change
    const sameStacks = reads?.stacks === undefined || reads.stacks === names.join('\n');
    if (old && reads && sameStacks && sameDef(old.def, def) && readsAgain(reads, snapshot, paths)) return old;
    const files = new Recorder(all);
    const modes = snapshot.modes && new Recorder(snapshot.modes);
    let looked = false;
    const repoStacks = () => ((looked = true), names);
    const result = renderStack(def, { files, modes, options, stacks: repoStacks });
    const refused = [...files.read.keys()].filter((p) => unread.has(p));
    // what the render made of the files it could not read is beside the point: they are the error
    if (refused.length) return { def, ok: false, errors: refused.sort().map((p) => unreadError(p, unread.get(p)!, limits)) };
    readsOf.set(result, {
      files: files.read,
      modes: modes?.read ?? new Map(),
      names: files.listed || modes?.listed ? paths() : undefined,
      stacks: looked ? names.join('\n') : undefined,
    });
    return result;
  });
  return { errors, stacks: withinRepoLimit(rendered, options.hosts, limits) };
}

const NOTHING = new Uint8Array(0);

/** The snapshot's files, and those it did not read as present with no content. */
class WithUnread implements ReadonlyMap<string, Uint8Array> {
  readonly #files: ReadonlyMap<string, Uint8Array>;
  readonly #unread: ReadonlyMap<string, UnreadFile>;

  constructor(files: ReadonlyMap<string, Uint8Array>, unread: ReadonlyMap<string, UnreadFile>) {
    this.#files = files;
    this.#unread = unread;
  }

  get(key: string): Uint8Array | undefined {
    return this.#files.get(key) ?? (this.#unread.has(key) ? NOTHING : undefined);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    return this.#files.size + this.#unread.size;
  }

  *keys(): MapIterator<string> {
    yield* this.#files.keys();
    yield* this.#unread.keys();
  }

  *entries(): MapIterator<[string, Uint8Array]> {
    for (const key of this.keys()) yield [key, this.get(key)!];
  }

  *values(): MapIterator<Uint8Array> {
    for (const [, v] of this.entries()) yield v;
  }

  forEach(fn: (value: Uint8Array, key: string, map: ReadonlyMap<string, Uint8Array>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  [Symbol.iterator](): MapIterator<[string, Uint8Array]> {
    return this.entries();
  }
}

/** `file:line:col: message` (just `file: message` when the position is unknown). */
export function formatError(e: SourceError): string {
  return e.line > 0 ? `${e.file}:${e.line}:${e.col}: ${e.message}` : `${e.file}: ${e.message}`;
}

/** What rendering one stack read of its snapshot: the files (and modes) it looked up, and the file names when it listed them. */
interface Reads {
  files: ReadonlyMap<string, Uint8Array | undefined>;
  modes: ReadonlyMap<string, number | undefined>;
  /** every path of the snapshot, sorted and joined, when the render listed them */
  names?: string;
  /** the repo's stacks' names, joined, when the render looked at them */
  stacks?: string;
}

/** The reads behind each stack rendered (kept beside the result, not in it: results are data). */
const readsOf = new WeakMap<StackRender, Reads>();

/** Whether the snapshot gives what the earlier render read: the same bytes (or the same absence) at each path. */
function readsAgain(reads: Reads, snapshot: Snapshot, names: () => string): boolean {
  for (const [path, bytes] of reads.files) {
    const now = snapshot.files.get(path);
    if (now !== bytes && !(now && bytes && Buffer.from(now.buffer, now.byteOffset, now.byteLength).equals(bytes))) return false;
  }
  for (const [path, mode] of reads.modes) if (snapshot.modes?.get(path) !== mode) return false;
  return reads.names === undefined || reads.names === names();
}

const sameDef = (a: StackDef, b: StackDef): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A value computed on first use, then kept. */
function lazy<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

/** A read-only view of a map that records each key looked up (with what it gave) and whether its keys were listed. */
class Recorder<V> implements ReadonlyMap<string, V> {
  readonly read = new Map<string, V | undefined>();
  listed = false;
  readonly #map: ReadonlyMap<string, V>;

  constructor(map: ReadonlyMap<string, V>) {
    this.#map = map;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    this.read.set(key, v);
    return v;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    this.listed = true;
    return this.#map.size;
  }

  keys(): MapIterator<string> {
    this.listed = true;
    return this.#map.keys();
  }

  /** Every entry: each one read. */
  *entries(): MapIterator<[string, V]> {
    for (const key of this.keys()) yield [key, this.get(key) as V];
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }
}
