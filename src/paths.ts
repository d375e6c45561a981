/**
 * Where berth's own files are: the folder it is installed in, whether it runs from its sources or
 * from the bundle (dist/berth.mjs, scripts/build.ts). Both this file and the bundle sit one folder
 * below that root, so the root is the parent of either; keep this file at the top of src/.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

/** The dashboard's static files (served as they are, no build step). */
export const DASHBOARD_DIR = join(ROOT, 'src', 'dashboard');

/** The bundled example stacks (`berth serve` with no config). */
export const EXAMPLES_DIR = join(ROOT, 'examples');

/** A file of berth's sources, by its path under src/ (for files read at run time, not imported). */
export const sourceFile = (path: string): string => join(ROOT, 'src', path);

/** berth's version (package.json). */
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
