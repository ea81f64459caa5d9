// A GGUF's weights on a backend. Each tensor's shape is checked against the architecture's table
// first, so a malformed file is an error, not an abort. On CPU, as llama.cpp's loader: the file is
// mapped and the tensors point into the mapping (no copy; the page cache holds them), and matmul
// weights whose type and shape the repacking kernels take are copied into the CPU_REPACK buffer
// (same kernels, hence same numerics and speed). Other devices get the bytes streamed in pieces.
import { createProgress, fileError, GGML_TYPES, type GgufReader } from '@qtk/core';
import { BackendBuffer, type Backend } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import { koffi, quietGgml, type Ptr } from '../ggml/lib.js';
import { MappedFile } from '../ggml/mmap.js';
import { nbytes, type Tensor } from '../ggml/tensor.js';

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
  /** The file mapping the other CPU weights point into (read-only: writing into them faults), if mapped. */
  mapped?: MappedFile;
  free(): void;
}

export interface LoadWeightsOptions {
  /** Put eligible matmul weights in the CPU_REPACK buffer (default true; trainers that need OUT_PROD pass false). */
  repack?: boolean;
  /** CPU: point the weights into a read-only mapping of the file instead of copying them (default true). */
  mmap?: boolean;
}

const PIECE = 64 * 1024 * 1024;
/** enum ggml_backend_buffer_usage */
const BUFFER_USAGE_WEIGHTS = 1;
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

/** One CPU buffer over the whole mapping, each tensor at its bytes in the file. */
function placeOnMapping(backend: Backend, m: MappedFile, placed: [Tensor, number][]): BackendBuffer {
  const lib = backend.lib;
  const buf = lib.ggml_backend_cpu_buffer_from_ptr(m.base, m.size) as Ptr | null;
  if (!buf) throw new Error(`ggml_backend_cpu_buffer_from_ptr failed for ${m.path}`);
  const out = new BackendBuffer(lib, buf);
  try {
    lib.ggml_backend_buffer_set_usage(buf, BUFFER_USAGE_WEIGHTS);
    for (const [t, offset] of placed) {
      if (offset + nbytes(t) > m.size) throw new Error(`${m.path}: tensor data at ${offset} runs past the file's ${m.size} bytes`);
      const st = lib.ggml_backend_tensor_alloc(buf, t.ptr, m.at(offset)) as number;
      if (st !== 0) throw new Error(`ggml_backend_tensor_alloc failed (${st}) for a tensor of ${m.path}`);
    }
    return out;
  } catch (e) {
    out.free();
    throw e;
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
  const mapped = backend.isCpu && opts.mmap !== false ? MappedFile.open(r.path, { populate: true }) : undefined;
  const free = () => {
    buffers.forEach((b) => b.free());
    contexts.forEach((c) => c.free());
    mapped?.unmap();
  };
  try {
    groups.forEach((group, gi) => {
      if (group.length === 0) return;
      const ctx = new GgmlContext(backend.lib, group.length);
      contexts.push(ctx);
      for (const s of group) tensors.set(s.name, ctx.newTensor(r.tensor(s.name).type, s.ne, s.name));
      if (gi === 0 && mapped) buffers.push(placeOnMapping(backend, mapped, group.map((s) => [tensors.get(s.name)!, r.tensor(s.name).absoluteOffset])));
      else buffers.push(gi === 0 ? backend.allocContext(ctx) : backend.allocContextIn(ctx, buft!));
    });
    const copied = mapped ? groups[1]! : present;
    const total = copied.reduce((a, s) => a + r.tensor(s.name).byteLength, 0);
    const progress = createProgress({ title: mapped ? 'repacking weights' : 'loading weights', total, kind: 'bytes' });
    try {
      if (mapped) {
        for (const s of copied) {
          const info = r.tensor(s.name);
          quietGgml(backend.lib, () => backend.lib.ggml_backend_tensor_set_ptr(tensors.get(s.name)!.ptr, mapped.at(info.absoluteOffset), 0, info.byteLength));
          // the repacked copy is what is read from now on
          mapped.release(info.absoluteOffset, info.byteLength);
          progress.tick(info.byteLength, s.name);
        }
        return { tensors, buffers, contexts, bytes: present.reduce((a, s) => a + r.tensor(s.name).byteLength, 0), repacked, mapped, free };
      }
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
