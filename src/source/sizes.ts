/**
 * The size of a git object without reading it: from the header of a loose object (the first
 * bytes of its file, inflated), or from a pack (the index gives the object's offset; the pack's
 * object header there gives the size, and for a delta, the start of the delta gives the size it
 * makes). isomorphic-git has no such call: its readObject reads a loose object's whole file and a
 * pack's whole file before it can tell a size. A snapshot asks this before reading a blob, so a
 * file over limits.blobSize is never held in memory (docs/config.md, "Limits").
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, inflateSync } from 'node:zlib';

/** A parsed version 2 pack index: its object ids (sorted, as one buffer) and their offsets in the pack. */
interface PackIndex {
  pack: string;
  count: number;
  oids: Buffer;
  offsets: (i: number) => number;
}

/** Object sizes in one git dir; pack indexes are read once per instance (one snapshot). */
export class ObjectSizes {
  readonly #gitdir: string;
  #packs: Promise<PackIndex[]> | undefined;

  constructor(gitdir: string) {
    this.#gitdir = gitdir;
  }

  /** The object's size in bytes (its content, without git's header); undefined when it cannot be told (not found, an unknown format). */
  async size(oid: string): Promise<number | undefined> {
    const loose = await this.#loose(oid);
    if (loose !== undefined) return loose;
    const want = Buffer.from(oid, 'hex');
    for (const idx of await (this.#packs ??= this.#readPacks())) {
      const i = find(idx, want);
      if (i >= 0) return packedSize(idx.pack, idx.offsets(i));
    }
    return undefined;
  }

  async #loose(oid: string): Promise<number | undefined> {
    let file;
    try {
      file = await open(join(this.#gitdir, 'objects', oid.slice(0, 2), oid.slice(2)), 'r');
    } catch {
      return undefined;
    }
    try {
      // "blob 1234\0" deflated: the first bytes of the file carry it (a dynamic Huffman block's tables may come first)
      for (const want of [512, 4096]) {
        const { buffer, bytesRead } = await file.read(Buffer.alloc(want), 0, want, 0);
        const head = inflateStart(buffer.subarray(0, bytesRead));
        const nul = head?.indexOf(0) ?? -1;
        if (head && nul > 0) {
          const m = /^[a-z]+ (\d+)$/.exec(head.subarray(0, nul).toString('latin1'));
          return m ? Number(m[1]) : undefined;
        }
        if (bytesRead < want) return undefined;
      }
      return undefined;
    } finally {
      await file.close();
    }
  }

  async #readPacks(): Promise<PackIndex[]> {
    const dir = join(this.#gitdir, 'objects', 'pack');
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: PackIndex[] = [];
    for (const name of names.filter((n) => n.endsWith('.idx')).sort()) {
      const idx = parseIndex(await readFile(join(dir, name)), join(dir, name.slice(0, -'.idx'.length) + '.pack'));
      if (idx) out.push(idx);
    }
    return out;
  }
}

/** What inflating the start of a zlib stream gives (undefined when it cannot be inflated). */
function inflateStart(bytes: Buffer): Buffer | undefined {
  try {
    // Z_SYNC_FLUSH: a stream cut short gives what it has instead of an error
    return inflateSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return undefined;
  }
}

function parseIndex(idx: Buffer, pack: string): PackIndex | undefined {
  if (idx.byteLength < 8 + 1024 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) return undefined;
  const count = idx.readUInt32BE(8 + 255 * 4);
  const oidsAt = 8 + 1024;
  const offsetsAt = oidsAt + count * 20 + count * 4; // after the oids and their CRCs
  const largeAt = offsetsAt + count * 4;
  return {
    pack,
    count,
    oids: idx.subarray(oidsAt, oidsAt + count * 20),
    offsets: (i) => {
      const o = idx.readUInt32BE(offsetsAt + i * 4);
      // the high bit set: an index into the table of 8-byte offsets (packs over 2 GiB)
      return o & 0x80000000 ? Number(idx.readBigUInt64BE(largeAt + (o & 0x7fffffff) * 8)) : o;
    },
  };
}

/** The position of `oid` in the index (binary search over its sorted ids), -1 when absent. */
function find(idx: PackIndex, oid: Buffer): number {
  let lo = 0;
  let hi = idx.count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = idx.oids.compare(oid, 0, 20, mid * 20, mid * 20 + 20);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

const OFS_DELTA = 6;
const REF_DELTA = 7;

/** The size of the object at `offset` in a pack: from its header, or for a delta, the size the delta makes. */
async function packedSize(pack: string, offset: number): Promise<number | undefined> {
  const file = await open(pack, 'r');
  try {
    // enough for the header, a base's id and the start of a delta; inflated, at most ~1032 times as much (zlib's ratio)
    const { buffer, bytesRead } = await file.read(Buffer.alloc(1024), 0, 1024, offset);
    const bytes = buffer.subarray(0, bytesRead);
    let at = 0;
    let b = bytes[at++];
    const type = (b >> 4) & 7;
    let size = b & 15;
    let shift = 4;
    while (b & 0x80 && at < bytes.length) {
      b = bytes[at++];
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    if (type !== OFS_DELTA && type !== REF_DELTA) return size;
    if (type === REF_DELTA) at += 20;
    else while (at < bytes.length && bytes[at++] & 0x80); // the base's offset, a varint
    // a delta starts with the base's size and the result's size, as varints
    const delta = inflateStart(bytes.subarray(at));
    if (!delta) return undefined;
    return deltaResultSize(delta);
  } finally {
    await file.close();
  }
}

/**
 * The size of the object a delta makes: the second of the two varints it starts with (the first
 * is its base's size); undefined when the bytes end before it.
 */
export function deltaResultSize(delta: Uint8Array): number | undefined {
  let i = 0;
  const varint = (): number | undefined => {
    let n = 0;
    let shift = 0;
    let c: number | undefined;
    do {
      c = delta[i++];
      if (c === undefined) return undefined;
      n += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return n;
  };
  return varint() === undefined ? undefined : varint();
}
