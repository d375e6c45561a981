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

const STUBS: Array<{ specifier: string; parent: string; url: string }> = [
  { specifier: './session', parent: '/dockerode/lib/docker.js', url: new URL('./dockerode-session.cjs', import.meta.url).href },
  { specifier: './ssh', parent: '/docker-modem/lib/modem.js', url: new URL('./docker-modem-ssh.cjs', import.meta.url).href },
];

registerHooks({
  resolve(specifier, context, next) {
    const stub = STUBS.find((s) => s.specifier === specifier && context.parentURL?.endsWith(s.parent));
    return stub ? { url: stub.url, format: 'commonjs', shortCircuit: true } : next(specifier, context);
  },
});
