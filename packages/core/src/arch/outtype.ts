// Which ggml type each converted tensor is stored as (llama.cpp converter rules, spec 4.7):
// norms, 1-D tensors, non-".weight" tensors and a short list of tensors stay F32; the rest take the outtype.

export const OUTTYPES = {
  f32: { ggml: 'F32', fileType: 0 },
  f16: { ggml: 'F16', fileType: 1 },
  bf16: { ggml: 'BF16', fileType: 32 },
  q8_0: { ggml: 'Q8_0', fileType: 7 },
} as const;

export type Outtype = keyof typeof OUTTYPES;
export type ConvertedType = (typeof OUTTYPES)[Outtype]['ggml'];

export function isOuttype(s: string): s is Outtype {
  return Object.prototype.hasOwnProperty.call(OUTTYPES, s);
}

/** llama.cpp keeps these F32 whatever the outtype (its list, restricted to the archs here). */
export const KEEP_F32_SUFFIXES = ['ssm_conv1d.weight'] as const;

/** Q8_0 blocks hold 32 values along ne0; rows of other lengths fall back to F16 as in the converter. */
export const Q8_0_BLOCK = 32;

export function convertedTensorType(ggufName: string, ne: readonly number[], outtype: Outtype, keepF32 = false): ConvertedType {
  if (ne.length <= 1 || ggufName.endsWith('_norm.weight')) return 'F32';
  if (keepF32 || KEEP_F32_SUFFIXES.some((s) => ggufName.endsWith(s)) || !ggufName.endsWith('.weight')) return 'F32';
  const t = OUTTYPES[outtype].ggml;
  if (t === 'Q8_0' && ne[0]! % Q8_0_BLOCK !== 0) return 'F16';
  return t;
}
