// Streams a GGUF's weights, tensor by tensor, into backend buffers. Each tensor's shape is checked
// against the architecture's table first, so a malformed file is an error, not an abort. On CPU,
// matmul weights whose type and shape the repacking kernels take go into the CPU_REPACK buffer,
// as llama.cpp loads them (same kernels, hence same numerics and speed).
import { createProgress, fileError, GGML_TYPES, type GgufReader } from '@qtk/core';
import type { Backend, BackendBuffer } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import { koffi, quietGgml, type Ptr } from '../ggml/lib.js';
import type { Tensor } from '../ggml/tensor.js';

export interface WeightSpec {
  name: string;
  ne: number[];
  optional?: boolean;
  /** Used only as the first operand of mul_mat (may be repacked on CPU). */
  matmul?: boolean;
}

export interface LoadedWeights {
  tensors: Map<string, Tensor>;
  buffers: BackendBuffer[];
  contexts: GgmlContext[];
  bytes: number;
  /** Names of the weights held in CPU_REPACK layout (readable by mul_mat only). */
  repacked: Set<string>;
  free(): void;
}

export interface LoadWeightsOptions {
  /** Put eligible matmul weights in the CPU_REPACK buffer (default true; trainers that need OUT_PROD pass false). */
  repack?: boolean;
}

const PIECE = 64 * 1024 * 1024;
/** Offset of `extra` in struct ggml_tensor (ggml.h, 64-bit; verified by the ggml-ffi probe's step6). */
const TENSOR_EXTRA_OFFSET = 320;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Whether CPU_REPACK takes a weight of this type and row count: its init_tensor leaves `extra` NULL
 * when no kernel fits (then set_tensor would crash). Decided on a tiny proxy with the same type and
 * ne1 mod 16, which is all the kernel choice looks at besides the CPU's features.
 */
function repackable(backend: Backend, buft: Ptr, type: keyof typeof GGML_TYPES, ne1: number): boolean {
  if (!GGML_TYPES[type].quantized) return false;
  const ctx = new GgmlContext(backend.lib, 1);
  try {
    const t = ctx.newTensor(type, [GGML_TYPES[type].blockSize, gcd(ne1, 16)]);
    const buf = backend.allocContextIn(ctx, buft);
    try {
      return Boolean(koffi.decode(t.ptr, TENSOR_EXTRA_OFFSET, 'void *'));
    } finally {
      buf.free();
    }
  } finally {
    ctx.free();
  }
}

export async function loadWeights(r: GgufReader, backend: Backend, specs: readonly WeightSpec[], opts: LoadWeightsOptions = {}): Promise<LoadedWeights> {
  const present = specs.filter((s) => !s.optional || r.hasTensor(s.name));
  for (const s of present) {
    if (!r.hasTensor(s.name)) throw fileError(r.path, `has no tensor '${s.name}'`, 'The file is incomplete or from another architecture: convert it again');
    const info = r.tensor(s.name);
    const ne = [...info.ne];
    while (ne.length < s.ne.length) ne.push(1);
    if (ne.length !== s.ne.length || ne.some((n, i) => n !== s.ne[i])) {
      throw fileError(r.path, `tensor '${s.name}' has shape [${info.ne.join(', ')}], expected [${s.ne.join(', ')}]`, 'The metadata and the tensors disagree: convert the model again');
    }
  }
  const buft = opts.repack === false ? undefined : backend.repackBufferType;
  const cache = new Map<string, boolean>();
  const isRepacked = (s: WeightSpec) => {
    if (!buft || !s.matmul || s.ne.length !== 2) return false;
    const type = r.tensor(s.name).type;
    const key = `${type}:${s.ne[1]! % 16}`;
    if (!cache.has(key)) cache.set(key, repackable(backend, buft, type, s.ne[1]!));
    return cache.get(key)!;
  };
  const groups = [present.filter((s) => !isRepacked(s)), present.filter(isRepacked)];
  const tensors = new Map<string, Tensor>();
  const contexts: GgmlContext[] = [];
  const buffers: BackendBuffer[] = [];
  const repacked = new Set(groups[1]!.map((s) => s.name));
  const free = () => {
    buffers.forEach((b) => b.free());
    contexts.forEach((c) => c.free());
  };
  try {
    groups.forEach((group, gi) => {
      if (group.length === 0) return;
      const ctx = new GgmlContext(backend.lib, group.length);
      contexts.push(ctx);
      for (const s of group) tensors.set(s.name, ctx.newTensor(r.tensor(s.name).type, s.ne, s.name));
      buffers.push(gi === 0 ? backend.allocContext(ctx) : backend.allocContextIn(ctx, buft!));
    });
    const total = present.reduce((a, s) => a + r.tensor(s.name).byteLength, 0);
    const progress = createProgress({ title: 'loading weights', total, kind: 'bytes' });
    try {
      for (const s of present) {
        const info = r.tensor(s.name);
        const t = tensors.get(s.name)!;
        // the repacking buffer converts a whole tensor per set call
        const piece = repacked.has(s.name) ? info.byteLength : PIECE;
        for (let off = 0; off < info.byteLength; off += piece) {
          const len = Math.min(piece, info.byteLength - off);
          const bytes = await r.readTensorRange(info, off, len);
          quietGgml(backend.lib, () => backend.setData(t, bytes, off));
          progress.tick(len, s.name);
        }
      }
    } finally {
      progress.done();
    }
    return { tensors, buffers, contexts, bytes: total, repacked, free };
  } catch (e) {
    free();
    throw e;
  }
}
