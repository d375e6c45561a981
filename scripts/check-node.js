// Fails early, with a clear message, when npm scripts would run on a Node older than berth needs.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`berth needs Node 24+, found ${process.versions.node}: run \`npm install\` first (it brings Node 24 from the npm registry).`);
  process.exit(1);
}
