// Shared vitest settings: tests import sibling packages from their TypeScript source
// (the "qtk-source" export condition), so a change in core is seen without a rebuild.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['qtk-source', 'import', 'node', 'default'] },
  ssr: { resolve: { conditions: ['qtk-source', 'import', 'node', 'default'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
