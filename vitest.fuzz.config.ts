import { defineConfig } from 'vitest/config';

/** `npm run test:fuzz`: the long fuzz runs only (test/**\/*.fuzz.test.ts), kept out of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/**/*.fuzz.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
