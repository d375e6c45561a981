// The audit kinds of src/audit/kinds.ts are exactly those berth writes: every 'noun.verb' literal
// given as a `kind:` in src/ is one of them, each of them is given somewhere, and docs/api.md lists
// them all, in the same order. Read from the sources, so that a kind added or dropped in the code
// without the list (or the other way round) fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_KINDS } from '../src/audit/kinds.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/** `kind:` and what follows it up to the end of the value (a ternary's or a union type's literals included). */
const KIND_VALUE = /\bkind\s*:\s*([^,;}\n]*)/g;
/** A quoted 'noun.verb' in such a value. */
const DOTTED = /['"]([a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*)['"]/g;

/** Every 'noun.verb' literal given as a `kind:` in src/**\/*.ts, with where it is. */
function kindsInSources(): Array<{ kind: string; at: string }> {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== join('audit', 'kinds.ts'),
  );
  return files.flatMap((file) =>
    readFileSync(join(SRC, file), 'utf8')
      .split('\n')
      .flatMap((line, i) =>
        [...line.matchAll(KIND_VALUE)].flatMap((m) => [...m[1]!.matchAll(DOTTED)].map((d) => ({ kind: d[1]!, at: `src/${file}:${i + 1}` }))),
      ),
  );
}

describe('audit kinds (src/audit/kinds.ts)', () => {
  const found = kindsInSources();

  it('has no duplicates', () => {
    expect(new Set(AUDIT_KINDS).size).toBe(AUDIT_KINDS.length);
  });

  it('holds every kind src/ writes', () => {
    const known = new Set<string>(AUDIT_KINDS);
    expect(found.filter((f) => !known.has(f.kind))).toEqual([]);
  });

  it('holds no kind that src/ never writes', () => {
    const written = new Set(found.map((f) => f.kind));
    expect(AUDIT_KINDS.filter((k) => !written.has(k))).toEqual([]);
  });

  it('is the list of docs/api.md, "Audit kinds"', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
    const section = doc.split(/^### Audit kinds$/m)[1]?.split(/^#/m)[0] ?? '';
    const listed = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(listed).toEqual([...AUDIT_KINDS]);
  });
});
