#!/usr/bin/env node
// berth runs its TypeScript sources directly on Node 24+ (built-in type stripping, node:sqlite).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `berth needs Node 24 or newer; this is Node ${process.versions.node}.\n` +
      'Run it through npm (`npm start`, `npm run berth -- ARGS`, `npx berth`), which uses the Node 24 that `npm install` put in node_modules.',
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
