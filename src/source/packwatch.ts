/**
 * Follows a fetch's pack as it arrives (the upload-pack response: pkt-lines, the pack on side
 * band 1) and tells at once when an object in it is bigger than a limit. isomorphic-git holds the
 * whole pack in memory and inflates each object whole to index it, so an object over
 * limits.fetchSize is refused here, when its header comes, not after it is held (docs/config.md,
 * "Limits"). Each object's zlib stream is inflated once more here only to find where the next
 * object starts; no object bigger than the limit is inflated.
 */
import { inflateSync } from 'node:zlib';
import { deltaResultSize } from './sizes.ts';

/** An object in the pack over the limit: its size (for a delta, the size of the object it makes). */
export class PackObjectTooBig extends Error {
  readonly size: number;
  constructor(size: number) {
    super(`a fetched object of ${size} bytes`);
    this.size = size;
  }
}

const OFS_DELTA = 6;
const REF_DELTA = 7;

export class PackWatch {
  readonly #max: number;
  /** pkt-line bytes not parsed yet (less than one pkt-line) */
  #raw: Buffer = Buffer.alloc(0);
  /** pack bytes not consumed yet */
  #chunks: Buffer[] = [];
  #pending = 0;
  /** objects announced by the pack header (undefined before it), and seen so far */
  #count: number | undefined;
  #seen = 0;
  /** the current object, once its header is read: where its zlib stream starts in the pending bytes, and when to try inflating it next */
  #object: { type: number; dataAt: number; tryAt: number } | undefined;
  /** the response is not what this follows (no pkt-lines): nothing is checked */
  #off = false;
  /** no more bytes will come: every try is made */
  #final = false;

  constructor(maxObjectBytes: number) {
    this.#max = maxObjectBytes;
  }

  /** Whether every object the pack announced has been seen. */
  get done(): boolean {
    return this.#count !== undefined && this.#seen >= this.#count;
  }

  /** The response has ended: what is left is tried whole (a last object shorter than the next try). */
  end(): void {
    this.#final = true;
    while (!this.#off && this.#count !== undefined && this.#seen < this.#count && this.#step());
  }

  /** Takes the next bytes of the response; throws PackObjectTooBig when an object is over the limit. */
  push(chunk: Uint8Array): void {
    if (this.#off) return;
    let raw = this.#raw.length ? Buffer.concat([this.#raw, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (raw.length >= 4) {
      const len = parseInt(raw.subarray(0, 4).toString('latin1'), 16);
      if (!/^[0-9a-f]{4}$/i.test(raw.subarray(0, 4).toString('latin1'))) {
        this.#off = true;
        return;
      }
      if (len < 4) {
        raw = raw.subarray(4); // flush or delimiter
        continue;
      }
      if (raw.length < len) break;
      if (raw[4] === 1) this.#pack(raw.subarray(5, len));
      raw = raw.subarray(len);
    }
    this.#raw = Buffer.from(raw); // a copy: the chunk it came from is not kept
  }

  #pack(data: Buffer): void {
    if (this.#count !== undefined && this.#seen >= this.#count) return; // the trailing checksum
    this.#chunks.push(data);
    this.#pending += data.length;
    for (;;) {
      if (this.#count === undefined) {
        if (this.#pending < 12) return;
        this.#count = this.#head(12).readUInt32BE(8);
        this.#drop(12);
      }
      if (this.#seen >= this.#count || !this.#step()) return;
    }
  }

  /** Reads the next object's header, or its end; false when more bytes are needed. */
  #step(): boolean {
    if (!this.#object) {
      const buf = this.#head(32); // an object's header and its base's id or offset
      let at = 0;
      if (buf.length < 1) return false;
      let b = buf[at++];
      const type = (b >> 4) & 7;
      let size = b & 15;
      let shift = 4;
      while (b & 0x80) {
        if (at >= buf.length) return false;
        b = buf[at++];
        size += (b & 0x7f) * 2 ** shift;
        shift += 7;
      }
      if (size > this.#max) throw new PackObjectTooBig(size);
      if (type === REF_DELTA) at += 20;
      else if (type === OFS_DELTA) {
        do if (at >= buf.length) return false;
        while (buf[at++] & 0x80);
      }
      if (at > buf.length) return false;
      this.#object = { type, dataAt: at, tryAt: at + 64 };
    }
    const o = this.#object;
    // joined into one buffer only to try: tries come at twice the bytes of the last, so joining stays linear
    if (this.#pending < o.tryAt && !this.#final) return false;
    const buf = this.#flat();
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      // inflating stops where the object's zlib stream ends: the bytes after it are the next object's
      inflated = inflateSync(buf.subarray(o.dataAt), { info: true }) as unknown as typeof inflated;
    } catch {
      o.tryAt = Math.max(buf.length + 1, o.dataAt + (buf.length - o.dataAt) * 2); // cut short: again with twice as much
      return false;
    }
    if (o.type === OFS_DELTA || o.type === REF_DELTA) {
      const made = deltaResultSize(inflated.buffer) ?? 0;
      if (made > this.#max) throw new PackObjectTooBig(made);
    }
    this.#drop(o.dataAt + inflated.engine.bytesWritten);
    this.#object = undefined;
    this.#seen++;
    return true;
  }

  /** The first pending bytes, at least `n` of them when there are: the first chunks joined while shorter. */
  #head(n: number): Buffer {
    while (this.#chunks.length > 1 && this.#chunks[0].length < n) this.#chunks.splice(0, 2, Buffer.concat([this.#chunks[0], this.#chunks[1]]));
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** The pending bytes as one buffer. */
  #flat(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** Drops the first `n` pending bytes (n within the first chunk: what was read from #head or #flat). */
  #drop(n: number): void {
    this.#chunks[0] = this.#chunks[0].subarray(n);
    if (this.#chunks[0].length === 0 && this.#chunks.length > 1) this.#chunks.shift();
    this.#pending -= n;
  }
}
