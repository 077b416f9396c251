import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Real servers and a real kernel tree: keep file-level parallelism modest on 2 cores.
    maxWorkers: 2,
    pool: 'forks',
  },
});
