// GGML_TYPES must equal ggml's own type traits: ask the ggml library node-llama-cpp ships
// (libggml-base.so, ggml 0.23) through koffi for every type id.
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import koffi from 'koffi';
import {
  GGML_TYPES,
  GGML_TYPE_COUNT,
  ggmlBitsPerWeight,
  ggmlRowBytes,
  ggmlTensorBytes,
  ggmlTypeById,
  ggmlTypeByName,
  type GgmlTypeName,
} from '../src/index.js';

const require = createRequire(import.meta.url);
function ggmlBaseLib(): string | undefined {
  for (const dir of require.resolve.paths('@node-llama-cpp/linux-x64') ?? []) {
    const lib = path.join(dir, '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64', 'libggml-base.so');
    if (existsSync(lib)) return lib;
  }
  return undefined;
}
const LIB = process.platform === 'linux' && process.arch === 'x64' ? ggmlBaseLib() : undefined;
// On linux-x64 the library ships with node-llama-cpp: missing means a broken install, which fails
// here unless QTK_ALLOW_NO_GGML=1 says to skip these oracle tests.
if (!LIB && process.platform === 'linux' && process.arch === 'x64' && process.env['QTK_ALLOW_NO_GGML'] !== '1') {
  throw new Error('libggml-base.so of @node-llama-cpp/linux-x64 not found: run npm ci (or set QTK_ALLOW_NO_GGML=1 to skip the ggml oracle tests)');
}

describe.skipIf(!LIB)('GGML_TYPES matches ggml (via koffi; skipped off linux-x64)', () => {
  it('every id 0..GGML_TYPE_COUNT-1 has ggml\'s name, block size, type size and quantized flag', () => {
    const base = koffi.load(LIB!);
    const typeName = base.func('const char *ggml_type_name(int type)');
    const blckSize = base.func('int64_t ggml_blck_size(int type)');
    const typeSize = base.func('size_t ggml_type_size(int type)');
    const isQuantized = base.func('bool ggml_is_quantized(int type)');
    const seen: string[] = [];
    for (let id = 0; id < GGML_TYPE_COUNT; id++) {
      const name = String(typeName(id));
      const block = Number(blckSize(id));
      if (block === 0) {
        // Removed from ggml (Q4_2, Q4_3, repacked Q4_0_x_y / IQ4_NL_x_y): absent from our table.
        expect(() => ggmlTypeById(id), `id ${id} (${name})`).toThrow(/unknown ggml type id/);
        continue;
      }
      const ours = ggmlTypeById(id);
      seen.push(ours);
      expect(ours, `id ${id}`).toBe(name.toUpperCase());
      expect(GGML_TYPES[ours], name).toEqual({ id, blockSize: block, typeSize: Number(typeSize(id)), quantized: Boolean(isQuantized(id)) });
    }
    expect(seen.sort()).toEqual(Object.keys(GGML_TYPES).sort());
    // The last id ggml defines is the one before GGML_TYPE_COUNT.
    expect(Number(blckSize(GGML_TYPE_COUNT - 1))).toBeGreaterThan(0);
  });
});

describe('ggml size helpers', () => {
  it('row and tensor bytes', () => {
    expect(ggmlRowBytes('Q4_K', 5120)).toBe(20 * 144);
    expect(ggmlRowBytes('BF16', 7)).toBe(14);
    expect(ggmlTensorBytes('Q8_0', [64, 3, 2])).toBe(2 * 34 * 6);
    expect(ggmlTensorBytes('F32', [0, 5])).toBe(0);
    expect(() => ggmlRowBytes('Q4_K', 5121)).toThrow(/5121 is not a multiple of Q4_K's block size 256/);
    expect(() => ggmlTensorBytes('F32', [])).toThrow(/at least one dimension/);
    expect(ggmlBitsPerWeight('Q4_K')).toBe(4.5);
    expect(ggmlBitsPerWeight('Q6_K')).toBe(6.5625);
    expect(ggmlTypeByName('q4_k')).toBe('Q4_K');
    expect(ggmlTypeByName('toString')).toBeUndefined();
    expect(() => ggmlTypeById(4)).toThrow(/unknown ggml type id 4/);
    const names: GgmlTypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K', 'I32'];
    for (const n of names) expect(ggmlTypeById(GGML_TYPES[n].id)).toBe(n);
  });
});
