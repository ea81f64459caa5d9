// The preset table against an independent copy of llama.h's enum llama_ftype (node-llama-cpp's GgufFileType).
import { describe, expect, it } from 'vitest';
import { GgufFileType } from 'node-llama-cpp';
import { CODECS } from '../src/codecs/index.js';
import { BITS_TO_PRESET, PRESETS } from '../src/presets.js';

describe('presets', () => {
  it('every preset\'s llama_ftype id matches llama.h (via node-llama-cpp GgufFileType)', () => {
    for (const [name, p] of Object.entries(PRESETS)) {
      expect((GgufFileType as unknown as Record<string, number>)[`MOSTLY_${name}`], name).toBe(p.ftype);
    }
  });
  it('every preset\'s base type has a codec, and --bits maps to presets', () => {
    for (const p of Object.values(PRESETS)) expect(CODECS.has(p.defaultType)).toBe(true);
    expect(BITS_TO_PRESET).toEqual({ 8: 'Q8_0', 6: 'Q6_K', 5: 'Q5_K_M', 4: 'Q4_K_M', 3: 'Q3_K_M', 2: 'Q2_K' });
  });
});
