// The qtk CLI from its sources in a child process (tests only): run-ts.mjs closes its module runner when
// the entry's top level ends, but the CLI imports its commands lazily, so wait until the work is done.
// Usage: node run-ts.mjs run-cli.ts <qtk args…>
await import('../../cli/src/main.js');
await new Promise((resolve) => process.once('beforeExit', resolve));
