// Preset file sizes from Qwen3.6-27B's config.json alone, against published GGUFs of that model.
// The published text GGUFs were converted without the MTP block (llama.cpp's converter dropped it), so the
// description leaves it out too. Sources (Hugging Face file listings and llama-perplexity "model size" lines):
// - wimmmm/Qwen3.6-27B-GGUF (HF listing, GB = 1e9, three digits): Q8_0 29 GB, Q6_K 21.7 GB, Q5_K_M 19 GB,
//   Q4_K_M 16.5 GB, IQ4_XS 15 GB;
// - mradermacher/Qwen3.6-27B-i1-GGUF i1-Q4_K_M: 15.401 GiB at 4.919 bpw (llama.cpp's own print, quoted in
//   sokann/Qwen3.6-27B-GGUF-5.076bpw's comparison table).
import { describe, expect, it } from 'vitest';
import { describeConfig } from '@qtk/core';
import { QWEN3_6_27B_CONFIG } from '@qtk/fixtures';
import { presetSize } from '../src/plan/sizes.js';
import type { PresetName } from '../src/presets.js';

const model = describeConfig(structuredClone(QWEN3_6_27B_CONFIG) as unknown as Record<string, unknown>, 'Qwen3.6-27B/config.json', { noMtp: true });

const PUBLISHED_GB: [PresetName, number][] = [['Q8_0', 29], ['Q6_K', 21.7], ['Q5_K_M', 19], ['Q4_K_M', 16.5], ['IQ4_XS', 15]];

describe('Qwen3.6-27B preset sizes from config.json', () => {
  it.each(PUBLISHED_GB)('%s is within 2 %% of the published %s GB file', (preset, gb) => {
    const size = presetSize(model, preset).fileBytes / 1e9;
    expect(Math.abs(size / gb - 1)).toBeLessThan(0.02);
  });

  it('Q4_K_M matches llama.cpp\'s printed model size of a published i1-Q4_K_M to 0.5 % (15.401 GiB, 4.919 bpw)', () => {
    const s = presetSize(model, 'Q4_K_M', { hasImatrix: true });
    expect(Math.abs(s.tensorBytes / 1024 ** 3 / 15.401 - 1)).toBeLessThan(0.005);
    expect(s.bitsPerWeight).toBeCloseTo(4.919, 2);
  });
});
