/**
 * Pins: the registry digest a service's image was resolved to when a spec of it was first applied
 * (docs/how-it-works.md, "Images"), kept per spec so that later passes, and an engine that
 * restarted, create that spec's replicas from the same bits. A spec is the service as Git renders
 * it (its spec hash): a new commit that changes the service resolves its image again.
 */
import { upsert, type Db } from './db.ts';

export interface Pin {
  repo: string;
  stack: string;
  service: string;
  specHash: string;
  /** the image as written (`name:tag`) */
  image: string;
  /** `sha256:...` */
  digest: string;
  /** the commit whose pass resolved it */
  commitSha: string;
  /** when (ISO 8601) */
  time: string;
}

export class PinStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Records the digest of a spec's image (replacing an earlier one of the same spec). */
  set(p: Omit<Pin, 'time'>): void {
    this.#db
      .prepare(upsert('pins', ['repo', 'stack', 'service', 'specHash', 'image', 'digest', 'commitSha', 'time'], ['repo', 'stack', 'service', 'specHash']))
      .run(p.repo, p.stack, p.service, p.specHash, p.image, p.digest, p.commitSha, new Date().toISOString());
  }

  /** A followed image's digest whose rollout failed: berth does not roll to it again by itself. */
  refuse(repo: string, stack: string, service: string, digest: string): void {
    this.#db
      .prepare(upsert('refused_digests', ['repo', 'stack', 'service', 'digest', 'time'], ['repo', 'stack', 'service', 'digest']))
      .run(repo, stack, service, digest, new Date().toISOString());
  }

  refused(repo: string, stack: string, service: string, digest: string): boolean {
    return (
      this.#db.prepare('SELECT 1 FROM refused_digests WHERE repo = ? AND stack = ? AND service = ? AND digest = ?').get(repo, stack, service, digest) !==
      undefined
    );
  }

  /** The repo's pins, by pinKey (one query per repo and pass, not one per stack). */
  forRepo(repo: string): Map<string, Pin> {
    const rows = this.#db.prepare('SELECT * FROM pins WHERE repo = ?').all(repo) as unknown as Pin[];
    return new Map(rows.map((p) => [pinKey(p.stack, p.service, p.specHash), p]));
  }
}

export const pinKey = (stack: string, service: string, specHash: string) => `${stack} ${service} ${specHash}`;
