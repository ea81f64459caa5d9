// Streams a GGUF's weights, tensor by tensor, into one backend buffer. Each tensor's shape is
// checked against the architecture's table first, so a malformed file is an error, not an abort.
import { createProgress, fileError, type GgufReader } from '@qtk/core';
import type { Backend, BackendBuffer } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';

export interface WeightSpec {
  name: string;
  ne: number[];
  optional?: boolean;
}

export interface LoadedWeights {
  tensors: Map<string, Tensor>;
  buffer: BackendBuffer;
  ctx: GgmlContext;
  bytes: number;
}

const PIECE = 64 * 1024 * 1024;

export async function loadWeights(r: GgufReader, backend: Backend, specs: readonly WeightSpec[]): Promise<LoadedWeights> {
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
  const ctx = new GgmlContext(backend.lib, present.length + 1);
  const tensors = new Map<string, Tensor>();
  for (const s of present) tensors.set(s.name, ctx.newTensor(r.tensor(s.name).type, s.ne, s.name));
  const buffer = backend.allocContext(ctx);
  const total = present.reduce((a, s) => a + r.tensor(s.name).byteLength, 0);
  const progress = createProgress({ title: 'loading weights', total, kind: 'bytes' });
  try {
    for (const s of present) {
      const info = r.tensor(s.name);
      const t = tensors.get(s.name)!;
      for (let off = 0; off < info.byteLength; off += PIECE) {
        const len = Math.min(PIECE, info.byteLength - off);
        const bytes = await r.readTensorRange(info, off, len);
        backend.setData(t, bytes, off);
        progress.tick(len, s.name);
      }
    }
  } catch (e) {
    buffer.free();
    ctx.free();
    throw e;
  } finally {
    progress.done();
  }
  return { tensors, buffer, ctx, bytes: total };
}
