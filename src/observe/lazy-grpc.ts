/**
 * Keeps dockerode from loading gRPC: its lib/docker.js requires lib/session.js at load, which
 * requires @grpc/grpc-js and @grpc/proto-loader (~14 MB resident), for BuildKit sessions only
 * (`buildImage` with `version: '2'`, which berth does not use: it builds with the classic
 * builder). A module resolution hook points that one require at dockerode-session.cjs, which
 * loads the real session.js if it is ever called. Import this module before dockerode.
 */
import { registerHooks } from 'node:module';

const STUB = new URL('./dockerode-session.cjs', import.meta.url).href;

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === './session' && context.parentURL?.endsWith('/dockerode/lib/docker.js')) return { url: STUB, format: 'commonjs', shortCircuit: true };
    return next(specifier, context);
  },
});
