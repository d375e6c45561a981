/**
 * The Docker Engine API of a simulated host over HTTP: the routes berth uses (found by reading
 * src/observe and src/apply, and by recording what berth asks a real daemon), each onto SimHost.
 * Routing is find-my-way's (Fastify's router); an image's name holds slashes, so its routes take
 * the rest of the path and tell the operation by its end. Every request is counted by its route;
 * one no route matches answers 404 with Docker's JSON `{message}` and is counted apart, so that
 * what berth asks and the simulator lacks shows.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { posix } from 'node:path';
import Router from 'find-my-way';
import { extract, pack } from 'tar-stream';
import { pathOf } from './calls.ts';
import { API_VERSION, ApiError, fakeDigest, normalRef, SERVER_VERSION, type SimContainer, type SimHost } from './host.ts';

type Json = Record<string, unknown>;

interface Call {
  host: SimHost;
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  body: Buffer;
}

type Handler = (call: Call) => void | Promise<void>;

const HEADERS = {
  'Api-Version': API_VERSION,
  'Docker-Experimental': 'false',
  Ostype: 'linux',
  Server: `Docker/${SERVER_VERSION} (linux)`,
};

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status, HEADERS);
    res.end();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...HEADERS, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Docker's filters query: `{"label":["a=b"]}`, or the older `{"label":{"a=b":true}}`. */
function filtersOf(query: URLSearchParams): Record<string, string[]> {
  const raw = query.get('filters');
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `invalid filter: ${raw}`);
  }
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries((parsed ?? {}) as Record<string, unknown>)) {
    out[k] = Array.isArray(v) ? v.map(String) : Object.keys((v ?? {}) as object);
  }
  return out;
}

const truthy = (v: string | null) => v === '1' || v === 'true' || v === 'True';

function json(body: Buffer): Json {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString()) as Json;
  } catch {
    throw new ApiError(400, 'invalid JSON body');
  }
}

/** Docker's `since`/`until`: seconds since the epoch, with a fraction, in ms. */
const secondsParam = (v: string | null) => (v === null || v === '' ? undefined : Number(v) * 1000);

/** The routes, each with the template it is counted by. */
const ROUTES: Array<[string, string, Handler]> = [
  ['GET', '/_ping', ({ res }) => pong(res)],
  ['HEAD', '/_ping', ({ res }) => pong(res)],
  ['GET', '/info', ({ host, res }) => send(res, 200, host.info())],
  ['GET', '/version', ({ host, res }) => send(res, 200, host.version())],
  [
    'GET',
    '/events',
    ({ host, res, query }) => {
      res.writeHead(200, { ...HEADERS, 'Content-Type': 'application/json' });
      res.flushHeaders();
      host.subscribe(res, filtersOf(query), secondsParam(query.get('since')), secondsParam(query.get('until')));
    },
  ],

  [
    'GET',
    '/containers/json',
    ({ host, res, query }) => {
      const now = Date.now();
      send(
        res,
        200,
        host.listContainers(truthy(query.get('all')), filtersOf(query)).map((c) => host.summaryJson(c, now)),
      );
    },
  ],
  [
    'POST',
    '/containers/create',
    ({ host, res, query, body }) => {
      const b = json(body);
      const c = host.createContainer(query.get('name') ?? (b.name as string | undefined), b);
      send(res, 201, { Id: c.id, Warnings: [] });
    },
  ],
  ['GET', '/containers/:id/json', ({ host, res, params }) => send(res, 200, host.inspectJson(host.container(params.id!)))],
  [
    'POST',
    '/containers/:id/start',
    ({ host, res, params }) => {
      host.startContainer(host.container(params.id!));
      send(res, 204);
    },
  ],
  [
    'POST',
    '/containers/:id/stop',
    ({ host, res, params, query }) => {
      host.stopContainer(host.container(params.id!), query.get('signal') ?? undefined);
      send(res, 204);
    },
  ],
  [
    'POST',
    '/containers/:id/restart',
    ({ host, res, params }) => {
      const c = host.container(params.id!);
      if (c.state === 'running') host.stopContainer(c);
      host.startContainer(c);
      send(res, 204);
    },
  ],
  [
    'POST',
    '/containers/:id/kill',
    ({ host, res, params, query }) => {
      host.killContainer(host.container(params.id!), query.get('signal') ?? undefined);
      send(res, 204);
    },
  ],
  [
    'POST',
    '/containers/:id/rename',
    ({ host, res, params, query }) => {
      host.renameContainer(host.container(params.id!), query.get('name') ?? '');
      send(res, 204);
    },
  ],
  [
    'POST',
    '/containers/:id/wait',
    async ({ host, res, params }) => {
      const code = await host.waitContainer(host.container(params.id!));
      send(res, 200, { Error: null, StatusCode: code });
    },
  ],
  [
    'DELETE',
    '/containers/:id',
    ({ host, res, params, query }) => {
      host.removeContainer(host.container(params.id!), { force: truthy(query.get('force')), volumes: truthy(query.get('v')) });
      send(res, 204);
    },
  ],
  [
    'GET',
    '/containers/:id/logs',
    ({ host, res, params, query }) => {
      const c = host.container(params.id!);
      // the simulated processes write nothing: an empty stream (kept open with follow while it runs)
      res.writeHead(200, { ...HEADERS, 'Content-Type': 'application/vnd.docker.raw-stream' });
      if (truthy(query.get('follow')) && c.state === 'running') {
        res.flushHeaders();
        const done = () => res.end();
        c.waiters.add(done);
        res.on('close', () => c.waiters.delete(done));
      } else res.end();
    },
  ],
  ['GET', '/containers/:id/stats', ({ host, res, params }) => send(res, 200, statsOf(host.container(params.id!)))],
  ['PUT', '/containers/:id/archive', putArchive],
  ['GET', '/containers/:id/archive', getArchive],
  ['HEAD', '/containers/:id/archive', getArchive],

  [
    'GET',
    '/networks',
    ({ host, res, query }) =>
      send(
        res,
        200,
        host.listNetworks(filtersOf(query)).map((n) => host.networkJson(n, false)),
      ),
  ],
  [
    'POST',
    '/networks/create',
    ({ host, res, body }) => {
      const n = host.createNetwork(json(body));
      send(res, 201, { Id: n.id, Warning: '' });
    },
  ],
  ['GET', '/networks/:id', ({ host, res, params }) => send(res, 200, host.networkJson(host.network(params.id!), true))],
  [
    'DELETE',
    '/networks/:id',
    ({ host, res, params }) => {
      host.removeNetwork(host.network(params.id!));
      send(res, 204);
    },
  ],
  [
    'POST',
    '/networks/:id/connect',
    ({ host, res, params, body }) => {
      const b = json(body);
      host.connect(host.network(params.id!), String(b.Container ?? ''), b.EndpointConfig as Json | undefined);
      send(res, 200, {});
    },
  ],
  [
    'POST',
    '/networks/:id/disconnect',
    ({ host, res, params, body }) => {
      host.disconnect(host.network(params.id!), String(json(body).Container ?? ''));
      send(res, 200, {});
    },
  ],

  ['GET', '/volumes', ({ host, res, query }) => send(res, 200, { Volumes: host.listVolumes(filtersOf(query)).map((v) => host.volumeJson(v)), Warnings: null })],
  ['POST', '/volumes/create', ({ host, res, body }) => send(res, 201, host.volumeJson(host.createVolume(json(body))))],
  ['GET', '/volumes/:name', ({ host, res, params }) => send(res, 200, host.volumeJson(host.volume(params.name!)))],
  [
    'DELETE',
    '/volumes/:name',
    ({ host, res, params }) => {
      host.removeVolume(host.volume(params.name!));
      send(res, 204);
    },
  ],

  [
    'GET',
    '/images/json',
    ({ host, res, query }) => {
      const filters = filtersOf(query);
      const label = filters.label ?? [];
      const images = [...host.images.values()].filter((i) =>
        label.every((l) => {
          const eq = l.indexOf('=');
          const labels = i.config.Labels ?? {};
          return eq < 0 ? l in labels : labels[l.slice(0, eq)] === l.slice(eq + 1);
        }),
      );
      send(
        res,
        200,
        images.map((i) => host.imageSummary(i)),
      );
    },
  ],
  ['POST', '/images/create', pull],
  ['POST', '/build', build],
  ['GET', '/images/*', imageOp],
  ['POST', '/images/*', imageOp],
  ['DELETE', '/images/*', imageOp],
  ['GET', '/distribution/*', distribution],
];

function pong(res: ServerResponse): void {
  res.writeHead(200, { ...HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache' });
  res.end('OK');
}

/** A pull: every reference is found (bench/sim/README.md); the progress is streamed as Docker streams it. */
function pull({ host, res, query }: Call): void {
  const from = query.get('fromImage') ?? '';
  const tag = query.get('tag');
  const ref = from.includes('@') || !tag ? from : `${from}:${tag}`;
  host.pull(ref);
  res.writeHead(200, { ...HEADERS, 'Content-Type': 'application/json' });
  const name = normalRef(ref);
  const lines = [
    { status: `Pulling from ${name.replace(/:[^:/]*$/, '')}`, id: name.split(':').at(-1) },
    { status: `Digest: ${fakeDigest(ref)}` },
    { status: `Status: Downloaded newer image for ${name}` },
  ];
  res.end(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

/** A build: the context is read and dropped; the image made has the default config, the build's labels and its tags. */
async function build({ host, res, query }: Call): Promise<void> {
  const tags = query.getAll('t');
  const labels = query.get('labels') ? (JSON.parse(query.get('labels')!) as Record<string, string>) : {};
  const [first, ...more] = tags.length ? tags : [`sim-build-${Date.now()}`];
  const image = host.addImage({
    ref: first!,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: null, Labels: labels },
  });
  for (const t of more) host.tagImage(first!, t.replace(/:[^:/]*$/, ''), t.includes(':') ? t.split(':').at(-1)! : 'latest');
  res.writeHead(200, { ...HEADERS, 'Content-Type': 'application/json' });
  const short = image.id.slice(7, 19);
  const lines = [
    { stream: 'Step 1/1 : FROM scratch (simulated build)\n' },
    { aux: { ID: image.id } },
    { stream: `Successfully built ${short}\n` },
    ...tags.map((t) => ({ stream: `Successfully tagged ${t}\n` })),
  ];
  res.end(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

/** `/images/NAME/json`, `/images/NAME/tag`, `DELETE /images/NAME`: the name holds slashes, the operation is the path's end. */
function imageOp({ host, req, res, params, query }: Call): void {
  const rest = params['*'] ?? '';
  if (req.method === 'GET' && rest.endsWith('/json')) return send(res, 200, host.imageJson(host.image(rest.slice(0, -'/json'.length))));
  if (req.method === 'POST' && rest.endsWith('/tag')) {
    host.tagImage(rest.slice(0, -'/tag'.length), query.get('repo') ?? '', query.get('tag') ?? 'latest');
    return send(res, 201);
  }
  if (req.method === 'DELETE') return send(res, 200, host.removeImage(rest));
  throw new NotFound();
}

/** The registry's answer for an image, asked through the daemon: the fake digest every host gives for that reference. */
function distribution({ res, params }: Call): void {
  const rest = params['*'] ?? '';
  if (!rest.endsWith('/json')) throw new NotFound();
  const ref = rest.slice(0, -'/json'.length);
  send(res, 200, {
    Descriptor: { mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', digest: fakeDigest(ref), size: 1165 },
    Platforms: [{ architecture: 'amd64', os: 'linux' }],
  });
}

async function putArchive({ host, res, params, query, body }: Call): Promise<void> {
  const c = host.container(params.id!);
  const base = query.get('path') ?? '/';
  const entries = extract();
  const done = (async () => {
    for await (const entry of entries) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const h = entry.header;
      if (h.type === 'file') {
        c.files.set(posix.join(base, h.name), { mode: h.mode ?? 0o644, uid: h.uid ?? 0, gid: h.gid ?? 0, content: Buffer.concat(chunks), mtime: Date.now() });
      }
    }
  })();
  entries.end(body);
  await done;
  send(res, 200, {});
}

async function getArchive({ host, req, res, params, query }: Call): Promise<void> {
  const c: SimContainer = host.container(params.id!);
  const path = posix.normalize(query.get('path') ?? '/');
  const file = c.files.get(path);
  const under = [...c.files].filter(([p]) => p.startsWith(`${path.replace(/\/$/, '')}/`));
  if (!file && under.length === 0) throw new ApiError(404, `Could not find the file ${path} in container ${c.name}`);
  const stat = {
    name: posix.basename(path),
    size: file?.content.length ?? 4096,
    mode: file ? file.mode : 0o20000000755,
    mtime: new Date(file?.mtime ?? Date.now()).toISOString(),
    linkTarget: '',
  };
  const headers = { ...HEADERS, 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(stat)).toString('base64') };
  if (req.method === 'HEAD') {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const tar = pack();
  const entries: Array<[string, NonNullable<typeof file>]> = file
    ? [[posix.basename(path), file]]
    : under.map(([p, f]) => [posix.join(posix.basename(path), p.slice(path.length)), f]);
  for (const [name, f] of entries) tar.entry({ name, mode: f.mode, uid: f.uid, gid: f.gid, mtime: new Date(f.mtime) }, f.content);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  res.writeHead(200, headers);
  res.end(Buffer.concat(chunks));
}

/** One sample of a container's resources: figures that stay the same (the simulated processes use nothing). */
function statsOf(c: SimContainer): Json {
  const now = new Date().toISOString();
  const cpu = { cpu_usage: { total_usage: 1_000_000, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 1_000_000_000, online_cpus: 1 };
  return {
    read: now,
    preread: now,
    id: c.id,
    name: `/${c.name}`,
    pids_stats: { current: c.state === 'running' ? 1 : 0 },
    cpu_stats: cpu,
    precpu_stats: cpu,
    memory_stats: c.state === 'running' ? { usage: 1 << 20, limit: 8 * 2 ** 30, stats: { inactive_file: 0 } } : {},
    networks: { eth0: { rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0, rx_errors: 0, tx_errors: 0, rx_dropped: 0, tx_dropped: 0 } },
    blkio_stats: { io_service_bytes_recursive: [] },
  };
}

class NotFound extends Error {}

interface Store {
  template: string;
  handler: Handler;
}

const router = Router({ ignoreTrailingSlash: true, ignoreDuplicateSlashes: true });
for (const [method, path, handler] of ROUTES) {
  const template = `${method} ${path
    .replace(/:(\w+)/g, '{$1}')
    .replace('/images/*', '/images/{name}')
    .replace('/distribution/*', '/distribution/{name}/json')}`;
  router.on(method as Router.HTTPMethod, path, () => undefined, { template, handler } satisfies Store);
}

/** The template an image route is counted by: the operation named at its end. */
function imageTemplate(method: string, path: string): string {
  if (path.startsWith('/distribution/')) return `${method} /distribution/{name}/json`;
  const op = /\/(json|tag)$/.exec(path)?.[1];
  return `${method} /images/{name}${op && method !== 'DELETE' ? `/${op}` : ''}`;
}

/** Answers one request of `host`'s socket. */
export function handle(host: SimHost, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const path = pathOf(url);
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const found = router.find(req.method as Router.HTTPMethod, path);
  const notFound = () => {
    host.count(`${req.method} ${path}`, true);
    send(res, 404, { message: 'page not found' });
  };
  if (!found) {
    req.resume();
    return notFound();
  }
  const store = found.store as Store;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const params = found.params;
    const template = store.template.includes('/images/{name}') || store.template.includes('/distribution/') ? imageTemplate(req.method!, path) : store.template;
    const fail = (err: unknown) => {
      if (err instanceof NotFound) {
        host.count(template, false, -1); // counted as a gap instead
        return notFound();
      }
      if (res.headersSent) return res.destroy();
      if (err instanceof ApiError) return err.status === 304 ? send(res, 304) : send(res, err.status, { message: err.message });
      send(res, 500, { message: String((err as Error).message ?? err) });
    };
    try {
      host.count(template);
      const done = store.handler({ host, req, res, params, query, body: Buffer.concat(chunks) });
      if (done) done.catch(fail);
    } catch (err) {
      fail(err);
    }
  });
}
