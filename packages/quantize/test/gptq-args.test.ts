// `--method gptq` and `--calib` go together: either one alone is refused before any file is read.
import { describe, expect, it } from 'vitest';
import { quantizeMain } from '../src/quantize-gguf.js';

describe('quantize --method gptq arguments', () => {
  it('refuses --method gptq without --calib', async () => {
    await expect(quantizeMain({ input: 'missing.gguf', preset: 'Q4_K_M', method: 'gptq', quiet: true })).rejects.toThrow(/--method gptq needs calibration text/);
  });
  it('refuses --calib without --method gptq', async () => {
    await expect(quantizeMain({ input: 'missing.gguf', preset: 'Q4_K_M', calib: 'calib.txt', quiet: true })).rejects.toThrow(/--calib is only read by --method gptq/);
  });
});
