import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GitSource, packIndexOids, SourceError, stripCredentials } from '../src/source/git.ts';
import type { RepoRef } from '../src/source/git.ts';
import { git, startGitServer } from './harness/git-server.ts';
import type { GitServer } from './harness/git-server.ts';
import { makeCerts, type TestCerts } from './harness/tls.ts';

const text = (files: Map<string, Uint8Array>) =>
  Object.fromEntries([...files].map(([k, v]) => [k, Buffer.from(v).toString()]).sort(([a], [b]) => a.localeCompare(b)));

/** Runs `fn`, expects a SourceError, returns its message. */
async function sourceError(fn: () => Promise<unknown>): Promise<string> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SourceError);
  return (err as Error).message;
}

let tmp: string;
const cacheDir = (name: string) => join(tmp, 'cache', name);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-source-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('stripCredentials', () => {
  it.each([
    ['https://user:tok@git.example.com/org/x.git', 'https://git.example.com/org/x.git'],
    ['https://tok@git.example.com/x.git', 'https://git.example.com/x.git'],
    ['https://git.example.com/x.git', 'https://git.example.com/x.git'],
    ['/srv/repos/x', '/srv/repos/x'],
  ])('%s -> %s', (input, want) => {
    expect(stripCredentials(input)).toBe(want);
  });
});

describe('GitSource over smart HTTP', () => {
  let server: GitServer;
  beforeAll(async () => {
    server = await startGitServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('fetches the pushed files and commit info, and fetches again only when the branch moved', async () => {
    const remote = await server.createRepo('platform');
    const author = { name: 'Ada Lovelace', email: 'ada@example.com' };
    const first = await remote.commit({ 'shop/compose.yaml': 'services: {}\n', 'README.md': 'hi\n' }, { author, message: 'Add shop\n\nWith a body.' });
    const src = new GitSource({ name: 'platform', url: remote.url, branch: 'main' }, cacheDir('platform'));

    expect(await src.remoteHead()).toBe(first);
    const info = await src.update();
    expect(info).toMatchObject({ sha: first, author: 'Ada Lovelace', email: 'ada@example.com', message: 'Add shop\n\nWith a body.' });
    expect(Math.abs(info.time - Date.now() / 1000)).toBeLessThan(3600);
    const snap = await src.snapshot(first);
    expect(snap.repo).toBe('platform');
    expect(snap.commit.sha).toBe(first);
    expect(text(snap.files)).toEqual({ 'README.md': 'hi\n', 'shop/compose.yaml': 'services: {}\n' });

    // Branch unmoved: one ref look-up, no fetch.
    const before = server.requests('platform');
    expect((await src.update()).sha).toBe(first);
    const after = server.requests('platform');
    expect(after.refs - before.refs).toBe(1);
    expect(after['upload-pack'] - before['upload-pack']).toBe(0);

    // A new push: update fetches, the snapshot shows the change and the deletion.
    const second = await remote.commit({ 'shop/compose.yaml': 'services: { web: {} }\n', 'README.md': null }, { message: 'Change shop' });
    const mid = server.requests('platform');
    expect((await src.update()).sha).toBe(second);
    expect(server.requests('platform')['upload-pack'] - mid['upload-pack']).toBe(1);
    expect(server.requests('platform').refs - mid.refs).toBe(2); // the look-up, then the fetch's own
    expect(text((await src.snapshot(second)).files)).toEqual({ 'shop/compose.yaml': 'services: { web: {} }\n' });
    // The old commit stays readable (rollback).
    expect(text((await src.snapshot(first)).files)['README.md']).toBe('hi\n');
    expect((await src.commit(first.slice(0, 10))).sha).toBe(first);

    expect((await src.history()).map((c) => [c.sha, c.message])).toEqual([
      [second, 'Change shop'],
      [first, 'Add shop\n\nWith a body.'],
    ]);
    expect((await src.history(1)).map((c) => c.sha)).toEqual([second]);

    // A push announced (a webhook's pass): the fetch goes at once, without the look-up before it.
    const third = await remote.commit({ 'shop/compose.yaml': 'services: { api: {} }\n' }, { message: 'Change shop again' });
    const pushed = server.requests('platform');
    expect((await src.update({ moved: true })).sha).toBe(third);
    expect(server.requests('platform').refs - pushed.refs).toBe(1);
    expect(server.requests('platform')['upload-pack'] - pushed['upload-pack']).toBe(1);
  });

  it('reads again only the files a new commit changed; without a budget, the files are still right', async () => {
    const remote = await server.createRepo('objects');
    const first = await remote.commit({ 'shop/compose.yaml': 'shop v1\n', 'blog/compose.yaml': 'blog v1\n', 'blog/nginx.conf': 'conf\n' });
    const src = new GitSource({ name: 'objects', url: remote.url, branch: 'main' }, cacheDir('objects'));
    await src.update();
    const one = (await src.snapshot(first)).files;
    const second = await remote.commit({ 'shop/compose.yaml': 'shop v2\n' });
    await src.update();
    const two = (await src.snapshot(second)).files;
    expect(text(two)).toEqual({ 'blog/compose.yaml': 'blog v1\n', 'blog/nginx.conf': 'conf\n', 'shop/compose.yaml': 'shop v2\n' });
    // the same objects as the first snapshot read: not read again
    expect(two.get('blog/compose.yaml')).toBe(one.get('blog/compose.yaml'));
    expect(two.get('blog/nginx.conf')).toBe(one.get('blog/nginx.conf'));

    // Without a budget nothing is kept: every snapshot reads what it needs, and gets it right.
    const tight = new GitSource({ name: 'objects', url: remote.url, branch: 'main' }, cacheDir('objects'), { objectCacheBytes: 0 });
    const a = (await tight.snapshot(second)).files;
    const b = (await tight.snapshot(first)).files;
    expect(text(b)).toEqual(text(one));
    expect(text(a)).toEqual(text(two));
    expect((await tight.snapshot(second)).files.get('blog/nginx.conf')).not.toBe(a.get('blog/nginx.conf'));
  });

  it('keeps what small fetches bring as loose objects, a big one as its pack; every commit stays readable', async () => {
    const remote = await server.createRepo('loose');
    const packs = async () => (await readdir(join(cacheDir('loose'), 'objects', 'pack'))).filter((f) => f.endsWith('.pack'));
    const shas = [await remote.commit({ 'app/compose.yaml': 'v0\n' })];
    const src = new GitSource({ name: 'loose', url: remote.url, branch: 'main' }, cacheDir('loose'));
    await src.update();
    for (let i = 1; i <= 3; i++) {
      shas.push(await remote.commit({ 'app/compose.yaml': `v${i}\n` }));
      expect((await src.update({ moved: true })).sha).toBe(shas[i]);
    }
    expect(await packs()).toEqual([]);
    // git itself reads the loose objects berth wrote
    expect(await git(['--git-dir', cacheDir('loose'), 'cat-file', 'blob', `${shas[3]}:app/compose.yaml`])).toBe('v3');
    // 1,200 files in one push: more objects than are worth a file each
    shas.push(await remote.commit(Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`docs/${i}.md`, `page ${i}\n`]))));
    await src.update({ moved: true });
    const [pack] = await packs();
    expect(pack).toBeDefined();
    // the index lists what git's own reader lists
    const idx = join(cacheDir('loose'), 'objects', 'pack', pack.replace(/\.pack$/, '.idx'));
    const listed = (await git(['verify-pack', '-v', idx]))
      .split('\n')
      .filter((l) => /^[0-9a-f]{40} /.test(l))
      .map((l) => l.slice(0, 40))
      .sort();
    expect(packIndexOids(await readFile(idx))?.sort()).toEqual(listed);
    expect(listed.length).toBeGreaterThan(1200);
    for (const [i, sha] of shas.entries()) {
      expect(text((await src.snapshot(sha)).files)['app/compose.yaml']).toBe(`v${Math.min(i, 3)}\n`);
    }
    expect((await src.history()).map((c) => c.sha)).toEqual([...shas].reverse());
  });

  it("loosens a fetched pack without loading Node's undici (isomorphic-git's deflate would, through the web's CompressionStream)", async () => {
    const remote = await server.createRepo('undici');
    await remote.commit({ 'app/compose.yaml': 'v0\n' });
    const probe = `
      const { GitSource } = await import(${JSON.stringify(join(import.meta.dirname, '../src/source/git.ts'))});
      const src = new GitSource({ name: 'undici', url: process.env.URL, branch: 'main' }, process.env.DIR);
      await src.update();
      const before = (await import('node:fs')).readdirSync(process.env.DIR + '/objects').length;
      // node:http as require() gives it (an ES import of it would load undici itself)
      await new Promise((done, fail) => process.getBuiltinModule('node:http').get(process.env.COMMIT, (res) => res.resume().on('end', done)).on('error', fail));
      await src.update({ moved: true });
      console.log(JSON.stringify({ undici: process.moduleLoadList.filter((m) => /undici|webstreams/.test(m)), grew: (await import('node:fs')).readdirSync(process.env.DIR + '/objects').length > before }));
    `;
    // the probe asks the test (over HTTP) for its second commit, between its two fetches
    const { createServer: createHttpServer } = await import('node:http');
    const asks = createHttpServer((_req, res) => void remote.commit({ 'app/compose.yaml': 'v1\n' }).then(() => res.end()));
    await new Promise<void>((done) => asks.listen(0, '127.0.0.1', done));
    try {
      const env = { ...process.env, URL: remote.url, DIR: cacheDir('undici'), COMMIT: `http://127.0.0.1:${(asks.address() as AddressInfo).port}/` };
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe], { env });
      expect(JSON.parse(stdout)).toEqual({ undici: [], grew: true });
    } finally {
      asks.close();
    }
  });

  it('reuses the cache across instances (e.g. after a restart)', async () => {
    const remote = await server.createRepo('restart');
    const sha = await remote.commit({ 'a.yaml': 'a' });
    const ref: RepoRef = { name: 'restart', url: remote.url, branch: 'main' };
    await new GitSource(ref, cacheDir('restart')).update();
    const before = server.requests('restart');
    expect((await new GitSource(ref, cacheDir('restart')).update()).sha).toBe(sha);
    expect(server.requests('restart')['upload-pack']).toBe(before['upload-pack']);
  });

  it('limits the snapshot to `path`, written with or without a trailing slash', async () => {
    const remote = await server.createRepo('paths');
    const sha = await remote.commit({ 'deploy/shop/compose.yaml': 'x', 'deploy/berth.yaml': 'y', 'src/app.ts': 'z' });
    for (const path of ['deploy', 'deploy/']) {
      const src = new GitSource({ name: 'paths', url: remote.url, branch: 'main', path }, cacheDir('paths'));
      await src.update();
      expect(text((await src.snapshot(sha)).files)).toEqual({ 'shop/compose.yaml': 'x', 'berth.yaml': 'y' });
    }
    const missing = new GitSource({ name: 'paths', url: remote.url, branch: 'main', path: 'nope' }, cacheDir('paths'));
    expect(await sourceError(() => missing.snapshot(sha))).toMatch(/repo paths .*folder "nope" does not exist/);
    const file = new GitSource({ name: 'paths', url: remote.url, branch: 'main', path: 'src/app.ts' }, cacheDir('paths'));
    expect(await sourceError(() => file.snapshot(sha))).toMatch(/folder "src\/app.ts" does not exist/);
  });

  it('fetches another branch than main', async () => {
    const remote = await server.createRepo('branches');
    await remote.commit({ 'a.yaml': 'main' });
    const prod = await remote.commit({ 'a.yaml': 'prod' }, { branch: 'prod' });
    const src = new GitSource({ name: 'branches', url: remote.url, branch: 'prod' }, cacheDir('branches'));
    expect((await src.update()).sha).toBe(prod);
    expect(text((await src.snapshot(prod)).files)).toEqual({ 'a.yaml': 'prod' });
  });

  it('names the repo, URL and branch when the branch does not exist', async () => {
    const remote = await server.createRepo('nobranch');
    await remote.commit({ 'a.yaml': 'a' });
    const src = new GitSource({ name: 'nobranch', url: remote.url, branch: 'mian' }, cacheDir('nobranch'));
    const msg = await sourceError(() => src.update());
    expect(msg).toContain('repo nobranch');
    expect(msg).toContain(remote.url);
    expect(msg).toContain('branch mian not found');
  });

  it('says so when the repo does not exist on the server', async () => {
    const url = `${server.baseUrl}/missing.git`;
    const msg = await sourceError(() => new GitSource({ name: 'missing', url, branch: 'main' }, cacheDir('missing')).update());
    expect(msg).toMatch(/repo missing .*missing\.git.*branch main.*not found/);
  });

  it('names the repo, URL and branch when the server cannot be reached', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    const url = `http://127.0.0.1:${port}/x.git`;
    const src = new GitSource({ name: 'gone', url, branch: 'main' }, cacheDir('gone'));
    const msg = await sourceError(() => src.update());
    expect(msg).toContain(`repo gone (${url}, branch main): cannot reach the server`);
  });
});

it('gives up on a server that accepts the connection but never answers', async () => {
  const sockets: import('node:net').Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/x.git`;
  try {
    const src = new GitSource({ name: 'mute', url, branch: 'main', timeoutMs: 300 }, cacheDir('mute'));
    const msg = await sourceError(() => src.update());
    expect(msg).toContain(`repo mute (${url}, branch main): the server did not answer within 0.3 s`);
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

describe('GitSource with a token', () => {
  const token = 'tok-9f8e7d6c5b4a';
  let server: GitServer;
  let url: string;
  let sha: string;
  beforeAll(async () => {
    server = await startGitServer({ token });
    const remote = await server.createRepo('private');
    url = remote.url;
    sha = await remote.commit({ 'compose.yaml': 'services: {}\n' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('fetches with the token, sending it up front (one ref request per unmoved update)', async () => {
    const src = new GitSource({ name: 'private', url, branch: 'main', token }, cacheDir('private-ok'));
    expect((await src.update()).sha).toBe(sha);
    expect(text((await src.snapshot(sha)).files)).toEqual({ 'compose.yaml': 'services: {}\n' });
    const before = server.requests('private');
    await src.update();
    const after = server.requests('private');
    expect(after.refs - before.refs).toBe(1);
    expect(after['upload-pack']).toBe(before['upload-pack']);
  });

  it.each([
    ['without a token', undefined],
    ['with a wrong token', 'wrong-token-123'],
  ])('fails clearly %s, and never shows the token', async (_label, given) => {
    const src = new GitSource({ name: 'private', url, branch: 'main', token: given }, cacheDir('private-bad'));
    const msg = await sourceError(() => src.update());
    expect(msg).toMatch(new RegExp(`^authentication failed for repo private \\(${url.replace(/[.]/g, '\\.')}\\): `));
    expect(msg).not.toContain(token);
    if (given) expect(msg).not.toContain(given);
  });

  it('strips credentials written into the URL from its errors', async () => {
    const withCreds = url.replace('http://', 'http://someone:wrong-secret@');
    const src = new GitSource({ name: 'private', url: withCreds, branch: 'main' }, cacheDir('private-url'));
    const msg = await sourceError(() => src.update());
    expect(msg).toContain(url);
    expect(msg).not.toContain('wrong-secret');
  });
});

/** A work-tree repo made with the git CLI; `commit` writes files and commits them all. */
async function workRepo(dir: string) {
  await git(['init', '--quiet', dir]);
  const commit = async (files: Record<string, string>, message: string) => {
    for (const [f, c] of Object.entries(files)) {
      await mkdir(dirname(join(dir, f)), { recursive: true });
      await writeFile(join(dir, f), c);
    }
    await git(['add', '-A'], dir);
    await git(['-c', 'user.name=Local Dev', '-c', 'user.email=dev@example.com', 'commit', '--quiet', '-m', message], dir);
    return git(['rev-parse', 'HEAD'], dir);
  };
  return { dir, commit };
}

describe('GitSource on a local repo', () => {
  it('reads a work-tree repo in place, by path and by file:// URL, and sees later commits', async () => {
    const { dir, commit: commitAll } = await workRepo(join(tmp, 'local-work'));
    const first = await commitAll({ 'deploy/app/compose.yaml': 'v1', 'other.txt': 'o' }, 'one');

    for (const url of [dir, pathToFileURL(dir).href]) {
      const src = new GitSource({ name: 'local', url, branch: 'main', path: 'deploy' }, cacheDir('unused'));
      expect(await src.update()).toMatchObject({ sha: first, author: 'Local Dev', email: 'dev@example.com', message: 'one' });
      expect(text((await src.snapshot(first)).files)).toEqual({ 'app/compose.yaml': 'v1' });
    }

    const src = new GitSource({ name: 'local', url: dir, branch: 'main', path: 'deploy/' }, cacheDir('unused'));
    await src.update();
    const second = await commitAll({ 'deploy/app/compose.yaml': 'v2' }, 'two');
    expect(await src.remoteHead()).toBe(second);
    expect((await src.update()).sha).toBe(second);
    expect(text((await src.snapshot(second)).files)).toEqual({ 'app/compose.yaml': 'v2' });
    expect((await src.history()).map((c) => c.message)).toEqual(['two', 'one']);
    // read in place: nothing was copied into the cache
    await expect(stat(cacheDir('unused'))).rejects.toThrow();
  });

  it('reads a bare repo', async () => {
    const work = await workRepo(join(tmp, 'for-bare'));
    const sha = await work.commit({ 'compose.yaml': 'c' }, 'bare one');
    const bare = join(tmp, 'local-bare.git');
    await git(['clone', '--bare', '--quiet', work.dir, bare]);
    const src = new GitSource({ name: 'bare', url: bare, branch: 'main' }, cacheDir('unused-bare'));
    expect((await src.update()).sha).toBe(sha);
    expect(text((await src.snapshot(sha)).files)).toEqual({ 'compose.yaml': 'c' });
  });

  it('names the repo, path and branch when the path or branch is missing', async () => {
    const missing = join(tmp, 'does-not-exist');
    const msg = await sourceError(() => new GitSource({ name: 'nope', url: missing, branch: 'main' }, cacheDir('x')).update());
    expect(msg).toBe(`repo nope (${missing}, branch main): no such directory`);

    const plain = join(tmp, 'plain-dir');
    await mkdir(plain);
    expect(await sourceError(() => new GitSource({ name: 'plain', url: plain, branch: 'main' }, cacheDir('x')).update())).toBe(
      `repo plain (${plain}, branch main): not a git repository`,
    );

    const { dir, commit } = await workRepo(join(tmp, 'no-dev'));
    await commit({ 'a.txt': 'a' }, 'on main only');
    expect(await sourceError(() => new GitSource({ name: 'local', url: dir, branch: 'dev' }, cacheDir('x')).update())).toBe(
      `repo local (${dir}, branch dev): branch dev not found; the repo has: main`,
    );
  });

  it('says when a commit is unknown', async () => {
    const { dir, commit } = await workRepo(join(tmp, 'unknown-commit'));
    await commit({ 'a.txt': 'a' }, 'one');
    const src = new GitSource({ name: 'local', url: dir, branch: 'main' }, cacheDir('x'));
    expect(await sourceError(() => src.commit('0'.repeat(40)))).toContain(`commit ${'0'.repeat(40)} not found`);
  });
});

describe('GitSource over HTTPS', () => {
  let server: GitServer;
  let certs: TestCerts;
  const token = 'https-token-7c1d';
  beforeAll(async () => {
    certs = await makeCerts(join(tmp, 'certs'));
    server = await startGitServer({ token, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  });
  afterAll(async () => server?.close());

  it('fetches from a server whose CA it is given, with the token', async () => {
    const remote = await server.createRepo('secure');
    const sha = await remote.commit({ 'compose.yaml': 'services: {}\n' }, { message: 'over TLS' });
    expect(remote.url).toMatch(/^https:\/\//);
    const src = new GitSource({ name: 'secure', url: remote.url, branch: 'main', token, ca: await readFile(certs.ca) }, cacheDir('secure'));
    expect(await src.update()).toMatchObject({ sha, message: 'over TLS' });
    expect([...(await src.snapshot(sha)).files.keys()]).toEqual(['compose.yaml']);
  });

  it('refuses a server whose certificate it cannot verify', async () => {
    const remote = await server.createRepo('untrusted');
    await remote.commit({ 'a.yaml': 'a' });
    const msg = await sourceError(() => new GitSource({ name: 'untrusted', url: remote.url, branch: 'main', token }, cacheDir('untrusted')).update());
    expect(msg).toMatch(/repo untrusted \(https:\/\/127\.0\.0\.1:\d+\/untrusted\.git, branch main\): .*certificate/i);
    expect(msg).not.toContain(token);
  });
});
