// AdamW over f32 parameter arrays (Loshchilov & Hutter: weight decay applied to the weights, not folded
// into the gradient), with bias correction, as torch.optim.AdamW computes it. Each update is done in
// float64 and stored back to f32, so a run restored from its saved f32 state continues bit for bit.

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class AdamW {
  /** Updates taken so far (bias correction uses step + 1 for the next one). */
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(readonly params: readonly Float32Array[], readonly config: AdamWConfig = ADAMW_DEFAULTS) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  /** One update with learning rate `lr`; `grads[i]` matches `params[i]` element for element. */
  update(grads: readonly Float32Array[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW: ${grads.length} gradients for ${this.params.length} parameters`);
    const { beta1, beta2, eps, weightDecay } = this.config;
    const t = ++this.step;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const decay = 1 - lr * weightDecay;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i]!, g = grads[i]!, m = this.m[i]!, v = this.v[i]!;
      if (g.length !== p.length) throw new Error(`AdamW: gradient ${i} has ${g.length} values for ${p.length} weights`);
      for (let k = 0; k < p.length; k++) {
        const gk = g[k]!;
        const mk = beta1 * m[k]! + (1 - beta1) * gk;
        const vk = beta2 * v[k]! + (1 - beta2) * gk * gk;
        m[k] = mk;
        v[k] = vk;
        p[k] = p[k]! * decay - (lr * (mk / bc1)) / (Math.sqrt(vk / bc2) + eps);
      }
    }
  }
}

/** L2 norm over every gradient value together, accumulated in float64. */
export function globalNorm(grads: readonly Float32Array[]): number {
  let s = 0;
  for (const g of grads) for (let k = 0; k < g.length; k++) s += g[k]! * g[k]!;
  return Math.sqrt(s);
}

/**
 * Scales the gradients in place so their global norm is at most `maxNorm` (torch's clip_grad_norm_:
 * factor maxNorm / (norm + 1e-6) when that is below 1). Returns the norm before clipping.
 */
export function clipGlobalNorm(grads: readonly Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const f = maxNorm / (norm + 1e-6);
    if (f < 1) for (const g of grads) for (let k = 0; k < g.length; k++) g[k] = g[k]! * f;
  }
  return norm;
}
