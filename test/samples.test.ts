// Compose files as people write them: well-known public samples, unchanged, deployed by
// berth on a harness daemon. Images the tests build locally stand in for the registry images they
// name (postgres, python, nginx, traefik/whoami); the web app is built by berth from the repo.
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { execIn, removeContainers, uniqueName, waitFor } from './harness/docker.ts';
import { buildImage, IMAGES } from './harness/images.ts';
import { testEngine, testHosts, writeConfig } from './harness/berth.ts';
import Docker from 'dockerode';
import type { Engine } from '../src/engine/engine.ts';

// Stand-ins: busybox images answering to the public names, behaving enough like them for the samples.
const TRAP = `trap 'exit 0' TERM INT`;
const STAND_INS: Record<string, Record<string, string>> = {
  // reads its password from POSTGRES_PASSWORD_FILE like the real one, refuses to start without it
  'postgres:16-alpine': {
    Dockerfile: `FROM ${IMAGES.base}
RUN echo 'postgres:x:70:70::/var/lib/postgresql:/bin/sh' >> /etc/passwd && mkdir -p /var/lib/postgresql/data /www && chown -R 70 /var/lib/postgresql /www
COPY pg_isready /usr/local/bin/pg_isready
RUN chmod +x /usr/local/bin/pg_isready
CMD ["sh", "-c", "${TRAP}; test -s \\"$POSTGRES_PASSWORD_FILE\\" || { echo 'no password file' >&2; exit 1; }; echo ready > /www/index.html; httpd -f -p 5432 -h /www & wait"]
`,
    pg_isready: '#!/bin/sh\nwget -q -O- http://127.0.0.1:5432/ >/dev/null\n',
  },
  // python3 app.py serves what the Flask app's handler returns, on port 8000; pip3 installs nothing
  'python:3.10-alpine': {
    Dockerfile: `FROM ${IMAGES.base}
COPY python3 pip3 /usr/local/bin/
RUN chmod +x /usr/local/bin/python3 /usr/local/bin/pip3
`,
    python3: `#!/bin/sh\n${TRAP}\nmkdir -p /tmp/www\nsed -n "s/.*return '\\(.*\\)'.*/\\1/p" "$1" > /tmp/www/index.html\nhttpd -f -p 8000 -h /tmp/www & wait\n`,
    pip3: '#!/bin/sh\nexit 0\n',
  },
  // whoami answers with its --name
  'traefik/whoami:v1.10': {
    Dockerfile: `FROM ${IMAGES.base}
COPY whoami /whoami
RUN chmod +x /whoami
ENTRYPOINT ["/whoami"]
`,
    whoami: `#!/bin/sh\n${TRAP}\nmkdir -p /www\necho "Name: $2" > /www/index.html\nhttpd -f -p 80 -h /www & wait\n`,
  },
  // nginx proxies by the location / proxy_pass lines of /etc/nginx/conf.d/default.conf
  'nginx:1.25-alpine': {
    Dockerfile: `FROM ${IMAGES.base}
COPY proxy.sh /proxy.sh
RUN chmod +x /proxy.sh
CMD ["sh", "-c", "${TRAP}; nc -ll -p 80 -e /proxy.sh & wait"]
`,
    'proxy.sh': `#!/bin/sh
read -r method path proto
while read -r line; do [ -z "$(echo "$line" | tr -d '\\r')" ] && break; done
url=$(awk -v path="$path" '
  $1 == "location" { loc = $2 }
  $1 == "proxy_pass" { u = $2; sub(/;$/, "", u)
    if (index(path, loc) == 1 && length(loc) > best) { best = length(loc); out = (u ~ /\\/$/) ? u substr(path, length(loc) + 1) : u path } }
  END { print out }' /etc/nginx/conf.d/default.conf)
if [ -n "$url" ] && body=$(wget -q -O- "$url"); then printf 'HTTP/1.0 200 OK\\r\\n\\r\\n%s\\n' "$body"; else printf 'HTTP/1.0 502 Bad Gateway\\r\\n\\r\\n'; fi
`,
  },
};

// The samples, as their authors wrote them (awesome-compose style).
const POSTGRES = {
  'compose.yaml': `services:
  db:
    image: postgres:16-alpine
    restart: always
    user: postgres
    secrets:
      - db-password
    volumes:
      - db-data:/var/lib/postgresql/data
    environment:
      - POSTGRES_DB=example
      - POSTGRES_PASSWORD_FILE=/run/secrets/db-password
    expose:
      - 5432
    healthcheck:
      test: [ "CMD", "pg_isready" ]
      interval: 1s
      timeout: 5s
      retries: 5
volumes:
  db-data:
secrets:
  db-password:
    file: db/password.txt
`,
  'db/password.txt': 'correct-horse-battery-staple\n',
};

const flaskApp = (greeting: string) => `from flask import Flask
app = Flask(__name__)

@app.route('/')
def hello():
    return '${greeting}'

if __name__ == '__main__':
    app.run(host='0.0.0.0', port=8000)
`;

const FLASK = (port: number) => ({
  'compose.yaml': `services:
  web:
    build:
      context: app
      target: builder
    # flask requires SIGINT to stop gracefully
    # (default stop signal from Compose is SIGTERM)
    stop_signal: SIGINT
    ports:
      - '${port}:8000'
`,
  'app/Dockerfile': `# syntax=docker/dockerfile:1.4
FROM python:3.10-alpine AS builder

WORKDIR /app

COPY requirements.txt /app
RUN pip3 install -r requirements.txt

COPY . /app

ENTRYPOINT ["python3"]
CMD ["app.py"]
`,
  'app/requirements.txt': 'Flask\n',
  'app/app.py': flaskApp('Hello World!'),
  'app/.dockerignore': '*.md\n',
  'app/README.md': 'not part of the image\n',
});

const PROXY = (port: number) => ({
  'compose.yaml': `services:
  proxy:
    image: nginx:1.25-alpine
    ports:
      - "${port}:80"
    volumes:
      - ./nginx/default.conf:/etc/nginx/conf.d/default.conf:ro
    depends_on:
      - app1
      - app2
  app1:
    image: traefik/whoami:v1.10
    command: --name app1
  app2:
    image: traefik/whoami:v1.10
    command: --name app2
`,
  'nginx/default.conf': `server {
    listen 80;
    location /app1/ {
        proxy_pass http://app1:80/;
    }
    location /app2/ {
        proxy_pass http://app2:80/;
    }
}
`,
});

const prefixed = (folder: string, files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([k, v]) => [`${folder}/${k}`, v]));

let server: GitServer;
let docker: Dockerode;
let address: string;

beforeAll(async () => {
  server = await startGitServer();
  const d = inject('dockers')[2];
  docker = new Docker({ socketPath: d.socketPath });
  address = d.address;
  await Promise.all(
    Object.entries(STAND_INS).map(([image, files]) =>
      docker
        .getImage(image)
        .inspect()
        .catch(() => buildImage(docker, image, files)),
    ),
  );
});
afterAll(async () => {
  await server?.close();
});

const get = async (url: string) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return `${res.status} ${(await res.text()).trim()}`;
};

describe('public Compose samples, unchanged', () => {
  let repo: RemoteRepo;
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  const id = uniqueName('s').replaceAll('-', '');
  const [pg, flask, proxy] = ['pg', 'flask', 'proxy'].map((s) => `${s}${id}`);
  const [flaskPort, proxyPort] = [20000 + (process.pid % 1000) * 2, 20001 + (process.pid % 1000) * 2];

  const containers = async (stack: string) =>
    new Map((await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } })).map((c) => [c.Labels['berth.service'], c]));
  const sync = async () => {
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass.error).toBeUndefined();
    return new Map(pass.stacks.map((s) => [s.stack, s]));
  };

  beforeAll(async () => {
    repo = await server.createRepo(uniqueName('samples'));
    const d = inject('dockers')[2];
    cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts: [{ name: 'd3', endpoint: `unix://${d.socketPath}` }] });
    engine = testEngine(cfg.file);
    await repo.commit({ ...prefixed(pg, POSTGRES), ...prefixed(flask, FLASK(flaskPort)), ...prefixed(proxy, PROXY(proxyPort)) });
  });
  afterAll(async () => {
    engine?.close();
    for (const s of [pg, flask, proxy]) await removeContainers(docker, { 'berth.stack': s });
    cfg?.cleanup();
  });

  it('deploys a database with a secret file, a web app built from the repo, and a reverse proxy in front of two services', async () => {
    const outcomes = await sync();
    for (const s of [pg, flask, proxy]) expect([s, outcomes.get(s)?.status, outcomes.get(s)?.errors]).toEqual([s, 'synced', undefined]);

    // the database got its password as a file, readable by its user, and is healthy
    const db = docker.getContainer((await containers(pg)).get('db')!.Id);
    expect(await execIn(db, ['cat', '/run/secrets/db-password'])).toEqual({ output: 'correct-horse-battery-staple\n', exitCode: 0 });
    expect((await execIn(db, ['stat', '-c', '%a %u', '/run/secrets/db-password'])).output.trim()).toBe('444 0');
    expect((await execIn(db, ['id', '-un'])).output.trim()).toBe('postgres');
    expect((await db.inspect()).State.Health?.Status).toBe('healthy');
    // the secret's value is nowhere in the container's config
    expect(JSON.stringify(await db.inspect())).not.toContain('correct-horse');

    // the web app was built on the host from the commit's tree, named by its build's hash
    const web = (await containers(flask)).get('web')!;
    expect(web.Image).toMatch(new RegExp(`^${flask}-web:berth-[0-9a-f]{12}$`));
    const image = await docker.getImage(web.Image).inspect();
    expect(image.Config.Labels?.['berth.build-hash']).toMatch(/^[0-9a-f]{64}$/);
    expect(await get(`http://${address}:${flaskPort}/`)).toBe('200 Hello World!');
    expect((await execIn(docker.getContainer(web.Id), ['ls', '/app'])).output.split(/\s+/).sort()).toEqual(['', 'Dockerfile', 'app.py', 'requirements.txt']);
    expect(((await docker.getContainer(web.Id).inspect()).Config as { StopSignal?: string }).StopSignal).toBe('SIGINT');

    // the proxy's config file came from the repo; it reaches both services by their names
    expect(await get(`http://${address}:${proxyPort}/app1/`)).toBe('200 Name: app1');
    expect(await get(`http://${address}:${proxyPort}/app2/`)).toBe('200 Name: app2');
  });

  it('never rebuilds an unchanged context, rebuilds and rolls a changed one, and keeps the old one when a build fails', async () => {
    const before = (await containers(flask)).get('web')!;
    // a change elsewhere (the proxy's config) leaves the web app's image and container alone
    await repo.commit({ [`${proxy}/nginx/default.conf`]: PROXY(proxyPort)['nginx/default.conf'].replace('/app2/ {', '/two/ {') });
    const second = await sync();
    expect(second.get(flask)?.status).toBe('unchanged');
    expect(second.get(proxy)?.status).toBe('synced');
    expect((await containers(flask)).get('web')!.Id).toBe(before.Id);
    expect(await get(`http://${address}:${proxyPort}/two/`)).toBe('200 Name: app2');
    const builds = async () => (await docker.listImages({ filters: { label: [`berth.stack=${flask}`] } })).length;
    expect(await builds()).toBe(1);
    // a README excluded by .dockerignore changes nothing either
    await repo.commit({ [`${flask}/app/README.md`]: 'edited\n' });
    expect((await sync()).get(flask)?.status).toBe('unchanged');

    // the app's code changes: built again, and the service rolls
    await repo.commit({ [`${flask}/app/app.py`]: flaskApp('Hello again!') });
    expect((await sync()).get(flask)?.status).toBe('synced');
    const after = (await containers(flask)).get('web')!;
    expect(after.Image).not.toBe(before.Image);
    expect(await builds()).toBe(2);
    // no health check: the new container runs, and answers once its server listens
    const answer = () => get(`http://${address}:${flaskPort}/`).catch((err: unknown) => String(err));
    await waitFor(async () => ((await answer()) === '200 Hello again!' ? true : undefined), { what: 'the rebuilt app to answer' }).catch(
      async (err: unknown) => {
        throw new Error(`${(err as Error).message}; it answers: ${await answer()}`);
      },
    );

    // a build that fails: the sync fails with the daemon's words, audited; the app keeps running
    await repo.commit({
      [`${flask}/app/requirements.txt`]: 'Flask\n',
      [`${flask}/app/Dockerfile`]: 'FROM python:3.10-alpine AS builder\nRUN echo installing; exit 3\n',
    });
    const failed = (await sync()).get(flask);
    expect(failed?.status).toBe('failed');
    expect(failed?.errors?.join('\n')).toMatch(/^web: build web on d3: .*returned a non-zero code: 3/);
    const row = engine.audit.query({ stack: flask, kind: 'sync.failed' }).rows[0];
    expect(row.message).toMatch(/returned a non-zero code: 3/);
    expect((await containers(flask)).get('web')!.Id).toBe(after.Id);
    expect(await get(`http://${address}:${flaskPort}/`)).toBe('200 Hello again!');
  });
});

describe('container_name', () => {
  let repo: RemoteRepo;
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  const stack = `cn${uniqueName('').replaceAll('-', '')}`;
  const name = uniqueName('fixed');

  beforeAll(async () => {
    repo = await server.createRepo(uniqueName('named'));
    const d = inject('dockers')[2];
    cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts: [{ name: 'd3', endpoint: `unix://${d.socketPath}` }] });
    engine = testEngine(cfg.file);
  });
  afterAll(async () => {
    engine?.close();
    await removeContainers(docker, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  const compose = (order: string, mode: string) => `services:
  web:
    image: ${IMAGES.webV1}
    container_name: ${name}
    environment: { MODE: ${mode} }
    deploy:
      update_config: { order: ${order} }
`;

  it('keeps the fixed name through rolling updates, stop-first and start-first', async () => {
    const ids: string[] = [];
    for (const [order, mode] of [
      ['stop-first', 'a'],
      ['stop-first', 'b'],
      ['start-first', 'c'],
    ]) {
      await repo.commit({ [`${stack}/compose.yaml`]: compose(order, mode) });
      const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
      expect(pass.stacks.map((s) => [s.status, s.errors])).toEqual([['synced', undefined]]);
      const c = await docker.getContainer(name).inspect();
      expect(c.Config.Env).toContain(`MODE=${mode}`);
      expect(c.Config.Labels['berth.stack']).toBe(stack);
      ids.push(c.Id);
    }
    expect(new Set(ids).size).toBe(3);
    const list = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
    expect(list.map((c) => c.Names[0])).toEqual([`/${name}`]);
  });

  it('refuses more than one replica with a fixed name, naming file, line and key', async () => {
    await repo.commit({ [`${stack}/compose.yaml`]: compose('stop-first', 'd').replace('    deploy:\n', '    deploy:\n      replicas: 2\n') });
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass.stacks[0].status).toBe('invalid');
    expect(pass.stacks[0].errors).toEqual([
      `${stack}/compose.yaml:4:21: services.web.container_name: '${name}' can name one container, but deploy.replicas is 2: drop container_name or use one replica`,
    ]);
    expect((await docker.getContainer(name).inspect()).Config.Env).toContain('MODE=c');
  });
});

describe('build on several hosts', () => {
  let repo: RemoteRepo;
  let engine: Engine;
  let cfg: ReturnType<typeof writeConfig>;
  const stack = `bh${uniqueName('').replaceAll('-', '')}`;
  const daemons = () =>
    inject('dockers')
      .slice(0, 2)
      .map((d) => new Docker({ socketPath: d.socketPath }));

  beforeAll(async () => {
    repo = await server.createRepo(uniqueName('buildhosts'));
    cfg = writeConfig([{ name: repo.name, url: repo.url }], { hosts: testHosts().slice(0, 2) });
    engine = testEngine(cfg.file);
  });
  afterAll(async () => {
    engine?.close();
    for (const d of daemons()) await removeContainers(d, { 'berth.stack': stack });
    cfg?.cleanup();
  });

  it('builds the image on each host that runs the service, from the same commit', async () => {
    await repo.commit({
      [`${stack}/compose.yaml`]: 'services:\n  tool:\n    build: .\n    deploy: { mode: global }\n',
      [`${stack}/Dockerfile`]: `FROM ${IMAGES.base}\nCOPY hello.txt /hello.txt\nCMD ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]\n`,
      [`${stack}/hello.txt`]: 'built from git\n',
    });
    const pass = await engine.syncRepo(repo.name, { trigger: 'manual', actor: 'test' });
    expect(pass.stacks.map((x) => [x.status, x.errors])).toEqual([['synced', undefined]]);
    for (const d of daemons()) {
      const [c] = await d.listContainers({ filters: { label: [`berth.stack=${stack}`] } });
      expect(c.Image).toMatch(new RegExp(`^${stack}-tool:berth-[0-9a-f]{12}$`));
      expect((await execIn(d.getContainer(c.Id), ['cat', '/hello.txt'])).output).toBe('built from git\n');
    }
  });
});
