/**
 * The dotenv format of `.env` and `env_file:` files, as Compose reads it:
 * `KEY=value` lines, an optional `export ` prefix, `#` comments (whole-line, or after
 * whitespace in an unquoted value), 'single quotes' (literal, may span lines),
 * "double quotes" (escapes \n \r \t \\ \" \$, may span lines), and `${VAR}` interpolation in
 * unquoted and double-quoted values, from keys defined earlier in the file and then from `lookup`.
 * A bare `KEY` (no `=`) would take the value from the process environment in Compose; berth
 * never reads that, so such a line sets nothing.
 */
import { interpolate, type Lookup } from './interpolate.ts';

export interface DotenvError {
  line: number;
  col: number;
  message: string;
}

const KEY_LINE = /[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*(=?)[ \t]*/y;
const REST_OF_LINE = /[ \t]*(?:#[^\n]*)?(?:\n|$)/y;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', $: '$$' };

/** Parses dotenv text into variables (in file order) and located errors. */
export function parseDotenv(input: string, lookup: Lookup = () => undefined): { vars: Map<string, string>; errors: DotenvError[] } {
  const text = input.replace(/\r\n?/g, '\n');
  const vars = new Map<string, string>();
  const errors: DotenvError[] = [];
  const where = (offset: number) => {
    const before = text.slice(0, offset).split('\n');
    return { line: before.length, col: before[before.length - 1].length + 1 };
  };
  const varLookup: Lookup = (name) => vars.get(name) ?? lookup(name);
  const skipLine = (from: number) => {
    const nl = text.indexOf('\n', from);
    return nl < 0 ? text.length : nl + 1;
  };

  let pos = 0;
  while (pos < text.length) {
    const blank = /[ \t\n]*(?:#[^\n]*)?/y;
    blank.lastIndex = pos;
    blank.exec(text);
    if (blank.lastIndex !== pos) {
      pos = blank.lastIndex;
      continue;
    }
    KEY_LINE.lastIndex = pos;
    const m = KEY_LINE.exec(text);
    if (!m) {
      errors.push({ ...where(pos), message: 'expected KEY=value' });
      pos = skipLine(pos);
      continue;
    }
    const [, key, eq] = m;
    const valueStart = KEY_LINE.lastIndex;
    let cursor = valueStart;
    let value: string | undefined;
    let expandIt = true;
    const quote = text[cursor];
    if (eq && (quote === "'" || quote === '"')) {
      const parsed = quote === "'" ? singleQuoted(text, cursor) : doubleQuoted(text, cursor);
      if (!parsed) {
        errors.push({ ...where(cursor), message: `${key}: the ${quote === "'" ? 'single' : 'double'} quote is never closed` });
        break;
      }
      [value, cursor] = parsed;
      expandIt = quote === '"';
    } else if (eq) {
      const end = skipLine(cursor);
      const raw = text.slice(cursor, end).replace(/\n$/, '');
      value = raw.replace(/(^|[ \t])#.*$/, '').trim();
      cursor = cursor + raw.length;
    }
    REST_OF_LINE.lastIndex = cursor;
    if (!REST_OF_LINE.exec(text)) {
      const junk = cursor + (/^[ \t]*/.exec(text.slice(cursor))?.[0].length ?? 0);
      errors.push(eq ? { ...where(junk), message: `${key}: unexpected text after the value` } : { ...where(pos), message: 'expected KEY=value' });
      pos = skipLine(cursor);
      continue;
    }
    const valueAt = where(valueStart);
    pos = REST_OF_LINE.lastIndex;
    if (value === undefined) continue; // bare KEY: nothing from the process environment
    if (expandIt) {
      const result = interpolate(value, varLookup);
      if ('error' in result) {
        errors.push({ ...valueAt, message: `${key}: ${result.error}` });
        continue;
      }
      value = result.value;
    }
    vars.set(key, value);
  }
  return { vars, errors };
}

function singleQuoted(text: string, start: number): [string, number] | undefined {
  const end = text.indexOf("'", start + 1);
  return end < 0 ? undefined : [text.slice(start + 1, end), end + 1];
}

/** A double-quoted value; `\$` stays escaped (as `$$`) for the interpolation that follows. */
function doubleQuoted(text: string, start: number): [string, number] | undefined {
  let out = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '"') return [out, i + 1];
    if (c === '\\' && i + 1 < text.length) {
      const e = ESCAPES[text[i + 1]];
      out += e ?? `\\${text[i + 1]}`;
      i++;
    } else {
      out += c;
    }
  }
  return undefined;
}
