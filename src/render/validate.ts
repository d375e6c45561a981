/**
 * JSON-schema validation (ajv, draft-07) with errors a person can act on: each ajv error is
 * mapped back to the YAML node at its instancePath, `oneOf` noise is reduced to the branch the
 * value was meant for, and an unknown key names the closest valid key (edit distance <= 2).
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { SourceError } from '../model.ts';
import { AJV_OPTIONS } from './ajv-options.ts';
import validateComposeSchema from './compose-schema.cjs';
import { errorAt, formatPath, siteError, siteOf, type Path, type YamlSource } from './positions.ts';

const ajv = new Ajv(AJV_OPTIONS);

/** Validates parsed data against a schema; returns located, readable errors (empty when valid). */
export type Validator = (data: unknown, src: YamlSource) => SourceError[];

/** Compiles a schema into a Validator. */
export function makeValidator(schema: object): Validator {
  return validator(ajv.compile(schema));
}

function validator(validate: ValidateFunction): Validator {
  return (data, src) => (validate(data) ? [] : readable(reduce(validate.errors ?? []), data, src));
}

/**
 * The Compose Specification's schema (compose-spec.json), compiled ahead of time into
 * compose-schema.cjs by scripts/compile-schema.ts: compiling it here would cost ~15 MB.
 */
export const validateCompose: Validator = validator(validateComposeSchema);

/**
 * Drops the branches of a failed `oneOf` that the value plainly was not meant for (those that
 * failed on its type). When every branch failed on type, they become one "must be X or Y" error.
 */
function reduce(all: ErrorObject[]): ErrorObject[] {
  let errors = [...all];
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').sort((a, b) => b.instancePath.length - a.instancePath.length);
  for (const o of oneOfs) {
    const p = o.instancePath;
    const under = errors.filter((e) => e !== o && (e.instancePath === p || e.instancePath.startsWith(`${p}/`)));
    const typeMiss = under.filter((e) => e.instancePath === p && e.keyword === 'type');
    const deeper = under.filter((e) => !typeMiss.includes(e));
    if (deeper.length > 0) {
      errors = errors.filter((e) => e !== o && !typeMiss.includes(e));
    } else {
      const types = [...new Set(typeMiss.flatMap((e) => String(e.params.type).split(',')))];
      const merged = { ...o, keyword: 'type', params: { type: types.join(',') } };
      errors = errors.filter((e) => !typeMiss.includes(e)).map((e) => (e === o ? merged : e));
    }
  }
  // "missing key X" next to "unknown key Y (did you mean X?)" says the same thing twice
  const suggested = new Set(errors.filter((e) => e.keyword === 'additionalProperties').map((e) => `${e.instancePath}\0${suggestFor(e)}`));
  return errors.filter((e) => !(e.keyword === 'required' && suggested.has(`${e.instancePath}\0${e.params.missingProperty}`)));
}

function toPath(pointer: string, data: unknown): Path {
  const path: (string | number)[] = [];
  let node = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const step = Array.isArray(node) ? Number(seg) : seg;
    path.push(step);
    node = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[step] : undefined;
  }
  return path;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true/false',
  null: 'empty',
};

function readable(errors: ErrorObject[], data: unknown, src: YamlSource): SourceError[] {
  const out: SourceError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const path = toPath(e.instancePath, data);
    const err = describe(e, path, src);
    const id = `${err.line}:${err.col}:${err.message}`;
    if (!seen.has(id)) out.push(err);
    seen.add(id);
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col);
}

function describe(e: ErrorObject, path: Path, src: YamlSource): SourceError {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const names = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      const patterns = Object.keys((e.parentSchema?.patternProperties as object | undefined) ?? {}).filter((p) => p !== '^x-');
      if (names.length === 0 && patterns.length > 0) {
        return errorAt(src, [...path, key], `'${key}' is not a valid name (it must match ${patterns[0]})`, { key: true });
      }
      const hint = suggestFor(e);
      const site = { ...siteOf(src, [...path, key], { key: true }), path: formatPath(path) };
      return siteError(site, `unknown key '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
    case 'type': {
      const types = String(params.type).split(',');
      const words = types.length === 1 && types[0] === 'boolean' ? ['true or false'] : types.map((t) => TYPE_WORDS[t] ?? t);
      const either = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : words[0];
      const quote = typeof e.data === 'number' && words.includes('a string') ? ' (put it in quotes)' : '';
      // an empty value has no node of its own: point at its key
      return errorAt(src, path, `must be ${either}${quote}`, { key: e.data === null });
    }
    case 'required':
      return errorAt(src, path, `missing required key '${String(params.missingProperty)}'`, { key: true });
    case 'enum':
      return errorAt(src, path, `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`);
    case 'uniqueItems':
      return errorAt(src, [...path, Number(params.i)], `duplicate entry (the same as entry ${Number(params.j)})`);
    default:
      return errorAt(src, path, e.message ?? 'invalid value');
  }
}

function suggestFor(e: ErrorObject): string | undefined {
  if (e.keyword !== 'additionalProperties') return undefined;
  const names = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
  return closest(String(e.params.additionalProperty), names);
}

/** The candidate within edit distance 2 of `word` (the nearest; the first on ties), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Levenshtein distance, counting a swap of two neighbours as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
