/**
 * source: a watched repo's branch, fetched with isomorphic-git (step 1 of docs/how-it-works.md).
 * Remote repos (http/https) are fetched into a bare cache repo; local repos (a path or file://
 * URL) are read in place.
 */
import fs from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import https from 'node:https';
import tls from 'node:tls';
import { deflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import type { AuthCallback, FetchResult, HttpClient, TreeEntry } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import { INPUT_LIMITS, type CommitInfo, type InputLimits, type Snapshot, type UnreadFile } from '../model.ts';
import { PackObjectTooBig, PackWatch } from './packwatch.ts';
import { ObjectSizes } from './sizes.ts';

/** A repo as configured: where it lives, which branch, which folder of it. */
export interface RepoRef {
  name: string;
  url: string;
  branch: string;
  /** folder inside the repo ("deploy" or "deploy/"); absent: the whole repo */
  path?: string;
  token?: string;
  username?: string;
  /** how long one HTTP request (a ref look-up, a whole fetch) may take; default 120 s */
  timeoutMs?: number;
  /** PEM certificate(s) to trust for an https:// server, besides the system's (a forge with a private CA) */
  ca?: string | Buffer;
}

/** A repo that cannot be read: the message names the repo, its URL (no credentials) and the branch; never the token. */
export class SourceError extends Error {
  override name = 'SourceError';
  /** the engine limit that refused it, when one did */
  readonly limit?: keyof InputLimits;
  constructor(message: string, limit?: keyof InputLimits) {
    super(message);
    if (limit) this.limit = limit;
  }
}

/**
 * A ref or commit the remote (or the local repo) does not have: `berth plan --ref`, the plan API
 * and a pull request's head answer it with the code `unknown-ref` (docs/api.md, "Errors").
 */
export class UnknownRefError extends SourceError {
  override name = 'UnknownRefError';
}

/** What fetchRef takes: a full ref (refs/pull/7/head), a branch or tag name, or a commit SHA (a prefix of 4 or more hex characters). */
const REF_FORM = /^(?!.*\.\.)(?!\/)[\w./@+-]{1,250}$/;

/** The limits a source applies (docs/config.md, "Limits"). */
export type SourceLimits = Pick<InputLimits, 'blobSize' | 'snapshotSize' | 'fetchSize'>;

/** `url` without user name, password or token. */
export function stripCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

/** One repo's branch: looks up, fetches and reads its commits. */
export class GitSource {
  readonly repo: RepoRef;
  readonly #remote: boolean;
  /** isomorphic-git's node client, with every request bounded in time: a server that never answers cannot hold a repo's passes forever */
  readonly #http: HttpClient;
  /** the git dir read from: the cache (remote repos) or the repo itself (local ones) */
  #gitdir: string | undefined;
  readonly #cacheDir: string;
  /** update() calls run one at a time, so two never fetch into the cache together */
  #updating: Promise<unknown> = Promise.resolve();
  /** trees and blobs that earlier snapshots read, by oid: a new commit reads only what it changed */
  readonly #objects: ObjectCache;
  readonly #limits: SourceLimits;
  /** why the fetch under way was cut (isomorphic-git may fail with the dropped connection's error instead) */
  #refusal: SourceError | undefined;

  /**
   * `objectCacheBytes`: how much of what snapshots read is kept for the next ones (default 16 MiB);
   * `limits`: how big a file, a snapshot and a fetch may be (default INPUT_LIMITS').
   */
  constructor(
    repo: RepoRef,
    cacheDir: string,
    { objectCacheBytes = 16 << 20, limits = {} }: { objectCacheBytes?: number; limits?: Partial<SourceLimits> } = {},
  ) {
    this.repo = repo;
    this.#cacheDir = cacheDir;
    this.#objects = new ObjectCache(objectCacheBytes);
    this.#limits = {
      blobSize: limits.blobSize ?? INPUT_LIMITS.blobSize,
      snapshotSize: limits.snapshotSize ?? INPUT_LIMITS.snapshotSize,
      fetchSize: limits.fetchSize ?? INPUT_LIMITS.fetchSize,
    };
    this.#remote = /^https?:\/\//i.test(repo.url);
    const timeout = repo.timeoutMs ?? 120_000;
    const agent = repo.ca ? new https.Agent({ ca: [...tls.rootCertificates, repo.ca.toString()] }) : undefined;
    this.#http = {
      request: async (req) => {
        const res = await nodeHttp.request({
          ...req,
          agent: req.agent ?? agent,
          signal: req.signal ?? AbortSignal.timeout(timeout),
          // the socket's idle timeout, which Node's global agent sets to 5 s (4 s on a socket
          // reused after a "Keep-Alive: timeout=5" answer) and which ends the request when it
          // fires: git sends nothing while it compresses a big object before the pack, so a
          // response may be silent that long; the whole request is bounded by the signal above
          // (docs/benchmarks.md, "Bounded input")
          fetchOptions: { ...req.fetchOptions, timeout },
        });
        // a fetch's pack: isomorphic-git holds all of it in memory (to write it and to index it), so it is bounded as it comes
        return req.method === 'POST' && /\/git-upload-pack$/.test(new URL(req.url).pathname) && res.body ? { ...res, body: this.#bounded(res.body) } : res;
      },
    };
  }

  /** Runs a PackWatch step, its refusal as a SourceError. */
  #watch(step: () => void): void {
    try {
      step();
    } catch (err) {
      if (!(err instanceof PackObjectTooBig)) throw err;
      const max = this.#limits.fetchSize;
      throw (this.#refusal = this.#error(
        `the fetch brings one object of ${mib(err.size)}, over limits.fetchSize (${mib(max)}): refused before it is held in memory`,
        'fetchSize',
      ));
    }
  }

  /**
   * The body, cut with a SourceError once it passes limits.fetchSize, or as soon as the pack in it
   * announces one object bigger than that (isomorphic-git would hold it whole before the fetch
   * could end), before its bytes come.
   */
  async *#bounded(body: AsyncIterableIterator<Uint8Array>): AsyncIterableIterator<Uint8Array> {
    const max = this.#limits.fetchSize;
    const watch = new PackWatch(max);
    let bytes = 0;
    try {
      for await (const chunk of body) {
        bytes += chunk.byteLength;
        if (bytes > max) {
          throw (this.#refusal = this.#error(
            `the fetch received more than limits.fetchSize (${mib(max)}) from the remote: refused before more is held in memory`,
            'fetchSize',
          ));
        }
        this.#watch(() => watch.push(chunk));
        yield chunk;
      }
      this.#watch(() => watch.end());
    } finally {
      // the response is not read further: its connection is dropped (which may end it with an
      // "aborted" error: the refusal above, not that, is what the fetch fails with)
      try {
        await body.return?.();
      } catch {
        // dropped
      }
    }
  }

  /** One ref look-up on the remote (or the local repo): the branch's head SHA. */
  async remoteHead(): Promise<string> {
    const ref = `refs/heads/${this.repo.branch}`;
    if (!this.#remote) {
      const gitdir = await this.#localGitdir();
      const oid = await this.#wrap(() =>
        git.resolveRef({ fs, gitdir, ref }).catch((err: unknown) => ((err as { code?: string }).code === 'NotFoundError' ? undefined : Promise.reject(err))),
      );
      if (!oid) throw await this.#branchNotFound();
      return oid;
    }
    const refs = await this.#wrap(() =>
      // Protocol v1: the look-up is one GET of info/refs (v2 would add a POST to upload-pack).
      git.listServerRefs({ http: this.#http, url: this.repo.url, ...this.#auth(), protocolVersion: 1, prefix: ref }),
    );
    const head = refs.find((r) => r.ref === ref);
    if (!head) throw await this.#branchNotFound();
    return head.oid;
  }

  /** The error for a branch that does not exist, naming those that do (a plain `git init` still makes `master`). */
  async #branchNotFound(): Promise<SourceError> {
    const where = this.#remote ? 'the remote' : 'the repo';
    let names: string[] | undefined;
    try {
      names = this.#remote
        ? (await git.listServerRefs({ http: this.#http, url: this.repo.url, ...this.#auth(), protocolVersion: 1, prefix: 'refs/heads/' })).map((r) =>
            r.ref.slice('refs/heads/'.length),
          )
        : await git.listBranches({ fs, gitdir: await this.#localGitdir() });
    } catch {
      // the branches cannot be listed: the error says what it can
    }
    const has = names === undefined ? '' : names.length ? `; ${where} has: ${names.sort().join(', ')}` : `; ${where} has no branch yet`;
    return this.#error(`branch ${this.repo.branch} not found${has}`);
  }

  /**
   * Makes sure the branch head is available locally and returns its commit. Costs one ref look-up,
   * plus a fetch only when the head is new; with `moved` (a push said so), the fetch alone.
   */
  update({ moved = false }: { moved?: boolean } = {}): Promise<CommitInfo> {
    const run = this.#updating.then(() => this.#update(moved));
    this.#updating = run.catch(() => {});
    return run;
  }

  async #update(moved: boolean): Promise<CommitInfo> {
    // A branch known to have moved (a push) is fetched at once: the fetch looks the ref up itself.
    const head = moved && this.#remote ? undefined : await this.remoteHead();
    if (!this.#remote) return this.commit(head!);
    const gitdir = await this.#cache();
    let oid: string;
    if (head && (await hasCommit(gitdir, head))) oid = head;
    else {
      const res = await this.#fetchOne(gitdir, this.repo.branch);
      if (!res.fetchHead) throw await this.#branchNotFound();
      oid = res.fetchHead; // the branch may have moved since the look-up: what was fetched wins
    }
    await git.writeRef({ fs, gitdir, ref: `refs/heads/${this.repo.branch}`, value: oid, force: true });
    return this.commit(oid);
  }

  /**
   * Fetches one ref (`refs/pull/7/head`, `refs/merge-requests/7/head`, a branch or tag name) or one
   * commit (a SHA, or a prefix of one that an advertised ref points at) into the cache, and returns
   * its commit, for snapshot() to read. The branch the repo tracks is left as it is: nothing writes
   * `refs/heads/<branch>` here, so the next pass reads the branch head as before. What the remote
   * (a local repo: the repo) does not have is an UnknownRefError.
   */
  fetchRef(ref: string): Promise<CommitInfo> {
    const run = this.#updating.then(() => this.#fetchRef(ref.trim()));
    this.#updating = run.catch(() => {});
    return run;
  }

  async #fetchRef(ref: string): Promise<CommitInfo> {
    if (!REF_FORM.test(ref)) throw this.#unknownRef(`"${ref.slice(0, 80)}" is neither a ref name nor a commit SHA`);
    const sha = /^[0-9a-f]{4,40}$/i.test(ref) ? ref.toLowerCase() : undefined;
    const names = ref.startsWith('refs/') ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
    if (!this.#remote) return this.#localRef(ref, sha, names);
    const gitdir = await this.#cache();
    if (sha?.length === 40 && (await hasCommit(gitdir, sha))) return this.commit(sha);
    const advertised = await this.#wrap(() =>
      git.listServerRefs({ http: this.#http, url: this.repo.url, ...this.#auth(), protocolVersion: 1, peelTags: true }),
    );
    const target = (r: { oid: string; peeled?: string }) => r.peeled ?? r.oid;
    // a SHA: fetched by a ref that points at it (a server need not serve commits by SHA); a name: that ref
    const found = sha ? advertised.filter((r) => target(r).startsWith(sha)) : names.flatMap((n) => advertised.filter((r) => r.ref === n)).slice(0, 1);
    const oids = new Set(found.map(target));
    if (oids.size > 1) throw this.#unknownRef(`${ref} names more than one commit: give more of the SHA`);
    const [hit] = found;
    if (hit) {
      if (!(await hasCommit(gitdir, target(hit)))) await this.#fetchOne(gitdir, hit.ref);
      if (!(await hasCommit(gitdir, target(hit)))) throw this.#unknownRef(`the fetch of ${hit.ref} did not bring commit ${target(hit).slice(0, 12)}`);
      return this.commit(target(hit));
    }
    if (sha?.length !== 40) throw this.#unknownRef(`no ref or commit ${ref} on the remote`);
    // a commit no ref points at: asked for by its SHA, which GitHub and GitLab serve and a plain git server may refuse
    try {
      await this.#fetchOne(gitdir, sha, false);
    } catch (err) {
      if (this.#refusal) throw this.#refusal;
      // the server unreachable or refusing the credentials is said as such; anything else is its refusal of the SHA
      const code = (err as { code?: string }).code ?? '';
      if (code === 'HttpError' || /^E[A-Z]+$/.test(code) || ['TimeoutError', 'AbortError'].includes((err as Error).name)) throw this.#translate(err);
    }
    if (!(await hasCommit(gitdir, sha))) throw this.#unknownRef(`no commit ${sha} on the remote (no ref points at it, and it cannot be fetched by its SHA)`);
    return this.commit(sha);
  }

  /** fetchRef of a local repo: the ref or commit as the repo has it. */
  async #localRef(ref: string, sha: string | undefined, names: string[]): Promise<CommitInfo> {
    const gitdir = await this.#localGitdir();
    let oid: string | undefined;
    if (sha) oid = await git.expandOid({ fs, gitdir, oid: sha }).catch(() => undefined);
    for (const name of oid ? [] : names) {
      oid = await git.resolveRef({ fs, gitdir, ref: name }).catch(() => undefined);
      if (oid) break;
    }
    if (!oid) throw this.#unknownRef(`no ref or commit ${ref} in the repo`);
    // an annotated tag names its commit through the tag object
    const tagged = await git.readTag({ fs, gitdir, oid }).then(
      (t) => t.tag.object,
      () => undefined,
    );
    return this.commit(tagged ?? oid);
  }

  /**
   * Fetches one remote ref (the tracked branch, another ref, or a SHA) into the cache; a ref that is
   * not a branch is written nowhere. Small packs are loosened. `translate: false` leaves
   * isomorphic-git's error as it is.
   */
  async #fetchOne(gitdir: string, remoteRef: string, translate = true): Promise<FetchResult> {
    const packs = await packNames(gitdir);
    this.#refusal = undefined;
    const fetch = () =>
      git.fetch({
        fs,
        http: this.#http,
        gitdir,
        url: this.repo.url,
        // the tracked branch's head (when fetched before) is what the cache has: the pack brings only the rest
        ref: this.repo.branch,
        remoteRef,
        singleBranch: true,
        tags: false,
        ...this.#auth(),
      });
    const res = await (translate ? this.#wrap(fetch) : fetch());
    for (const pack of await packNames(gitdir)) if (!packs.has(pack)) await loosen(gitdir, pack);
    return res;
  }

  #unknownRef(problem: string): UnknownRefError {
    return new UnknownRefError(`repo ${this.repo.name} (${stripCredentials(this.repo.url)}): ${problem}`);
  }

  /** The commit's metadata; `sha` may be abbreviated. */
  async commit(sha: string): Promise<CommitInfo> {
    const gitdir = await this.#dir();
    const oid = await this.#expand(gitdir, sha);
    const { commit } = await this.#wrap(() => git.readCommit({ fs, gitdir, oid }), `commit ${sha} not found`);
    return toCommitInfo(oid, commit);
  }

  /**
   * The files under the repo's `path` (or the root) at that commit, keys relative to that folder.
   * Trees and blobs already read by an earlier snapshot (the same oid) are not read again.
   */
  async snapshot(sha: string): Promise<Snapshot> {
    const gitdir = await this.#dir();
    const oid = await this.#expand(gitdir, sha);
    const commit = await this.commit(oid);
    const folder = (this.repo.path ?? '').replace(/^\.?\/+|\/+$/g, '');
    const cache = {}; // isomorphic-git's: each pack file is indexed and read once per snapshot, not once per object
    let tree: string;
    try {
      tree = (await git.readTree({ fs, gitdir, oid, filepath: folder || undefined, cache })).oid;
    } catch (err) {
      if (['NotFoundError', 'ObjectTypeError'].includes((err as { code?: string }).code ?? '')) {
        throw this.#error(`folder "${folder}" does not exist at commit ${oid.slice(0, 12)}`);
      }
      throw this.#error(`cannot read commit ${oid.slice(0, 12)}: ${this.#redact(err)}`);
    }
    const files = new Map<string, Uint8Array>();
    const modes = new Map<string, number>();
    const blobs: { path: string; oid: string }[] = [];
    const walk = async (treeOid: string, prefix: string): Promise<void> => {
      const entries = await this.#objects.read(treeOid, async () => (await git.readTree({ fs, gitdir, oid: treeOid, cache })).tree);
      await Promise.all(
        entries.map(async (e) => {
          const path = prefix + e.path;
          if (e.type === 'tree') return walk(e.oid, `${path}/`);
          if (e.type !== 'blob') return; // type 'commit' is a submodule: its files are not in this repo
          blobs.push({ path, oid: e.oid });
          const mode = parseInt(e.mode, 8);
          if (mode !== 0o100644) modes.set(path, mode);
        }),
      );
    };
    await walk(tree, '');
    // Each blob's size first, from the object's header (nothing of a big file is read); then the
    // files are read smallest first while the snapshot stays within limits.snapshotSize. What is
    // not read is listed as unread: render refuses a stack that needs it (docs/config.md, "Limits").
    const sizes = new ObjectSizes(gitdir);
    const sized = await Promise.all(blobs.map(async (b) => ({ ...b, size: this.#objects.size(b.oid) ?? (await sizes.size(b.oid)) })));
    sized.sort((a, b) => (a.size ?? Infinity) - (b.size ?? Infinity) || (a.path < b.path ? -1 : 1));
    const { blobSize, snapshotSize } = this.#limits;
    const unread = new Map<string, UnreadFile>();
    const toRead: typeof sized = [];
    let total = 0;
    for (const b of sized) {
      if (b.size !== undefined && b.size > blobSize) unread.set(b.path, { size: b.size, limit: 'blobSize' });
      else if (b.size !== undefined && total + b.size > snapshotSize) unread.set(b.path, { size: b.size, limit: 'snapshotSize' });
      else {
        total += b.size ?? 0;
        toRead.push(b);
      }
    }
    await Promise.all(
      toRead.map(async ({ path, oid, size }) => {
        const blob = await this.#objects.read(oid, async () => (await git.readBlob({ fs, gitdir, oid, cache })).blob);
        // a size the header could not tell is known now: over the limit, the content is dropped at once
        if (size === undefined && blob.byteLength > blobSize) unread.set(path, { size: blob.byteLength, limit: 'blobSize' });
        else files.set(path, blob);
      }),
    );
    return { repo: this.repo.name, commit, files, modes, ...(unread.size ? { unread } : {}) };
  }

  /** Commits on the branch, newest first (as last fetched by update() for a remote repo). */
  async history(limit?: number): Promise<CommitInfo[]> {
    const gitdir = await this.#dir();
    const ref = `refs/heads/${this.repo.branch}`;
    if (
      this.#remote &&
      !(await git.resolveRef({ fs, gitdir, ref }).then(
        () => true,
        () => false,
      ))
    )
      await this.update();
    const log = await this.#wrap(() => git.log({ fs, gitdir, ref, depth: limit }));
    return log.map((e) => toCommitInfo(e.oid, e.commit));
  }

  /** The token as Basic auth: sent up front (one request per look-up, not a 401 and a retry), and as onAuth. */
  #auth(): { headers: Record<string, string>; onAuth?: AuthCallback } {
    const { token, username = 'oauth2' } = this.repo;
    if (token === undefined) return { headers: {} };
    const basic = Buffer.from(`${username}:${token}`).toString('base64');
    return { headers: { Authorization: `Basic ${basic}` }, onAuth: () => ({ username, password: token }) };
  }

  #dir(): Promise<string> {
    return this.#remote ? this.#cache() : this.#localGitdir();
  }

  async #cache(): Promise<string> {
    if (!this.#gitdir) {
      await git.init({ fs, dir: this.#cacheDir, bare: true, defaultBranch: this.repo.branch });
      // fetch needs the remote's refspec; the URL is passed on each fetch, the one on disk carries no credentials
      const url = stripCredentials(this.repo.url);
      await git.addRemote({ fs, gitdir: this.#cacheDir, remote: 'origin', url, force: true });
      this.#gitdir = this.#cacheDir;
    }
    return this.#gitdir;
  }

  /** The git dir of a local repo: `<path>/.git` for a work tree, the path itself for a bare repo. */
  async #localGitdir(): Promise<string> {
    if (this.#gitdir) return this.#gitdir;
    const path = resolve(this.repo.url.startsWith('file:') ? fileURLToPath(this.repo.url) : this.repo.url);
    const isDir = (p: string) =>
      stat(p).then(
        (s) => s.isDirectory(),
        () => false,
      );
    for (const gitdir of [join(path, '.git'), path]) {
      if ((await isDir(join(gitdir, 'objects'))) && (await isDir(join(gitdir, 'refs')))) return (this.#gitdir = gitdir);
    }
    throw this.#error((await isDir(path)) ? 'not a git repository' : 'no such directory');
  }

  async #expand(gitdir: string, sha: string): Promise<string> {
    if (/^[0-9a-f]{40}$/i.test(sha)) return sha.toLowerCase();
    if (!/^[0-9a-f]{4,39}$/i.test(sha)) throw this.#error(`"${sha}" is not a commit SHA`);
    return this.#wrap(() => git.expandOid({ fs, gitdir, oid: sha }), `commit ${sha} not found`);
  }

  /** Runs an isomorphic-git call, turning its errors into SourceErrors (`notFound`: the message for a NotFoundError). */
  async #wrap<T>(fn: () => Promise<T>, notFound?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#refusal ?? this.#translate(err, notFound);
    }
  }

  #translate(err: unknown, notFound?: string): SourceError {
    if (err instanceof SourceError) return err;
    const e = err as { code?: string; data?: { statusCode?: number } };
    const status = e.data?.statusCode;
    if (e.code === 'HttpError' && (status === 401 || status === 403)) {
      const hint = this.repo.token === undefined ? 'the server wants credentials, set a token for it' : 'check its token';
      return new SourceError(`authentication failed for repo ${this.repo.name} (${stripCredentials(this.repo.url)}): ${hint}`);
    }
    if (e.code === 'HttpError' && status === 404) return this.#error('repository not found on the server (HTTP 404)');
    if (e.code === 'NotFoundError') return this.#error(notFound ?? this.#redact(err));
    if (['TimeoutError', 'AbortError'].includes((err as Error).name))
      return this.#error(`the server did not answer within ${(this.repo.timeoutMs ?? 120_000) / 1000} s`);
    const sys = (err as NodeJS.ErrnoException).code;
    if (sys && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH)$/.test(sys)) {
      return this.#error(`cannot reach the server: ${this.#redact(err)}`);
    }
    return this.#error(this.#redact(err));
  }

  #error(problem: string, limit?: keyof InputLimits): SourceError {
    const { name, url, branch } = this.repo;
    return new SourceError(`repo ${name} (${stripCredentials(url)}, branch ${branch}): ${problem}`, limit);
  }

  /** The error's message with credentials and the token taken out. */
  #redact(err: unknown): string {
    let msg = err instanceof Error ? err.message : String(err);
    msg = msg.replace(/\b(https?:\/\/)[^/\s@]*@/gi, '$1');
    if (this.repo.token) msg = msg.split(this.repo.token).join('***');
    return msg;
  }
}

/**
 * Git objects by oid (an oid names one content forever), least recently used dropped once their
 * size passes the budget. Trees are kept as their entries, blobs as their bytes (shared with the
 * snapshots, which only read them).
 */
class ObjectCache {
  readonly #max: number;
  #bytes = 0;
  readonly #entries = new Map<string, { value: TreeEntry[] | Uint8Array; size: number }>();

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /** The size of a blob held, without touching its place in the order; undefined when not held. */
  size(oid: string): number | undefined {
    const hit = this.#entries.get(oid)?.value;
    return hit instanceof Uint8Array ? hit.byteLength : undefined;
  }

  /** The object `oid`: from the cache, or by `load` (then kept). */
  async read<T extends TreeEntry[] | Uint8Array>(oid: string, load: () => Promise<T>): Promise<T> {
    const hit = this.#entries.get(oid);
    if (hit) {
      this.#entries.delete(oid); // most recently used last
      this.#entries.set(oid, hit);
      return hit.value as T;
    }
    const value = await load();
    const size = value instanceof Uint8Array ? value.byteLength : value.reduce((n, e) => n + e.path.length + 100, 0);
    if (size <= this.#max && !this.#entries.has(oid)) {
      this.#entries.set(oid, { value, size });
      this.#bytes += size;
      for (const [old, e] of this.#entries) {
        if (this.#bytes <= this.#max) break;
        this.#entries.delete(old);
        this.#bytes -= e.size;
      }
    }
    return value;
  }
}

const mib = (bytes: number) => `${Math.round((bytes / (1 << 20)) * 10) / 10} MiB`;

function toCommitInfo(sha: string, c: { author: { name: string; email: string; timestamp: number }; message: string }): CommitInfo {
  return { sha, author: c.author.name, email: c.author.email, message: c.message.replace(/\n+$/, ''), time: c.author.timestamp };
}

/** The pack files of a git dir, by name without the extension. */
async function packNames(gitdir: string): Promise<Set<string>> {
  const names = await readdir(join(gitdir, 'objects', 'pack')).catch(() => [] as string[]);
  return new Set(names.filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -'.idx'.length)));
}

/** Packs of more objects than this stay packs (a first clone, a big push); smaller ones are loosened. */
const LOOSEN_MAX = 1000;

/**
 * Writes a small fetched pack's objects as loose objects and deletes the pack. Every fetch adds a
 * pack and isomorphic-git does not repack: a server that has fetched 200 pushes would look through
 * 200 pack indexes to read one object (a snapshot took 9 ms after 50 pushes, 39 ms after 200); a
 * loose object is one file, however many there are.
 */
async function loosen(gitdir: string, pack: string): Promise<void> {
  const base = join(gitdir, 'objects', 'pack', pack);
  const oids = packIndexOids(await readFile(`${base}.idx`));
  if (oids === undefined || oids.length > LOOSEN_MAX) return;
  const cache = {}; // isomorphic-git's: the pack is indexed and read once, not once per object
  for (const oid of oids) {
    const { type, object } = await git.readObject({ fs, gitdir, oid, format: 'content', cache });
    // deflated here, by Node's zlib: isomorphic-git would use the web's CompressionStream and
    // Response, which load Node's undici (~3 MB resident) into a process that has no other use for it
    const content = object as Uint8Array;
    const deflated = deflateSync(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]));
    await git.writeObject({ fs, gitdir, oid, object: deflated, format: 'deflated' });
  }
  await rm(`${base}.pack`, { force: true });
  await rm(`${base}.idx`, { force: true });
}

/** The object ids a version 2 pack index lists (undefined for another version). */
export function packIndexOids(idx: Uint8Array): string[] | undefined {
  const view = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  if (idx.byteLength < 8 + 1024 || view.getUint32(0) !== 0xff744f63 || view.getUint32(4) !== 2) return undefined;
  const count = view.getUint32(8 + 255 * 4); // the fan-out's last entry: objects in all
  const at = 8 + 1024;
  return Array.from({ length: count }, (_, i) => Buffer.from(idx.subarray(at + i * 20, at + (i + 1) * 20)).toString('hex'));
}

async function hasCommit(gitdir: string, oid: string): Promise<boolean> {
  return git.readCommit({ fs, gitdir, oid }).then(
    () => true,
    () => false,
  );
}
