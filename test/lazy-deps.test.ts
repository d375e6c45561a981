// dockerode as berth loads it (src/observe/docker.ts): without gRPC until a BuildKit session needs
// it, and without ssh2 until an ssh:// connection needs it.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const DOCKER_TS = resolve(import.meta.dirname, '../src/observe/docker.ts');

// In a fresh Node (vitest's own module graph may have loaded dockerode already): which of those
// modules are loaded after importing berth's dockerode, and after a BuildKit build asks for a
// session, or docker-modem's own ssh:// support for a connection.
const PROBE = `
import { createRequire } from 'node:module';
const { connect } = await import(${JSON.stringify(DOCKER_TS)});
const { default: Dockerode } = await import('dockerode');
const cache = createRequire(import.meta.url).cache;
const loaded = (re) => Object.keys(cache).filter((k) => re.test(k)).length;
const grpc = () => loaded(/node_modules\\/@grpc\\/(grpc-js|proto-loader)\\//);
const ssh2 = () => loaded(/node_modules\\/ssh2\\//);
const docker = connect({ name: 'h', endpoint: 'unix:///nonexistent/docker.sock' });
const atLoad = { grpc: grpc(), ssh2: ssh2() };
const err = await docker.buildImage({ context: '/nonexistent', src: [] }, { version: '2' }).then(() => 'built', (e) => e.code);
const afterSession = grpc() > 0;
const sshErr = await new Dockerode({ protocol: 'ssh', host: '127.0.0.1', port: 1, username: 'nobody' }).ping().then(() => 'answered', (e) => e.code);
console.log(JSON.stringify({ atLoad, err, afterSession, sshErr, afterSsh: ssh2() > 0 }));
`;

it('dockerode loads without gRPC and ssh2; a BuildKit session, or an ssh:// connection, loads them when asked', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROBE], { cwd: resolve(import.meta.dirname, '..') });
  // the session dials the daemon (there is none) only once gRPC is loaded; ssh2 dials port 1 (refused)
  expect(JSON.parse(stdout)).toEqual({ atLoad: { grpc: 0, ssh2: 0 }, err: 'ENOENT', afterSession: true, sshErr: 'ECONNREFUSED', afterSsh: true });
});
