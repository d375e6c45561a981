// Stands in for docker-modem's lib/ssh.js (see src/observe/lazy-deps.ts): the real one, which
// requires ssh2, is loaded on the first use of docker-modem's own ssh:// support only.
/* global module, require */
'use strict';
module.exports = function ssh(...args) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('docker-modem/lib/ssh.js')(...args);
};
