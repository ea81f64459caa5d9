// ggml's own quantizers through koffi on node-llama-cpp's prebuilt libggml-base: the oracle the TS
// codecs are tested against, and the fast path of `qtk quantize` (koffi `.async` runs each call on a
// worker thread; ggml_quantize_chunk is thread-safe once ggml_quantize_init has run for the type).
import path from 'node:path';
import { GGML_TYPES, QtkError, type GgmlTypeName } from '@qtk/core';
import { koffi, loadGgmlBase } from '@qtk/engine';

export interface GgmlQuantizer {
  readonly binDir: string;
  /** ggml_quantize_chunk over nRows whole rows (start 0); returns the bytes written. */
  quantizeChunk(type: GgmlTypeName, src: Float32Array, dst: Uint8Array, nRows: number, nPerRow: number, imatrix?: Float32Array): number;
  /** The same on a koffi worker thread. src/dst/imatrix must stay untouched until it resolves. */
  quantizeChunkAsync(type: GgmlTypeName, src: Float32Array, dst: Uint8Array, nRows: number, nPerRow: number, imatrix?: Float32Array): Promise<number>;
  requiresImatrix(type: GgmlTypeName): boolean;
  /** type_traits->to_float (dequantize_row_q8_K for Q8_K, whose traits in libggml-base have none). */
  dequantize(type: GgmlTypeName, src: Uint8Array, dst: Float32Array, n: number): void;
  /** quantize_row_q8_K_ref: Q8_K is never made by ggml_quantize_chunk. */
  quantizeRowQ8K(src: Float32Array, dst: Uint8Array, n: number): void;
  /** ggml_fp16_to_fp32_row / ggml_bf16_to_fp32_row on a koffi worker thread (exact conversions). */
  toF32Async(type: 'F16' | 'BF16', src: Uint8Array, dst: Float32Array, n: number): Promise<void>;
  /** ggml_validate_row_data on a koffi worker thread: false when F32/F16/BF16 data holds NaN or Inf (ggml prints a line to stderr). */
  validateAsync(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): Promise<boolean>;
  /** ggml's own sizes, to check the TS tables against. */
  typeSize(type: GgmlTypeName): number;
  blockSize(type: GgmlTypeName): number;
}

let cached: GgmlQuantizer | undefined;

/**
 * Loads ggml's quantizers once. Throws a QtkError with the reason (no prebuilt library for this
 * platform, or a library that does not bind: a renamed symbol, a wrong ABI), so that a broken
 * install is never mistaken for "no ggml here".
 */
export function loadGgmlQuantizer(): GgmlQuantizer {
  if (cached !== undefined) return cached;
  // The engine's finder: a missing library throws there with what to install.
  const { binDir, base } = loadGgmlBase();
  try {
    cached = bind(binDir, base);
  } catch (e) {
    throw new QtkError(`${path.join(binDir, 'libggml-base.so')}: cannot bind ggml's quantizers (${(e as Error).message}). Reinstall node-llama-cpp 3.21.1 (npm ci), or point GGML_BIN_DIR at a matching build.`, { cause: e });
  }
  return cached;
}

function bind(binDir: string, lib: ReturnType<typeof loadGgmlBase>['base']): GgmlQuantizer {
  const traitsStruct = koffi.struct('qtk_ggml_type_traits', {
    type_name: 'const char *',
    blck_size: 'int64_t',
    blck_size_interleave: 'int64_t',
    type_size: 'size_t',
    is_quantized: 'bool',
    to_float: 'void *',
    from_float_ref: 'void *',
  });
  const toFloatProto = koffi.proto('void qtk_ggml_to_float_t(const void *x, float *y, int64_t k)');
  const quantizeChunk = lib.func('size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)');
  const requiresImatrix = lib.func('bool ggml_quantize_requires_imatrix(int type)');
  const quantizeInit = lib.func('void ggml_quantize_init(int type)');
  const getTraits = lib.func('void *ggml_get_type_traits(int type)');
  const typeSize = lib.func('size_t ggml_type_size(int type)');
  const blckSize = lib.func('int64_t ggml_blck_size(int type)');
  const q8kRef = lib.func('void quantize_row_q8_K_ref(const float *x, void *y, int64_t k)');
  const q8kDeq = lib.func('void dequantize_row_q8_K(const void *x, float *y, int64_t k)');
  const f16Row = lib.func('void ggml_fp16_to_fp32_row(const void *x, float *y, int64_t n)');
  const bf16Row = lib.func('void ggml_bf16_to_fp32_row(const void *x, float *y, int64_t n)');
  const validate = lib.func('bool ggml_validate_row_data(int type, const void *data, size_t nbytes)');

  const id = (t: GgmlTypeName): number => GGML_TYPES[t].id;
  const initialized = new Set<GgmlTypeName>();
  const init = (t: GgmlTypeName): void => {
    // Initialize on the main thread so that concurrent async calls never race on ggml's lazy tables.
    if (!initialized.has(t)) { quantizeInit(id(t)); initialized.add(t); }
  };
  const check = (t: GgmlTypeName, src: Float32Array, dst: Uint8Array, nRows: number, nPerRow: number, imatrix?: Float32Array): void => {
    // A GGML_ASSERT would kill the process: validate here.
    const { blockSize, typeSize: ts } = GGML_TYPES[t];
    if (nPerRow % blockSize !== 0) throw new Error(`ggml_quantize_chunk(${t}): row length ${nPerRow} is not a multiple of ${blockSize}`);
    if (src.length < nRows * nPerRow) throw new Error(`ggml_quantize_chunk(${t}): src holds ${src.length} values, need ${nRows * nPerRow}`);
    if (dst.length < nRows * (nPerRow / blockSize) * ts) throw new Error(`ggml_quantize_chunk(${t}): dst too small`);
    if (imatrix && imatrix.length < nPerRow) throw new Error(`ggml_quantize_chunk(${t}): imatrix holds ${imatrix.length} values, need ${nPerRow}`);
    if (!imatrix && requiresImatrix(id(t))) throw new Error(`ggml_quantize_chunk(${t}) requires an importance matrix`);
    init(t);
  };

  return {
    binDir,
    quantizeChunk(t, src, dst, nRows, nPerRow, imatrix) {
      check(t, src, dst, nRows, nPerRow, imatrix);
      return Number(quantizeChunk(id(t), src, dst, 0, nRows, nPerRow, imatrix ?? null));
    },
    quantizeChunkAsync(t, src, dst, nRows, nPerRow, imatrix) {
      check(t, src, dst, nRows, nPerRow, imatrix);
      return new Promise((resolve, reject) => {
        quantizeChunk.async(id(t), src, dst, 0, nRows, nPerRow, imatrix ?? null, (err: unknown, res: unknown) => {
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve(Number(res));
        });
      });
    },
    requiresImatrix: (t) => Boolean(requiresImatrix(id(t))),
    dequantize(t, src, dst, n) {
      if (n % GGML_TYPES[t].blockSize !== 0) throw new Error(`to_float(${t}): ${n} is not a multiple of the block size`);
      if (t === 'Q8_K') { q8kDeq(src, dst, n); return; }
      const traits = koffi.decode(getTraits(id(t)), traitsStruct) as { to_float: unknown };
      if (!traits.to_float) throw new Error(`ggml has no to_float for ${t}`);
      koffi.call(traits.to_float, toFloatProto, src, dst, n);
    },
    quantizeRowQ8K(src, dst, n) {
      if (n % 256 !== 0) throw new Error(`quantize_row_q8_K_ref: ${n} is not a multiple of 256`);
      q8kRef(src, dst, n);
    },
    toF32Async(t, src, dst, n) {
      if (src.length < 2 * n || dst.length < n) throw new Error(`${t} → f32: buffers hold fewer than ${n} values`);
      const fn = t === 'F16' ? f16Row : bf16Row;
      return new Promise((resolve, reject) => {
        fn.async(src, dst, n, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
      });
    },
    validateAsync(t, bytes) {
      return new Promise((resolve, reject) => {
        validate.async(id(t), bytes, bytes.length, (err: unknown, ok: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(Boolean(ok))));
      });
    },
    typeSize: (t) => Number(typeSize(id(t))),
    blockSize: (t) => Number(blckSize(id(t))),
  };
}
