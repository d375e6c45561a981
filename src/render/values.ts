/** Small value parsers shared by the Compose normaliser. */
import { BlockList, isIP } from 'node:net';
import { posix } from 'node:path';

/**
 * Splits a command string into words as a POSIX shell would, without expanding anything:
 * whitespace separates words, 'single quotes' are literal, "double quotes" honour \" \\ \$ \`,
 * a backslash outside quotes escapes the next character. Operators such as `&&`, `|` or `;` are
 * ordinary characters (Compose runs the words directly, not through a shell).
 * Returns undefined when a quote is never closed.
 */
export function shellSplit(text: string): string[] | undefined {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`\n'.includes(text[j + 1])) {
          if (text[j + 1] !== '\n') word += text[j + 1];
          j += 2;
        } else {
          word += text[j++];
        }
      }
      if (j >= text.length) return undefined;
      i = j;
    } else if (c === '\\') {
      if (text[i + 1] === '\n') inWord = word !== '';
      else word += text[i + 1] ?? '';
      i++;
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** A Go / Compose duration ("1m30s", "500ms", "1.5h", "0") in nanoseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_NS[m[2]];
  }
  return Math.round(total);
}

/** An integer given as a YAML number or (after interpolation) a string of digits. */
export function toInt(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^[+-]?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

/** A boolean given as YAML true/false or (after interpolation) the string "true"/"false". */
export function toBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  return undefined;
}

/** A number given as a YAML number or (after interpolation) a decimal string ("0.5", "2", ".5"). */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const BYTES = /^(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?$/i;

/**
 * A Compose byte size ("512m", "1g", "1024k", "1gb", "1.5GiB", "2048" or "2048b") in bytes, as Docker
 * reads it: units are powers of 1024, case does not matter. Undefined if malformed.
 */
export function parseBytes(text: string): number | undefined {
  const m = BYTES.exec(text.trim());
  return m ? Math.floor(Number(m[1]) * BYTE_UNITS[m[2].toLowerCase()]) : undefined;
}

/** A scalar as text: strings as they are, numbers and booleans printed, null as "". */
export function scalarText(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

/** The message for a value that is not a duration. */
export function badDuration(v: unknown): string {
  return `'${scalarText(v)}' is not a duration (like 30s, 1m30s or 500ms)`;
}

export type Obj = Record<string, unknown>;

/** `v` if it is a mapping, else an empty one (the schema has already checked the type). */
export const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/** `path` (relative to the folder of `from`) as a snapshot path; undefined when it is absolute or leaves the repository. */
export function repoPath(from: string, path: string): string | undefined {
  const resolved = normalPath(posix.join(posix.dirname(from), path));
  return path.startsWith('/') || resolved === '..' || resolved.startsWith('../') ? undefined : resolved;
}

/**
 * A snapshot path, normalised and without a trailing slash: a folder written `backend/` or
 * `./backend/` is `backend`, the root (`./`) is `.`.
 */
export function normalPath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') || '.' : normal;
}

/** A subnet in CIDR form (`10.5.0.0/16`, `fd00:5::/64`): its address, prefix length and family; undefined when it is none. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const version = isIP(m[1]);
  const prefix = Number(m[2]);
  if (version === 0 || prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address: m[1], prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether `address` lies in the subnet `cidr` (both of one family). */
export function inSubnet(address: string, cidr: string): boolean {
  const subnet = parseCidr(cidr);
  const family = isIP(address) === 4 ? 'ipv4' : isIP(address) === 6 ? 'ipv6' : undefined;
  if (!subnet || subnet.family !== family) return false;
  const list = new BlockList();
  list.addSubnet(subnet.address, subnet.prefix, subnet.family);
  return list.check(address, family);
}

/** A size as people read it: `12.5 MiB` (bytes in 1024s). */
export function sizeText(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : Math.round(v * 10) / 10} ${units[i]}`;
}
