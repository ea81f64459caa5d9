// llama-quantize presets (llama.h enum llama_ftype; default tensor type from llama-quant.cpp
// llama_ftype_get_default_type). `--bits N` picks the preset named in BITS_TO_PRESET.
import type { GgmlTypeName } from '@qtk/core';

export const PRESETS = {
  Q8_0: { ftype: 7, defaultType: 'Q8_0' },
  Q6_K: { ftype: 18, defaultType: 'Q6_K' },
  Q5_K_M: { ftype: 17, defaultType: 'Q5_K' },
  Q5_K_S: { ftype: 16, defaultType: 'Q5_K' },
  Q4_K_M: { ftype: 15, defaultType: 'Q4_K' },
  Q4_K_S: { ftype: 14, defaultType: 'Q4_K' },
  Q3_K_L: { ftype: 13, defaultType: 'Q3_K' },
  Q3_K_M: { ftype: 12, defaultType: 'Q3_K' },
  Q3_K_S: { ftype: 11, defaultType: 'Q3_K' },
  Q2_K: { ftype: 10, defaultType: 'Q2_K' },
  IQ4_XS: { ftype: 30, defaultType: 'IQ4_XS' },
  IQ4_NL: { ftype: 25, defaultType: 'IQ4_NL' },
  Q4_0: { ftype: 2, defaultType: 'Q4_0' },
  Q5_0: { ftype: 8, defaultType: 'Q5_0' },
} as const satisfies Record<string, { ftype: number; defaultType: GgmlTypeName }>;

export type PresetName = keyof typeof PRESETS;

export const BITS_TO_PRESET = { 8: 'Q8_0', 6: 'Q6_K', 5: 'Q5_K_M', 4: 'Q4_K_M', 3: 'Q3_K_M', 2: 'Q2_K' } as const satisfies Record<number, PresetName>;

/** GGML_QNT_VERSION, written as general.quantization_version. */
export const QUANTIZATION_VERSION = 2;

export function presetByName(name: string): PresetName | undefined {
  const up = name.toUpperCase();
  return Object.prototype.hasOwnProperty.call(PRESETS, up) ? (up as PresetName) : undefined;
}
