// The codec table, keyed by ggml type name: each family registers its codecs here.
import type { GgmlTypeName } from '@qtk/core';
import type { Codec } from './types.js';
import { FLOAT_CODECS } from './float.js';
import { LEGACY_CODECS } from './legacy.js';
import { K_CODECS } from './k-quants.js';
import { IQ4_CODECS } from './iq4.js';

export type { Codec } from './types.js';

export const CODECS: ReadonlyMap<GgmlTypeName, Codec> = new Map(
  [...FLOAT_CODECS, ...LEGACY_CODECS, ...K_CODECS, ...IQ4_CODECS].map((c) => [c.type, c]),
);

export function getCodec(type: GgmlTypeName): Codec | undefined {
  return CODECS.get(type);
}
