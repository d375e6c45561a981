// build:, pull_policy, secrets:, configs:, container_name and repo files mounted by relative paths, rendered (pure).
import { describe, expect, test } from 'vitest';
import { formatError, renderSnapshot } from '../../src/render/index.ts';
import { fileMode } from '../../src/render/files.ts';
import { builtImageRef, imageRepository } from '../../src/render/build.ts';
import type { RenderOptions, RenderedStack } from '../../src/model.ts';

const commit = { sha: 'abc', author: 'a', email: 'a@x', message: 'm', time: 0 };

function renderApp(files: Record<string, string>, options: RenderOptions = {}, modes: Record<string, number> = {}) {
  const encoded = new Map(Object.entries(files).map(([path, text]) => [`app/${path}`, new TextEncoder().encode(text)]));
  const result = renderSnapshot({ repo: 'r', commit, files: encoded, modes: new Map(Object.entries(modes).map(([p, m]) => [`app/${p}`, m])) }, options);
  const [s] = result.stacks;
  return s.ok ? { stack: s.stack, errors: [] as string[] } : { stack: undefined, errors: s.errors.map(formatError) };
}

function stackOf(...args: Parameters<typeof renderApp>): RenderedStack {
  const { stack, errors } = renderApp(...args);
  expect(errors).toEqual([]);
  return stack!;
}

const web = (body: string, top = '') => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n${top}`;
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe('secrets and configs', () => {
  test('short and long forms, with Compose defaults for targets and modes', () => {
    const stack = stackOf(
      {
        'compose.yaml': web(
          'secrets: [db, { source: api, target: api-key, mode: 0400, uid: "1000", gid: "1000" }, { source: abs, target: /etc/abs, mode: "0o640" }]\nconfigs: [conf, { source: conf, target: etc/nginx.conf }]',
          'secrets:\n  db: { file: db.txt }\n  api: { environment: API_KEY }\n  abs: { external: true, name: shared-abs }\nconfigs:\n  conf: { content: "x=1" }\n',
        ),
        'db.txt': 'pw',
      },
      { environment: (n) => (n === 'API_KEY' ? 'k3y' : undefined), external: (n) => (n === 'shared-abs' ? new TextEncoder().encode('abs!') : undefined) },
    );
    const files = stack.services[0].files;
    expect(files.map(({ kind, source, target, mode, uid, gid }) => [kind, source, target, mode.toString(8), uid, gid])).toEqual([
      ['config', 'conf', '/conf', '444', 0, 0],
      ['secret', 'abs', '/etc/abs', '640', 0, 0],
      ['config', 'conf', '/etc/nginx.conf', '444', 0, 0],
      ['secret', 'api', '/run/secrets/api-key', '400', 1000, 1000],
      ['secret', 'db', '/run/secrets/db', '444', 0, 0],
    ]);
    expect(files.map((f) => text(stack.contents.get(f.hash)))).toEqual(['x=1', 'abs!', 'x=1', 'k3y', 'pw']);
    // the spec holds hashes, never the content
    expect(JSON.stringify(stack)).not.toMatch(/k3y|abs!|"pw"/);
  });

  test('a repo file or folder mounted by a relative path is copied in, executables keep their bit', () => {
    const stack = stackOf(
      {
        'compose.yaml': web('volumes: ["./conf/nginx.conf:/etc/nginx/nginx.conf:ro", "./scripts:/scripts", { type: bind, source: ., target: /repo }]'),
        'conf/nginx.conf': 'events {}',
        'scripts/run.sh': 'echo hi',
        'scripts/lib/x.txt': 'x',
      },
      {},
      { 'scripts/run.sh': 0o100755 },
    );
    const svc = stack.services[0];
    expect(svc.volumes).toEqual([]);
    expect(svc.files.filter((f) => !f.target.startsWith('/repo')).map((f) => [f.target, f.source, f.mode.toString(8)])).toEqual([
      ['/etc/nginx/nginx.conf', 'app/conf/nginx.conf', '644'],
      ['/scripts/lib/x.txt', 'app/scripts/lib/x.txt', '644'],
      ['/scripts/run.sh', 'app/scripts/run.sh', '755'],
    ]);
    expect(svc.files.filter((f) => f.target.startsWith('/repo')).map((f) => f.target)).toEqual([
      '/repo/compose.yaml',
      '/repo/conf/nginx.conf',
      '/repo/scripts/lib/x.txt',
      '/repo/scripts/run.sh',
    ]);
  });

  test('offline (berth validate): engine sources are not read, and not errors', () => {
    const { errors } = renderApp({ 'compose.yaml': web('secrets: [a, b]', 'secrets:\n  a: { environment: X }\n  b: { external: true }\n') });
    expect(errors).toEqual([]);
  });

  test.each<[string, string, string, string, RenderOptions?]>([
    [
      'an undeclared secret',
      'secrets: [db_pasword]',
      'secrets:\n  db_password: { file: x.txt }\n',
      "app/compose.yaml:4:15: services.web.secrets[0]: secret 'db_pasword' is not declared under the top-level secrets: (did you mean 'db_password'?)",
    ],
    [
      'two sources',
      'secrets: [s]',
      'secrets:\n  s: { file: x.txt, environment: X }\n',
      'app/compose.yaml:6:3: secrets.s: has file and environment: give exactly one of file:, environment: or external: true',
    ],
    [
      'no source',
      'configs: [c]',
      'configs:\n  c: { name: c }\n',
      'app/compose.yaml:6:3: configs.c: needs one source: file:, environment:, content: or external: true',
    ],
    [
      'an absolute file',
      'secrets: [s]',
      'secrets:\n  s: { file: /etc/shadow }\n',
      "app/compose.yaml:6:14: secrets.s.file: '/etc/shadow' must be a path relative to the compose file (berth reads it from the repository; for a file on the engine's machine use external: true and the repo's secrets folder)",
    ],
    [
      'a file outside the repository',
      'secrets: [s]',
      'secrets:\n  s: { file: ../../x }\n',
      "app/compose.yaml:6:14: secrets.s.file: '../../x' points outside the repository",
    ],
    [
      'a missing file',
      'secrets: [s]',
      'secrets:\n  s: { file: nope.txt }\n',
      'app/compose.yaml:6:14: secrets.s.file: app/nope.txt does not exist in the repository',
    ],
    [
      'a bad mode',
      'secrets: [{ source: s, mode: 999 }]',
      'secrets:\n  s: { file: x.txt }\n',
      "app/compose.yaml:4:34: services.web.secrets[0].mode: '999' is not a file mode (like 0440 or 0o440)",
    ],
    [
      'an environment variable the repo may not read',
      'secrets: [s]',
      'secrets:\n  s: { environment: HOME }\n',
      "app/compose.yaml:6:21: secrets.s.environment: the engine may not read 'HOME' from its environment, or it is not set: list it under the repo's secrets.environment in the engine config and set it",
      { environment: () => undefined },
    ],
    [
      'an external secret not in the folder',
      'secrets: [s]',
      'secrets:\n  s: { external: true }\n',
      "app/compose.yaml:6:3: secrets.s: external secret 's' is not in the repo's secrets folder (secrets.dir in the engine config)",
      { external: () => undefined },
    ],
  ])('%s', (_, body, top, expected, options) => {
    expect(renderApp({ 'compose.yaml': web(body, top), 'x.txt': 'x' }, options).errors).toEqual([expected]);
  });

  test('a read-only root file system takes files only into a volume', () => {
    const top = 'secrets:\n  s: { file: x.txt }\nvolumes:\n  run: {}\n';
    expect(renderApp({ 'compose.yaml': web('read_only: true\nsecrets: [s]', top), 'x.txt': 'x' }).errors).toEqual([
      'app/compose.yaml:4:16: services.web.read_only: secret s cannot be written to /run/secrets/s on a read-only root file system: put it under a volume mounted there, or drop read_only',
    ]);
    expect(renderApp({ 'compose.yaml': web('read_only: true\nsecrets: [s]\nvolumes: [run:/run/secrets]', top), 'x.txt': 'x' }).errors).toEqual([]);
  });

  test('a folder of the repository bind-mounted with a trailing slash is the folder', () => {
    const files = { 'conf/a.conf': 'a', 'conf/sub/b.conf': 'b' };
    const plain = stackOf({ 'compose.yaml': web('volumes: ["./conf:/etc/app"]'), ...files }).services[0].files;
    expect(plain.map((f) => f.target)).toEqual(['/etc/app/a.conf', '/etc/app/sub/b.conf']);
    expect(stackOf({ 'compose.yaml': web('volumes: ["./conf/:/etc/app"]'), ...files }).services[0].files).toEqual(plain);
  });

  test('file modes are octal, as Compose reads them', () => {
    expect([400, 440, 644, 755, '0440', '0o600', 0].map(fileMode)).toEqual([0o400, 0o440, 0o644, 0o755, 0o440, 0o600, 0]);
    expect([999, 288, '0x1', 'rw', 1.5].map(fileMode)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('build', () => {
  const app = (build: string, extra: Record<string, string> = {}) => ({
    'compose.yaml': `services:\n  web:\n${build.replace(/^/gm, '    ')}\n`,
    'web/Dockerfile': 'FROM base\nCOPY . /app\n',
    'web/app.py': 'print(1)',
    'web/.dockerignore': '*.md\n',
    'web/README.md': 'docs',
    ...extra,
  });

  test("the context is the commit's folder minus .dockerignore; the image is named by the build's hash", () => {
    const stack = stackOf(app('build: ./web'));
    const svc = stack.services[0];
    expect(svc.image).toBe('app-web');
    expect(svc.pullPolicy).toBe('build');
    expect(svc.build).toMatchObject({ context: 'app/web', dockerfile: 'Dockerfile', args: {}, noCache: false });
    expect(stack.contexts.get('web')?.map((f) => f.path)).toEqual(['.dockerignore', 'Dockerfile', 'app.py']);
    const same = stackOf(app('build: ./web', { 'web/README.md': 'other docs' })).services[0].build!.hash;
    expect(same).toBe(svc.build!.hash);
    const changed = stackOf(app('build: ./web', { 'web/app.py': 'print(2)' })).services[0].build!.hash;
    expect(changed).not.toBe(svc.build!.hash);
    expect(builtImageRef(svc.image, svc.build!.hash)).toBe(`app-web:berth-${svc.build!.hash.slice(0, 12)}`);
  });

  test('the long form, with image: naming the result', () => {
    const svc = stackOf(
      app(
        'image: registry:5000/org/web:1.2\nbuild:\n  context: web\n  dockerfile: Dockerfile\n  args: [VERSION=3, BARE]\n  target: prod\n  labels: { team: a }\n  tags: [web:extra]\n  no_cache: true',
      ),
    ).services[0];
    expect(svc.image).toBe('registry:5000/org/web:1.2');
    expect(svc.pullPolicy).toBe('missing');
    expect(svc.build).toMatchObject({ args: { VERSION: '3' }, target: 'prod', labels: { team: 'a' }, tags: ['web:extra'], noCache: true });
    expect(imageRepository('registry:5000/org/web:1.2')).toBe('registry:5000/org/web');
    expect(imageRepository('web@sha256:abc')).toBe('web');
  });

  test.each([['web/'], ['./web/'], ['web//'], ['{ context: ./web/ }']])('a context written with a trailing slash, %s, is the folder', (context) => {
    const plain = stackOf(app('build: web')).services[0].build!;
    const svc = stackOf(app(`build: ${context}`)).services[0];
    expect(svc.build).toEqual(plain);
  });

  test('the root as ./ is the folder of the compose file', () => {
    const stack = stackOf({ 'compose.yaml': web('build: ./'), Dockerfile: 'FROM base\n' });
    expect(stack.services[0].build).toMatchObject({ context: 'app' });
    expect(stack.contexts.get('web')?.map((f) => f.path)).toEqual(['Dockerfile', 'compose.yaml']);
  });

  test('dockerfile_inline goes into the context', () => {
    const stack = stackOf(app('build:\n  context: web\n  dockerfile_inline: "FROM base"'));
    expect(stack.contexts.get('web')?.find((f) => f.path === '.berth.Dockerfile')).toBeDefined();
  });

  test.each<[string, string, string]>([
    [
      'a remote context',
      'build: https://github.com/org/repo.git',
      "app/compose.yaml:3:12: services.web.build: 'https://github.com/org/repo.git' is a remote context: berth builds from the commit's own tree (a folder of the repository)",
    ],
    [
      'a context that is not there',
      'build: ./nope',
      "app/compose.yaml:3:12: services.web.build: the build context 'app/nope' is not a folder of the repository",
    ],
    [
      'a missing Dockerfile',
      'build: { context: web, dockerfile: Prod.Dockerfile }',
      'app/compose.yaml:3:40: services.web.build.dockerfile: app/web/Prod.Dockerfile does not exist in the repository',
    ],
    [
      'an unknown pull policy',
      'image: x\npull_policy: daily',
      "app/compose.yaml:4:18: services.web.pull_policy: 'daily' is not supported by berth (always, missing, never, build)",
    ],
    ['pull_policy build without build', 'image: x\npull_policy: build', 'app/compose.yaml:4:18: services.web.pull_policy: build needs a build: section'],
    [
      'pull_policy never with build and no image',
      'build: web\npull_policy: never',
      'app/compose.yaml:4:18: services.web.pull_policy: never needs image: to name what to pull or use',
    ],
    ['neither image nor build', 'restart: always', 'app/compose.yaml:2:3: services.web: needs image: or build:'],
    ['an unsupported build key', 'build: { context: web, ssh: [default] }', 'app/compose.yaml:3:28: services.web.build.ssh: not supported by berth yet'],
  ])('%s', (_, body, expected) => {
    expect(renderApp(app(body)).errors).toEqual([expected]);
  });
});

describe('container_name', () => {
  test('one replica, or global (one per host)', () => {
    expect(stackOf({ 'compose.yaml': web('container_name: my-web') }).services[0].containerName).toBe('my-web');
    expect(stackOf({ 'compose.yaml': web('container_name: my-web\ndeploy: { mode: global }') }).services[0].containerName).toBe('my-web');
  });
});
