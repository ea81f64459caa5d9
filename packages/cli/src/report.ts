// Errors a user caused are printed as one message; anything else keeps its stack for a bug report.
import { interrupting } from '@qtk/core';

export function reportFatal(err: unknown): void {
  // A signal is being handled: the work failed because its files were just removed, and the
  // interrupt policy prints its one line and exits 130/143 itself.
  if (interrupting()) return;
  const e = err as { name?: string; message?: string; stack?: string; userFacing?: boolean; code?: string };
  const userFacing = e?.userFacing === true || e?.name === 'UsageError' || e?.name === 'QtkError';
  if (userFacing) {
    console.error(`qtk: ${e.message}`);
  } else {
    console.error(e?.stack ?? String(err));
    console.error('qtk: unexpected error; please report it with the command you ran.');
  }
  process.exit(1);
}
