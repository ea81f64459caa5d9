// The qtk CLI from its sources in a child process (tests only): run-ts.mjs closes its module runner when
// the entry's top level ends, but the CLI imports its commands lazily, so wait until the work is done.
// Usage: node run-ts.mjs run-cli.ts <qtk args…>
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// a computed path: the CLI is another package, outside this one's type check
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/src/main.ts');
await import(cli);
await new Promise((resolve) => process.once('beforeExit', resolve));
