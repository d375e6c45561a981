/**
 * Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a literal `$`;
 * defaults, messages and alternatives may themselves hold `${...}`.
 *
 * Variables come only from the lookup given (the stack's `.env`), never from the process
 * environment, so a commit renders the same wherever berth runs. An unset variable without a
 * default becomes "" as in Compose.
 */
import { isPair, isScalar, isSeq, visit } from 'yaml';
import type { SourceError } from '../model.ts';
import { errorAt, type Path, type YamlSource } from './positions.ts';

/** Looks a variable up; undefined when unset. */
export type Lookup = (name: string) => string | undefined;

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;
const BRACED = /^([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?+])([\s\S]*))?$/;

class InterpolationError extends Error {}

/** Interpolates one string: the result, or the reason it cannot be. */
export function interpolate(text: string, lookup: Lookup): { value: string } | { error: string } {
  try {
    return { value: expand(text, lookup) };
  } catch (e) {
    if (e instanceof InterpolationError) return { error: e.message };
    throw e;
  }
}

// The messages do not quote the value: it may be a secret.
const BAD_DOLLAR = "invalid interpolation: a '$' must start $VAR or ${VAR} (write $$ for a literal $)";
const UNCLOSED = "invalid interpolation: a '${' is never closed (write $$ for a literal $)";
const BAD_BRACES = 'invalid interpolation: use ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt} or ${VAR+alt}';

function expand(text: string, lookup: Lookup): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{') {
      const end = closingBrace(text, dollar + 2);
      if (end < 0) throw new InterpolationError(UNCLOSED);
      out += braced(text.slice(dollar + 2, end), lookup);
      i = end + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (!name) throw new InterpolationError(BAD_DOLLAR);
      out += lookup(name) ?? '';
      i = dollar + 1 + name.length;
    }
  }
  return out;
}

/** Index of the `}` closing a `${` whose body starts at `from`, allowing nested `${...}`; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '$' && (text[i + 1] === '$' || text[i + 1] === '{')) {
      if (text[i + 1] === '{') depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) {
      return i;
    }
  }
  return -1;
}

function braced(body: string, lookup: Lookup): string {
  const m = BRACED.exec(body);
  if (!m) throw new InterpolationError(BAD_BRACES);
  const [, name, op, rest = ''] = m;
  const value = lookup(name);
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case undefined:
      return value ?? '';
    case ':-':
      return nonEmpty ? value : expand(rest, lookup);
    case '-':
      return set ? value : expand(rest, lookup);
    case ':+':
      return nonEmpty ? expand(rest, lookup) : '';
    case '+':
      return set ? expand(rest, lookup) : '';
    default: {
      // ':?' and '?'
      if (op === ':?' ? nonEmpty : set) return value as string;
      const message = expand(rest, lookup);
      throw new InterpolationError(`required variable ${name} is missing a value${message ? `: ${message}` : ''}`);
    }
  }
}

/**
 * Interpolates every string value (not keys) of a parsed YAML document in place.
 * Errors point at the scalar they come from.
 */
export function interpolateDocument(src: YamlSource, lookup: Lookup): SourceError[] {
  const errors: SourceError[] = [];
  visit(src.doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const result = interpolate(node.value, lookup);
      if ('value' in result) node.value = result.value;
      else errors.push(errorAt(src, pathOf([...ancestors, node]), result.error));
    },
  });
  return errors;
}

/** The key path of a node from its ancestry as `visit` gives it. */
function pathOf(chain: readonly unknown[]): Path {
  const path: (string | number)[] = [];
  for (let i = 0; i < chain.length - 1; i++) {
    const [node, child] = [chain[i], chain[i + 1]];
    if (isPair(node) && isScalar(node.key)) path.push(String(node.key.value));
    else if (isSeq(node)) path.push(node.items.indexOf(child));
  }
  return path;
}
