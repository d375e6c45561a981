/**
 * Builds berth's container image, `berth:<version>` and `berth:latest`, from the top-level
 * Dockerfile on the Docker engine that the docker CLI talks to (the default socket, or DOCKER_HOST).
 * `npm run image` (node scripts/image.ts); README, "Run berth as a container".
 *
 * The Dockerfile's base (ARG NODE_IMAGE, the official Node image) comes from Docker Hub. Where no
 * registry answers (this project's machines reach the npm registry and Debian's mirrors only), a
 * stand-in is made once and kept by its tag: Debian bookworm's minimal system from Debian's
 * packages (mmdebstrap, as root), with this Node 24 (the npm `node` package's binary, which runs
 * this script) and npm from the npm registry, `berth-base/node:24-bookworm-slim`. The rule:
 * $BERTH_IMAGE_BASE when set; else the default when the engine has it or can pull it; else the
 * stand-in.
 *
 * The build needs no network: npm's cache for the lockfile is filled here, on the host, and goes
 * into the build context (npm-cache/), where the Dockerfile's `npm ci` finds every package. What
 * this keeps between runs is in $BERTH_IMAGE_CACHE (default ~/.cache/berth-image): Debian's
 * tarball, npm's package and that cache, so that an engine without the stand-in gets it again in
 * seconds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../src/paths.ts';

export interface ImageOptions {
  /** The docker CLI's environment (DOCKER_HOST, ...); default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Where progress goes, a line at a time; default: stdout. */
  log?: (line: string) => void;
  /** The base image; default: $BERTH_IMAGE_BASE, else the rule above. */
  base?: string;
  /** The folder kept between runs; default: $BERTH_IMAGE_CACHE, else ~/.cache/berth-image. */
  cacheDir?: string;
}

export interface BuiltImage {
  /** `berth:<version>`, `berth:latest` */
  tags: string[];
  /** The image's size as the engine counts it, base included (bytes). */
  size: number;
  /** The base image it was built on. */
  base: string;
  /** Whether that base is the stand-in made here. */
  standIn: boolean;
  version: string;
  revision: string;
  source: string;
}

const DOCKERFILE = join(ROOT, 'Dockerfile');
/** The base the Dockerfile names (ARG NODE_IMAGE=...). */
export const DEFAULT_BASE = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(DOCKERFILE, 'utf8'))?.[1] ?? 'node:24-bookworm-slim';
/** The stand-in for DEFAULT_BASE. */
export const STAND_IN = `berth-base/${DEFAULT_BASE}`;
/** Debian alone, imported from mmdebstrap's tarball: the stand-in's first layer. */
const DEBIAN_STAND_IN = 'berth-base/debian:bookworm-minbase';
/** How long `docker pull` of the default base may take to succeed or fail before the stand-in is used. */
const PULL_TIMEOUT_MS = 30_000;
/** npm for the stand-in (the build stage runs `npm ci`): the newest 11.x, as Node 24 ships. */
const NPM_SPEC = 'npm@11';
/**
 * Debian's minimal system as Debian's own slim images have it: without manual pages, docs (but
 * their copyright files) and translations; merged /usr set up by mmdebstrap's hook instead of the
 * usrmerge package, which would bring Perl.
 */
const MMDEBSTRAP_ARGS = [
  '--variant=minbase',
  '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
  ...['/usr/share/man/*', '/usr/share/doc/*', '/usr/share/locale/*', '/usr/share/info/*', '/usr/share/groff/*', '/usr/share/lintian/*'].map(
    (p) => `--dpkgopt=path-exclude=${p}`,
  ),
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
  '--dpkgopt=path-include=/usr/share/locale/locale.alias',
  'bookworm',
];

/** The stand-in's own Dockerfile: Node where the official image has it, and npm beside it. */
const standInDockerfile = (nodeVersion: string) => `FROM ${DEBIAN_STAND_IN}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
  && node --version && npm --version
ENV NODE_VERSION=${nodeVersion}
CMD ["node"]
`;

/** Builds berth's image (see the top of this file). */
export async function buildImage(options: ImageOptions = {}): Promise<BuiltImage> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const cacheDir = options.cacheDir ?? process.env.BERTH_IMAGE_CACHE ?? join(homedir(), '.cache', 'berth-image');
  mkdirSync(cacheDir, { recursive: true });
  const docker = (args: string[], o: RunOptions = {}) => run('docker', args, { env, ...o });

  const engine = await docker(['version', '--format', '{{.Server.Version}}']).catch((err: Error) => {
    throw new Error(`no Docker engine answers at ${env.DOCKER_HOST || 'the default socket'}: start one, or set DOCKER_HOST (${err.message.split('\n').pop()})`);
  });
  log(`image: Docker engine ${engine.trim()} at ${env.DOCKER_HOST || 'the default socket'}`);
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const revision = await gitRevision(log);
  const source = await sourceUrl();

  let base = options.base ?? (process.env.BERTH_IMAGE_BASE || undefined);
  let standIn = false;
  if (base) log(`image: base ${base} (given)`);
  else if (await hasImage(docker, DEFAULT_BASE)) base = DEFAULT_BASE;
  else if (await pulled(docker, DEFAULT_BASE, log)) base = DEFAULT_BASE;
  else {
    base = STAND_IN;
    standIn = true;
    if (await hasImage(docker, STAND_IN)) log(`image: ${DEFAULT_BASE} cannot be pulled: using the stand-in ${STAND_IN} this engine has`);
    else {
      log(`image: ${DEFAULT_BASE} cannot be pulled: making the stand-in ${STAND_IN} from Debian's packages and the npm registry`);
      await makeStandIn(docker, cacheDir, log);
    }
  }

  const context = join(cacheDir, `context-${process.pid}`);
  rmSync(context, { recursive: true, force: true });
  try {
    const npmCache = await fillNpmCache(cacheDir, log);
    mkdirSync(context);
    copyFileSync(DOCKERFILE, join(context, 'Dockerfile'));
    copyFileSync(join(ROOT, '.dockerignore'), join(context, '.dockerignore'));
    for (const path of contextPaths()) {
      if (path !== 'npm-cache') cpSync(join(ROOT, path), join(context, path), { recursive: true, preserveTimestamps: true });
    }
    // hard links: the cache is big, and the context is in the same folder
    mkdirSync(join(context, 'npm-cache'));
    await run('cp', ['-al', join(npmCache, '_cacache'), join(context, 'npm-cache', '_cacache')]);

    const tags = [`berth:${version}`, 'berth:latest'];
    log(`image: building ${tags.join(', ')} on ${base} (revision ${revision.slice(0, 12)})`);
    const buildArgs = { NODE_IMAGE: base, VERSION: version, REVISION: revision, SOURCE: source };
    await docker(
      [
        'build',
        ...tags.flatMap((t) => ['-t', t]),
        ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
        // no network in the build: every package comes from the context's npm cache
        '--network',
        'none',
        context,
      ],
      { onLine: (line) => log(`  ${line}`) },
    );
    const size = Number((await docker(['image', 'inspect', '--format', '{{.Size}}', tags[0]])).trim());
    log(`image: ${tags.join(', ')}: ${(size / 1e6).toFixed(0)} MB (base ${base}${standIn ? ', the stand-in' : ''})`);
    return { tags, size, base, standIn, version, revision, source };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** What the build context holds besides the Dockerfile: the paths .dockerignore lets through (`!path`). */
export function contextPaths(): string[] {
  return readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).trim());
}

async function hasImage(docker: Docker, image: string): Promise<boolean> {
  return docker(['image', 'inspect', '--format', '{{.Id}}', image]).then(
    () => true,
    () => false,
  );
}

/** Whether `docker pull` gets the image within PULL_TIMEOUT_MS. */
async function pulled(docker: Docker, image: string, log: (line: string) => void): Promise<boolean> {
  log(`image: pulling ${image} (at most ${PULL_TIMEOUT_MS / 1000} s)`);
  return docker(['pull', '--quiet', image], { timeoutMs: PULL_TIMEOUT_MS }).then(
    () => true,
    (err: Error) => {
      log(`image: cannot pull ${image}: ${err.message.split('\n')[0]}`);
      return false;
    },
  );
}

/** Makes STAND_IN on the engine: Debian's tarball imported, then Node and npm added by a small build. */
async function makeStandIn(docker: Docker, cacheDir: string, log: (line: string) => void): Promise<void> {
  const tarball = join(cacheDir, 'debian-bookworm-minbase.tar');
  if (!existsSync(tarball)) {
    log(`image: mmdebstrap ${MMDEBSTRAP_ARGS.at(-1)} (Debian's minimal system, from Debian's mirror) into ${tarball}`);
    // mmdebstrap picks the format by the name's ending
    const partial = join(cacheDir, `debian-bookworm-minbase.${process.pid}.partial.tar`);
    try {
      await run('mmdebstrap', ['--quiet', ...MMDEBSTRAP_ARGS, partial], { missing: 'mmdebstrap is not installed: run scripts/setup.sh (as root)' });
      renameSync(partial, tarball);
    } finally {
      rmSync(partial, { force: true });
    }
  }
  if (!(await hasImage(docker, DEBIAN_STAND_IN))) {
    log(`image: importing ${tarball} as ${DEBIAN_STAND_IN}`);
    await docker(['import', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tarball, DEBIAN_STAND_IN]);
  }

  const npmTarball = await npmPackage(cacheDir);
  const context = join(cacheDir, `stand-in-${process.pid}`);
  rmSync(context, { recursive: true, force: true });
  mkdirSync(join(context, 'npm'), { recursive: true });
  try {
    // the Node running this script: the npm `node` package's binary (package.json), Node 24
    copyFileSync(realpathSync(process.execPath), join(context, 'node'));
    await run('tar', ['-xzf', npmTarball, '-C', join(context, 'npm'), '--strip-components=1']);
    writeFileSync(join(context, 'Dockerfile'), standInDockerfile(process.versions.node));
    log(`image: building ${STAND_IN}: Node ${process.versions.node}, ${npmTarball.split('/').pop()}`);
    await docker(['build', '--network', 'none', '-t', STAND_IN, context]);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** npm's package from the npm registry, kept in cacheDir. */
async function npmPackage(cacheDir: string): Promise<string> {
  const kept = readdirSync(cacheDir).find((f) => /^npm-\d+\.\d+\.\d+\.tgz$/.test(f));
  if (kept) return join(cacheDir, kept);
  const name = (await run('npm', ['pack', '--silent', '--pack-destination', cacheDir, NPM_SPEC])).trim().split('\n').pop()!;
  return join(cacheDir, name);
}

/**
 * A folder whose _cacache holds every package of package-lock.json, kept in cacheDir per lockfile
 * (an older lockfile's is removed): `npm ci` on the host into a throwaway folder fills it.
 */
async function fillNpmCache(cacheDir: string, log: (line: string) => void): Promise<string> {
  const lock = readFileSync(join(ROOT, 'package-lock.json'));
  const name = `npm-cache-${createHash('sha256').update(lock).digest('hex').slice(0, 16)}`;
  const dir = join(cacheDir, name);
  // older lockfiles' caches (not another run's partial one)
  for (const old of readdirSync(cacheDir).filter((f) => /^npm-cache-[0-9a-f]{16}$/.test(f) && f !== name))
    rmSync(join(cacheDir, old), { recursive: true, force: true });
  if (existsSync(join(dir, '_cacache'))) return dir;
  log(`image: filling npm's cache for package-lock.json in ${dir} (from the npm registry)`);
  const work = join(cacheDir, `npm-work-${process.pid}`);
  const partial = `${dir}.${process.pid}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  try {
    copyFileSync(join(ROOT, 'package.json'), join(work, 'package.json'));
    copyFileSync(join(ROOT, 'package-lock.json'), join(work, 'package-lock.json'));
    await run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--no-update-notifier', '--cache', partial], { cwd: work });
    rmSync(join(partial, '_logs'), { recursive: true, force: true });
    // another run may have filled it meanwhile: then that one is kept
    if (!existsSync(dir)) renameSync(partial, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(partial, { recursive: true, force: true });
  }
  return dir;
}

/** The commit checked out, for the revision label; a work tree with changes is said so. */
async function gitRevision(log: (line: string) => void): Promise<string> {
  const head = await run('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).catch(() => '');
  if (!head.trim()) {
    log('image: not a git checkout: revision unknown');
    return 'unknown';
  }
  const changes = await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT }).catch(() => '');
  if (changes.trim()) log(`image: the work tree has changes that commit ${head.trim().slice(0, 12)} does not: the revision label names that commit`);
  return head.trim();
}

/** Where the source is, for the source label: the origin remote (without credentials), else package.json's repository, else empty. */
async function sourceUrl(): Promise<string> {
  const remote = (await run('git', ['remote', 'get-url', 'origin'], { cwd: ROOT }).catch(() => '')).trim();
  if (remote) {
    try {
      const url = new URL(remote);
      url.username = '';
      url.password = '';
      return url.href;
    } catch {
      return remote.replace(/^[^@/]*@/, ''); // user@host:path
    }
  }
  const { repository } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { repository?: string | { url?: string } };
  return (typeof repository === 'string' ? repository : repository?.url) ?? '';
}

interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line of output (stdout and stderr) as it comes. */
  onLine?: (line: string) => void;
  /** Ends the command (SIGTERM) and fails after this long. */
  timeoutMs?: number;
  /** The message when the command is not installed. */
  missing?: string;
}
type Docker = (args: string[], o?: RunOptions) => Promise<string>;

/** Runs a command; resolves with its stdout, rejects with the last lines of its output. */
function run(cmd: string, args: string[], o: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    let partial = '';
    const take = (chunk: Buffer, isStdout: boolean) => {
      const text = chunk.toString();
      if (isStdout) stdout += text;
      output = (output + text).slice(-8000);
      if (!o.onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim()) o.onLine(line);
    };
    child.stdout.on('data', (c: Buffer) => take(c, true));
    child.stderr.on('data', (c: Buffer) => take(c, false));
    const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGTERM'), o.timeoutMs) : undefined;
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(err.code === 'ENOENT' ? (o.missing ?? `${cmd} is not installed`) : `${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (partial.trim()) o.onLine?.(partial);
      if (code === 0) resolve(stdout);
      else {
        const why = signal ? (o.timeoutMs ? `no answer within ${o.timeoutMs / 1000} s` : `killed by ${signal}`) : `exit ${code}`;
        reject(new Error(`${cmd} ${args[0]} failed (${why}): ${output.trim().split('\n').slice(-15).join('\n')}`));
      }
    });
  });
}

if (import.meta.main) {
  const t0 = performance.now();
  try {
    await buildImage();
    console.log(`image: done in ${Math.round((performance.now() - t0) / 1000)} s`);
  } catch (err) {
    console.error(`image: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
