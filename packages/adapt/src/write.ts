// Small text outputs (records, reports) go through a temp file and a rename, never half-written.
import { openAtomic } from '@qtk/core';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const f = await openAtomic(file, { overwrite: true });
  try {
    await f.handle.writeFile(data);
    await f.commit();
  } catch (e) {
    await f.abort();
    throw e;
  }
}
