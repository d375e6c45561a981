import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One private Docker daemon (in its own network namespace) with the test images, shared by all
    // test files, which run in parallel: tests must give their containers unique names.
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    teardownTimeout: 120_000, // also bounds the global teardown, which stops the daemon
    pool: 'forks',
  },
});
