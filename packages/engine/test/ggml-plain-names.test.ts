// GGML_BIN_DIR may point at a llama.cpp build of its own, whose libraries carry cmake's names
// (libggml.so, libllama.so) instead of node-llama-cpp's: the engine and libllama load from it.
// The folder here holds node-llama-cpp's own libraries under those names, so the test needs no
// second build. The libraries load once per process; vitest runs each test file in its own.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GGML_VARIANTS, LLAMA_LIB, PLAIN_NAMES, koffi, llamaLibFile, loadGgml, variantBinDir } from '../src/index.js';

const prebuilt = variantBinDir('cpu')!;
const dir = mkdtempSync(path.join(tmpdir(), 'qtk-plainggml-'));
symlinkSync(path.join(prebuilt, 'libggml-base.so'), path.join(dir, 'libggml-base.so'));
symlinkSync(path.join(prebuilt, GGML_VARIANTS.cpu.registry), path.join(dir, PLAIN_NAMES.registry));
symlinkSync(path.join(prebuilt, LLAMA_LIB), path.join(dir, PLAIN_NAMES.llama));
for (const f of readdirSync(prebuilt).filter((f) => f.startsWith('libggml-cpu'))) symlinkSync(path.join(prebuilt, f), path.join(dir, f));
process.env['GGML_BIN_DIR'] = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GGML_BIN_DIR with a llama.cpp build\'s library names', () => {
  it('the engine, its CPU device and libllama load from that folder', () => {
    const lib = loadGgml('cpu');
    const devices = Array.from({ length: Number(lib.ggml_backend_dev_count()) }, (_, i) => lib.ggml_backend_dev_name(lib.ggml_backend_dev_get(i)));
    const llama = llamaLibFile(lib.binDir);
    const llamaLoads = typeof koffi.load(llama).func('void llama_backend_init(void)') === 'function';
    expect({ binDir: lib.binDir, cpu: devices.includes('CPU'), llama, llamaLoads }).toEqual({ binDir: dir, cpu: true, llama: path.join(dir, 'libllama.so'), llamaLoads: true });
  });
});
