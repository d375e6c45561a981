/**
 * YAML parsing that remembers where everything is: every error render reports carries the
 * file, line and column (1-based) of the node it is about.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, YAMLMap } from 'yaml';
import type { SourceError } from '../model.ts';

/** A path into a YAML document: map keys and sequence indexes. */
export type Path = readonly (string | number)[];

/** A parsed YAML file that can tell where any of its paths is. */
export interface YamlSource {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/** A place in a source file, with the dotted key path it names ("services.web.ports[0]"). */
export interface Site {
  file: string;
  line: number;
  col: number;
  path: string;
}

/** A value with the place it was written. */
export interface At<T> {
  value: T;
  at: Site;
}

/** Decodes UTF-8 bytes; invalid UTF-8 is an error on the whole file. */
export function decode(file: string, bytes: Uint8Array): { text: string } | { error: SourceError } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { error: { file, line: 0, col: 0, message: 'not valid UTF-8 text' } };
  }
}

/** Parses one YAML document (anchors and `<<` merge keys allowed); syntax errors come back located. */
export function parseYaml(file: string, text: string): { source: YamlSource; errors: SourceError[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, merge: true, prettyErrors: false });
  const errors = doc.errors.map((e) => ({ file, ...lineCol(lines, e.pos[0]), message: firstLine(e.message) }));
  return { source: { file, doc, lines }, errors };
}

function firstLine(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function lineCol(lines: LineCounter, offset: number): { line: number; col: number } {
  const { line, col } = lines.linePos(offset);
  return { line, col };
}

/** "services.web.ports[0]" for ['services', 'web', 'ports', 0]. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/** Where `path` is written: its value node, or its key when `key` is set; the nearest ancestor when absent. */
export function siteOf(src: YamlSource, path: Path, opts: { key?: boolean } = {}): Site {
  const node = findNode(src, path, opts.key ?? false);
  const offset = node?.range?.[0];
  const pos = offset === undefined ? { line: 0, col: 0 } : lineCol(src.lines, offset);
  return { file: src.file, ...pos, path: formatPath(path) };
}

/** A located error: "path: message" at the node `path` names. */
export function errorAt(src: YamlSource, path: Path, message: string, opts: { key?: boolean } = {}): SourceError {
  return siteError(siteOf(src, path, opts), message);
}

/** An error at a remembered site, prefixed with the site's key path. */
export function siteError(site: Site, message: string): SourceError {
  return { file: site.file, line: site.line, col: site.col, message: site.path ? `${site.path}: ${message}` : message };
}

function findNode(src: YamlSource, path: Path, wantKey: boolean): Node | undefined {
  let node = src.doc.contents as Node | null;
  let found: Node | undefined = node ?? undefined;
  for (let i = 0; i < path.length && node; i++) {
    node = resolve(src, node);
    let next: Node | undefined;
    let keyNode: Node | undefined;
    if (isMap(node)) {
      const pair = findPair(src, node, String(path[i]));
      keyNode = pair?.key;
      next = pair?.value ?? keyNode;
      if (wantKey && i === path.length - 1 && keyNode) return keyNode;
    } else if (isSeq(node) && typeof path[i] === 'number') {
      next = node.items[path[i] as number] as Node | undefined;
    }
    if (!next) break;
    found = next;
    node = next;
  }
  return found;
}

function resolve(src: YamlSource, node: Node): Node {
  return isAlias(node) ? (node.resolve(src.doc) ?? node) : node;
}

type NodePair = { key: Node; value: Node | undefined };

/** The pair for `key` in a map, looking through `<<` merge keys as YAML does. */
function findPair(src: YamlSource, map: YAMLMap, key: string): NodePair | undefined {
  const pairs = map.items as unknown as { key: Node; value: Node | null }[];
  const own = pairs.find((p) => isScalar(p.key) && typeof p.key.value !== 'symbol' && String(p.key.value) === key);
  if (own) return { key: own.key, value: own.value ?? undefined };
  for (const p of pairs) {
    // with `merge: true` the parser gives a merge key the value Symbol(<<)
    if (!isScalar(p.key) || typeof p.key.value !== 'symbol' || !p.value) continue;
    const sources = isSeq(p.value) ? (p.value.items as Node[]) : [p.value];
    for (const s of sources) {
      const target = resolve(src, s);
      const hit = isMap(target) ? findPair(src, target, key) : undefined;
      if (hit) return hit;
    }
  }
  return undefined;
}
