// What every layer builder receives: the ggml context, the matmul hook and the layer's weights.
// Layers are built from an input tensor plus these, so a trainer can rebuild one layer on its own
// (with LoRA deltas in `mm`) and imatrix collection can see every matmul input (also via `mm`).
import type { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';

export interface BuildCtx {
  g: GgmlContext;
  /** Every weight matmul goes through here; `name` is the GGUF tensor name of `w`. */
  mm(w: Tensor, x: Tensor, name: string): Tensor;
  /** Side-effect nodes (cache and state writes) to add to the graph. */
  effects: Tensor[];
}

export function plainBuild(g: GgmlContext): BuildCtx {
  return { g, mm: (w, x) => g.mulMat(w, x), effects: [] };
}

/** One layer's weights by GGUF suffix ("attn_q.weight"), from any source (GGUF, trainer). */
export interface LayerWeights {
  readonly il: number;
  get(suffix: string): Tensor;
}

export function layerWeights(il: number, all: ReadonlyMap<string, Tensor>): LayerWeights {
  return {
    il,
    get(suffix) {
      const t = all.get(`blk.${il}.${suffix}`);
      if (!t) throw new Error(`layer ${il} has no weight '${suffix}' loaded`);
      return t;
    },
  };
}

/** w · x through the hook, named blk.<il>.<suffix>. */
export function linear(b: BuildCtx, lw: LayerWeights, suffix: string, x: Tensor): Tensor {
  return b.mm(lw.get(suffix), x, `blk.${lw.il}.${suffix}`);
}

/** RMSNorm over ne0, times the weight (llama.cpp convention: the GGUF holds the full scale). */
export function rmsNormW(b: BuildCtx, x: Tensor, w: Tensor, eps: number): Tensor {
  return b.g.mul(b.g.rmsNorm(x, eps), w);
}

/** SwiGLU feed-forward: down(silu(gate x) * up x). */
export function swigluFfn(b: BuildCtx, lw: LayerWeights, x: Tensor): Tensor {
  const gate = linear(b, lw, 'ffn_gate.weight', x);
  const up = linear(b, lw, 'ffn_up.weight', x);
  return linear(b, lw, 'ffn_down.weight', b.g.swiglu(gate, up));
}
