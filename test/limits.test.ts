import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { INPUT_LIMITS } from '../src/model.ts';
import { formatError, renderSnapshot } from '../src/render/index.ts';
import { GitSource, SourceError } from '../src/source/git.ts';
import { PackObjectTooBig, PackWatch } from '../src/source/packwatch.ts';
import { ObjectSizes } from '../src/source/sizes.ts';
import { git, startGitServer, type GitServer } from './harness/git-server.ts';

const MiB = 1 << 20;
/** Text that does not compress: random bytes as base64. */
const noise = (bytes: number) =>
  randomBytes(Math.ceil((bytes * 3) / 4))
    .toString('base64')
    .slice(0, bytes);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-limits-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A local work-tree repo with `files` committed on main; returns its path. */
async function localRepo(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  await git(['init', '--quiet', '--initial-branch=main'], dir);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  await git(['add', '-A'], dir);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '--quiet', '-m', 'files'], dir);
  return dir;
}

const SHOP = 'services:\n  web:\n    image: nginx\n    configs: [site]\nconfigs:\n  site:\n    file: ./site.conf\n';
const BLOG = 'services:\n  web:\n    image: nginx\n';

describe('the limits in the engine config', () => {
  it('takes each key given, the others at their defaults, and refuses what is not a limit', async () => {
    const file = join(tmp, 'berth.config.yaml');
    await writeFile(file, `dataDir: ${join(tmp, 'data')}\nlimits: { replicas: 5, blobSize: 1024, api: 10 }\n`);
    expect(loadConfig(file).limits).toEqual({
      ...INPUT_LIMITS,
      api: 10,
      webhooks: 60,
      eventStreams: 10,
      logFollowers: 10,
      logBytes: 10 * 1024 * 1024,
      replicas: 5,
      blobSize: 1024,
    });
    await writeFile(file, 'limits: { blobSize: 0 }\n');
    expect(() => loadConfig(file)).toThrow(ConfigError);
    await writeFile(file, 'limits: { blobsize: 10 }\n');
    expect(() => loadConfig(file)).toThrow(ConfigError);
  });
});

describe('object sizes without reading the objects', () => {
  it('tells what git tells, loose and packed (deltas too)', async () => {
    const base = noise(200_000);
    const dir = await localRepo('sizes', { 'a.txt': base, 'b.txt': 'small\n', 'c/d.bin': randomBytes(70_000) });
    // a second version close to the first: git gc stores one of them as a delta
    await writeFile(join(dir, 'a.txt'), base.slice(0, 100_000) + 'changed' + base.slice(100_000));
    await git(['-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '--quiet', '-am', 'change'], dir);
    const objects = async () => (await git(['rev-list', '--objects', '--all'], dir)).split('\n').map((l) => l.slice(0, 40));
    const expectSizes = async () => {
      const sizes = new ObjectSizes(join(dir, '.git'));
      for (const oid of await objects()) expect([oid, await sizes.size(oid)]).toEqual([oid, Number(await git(['cat-file', '-s', oid], dir))]);
    };
    await expectSizes();
    await git(['gc', '--quiet', '--aggressive'], dir);
    expect(await git(['count-objects', '-v'], dir)).toMatch(/^count: 0$/m); // all packed now
    const [idx] = (await readdir(join(dir, '.git/objects/pack'))).filter((f) => f.endsWith('.idx'));
    // verify-pack lists a delta with its depth and its base: seven columns
    const listed = (await git(['verify-pack', '-v', join(dir, '.git/objects/pack', idx)], dir)).split('\n');
    expect(listed.some((l) => /^[0-9a-f]{40} blob .* [0-9a-f]{40}$/.test(l))).toBe(true);
    await expectSizes();
    expect(await new ObjectSizes(join(dir, '.git')).size('0'.repeat(40))).toBeUndefined();
  });

  it('reads only the header of a big file: a loose object cut after its first bytes still gives its size', async () => {
    const dir = await localRepo('cut', { 'app/compose.yaml': BLOG, 'app/big.bin': randomBytes(3 * MiB) });
    const oid = await git(['rev-parse', 'HEAD:app/big.bin'], dir);
    await truncate(join(dir, '.git', 'objects', oid.slice(0, 2), oid.slice(2)), 4096);
    const src = new GitSource({ name: 'cut', url: dir, branch: 'main' }, join(tmp, 'cache-cut'), { limits: { blobSize: MiB } });
    const snap = await src.snapshot((await src.update()).sha);
    expect([...snap.files.keys()]).toEqual(['app/compose.yaml']);
    expect(snap.unread).toEqual(new Map([['app/big.bin', { size: 3 * MiB, limit: 'blobSize' }]]));
  });
});

describe('following a fetched pack', () => {
  it('walks every object of a real pack (deltas too) however the bytes are cut, and stops at one over the limit', async () => {
    const base = noise(300_000);
    const dir = await localRepo('pack', { 'a.txt': base, 'b.bin': randomBytes(50_000) });
    await writeFile(join(dir, 'a.txt'), base.slice(0, 150_000) + 'changed' + base.slice(150_000));
    await git(['-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '--quiet', '-am', 'change'], dir);
    const pack = await new Promise<Buffer>((done, fail) => {
      const child = spawn('git', ['pack-objects', '--stdout', '--revs', '--delta-base-offset'], { cwd: dir });
      const out: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.on('close', (code) => (code === 0 ? done(Buffer.concat(out)) : fail(new Error(`pack-objects: ${code}`))));
      child.stdin.end('HEAD\n');
    });
    // what upload-pack sends: NAK, then the pack in pkt-lines on side band 1, progress on band 2, a flush
    const pkt = (band: number, data: Buffer) => Buffer.concat([Buffer.from((data.length + 5).toString(16).padStart(4, '0')), Buffer.from([band]), data]);
    const lines = [Buffer.from('0008NAK\n'), pkt(2, Buffer.from('Counting objects\n'))];
    for (let at = 0; at < pack.length; at += 65515) lines.push(pkt(1, pack.subarray(at, at + 65515)));
    const response = Buffer.concat([...lines, Buffer.from('0000')]);
    for (const cut of [7, 1000, 65536]) {
      const watch = new PackWatch(1 << 20);
      for (let at = 0; at < response.length; at += cut) watch.push(response.subarray(at, at + cut));
      watch.end();
      expect(watch.done).toBe(true);
    }
    const tight = new PackWatch(200_000);
    expect(() => {
      for (let at = 0; at < response.length; at += 4096) tight.push(response.subarray(at, at + 4096));
    }).toThrow(PackObjectTooBig);
  });
});

describe('a commit over the limits, fetched from a git server', () => {
  let server: GitServer;
  beforeAll(async () => {
    server = await startGitServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('refuses a file over limits.blobSize, located, while the other stacks of the repo render', async () => {
    const remote = await server.createRepo('blob');
    const sha = await remote.commit({
      'shop/compose.yaml': SHOP,
      'shop/site.conf': noise(2 * MiB),
      'blog/compose.yaml': BLOG,
      'assets/video.mp4': noise(3 * MiB),
    });
    const limits = { blobSize: MiB };
    const src = new GitSource({ name: 'blob', url: remote.url, branch: 'main' }, join(tmp, 'cache-blob'), { limits });
    expect((await src.update()).sha).toBe(sha);
    const snap = await src.snapshot(sha);
    expect([...snap.files.keys()].sort()).toEqual(['blog/compose.yaml', 'shop/compose.yaml']);
    expect(snap.unread).toEqual(
      new Map([
        ['shop/site.conf', { size: 2 * MiB, limit: 'blobSize' }],
        ['assets/video.mp4', { size: 3 * MiB, limit: 'blobSize' }],
      ]),
    );
    const result = renderSnapshot(snap, { limits });
    expect(result.stacks.map((s) => [s.def.name, s.ok])).toEqual([
      ['blog', true],
      ['shop', false],
    ]);
    const shop = result.stacks.find((s) => !s.ok);
    expect(shop && !shop.ok && shop.errors.map(formatError)).toEqual([
      'shop/site.conf: 2 MiB, over limits.blobSize (1 MiB): berth does not read a file this big',
    ]);

    // within the default limits the same commit renders whole (the video is read, but used by nothing)
    const open = new GitSource({ name: 'blob', url: remote.url, branch: 'main' }, join(tmp, 'cache-blob'));
    expect(renderSnapshot(await open.snapshot(sha)).stacks.every((s) => s.ok)).toBe(true);
  });

  it('reads the smallest files first within limits.snapshotSize; the rest are unread', async () => {
    const remote = await server.createRepo('snapshot');
    const sha = await remote.commit({ 'shop/compose.yaml': SHOP, 'shop/site.conf': noise(300_000), 'blog/compose.yaml': BLOG, 'blog/a.bin': noise(200_000) });
    const src = new GitSource({ name: 'snapshot', url: remote.url, branch: 'main' }, join(tmp, 'cache-snapshot'), { limits: { snapshotSize: 250_000 } });
    await src.update();
    const snap = await src.snapshot(sha);
    expect([...snap.files.keys()].sort()).toEqual(['blog/a.bin', 'blog/compose.yaml', 'shop/compose.yaml']);
    expect(snap.unread).toEqual(new Map([['shop/site.conf', { size: 300_000, limit: 'snapshotSize' }]]));
    const errors = renderSnapshot(snap).stacks.flatMap((s) => (s.ok ? [] : s.errors.map(formatError)));
    expect(errors).toEqual([
      "shop/site.conf: not read: the commit's files passed limits.snapshotSize (100 MiB) before it (it has 293 KiB); berth reads the smallest files first",
    ]);
  });

  it('refuses a fetch past limits.fetchSize as it comes, and fetches it within the limit', async () => {
    const remote = await server.createRepo('fetch');
    const files = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`app/${i}.bin`, noise(64 * 1024)]));
    const sha = await remote.commit({ 'app/compose.yaml': BLOG, ...files });
    const tight = new GitSource({ name: 'fetch', url: remote.url, branch: 'main' }, join(tmp, 'cache-fetch'), { limits: { fetchSize: MiB } });
    const err = await tight.update().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).limit).toBe('fetchSize');
    expect((err as Error).message).toMatch(/^repo fetch \(http:.*branch main\): the fetch received more than limits\.fetchSize \(1 MiB\) from the remote/);
    const wide = new GitSource({ name: 'fetch', url: remote.url, branch: 'main' }, join(tmp, 'cache-fetch'), { limits: { fetchSize: 8 * MiB } });
    expect((await wide.update()).sha).toBe(sha);
    expect((await wide.snapshot(sha)).files.get('app/0.bin')?.byteLength).toBe(64 * 1024);
  });

  it('refuses a fetch as soon as the pack announces one object over limits.fetchSize', async () => {
    const remote = await server.createRepo('object');
    // commits and trees come first in a pack, then the small files: the big one's header comes after them
    const sha = await remote.commit({ 'app/compose.yaml': BLOG, 'app/a.txt': 'a\n', 'app/big.bin': noise(3 * MiB) });
    const tight = new GitSource({ name: 'object', url: remote.url, branch: 'main' }, join(tmp, 'cache-object'), { limits: { fetchSize: 2 * MiB } });
    const err = await tight.update().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as SourceError).limit).toBe('fetchSize');
    expect((err as Error).message).toMatch(/the fetch brings one object of 3 MiB, over limits\.fetchSize \(2 MiB\): refused before it is held in memory$/);
    // a later fetch with room for it fetches it
    const wide = new GitSource({ name: 'object', url: remote.url, branch: 'main' }, join(tmp, 'cache-object'), { limits: { fetchSize: 8 * MiB } });
    expect((await wide.update()).sha).toBe(sha);
  });

  it('waits out a server silent for seconds before the pack, then refuses the object or fetches it', async () => {
    // 6 s: longer than the idle timeout of Node's global agent (5 s, 4 s on a socket reused after
    // "Keep-Alive: timeout=5"), which ended such a fetch with "aborted" before the pack came
    const silent = await startGitServer({ packSilenceMs: 6000 });
    try {
      const remote = await silent.createRepo('silent');
      const sha = await remote.commit({ 'app/compose.yaml': BLOG, 'app/big.bin': noise(3 * MiB) });
      const source = (fetchSize: number, cache: string) =>
        new GitSource({ name: 'silent', url: remote.url, branch: 'main' }, join(tmp, cache), { limits: { fetchSize } });
      // both at once: the test waits out the silence once
      const [refused, fetched] = await Promise.allSettled([source(2 * MiB, 'cache-silent-tight').update(), source(8 * MiB, 'cache-silent-wide').update()]);
      expect(refused.status === 'rejected' && (refused.reason as SourceError).limit).toBe('fetchSize');
      expect(refused.status === 'rejected' && (refused.reason as Error).message).toMatch(
        /^repo silent \(http:.*branch main\): the fetch brings one object of 3 MiB, over limits\.fetchSize \(2 MiB\): refused before it is held in memory$/,
      );
      expect(fetched.status === 'fulfilled' && fetched.value.sha).toBe(sha);
    } finally {
      await silent.close();
    }
  });
});
