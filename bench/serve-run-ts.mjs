// Runs a TypeScript entry of this monorepo under plain Node without a build: vite's module runner
// resolves workspace packages to their sources through the qtk-source condition (as vitest does).
// Usage: node bench/serve-run-ts.mjs <entry.ts> [args…] — the entry sees argv as [node, entry, args…].
// Imported (not run), it exports importTs(path) for scripts that need a TS module.
import { runnerImport } from 'vite';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const conditions = ['qtk-source', 'import', 'node', 'default'];

export async function importTs(entry) {
  const { module } = await runnerImport(resolve(entry), { configFile: false, logLevel: 'error', resolve: { conditions }, ssr: { resolve: { conditions } } });
  return module;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = resolve(process.argv[2]);
  process.argv.splice(1, 2, entry);
  await importTs(entry);
}
