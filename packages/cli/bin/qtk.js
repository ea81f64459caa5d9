#!/usr/bin/env node
// The `qtk` bin: committed, so that npm links it on a fresh clone before anything is built.
// The command itself lives in ../dist/main.js, made by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`qtk: ${fileURLToPath(main)} is not built yet. Run \`npm run build\` in the qtk repository, then run qtk again.\n`);
  process.exit(1);
}
await import(main.href);
