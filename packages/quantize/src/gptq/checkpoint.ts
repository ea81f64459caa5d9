// Finished GPTQ tensors of a run, one file each beside the output (`<output>.gptq-checkpoint/`), so a run
// that stops (crash, kill, full disk) loses no finished tensor: the same command again reuses them, and
// replays their dequantized values to carry the calibration stream, instead of calibrating and solving
// those layers again. The folder holds a manifest of everything the bytes depend on; a different run
// starts it afresh. Each file is written to a temp name and renamed, so a file present is complete.
import { promises as fs } from 'node:fs';
import path from 'node:path';

export class GptqCheckpoint {
  private constructor(readonly dir: string, readonly reused: number) {}

  static async open(dir: string, manifest: Record<string, unknown>): Promise<GptqCheckpoint> {
    const want = JSON.stringify(manifest);
    const file = path.join(dir, 'manifest.json');
    const have = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (have !== want) {
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(`${file}.tmp`, want);
      await fs.rename(`${file}.tmp`, file);
      return new GptqCheckpoint(dir, 0);
    }
    return new GptqCheckpoint(dir, (await fs.readdir(dir)).filter((f) => f.endsWith('.bin')).length);
  }

  private file(name: string, type: string): string {
    return path.join(this.dir, `${name}.${type}.bin`);
  }

  /** The saved bytes of a finished tensor, when present and of the expected size. */
  async load(name: string, type: string, bytes: number): Promise<Uint8Array | undefined> {
    const b = await fs.readFile(this.file(name, type)).catch(() => undefined);
    return b && b.byteLength === bytes ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : undefined;
  }

  async save(name: string, type: string, data: Uint8Array): Promise<void> {
    const f = this.file(name, type);
    await fs.writeFile(`${f}.tmp`, data);
    await fs.rename(`${f}.tmp`, f);
  }

  async remove(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
