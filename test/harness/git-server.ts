/**
 * A real Git smart-HTTP server for tests: node:http in front of `git http-backend` (CGI),
 * serving bare repos under a temp root on 127.0.0.1. Counts requests per repo so tests can
 * assert how often a client looked up refs or fetched.
 */
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, mkdir, readFile, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Per-repo request counts: GET info/refs, POST git-upload-pack, POST git-receive-pack. */
export interface RequestCounts {
  refs: number;
  'upload-pack': number;
  'receive-pack': number;
}

export interface CommitOptions {
  message?: string;
  author?: { name: string; email: string };
  branch?: string;
}

export interface RemoteRepo {
  name: string;
  /** http://127.0.0.1:PORT/<name>.git, without credentials */
  url: string;
  /** the bare repo on disk */
  dir: string;
  /** Writes the files (null deletes one) in a work clone, commits and pushes over HTTP; returns the new SHA. */
  commit(files: Record<string, string | null>, opts?: CommitOptions): Promise<string>;
  /** The SHA the bare repo's branch points at (default `main`). */
  head(branch?: string): Promise<string>;
}

export interface GitServer {
  baseUrl: string;
  root: string;
  createRepo(name: string): Promise<RemoteRepo>;
  /** A copy of the request counts for one repo (zeros if it saw none); refused (401) requests count too. */
  requests(repoName: string): RequestCounts;
  close(): Promise<void>;
}

/** Environment for the harness's own git CLI calls: no user or system config is read. */
const gitEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
};

/** Runs the git CLI; returns trimmed stdout. */
export async function git(args: string[], cwd?: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await execFileAsync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd, env: { ...gitEnv, ...env } });
  return stdout.trim();
}

const KIND_BY_SUFFIX: Array<[string, keyof RequestCounts]> = [
  ['/info/refs', 'refs'],
  ['/git-upload-pack', 'upload-pack'],
  ['/git-receive-pack', 'receive-pack'],
];

export interface GitServerOptions {
  /** every request needs Basic auth with this password */
  token?: string;
  /** speak HTTPS with this certificate (`ca` signs it) */
  tls?: { cert: string; key: string; ca: string };
  /**
   * An upload-pack answer sends its head and first bytes, then nothing for this long before the
   * rest: what git does while it compresses a big object before the pack's first bytes (several
   * seconds for a 200 MB file), without the big file.
   */
  packSilenceMs?: number;
}

/** Starts the server on a random loopback port. */
export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const top = await mkdtemp(join(tmpdir(), 'berth-git-server-'));
  const root = join(top, 'repos'); // GIT_PROJECT_ROOT: only the bare repos are served
  await mkdir(root);
  const counts = new Map<string, RequestCounts>();

  const count = (pathname: string) => {
    for (const [suffix, kind] of KIND_BY_SUFFIX) {
      if (!pathname.endsWith(suffix)) continue;
      const repo = pathname.slice(1, -suffix.length).replace(/\.git$/, '');
      const c = counts.get(repo) ?? { refs: 0, 'upload-pack': 0, 'receive-pack': 0 };
      c[kind]++;
      counts.set(repo, c);
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    count(url.pathname); // every request counts, refused ones too
    let user = '';
    if (opts.token !== undefined) {
      const [scheme, encoded] = (req.headers.authorization ?? '').split(' ');
      const decoded = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString() : '';
      const sep = decoded.indexOf(':');
      if (sep < 0 || decoded.slice(sep + 1) !== opts.token) {
        req.resume();
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="berth-test-git"' }).end('authentication required\n');
        return;
      }
      user = decoded.slice(0, sep) || 'token';
    }

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REMOTE_USER: user || undefined,
    };
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    // CGI passes request headers as HTTP_*; http-backend needs Content-Encoding (gzip) and Git-Protocol.
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = value;
    }
    if (env.HTTP_GIT_PROTOCOL) env.GIT_PROTOCOL = env.HTTP_GIT_PROTOCOL;

    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(child.stdin);
    child.stdin.on('error', () => {}); // the backend may stop reading early (e.g. on a bad request)
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));

    // Parse the CGI header block, then stream the rest as the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const m = /\r?\n\r?\n/.exec(head.toString('latin1'));
      if (!m) return;
      headersDone = true;
      child.stdout.off('data', onData);
      let status = 200;
      let statusText: string | undefined;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, m.index).toString('latin1').split(/\r?\n/)) {
        const sep = line.indexOf(':');
        if (sep < 0) continue;
        const name = line.slice(0, sep).trim();
        const value = line.slice(sep + 1).trim();
        if (name.toLowerCase() === 'status') {
          status = Number.parseInt(value, 10);
          statusText = value.replace(/^\d+\s*/, '') || undefined;
        } else headers[name] = value;
      }
      res.writeHead(status, statusText, headers);
      res.write(head.subarray(m.index + m[0].length));
      if (opts.packSilenceMs && url.pathname.endsWith('/git-upload-pack')) {
        child.stdout.pause();
        setTimeout(() => res.destroyed || child.stdout.pipe(res), opts.packSilenceMs);
      } else child.stdout.pipe(res);
    };
    // A client that hangs up before the end (berth refusing a fetch) would leave git blocked
    // writing the rest into a pipe nobody reads, holding what it packs: the pipe is closed, and
    // git ends on its next write.
    res.on('close', () => {
      if (!res.writableFinished) child.stdout.destroy();
    });
    child.stdout.on('data', onData);
    child.on('close', (code) => {
      if (headersDone) return;
      res.writeHead(500).end(`git http-backend failed (exit ${code}): ${stderr}`);
    });
    child.on('error', (err) => {
      if (!res.headersSent) res.writeHead(500).end(`cannot run git http-backend: ${err.message}`);
    });
  };

  const tls = opts.tls;
  const server = tls ? createHttpsServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, handle) : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  // the git CLI that pushes the test commits trusts the test CA (Debian's git, built with gnutls, takes it from the environment only)
  const sslEnv: Record<string, string> = tls ? { GIT_SSL_CAINFO: tls.ca } : {};
  const pushAuth = opts.token !== undefined ? `test:${encodeURIComponent(opts.token)}@` : '';

  const createRepo = async (name: string): Promise<RemoteRepo> => {
    const dir = join(root, `${name}.git`);
    await mkdir(dirname(dir), { recursive: true });
    await git(['init', '--bare', '--quiet', dir]);
    await git(['config', 'http.receivepack', 'true'], dir);
    const url = `${baseUrl}/${name}.git`;
    const pushUrl = `${scheme}://${pushAuth}127.0.0.1:${port}/${name}.git`;
    const work = join(top, 'work', name);
    await git(['init', '--quiet', work]);

    const head = (branch = 'main') => git(['rev-parse', `refs/heads/${branch}`], dir);

    const commit = async (files: Record<string, string | null>, o: CommitOptions = {}): Promise<string> => {
      const branch = o.branch ?? 'main';
      const author = o.author ?? { name: 'Test Author', email: 'author@example.com' };
      // Start from the remote's branch if it exists, else from an empty tree.
      const exists = await head(branch).then(
        () => true,
        () => false,
      );
      if (exists) {
        await git(['-c', 'credential.helper=', 'fetch', '--quiet', pushUrl, `refs/heads/${branch}`], work, sslEnv);
        await git(['checkout', '--quiet', '--force', '-B', branch, 'FETCH_HEAD'], work);
      } else {
        await git(['checkout', '--quiet', '--orphan', `new-${branch}-${Date.now()}`], work);
        await git(['rm', '-r', '--quiet', '--cached', '--ignore-unmatch', '.'], work);
        await git(['clean', '-fdq'], work);
      }
      for (const [file, content] of Object.entries(files)) {
        const path = join(work, file);
        if (content === null) {
          await unlink(path);
        } else {
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, content);
        }
      }
      await git(['add', '-A'], work);
      await git(
        ['-c', `user.name=${author.name}`, '-c', `user.email=${author.email}`, 'commit', '--quiet', '--allow-empty', '-m', o.message ?? 'test commit'],
        work,
      );
      await git(['-c', 'credential.helper=', 'push', '--quiet', pushUrl, `HEAD:refs/heads/${branch}`], work, sslEnv);
      return git(['rev-parse', 'HEAD'], work);
    };

    return { name, url, dir, commit, head };
  };

  return {
    baseUrl,
    root,
    createRepo,
    requests: (repoName) => ({ ...(counts.get(repoName) ?? { refs: 0, 'upload-pack': 0, 'receive-pack': 0 }) }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(top, { recursive: true, force: true });
    },
  };
}
