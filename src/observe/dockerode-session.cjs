// Stands in for dockerode's lib/session.js (see src/observe/lazy-deps.ts): the real one, which
// requires @grpc/grpc-js and @grpc/proto-loader, is loaded on the first BuildKit session only.
/* global module, require */
'use strict';
module.exports = function withSession(...args) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('dockerode/lib/session.js')(...args);
};
