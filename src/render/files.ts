/**
 * Files berth writes into containers before they start: `secrets:` and `configs:` (top-level
 * definitions and the services' references to them) and bind mounts of repo paths given relative
 * to the compose file. Read here from one file (checked, located), resolved once the stack's files
 * are merged (resolveFiles). Contents go into a map by hash; specs carry only the hash.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { FileSpec, RenderOptions, SourceError } from '../model.ts';
import { siteError, siteOf, type At, type Path, type Site, type YamlSource } from './positions.ts';
import { obj, scalarText, toBool, toInt } from './values.ts';
import { closest } from './validate.ts';

export type FileKind = 'secret' | 'config';

/** A top-level `secrets:` / `configs:` entry as one file declares it. */
export interface FileDefPart {
  key: string;
  at: Site;
  /** snapshot-relative path of `file:` */
  file?: At<string>;
  environment?: At<string>;
  /** `content:` (configs only): the text itself */
  content?: string;
  external?: boolean;
  name?: string;
}

/** A service's reference to a secret or config (short or long form). */
export interface FileRefPart {
  source: string;
  target?: string;
  uid?: number;
  gid?: number;
  mode?: number;
}

type Fail = (path: Path, message: string, key?: boolean) => void;

/** Top-level `secrets:` or `configs:` of one file. */
export function fileDefs(src: YamlSource, defs: unknown, kind: FileKind, fail: Fail): Map<string, FileDefPart> {
  const out = new Map<string, FileDefPart>();
  const top = `${kind}s`;
  const dir = posix.dirname(src.file);
  for (const [key, raw] of Object.entries(obj(defs))) {
    const d = obj(raw);
    const path: Path = [top, key];
    const part: FileDefPart = { key, at: siteOf(src, path, { key: true }) };
    const sources = ['file', 'environment', 'content', 'external'].filter((k) => d[k] !== undefined && d[k] !== false);
    if (sources.length !== 1) {
      const what = kind === 'secret' ? 'file:, environment: or external: true' : 'file:, environment:, content: or external: true';
      fail(path, sources.length === 0 ? `needs one source: ${what}` : `has ${sources.join(' and ')}: give exactly one of ${what}`, true);
    }
    if (typeof d.file === 'string') {
      const resolved = posix.normalize(posix.join(dir, d.file));
      if (d.file.startsWith('/'))
        fail(
          [...path, 'file'],
          `'${d.file}' must be a path relative to the compose file (berth reads it from the repository; for a file on the engine's machine use external: true and the repo's secrets folder)`,
        );
      else if (resolved === '..' || resolved.startsWith('../')) fail([...path, 'file'], `'${d.file}' points outside the repository`);
      else part.file = { value: resolved, at: siteOf(src, [...path, 'file']) };
    }
    if (typeof d.environment === 'string') part.environment = { value: d.environment, at: siteOf(src, [...path, 'environment']) };
    if (typeof d.content === 'string') part.content = d.content;
    if (d.external !== undefined) {
      const external = typeof d.external === 'object' ? true : toBool(d.external);
      if (external === undefined) fail([...path, 'external'], 'must be true or false');
      else part.external = external;
    }
    if (typeof d.name === 'string') part.name = d.name;
    out.set(key, part);
  }
  return out;
}

/** A service's `secrets:` or `configs:` list (each entry a name or a mapping). */
export function fileRefs(src: YamlSource, list: unknown, path: Path, fail: Fail): At<FileRefPart>[] {
  const out: At<FileRefPart>[] = [];
  (Array.isArray(list) ? list : []).forEach((item: unknown, i) => {
    const at = siteOf(src, [...path, i]);
    if (typeof item === 'string') return void out.push({ value: { source: item }, at });
    const r = obj(item);
    const ref: FileRefPart = { source: scalarText(r.source) };
    if (typeof r.target === 'string' && r.target !== '') ref.target = r.target;
    let ok = true;
    for (const id of ['uid', 'gid'] as const) {
      if (r[id] === undefined) continue;
      const n = toInt(r[id]);
      if (n !== undefined && n >= 0) ref[id] = n;
      else {
        fail([...path, i, id], `'${scalarText(r[id])}' is not a numeric ${id}`);
        ok = false;
      }
    }
    if (r.mode !== undefined) {
      const mode = fileMode(r.mode);
      if (mode !== undefined) ref.mode = mode;
      else {
        fail([...path, i, 'mode'], `'${scalarText(r.mode)}' is not a file mode (like 0440 or 0o440)`);
        ok = false;
      }
    }
    if (ok) out.push({ value: ref, at });
  });
  return out;
}

/**
 * A file mode as Compose files write it: octal. YAML reads `0440` as the number 440, so a number
 * written with the digits 0-7 only is read as octal (440 -> 0o440), as Compose does; a string may
 * be "0440" or "0o440".
 */
export function fileMode(v: unknown): number | undefined {
  const text = typeof v === 'number' && Number.isInteger(v) ? String(v) : typeof v === 'string' ? v.trim().replace(/^0o/i, '') : '';
  if (!/^[0-7]{1,4}$/.test(text)) return undefined;
  return parseInt(text, 8);
}

/** What resolving needs: the snapshot's files and modes, and the engine's sources. */
export interface FileSources {
  files: ReadonlyMap<string, Uint8Array>;
  modes?: ReadonlyMap<string, number>;
  /** absent: offline, the engine's sources are not read */
  options?: RenderOptions;
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/**
 * The files of one service: its secret and config references resolved against the stack's
 * definitions, and its relative bind mounts (`repo`) expanded to the repo's files. Contents are
 * added to `contents` by hash. Errors name the reference or the definition.
 */
export function resolveFiles(
  refs: { secret: At<FileRefPart>[]; config: At<FileRefPart>[]; repo: At<{ path: string; target: string }>[] },
  defs: { secret: Map<string, FileDefPart>; config: Map<string, FileDefPart> },
  sources: FileSources,
  contents: Map<string, Uint8Array>,
  errors: SourceError[],
): FileSpec[] {
  const out: FileSpec[] = [];
  for (const kind of ['secret', 'config'] as const) {
    for (const { value: ref, at } of refs[kind]) {
      const def = defs[kind].get(ref.source);
      if (!def) {
        const hint = closest(ref.source, [...defs[kind].keys()]);
        errors.push(siteError(at, `${kind} '${ref.source}' is not declared under the top-level ${kind}s:${hint ? ` (did you mean '${hint}'?)` : ''}`));
        continue;
      }
      const content = defContent(kind, def, sources, errors);
      if (content === undefined) continue;
      const hash = sha256(content);
      contents.set(hash, content);
      out.push({ kind, source: ref.source, target: fileTarget(kind, ref), mode: ref.mode ?? 0o444, uid: ref.uid ?? 0, gid: ref.gid ?? 0, hash });
    }
  }
  for (const { value: m, at } of refs.repo) {
    const exact = sources.files.get(m.path);
    const under = exact ? [] : [...sources.files.keys()].filter((p) => m.path === '.' || p.startsWith(`${m.path}/`)).sort();
    if (!exact && under.length === 0) {
      errors.push(
        siteError(
          at,
          `'${m.path}' is not a file or folder of the repository; berth copies repo files into the container, and keeps data in named volumes (declare one under the top-level volumes:)`,
        ),
      );
      continue;
    }
    const entries: Array<[string, string]> = exact
      ? [[m.path, m.target]]
      : under.map((p) => [p, posix.join(m.target, m.path === '.' ? p : p.slice(m.path.length + 1))]);
    for (const [path, target] of entries) {
      const mode = sources.modes?.get(path);
      if (mode === 0o120000) {
        errors.push(siteError(at, `${path} is a symbolic link: berth copies only regular files into containers`));
        continue;
      }
      const content = sources.files.get(path) as Uint8Array;
      const hash = sha256(content);
      contents.set(hash, content);
      out.push({ kind: 'file', source: path, target, mode: mode === 0o100755 ? 0o755 : 0o644, uid: 0, gid: 0, hash });
    }
  }
  return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
}

/** Where a reference lands: secrets under /run/secrets, configs under / (Compose's defaults). */
function fileTarget(kind: FileKind, ref: FileRefPart): string {
  const dir = kind === 'secret' ? '/run/secrets' : '/';
  return posix.resolve(dir, ref.target ?? ref.source);
}

/** The content of a definition; undefined (with an error) when it cannot be had. Never puts the content in a message. */
function defContent(kind: FileKind, def: FileDefPart, sources: FileSources, errors: SourceError[]): Uint8Array | undefined {
  if (def.file) {
    const bytes = sources.files.get(def.file.value);
    if (!bytes) errors.push(siteError(def.file.at, `${def.file.value} does not exist in the repository`));
    return bytes;
  }
  if (def.content !== undefined) return new TextEncoder().encode(def.content);
  if (def.environment) {
    const lookup = sources.options?.environment;
    if (!lookup) return new TextEncoder().encode(`\0unresolved environment ${def.environment.value}`); // offline validation
    const value = lookup(def.environment.value);
    if (value === undefined) {
      errors.push(
        siteError(
          def.environment.at,
          `the engine may not read '${def.environment.value}' from its environment, or it is not set: list it under the repo's secrets.environment in the engine config and set it`,
        ),
      );
      return undefined;
    }
    return new TextEncoder().encode(value);
  }
  if (def.external) {
    const name = def.name ?? def.key;
    const read = sources.options?.external;
    if (!read) return new TextEncoder().encode(`\0unresolved external ${name}`);
    const bytes = read(name);
    if (!bytes) errors.push(siteError(def.at, `external ${kind} '${name}' is not in the repo's secrets folder (secrets.dir in the engine config)`));
    return bytes;
  }
  return undefined; // the definition's own error says why
}
