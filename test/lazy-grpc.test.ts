// dockerode as berth loads it (src/observe/docker.ts): without gRPC until a BuildKit session needs it.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const DOCKER_TS = resolve(import.meta.dirname, '../src/observe/docker.ts');

// In a fresh Node (vitest's own module graph may have loaded dockerode already): which gRPC
// modules are loaded after importing berth's dockerode, and after a BuildKit build asks for a session.
const PROBE = `
import { createRequire } from 'node:module';
const { connect } = await import(${JSON.stringify(DOCKER_TS)});
const cache = createRequire(import.meta.url).cache;
const grpc = () => Object.keys(cache).filter((k) => /node_modules\\/@grpc\\/(grpc-js|proto-loader)\\//.test(k)).length;
const docker = connect({ name: 'h', endpoint: 'unix:///nonexistent/docker.sock' });
const atLoad = grpc();
const err = await docker.buildImage({ context: '/nonexistent', src: [] }, { version: '2' }).then(() => 'built', (e) => e.code);
console.log(JSON.stringify({ atLoad, err, afterSession: grpc() > 0 }));
`;

it('dockerode loads without @grpc/grpc-js and @grpc/proto-loader; a BuildKit session loads them when asked', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROBE]);
  // the session dials the daemon (there is none) only once gRPC is loaded
  expect(JSON.parse(stdout)).toEqual({ atLoad: 0, err: 'ENOENT', afterSession: true });
});
