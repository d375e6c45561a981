/**
 * Keeps dockerode from loading what berth does not use, until it is used, by a module resolution
 * hook that points two of its requires at stand-ins which load the real module on first call:
 * - dockerode's lib/docker.js requires lib/session.js, which requires @grpc/grpc-js and
 *   @grpc/proto-loader (~14 MB resident), for BuildKit sessions only (`buildImage` with
 *   `version: '2'`, which berth does not use: it builds with the classic builder);
 * - docker-modem's lib/modem.js requires lib/ssh.js, which requires ssh2 (its WebAssembly and
 *   crypto), for docker-modem's own `ssh://` hosts, which berth does not use (src/observe/ssh.ts
 *   is its own, and loads ssh2 when a host has an ssh:// endpoint).
 * Import this module before dockerode.
 */
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
import { sourceFile } from '../paths.ts';

/**
 * The requires stood in for: `specifier` as required by the module whose path ends with `parent`;
 * `stub`, the stand-in; `real`, the module the stand-in loads on its first call.
 */
export const LAZY_STUBS: Array<{ specifier: string; parent: string; stub: string; real: string }> = [
  { specifier: './session', parent: '/dockerode/lib/docker.js', stub: sourceFile('observe/dockerode-session.cjs'), real: 'dockerode/lib/session.js' },
  { specifier: './ssh', parent: '/docker-modem/lib/modem.js', stub: sourceFile('observe/docker-modem-ssh.cjs'), real: 'docker-modem/lib/ssh.js' },
];

registerHooks({
  resolve(specifier, context, next) {
    const stub = LAZY_STUBS.find((s) => s.specifier === specifier && context.parentURL?.endsWith(s.parent));
    return stub ? { url: pathToFileURL(stub.stub).href, format: 'commonjs', shortCircuit: true } : next(specifier, context);
  },
});
