/**
 * Top-level `include:`: other Compose files whose services, networks and volumes join the stack.
 * Paths are relative to the including file. A service defined both by an include and by the
 * including file (or by two includes) is an error naming both places, as in Compose. The entries
 * are read here; the included models join the stack's in merge.ts (joinIncluded).
 */
import { posix } from 'node:path';
import { siteOf, type At, type Path, type YamlSource } from './positions.ts';
import { obj, repoPath } from './values.ts';

/** One `include:` entry, its paths resolved to snapshot paths. */
export interface IncludeRef {
  /** the included Compose files, merged in order */
  paths: string[];
  /** dotenv files the included files are interpolated from; default: `.env` in projectDir when it exists */
  envFiles: string[];
  /** `project_directory`; default: the folder of the first path */
  projectDir: string;
}

type Fail = (path: Path, message: string) => void;

/** The `include:` entries of one file (short string or long form). */
export function includeRefs(src: YamlSource, v: unknown, fail: Fail): At<IncludeRef>[] {
  const refs: At<IncludeRef>[] = [];
  (Array.isArray(v) ? v : []).forEach((item: unknown, i) => {
    const at: Path = ['include', i];
    const long = typeof item === 'string' ? { path: item } : obj(item);
    const resolve = (key: string, value: unknown): string[] => {
      const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
      return list.flatMap((p: unknown, j) => {
        const path = repoPath(src.file, String(p));
        if (path !== undefined) return [path];
        const where = typeof item === 'string' ? at : Array.isArray(value) ? [...at, key, j] : [...at, key];
        fail(where, `'${String(p)}' must be a path inside the repository, relative to the compose file`);
        return [];
      });
    };
    const paths = resolve('path', long.path);
    const envFiles = resolve('env_file', long.env_file);
    const [projectDir] = long.project_directory === undefined ? [] : resolve('project_directory', long.project_directory);
    if (paths.length === 0) return;
    refs.push({ value: { paths, envFiles, projectDir: projectDir ?? posix.dirname(paths[0]) }, at: siteOf(src, at) });
  });
  return refs;
}
