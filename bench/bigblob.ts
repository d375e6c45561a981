/**
 * Bounded input: the peak RSS of fetching and rendering a repo that holds a 200 MB file (random
 * bytes: nothing to compress) beside a small Compose stack, against the same repo without it.
 * Each run is a child process of its own (its peak is its own): a local path repo (read in place:
 * the file is over limits.blobSize, its size is told from its object's header and it is never
 * read; the stacks render), and the same commits served over smart HTTP by the test harness's git
 * server (the fetch is refused as soon as the pack announces the file, over limits.fetchSize).
 * The engine's default limits (src/model.ts INPUT_LIMITS) apply throughout.
 *
 * `node bench/bigblob.ts` (no Docker needed).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { git, startGitServer } from '../test/harness/git-server.ts';
import type { Row } from './lib.ts';

const BLOB_BYTES = 200_000_000;
/** The target: the big file raises the peak by no more than this. */
const TARGET_KIB = 30 * 1024;

/** What one child run reports. */
interface Run {
  /** peak resident set, KiB (VmHWM) */
  hwm: number;
  ok: string[];
  failed: string[];
  unread: string[];
  error?: string;
}

const STACK = {
  'shop/compose.yaml': 'services:\n  web:\n    image: nginx\n    deploy: { replicas: 2 }\n    configs: [site]\nconfigs:\n  site:\n    file: ./site.conf\n',
  'shop/site.conf': 'server { listen 80; }\n',
  'blog/compose.yaml': 'services:\n  web:\n    image: nginx\n',
};

/** A local repo with the small stacks, and a second commit adding `shop/big.bin` when `big`. */
function makeRepo(dir: string, big: boolean): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [path, text] of Object.entries(STACK)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  if (big) {
    // written in pieces: the bench process need not hold it either
    const file = join(dir, 'shop', 'big.bin');
    writeFileSync(file, '');
    for (let left = BLOB_BYTES; left > 0; left -= 10_000_000) writeFileSync(file, randomBytes(Math.min(left, 10_000_000)), { flag: 'a' });
  }
  return (async () => {
    await git(['init', '--quiet', '--initial-branch=main'], dir);
    await git(['add', '-A'], dir);
    await git(['-c', 'user.name=bench', '-c', 'user.email=bench@x', 'commit', '--quiet', '-m', big ? 'stacks and a big file' : 'stacks'], dir);
  })();
}

/** The child: fetch (update) + snapshot + render of one repo, then its own peak RSS. */
async function child(url: string, cacheDir: string): Promise<Run> {
  const { GitSource } = await import('../src/source/git.ts');
  const { renderSnapshot } = await import('../src/render/index.ts');
  const { readFileSync } = await import('node:fs');
  const run: Run = { hwm: 0, ok: [], failed: [], unread: [] };
  try {
    const src = new GitSource({ name: 'bench', url, branch: 'main' }, cacheDir);
    const commit = await src.update();
    const snap = await src.snapshot(commit.sha);
    run.unread = [...(snap.unread?.keys() ?? [])];
    for (const s of renderSnapshot(snap).stacks) (s.ok ? run.ok : run.failed).push(s.def.name);
  } catch (err) {
    run.error = (err as Error).message;
  }
  run.hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? process.resourceUsage().maxRSS);
  return run;
}

async function runChild(url: string, cacheDir: string): Promise<Run> {
  const { stdout } = await promisify(execFile)(process.execPath, [import.meta.filename, 'child', url, cacheDir], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as Run;
}

const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const describe = (r: Run) =>
  r.error
    ? `refused: ${r.error.replace(/^repo bench \([^)]*\): /, '')}`
    : `stacks ok: ${r.ok.join(', ') || '-'}; failed: ${r.failed.join(', ') || '-'}; unread: ${r.unread.join(', ') || '-'}`;

/** The rows: for the local repo and over HTTP, the peak without the file, with it, and the difference against the target. */
export async function bigblob(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-bigblob-'));
  const server = await startGitServer();
  try {
    await makeRepo(join(dir, 'small'), false);
    await makeRepo(join(dir, 'big'), true);
    const rows: Row[] = [];
    const compare = (how: string, small: Run, big: Run) => {
      const extra = big.hwm - small.hwm;
      rows.push(
        { scenario: `${how}, without the file: peak RSS`, value: mb(small.hwm), against: describe(small) },
        { scenario: `${how}, with a 200 MB file: peak RSS`, value: mb(big.hwm), against: describe(big) },
        { scenario: `${how}: what the 200 MB file adds to the peak`, value: mb(extra), target: 'within +30 MiB', met: extra <= TARGET_KIB },
      );
    };
    compare(
      'local path repo, fetch + render',
      await runChild(join(dir, 'small'), join(dir, 'cache-a')),
      await runChild(join(dir, 'big'), join(dir, 'cache-b')),
    );
    const served = async (name: string) => {
      const remote = await server.createRepo(name);
      await git(['push', '--quiet', remote.dir, 'main'], join(dir, name));
      return remote.url;
    };
    const smallUrl = await served('small');
    const bigUrl = await served('big');
    compare('over smart HTTP, fetch + render', await runChild(smallUrl, join(dir, 'cache-c')), await runChild(bigUrl, join(dir, 'cache-d')));
    return rows;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  if (process.argv[2] === 'child') {
    console.log(JSON.stringify(await child(process.argv[3], process.argv[4])));
  } else {
    const { printTable } = await import('./lib.ts');
    printTable('berth bench: bounded input (a 200 MB file in the repo)', await bigblob());
  }
}
