// Runs a TypeScript entry of this monorepo in a plain Node child process (tests only): vite's module
// runner resolves workspace packages to their sources through the qtk-source condition, as vitest does.
// Usage: node run-ts.mjs <entry.ts> [args…]   — the entry sees process.argv as [node, entry, args…].
import { runnerImport } from 'vite';
import { resolve } from 'node:path';

const entry = resolve(process.argv[2]);
process.argv.splice(1, 2, entry);
const conditions = ['qtk-source', 'import', 'node', 'default'];
await runnerImport(entry, { configFile: false, logLevel: 'error', resolve: { conditions }, ssr: { resolve: { conditions } } });
