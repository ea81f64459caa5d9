// A ggml context (metadata only: no_alloc) with shape-checked ops. Every op checks in TypeScript
// what ggml.c would GGML_ASSERT, because an assert aborts the whole Node process.
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import type { GgmlLib, Ptr } from './lib.js';
import {
  canRepeat,
  contiguousStrides,
  dims,
  isContiguous,
  isContiguousN,
  isContiguousRows,
  isTransposed,
  nbytes,
  nelements,
  shapeText,
  type Dims,
  type Tensor,
} from './tensor.js';

/** A shape or type that ggml would abort on: a bug in the caller, reported before ggml sees it. */
export class GgmlShapeError extends Error {
  override name = 'GgmlShapeError';
}

function check(ok: boolean, op: string, why: () => string): void {
  if (!ok) throw new GgmlShapeError(`${op}: ${why()}`);
}

export const ROPE_TYPE = { NORMAL: 0, NEOX: 2, MROPE: 8, VISION: 24, IMROPE: 40 } as const;

export interface RopeParams {
  nDims: number;
  mode: number;
  freqBase: number;
  freqScale?: number;
  nCtxOrig?: number;
  extFactor?: number;
  attnFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** Multi-section (M/IMROPE) position sections, 4 entries. */
  sections?: readonly [number, number, number, number];
}

export class GgmlContext {
  readonly ptr: Ptr;
  private freed = false;
  private nTensors = 0;

  constructor(
    readonly lib: GgmlLib,
    readonly maxTensors: number,
    readonly graphSize = 0,
    readonly grads = false,
  ) {
    const mem = lib.ggml_tensor_overhead() * maxTensors + (graphSize > 0 ? lib.ggml_graph_overhead_custom(graphSize, grads) : 0) + 1024;
    const ptr = lib.ggml_init({ mem_size: mem, mem_buffer: null, no_alloc: true }) as Ptr | null;
    if (!ptr) throw new Error(`ggml_init failed for ${maxTensors} tensors`);
    this.ptr = ptr;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lib.ggml_free(this.ptr);
  }

  /** Checked before each ggml call that creates a tensor: ggml aborts when its pool runs out. */
  private room(op: string): void {
    this.nTensors++;
    check(this.nTensors <= this.maxTensors, op, () => `context holds at most ${this.maxTensors} tensors`);
  }

  private wrap(make: () => Ptr | null, type: GgmlTypeName, ne: Dims, nb?: Dims, op = 'op'): Tensor {
    this.room(op);
    const ptr = make();
    if (!ptr) throw new Error(`${op}: ggml returned NULL (context of ${this.maxTensors} tensors full?)`);
    return { ptr, type, ne, nb: nb ?? contiguousStrides(type, ne) };
  }

  newTensor(type: GgmlTypeName, ne: readonly number[], name?: string): Tensor {
    const d = dims(ne);
    check(d[0] % GGML_TYPES[type].blockSize === 0, 'new_tensor', () => `ne0 ${d[0]} is not a multiple of ${type}'s block size ${GGML_TYPES[type].blockSize}`);
    const t = this.wrap(() => this.lib.ggml_new_tensor_4d(this.ptr, GGML_TYPES[type].id, d[0], d[1], d[2], d[3]), type, d, undefined, 'new_tensor');
    if (name) this.name(t, name);
    return t;
  }

  name(t: Tensor, name: string): Tensor {
    check(Buffer.byteLength(name) < 64, 'set_name', () => `name '${name}' is 64 bytes or longer`);
    this.lib.ggml_set_name(t.ptr, name);
    return t;
  }

  // ---- layout
  view(a: Tensor, ne: readonly number[], nb: readonly number[], offset: number): Tensor {
    const d = dims(ne);
    const strides: Dims = [GGML_TYPES[a.type].typeSize, nb[0] ?? 0, nb[1] ?? 0, nb[2] ?? 0];
    // unset strides default to packed
    if (ne.length < 2) strides[1] = contiguousStrides(a.type, d)[1];
    if (ne.length < 3) strides[2] = strides[1] * d[1];
    if (ne.length < 4) strides[3] = strides[2] * d[2];
    const v: Tensor = { ptr: 0n, type: a.type, ne: d, nb: strides };
    check(offset >= 0 && offset + nbytes(v) <= nbytes(a), 'view', () => `view ${shapeText(v)} at byte ${offset} (${nbytes(v)} bytes) runs past ${shapeText(a)} (${nbytes(a)} bytes)`);
    return this.wrap(() => this.lib.ggml_view_4d(this.ptr, a.ptr, d[0], d[1], d[2], d[3], strides[1], strides[2], strides[3], offset), a.type, d, strides, 'view');
  }

  reshape(a: Tensor, ne: readonly number[]): Tensor {
    const d = dims(ne);
    check(isContiguous(a), 'reshape', () => `${shapeText(a)} is not contiguous`);
    check(nelements({ ne: d }) === nelements(a), 'reshape', () => `${shapeText(a)} has ${nelements(a)} elements, [${ne.join(', ')}] needs ${nelements({ ne: d })}`);
    return this.wrap(() => this.lib.ggml_reshape_4d(this.ptr, a.ptr, d[0], d[1], d[2], d[3]), a.type, d, undefined, 'reshape');
  }

  permute(a: Tensor, ax0: number, ax1: number, ax2: number, ax3: number): Tensor {
    const axes = [ax0, ax1, ax2, ax3];
    check(new Set(axes).size === 4 && axes.every((x) => x >= 0 && x < 4), 'permute', () => `axes [${axes.join(', ')}] are not a permutation of 0..3`);
    const ne: Dims = [1, 1, 1, 1];
    const nb: Dims = [0, 0, 0, 0];
    axes.forEach((ax, i) => {
      ne[ax] = a.ne[i]!;
      nb[ax] = a.nb[i]!;
    });
    return this.wrap(() => this.lib.ggml_permute(this.ptr, a.ptr, ax0, ax1, ax2, ax3), a.type, ne, nb, 'permute');
  }

  transpose(a: Tensor): Tensor {
    return this.wrap(() => this.lib.ggml_transpose(this.ptr, a.ptr), a.type, [a.ne[1], a.ne[0], a.ne[2], a.ne[3]], [a.nb[1], a.nb[0], a.nb[2], a.nb[3]], 'transpose');
  }

  cont(a: Tensor): Tensor {
    return this.wrap(() => this.lib.ggml_cont(this.ptr, a.ptr), a.type, [...a.ne], undefined, 'cont');
  }

  /** Copies a into b (converting the type); returns a view of b that orders the copy in the graph. */
  cpy(a: Tensor, b: Tensor): Tensor {
    check(nelements(a) === nelements(b), 'cpy', () => `${shapeText(a)} and ${shapeText(b)} differ in element count`);
    return this.wrap(() => this.lib.ggml_cpy(this.ptr, a.ptr, b.ptr), b.type, [...b.ne], [...b.nb], 'cpy');
  }

  concat(a: Tensor, b: Tensor, dim: number): Tensor {
    check(a.type === b.type, 'concat', () => `types ${a.type} and ${b.type} differ`);
    check(a.ne.every((n, i) => i === dim || n === b.ne[i]), 'concat', () => `${shapeText(a)} and ${shapeText(b)} differ outside dim ${dim}`);
    const ne: Dims = [...a.ne];
    ne[dim] += b.ne[dim]!;
    return this.wrap(() => this.lib.ggml_concat(this.ptr, a.ptr, b.ptr, dim), a.type, ne, undefined, 'concat');
  }

  repeat(a: Tensor, ne: readonly number[]): Tensor {
    const d = dims(ne);
    check(canRepeat(a, { ne: d }), 'repeat', () => `${shapeText(a)} does not tile [${d.join(', ')}]`);
    return this.wrap(() => this.lib.ggml_repeat_4d(this.ptr, a.ptr, d[0], d[1], d[2], d[3]), a.type, d, undefined, 'repeat');
  }

  getRows(a: Tensor, ids: Tensor): Tensor {
    check(ids.type === 'I32', 'get_rows', () => `row ids are ${ids.type}, expected I32`);
    check(a.ne[2] === ids.ne[1] && a.ne[3] === ids.ne[2] && ids.ne[3] === 1, 'get_rows', () => `data ${shapeText(a)} does not fit ids ${shapeText(ids)}`);
    const type: GgmlTypeName = a.type === 'I32' ? 'I32' : 'F32';
    return this.wrap(() => this.lib.ggml_get_rows(this.ptr, a.ptr, ids.ptr), type, [a.ne[0], ids.ne[0], ids.ne[1], ids.ne[2]], undefined, 'get_rows');
  }

  // ---- arithmetic
  /** a [K, M, ...] (weights, any type) times b [K, N, ...] → [M, N, ...] f32. */
  mulMat(a: Tensor, b: Tensor): Tensor {
    check(a.ne[0] === b.ne[0], 'mul_mat', () => `inner dims differ: ${shapeText(a)} · ${shapeText(b)}`);
    check(b.ne[2] % a.ne[2] === 0 && b.ne[3] % a.ne[3] === 0, 'mul_mat', () => `${shapeText(b)} does not broadcast over ${shapeText(a)}`);
    check(!isTransposed(a), 'mul_mat', () => `first operand ${shapeText(a)} is transposed`);
    return this.wrap(() => this.lib.ggml_mul_mat(this.ptr, a.ptr, b.ptr), 'F32', [a.ne[1], b.ne[1], b.ne[2], b.ne[3]], undefined, 'mul_mat');
  }

  private binary(op: 'add' | 'sub' | 'mul' | 'div', a: Tensor, b: Tensor): Tensor {
    check(canRepeat(b, a), op, () => `${shapeText(b)} does not broadcast to ${shapeText(a)}`);
    check(isContiguousRows(a) && isContiguousRows(b), op, () => `operands need packed rows: ${shapeText(a)}, ${shapeText(b)}`);
    check(b.type === 'F32' || b.type === a.type, op, () => `types ${a.type} and ${b.type}`);
    const fn = { add: this.lib.ggml_add, sub: this.lib.ggml_sub, mul: this.lib.ggml_mul, div: this.lib.ggml_div }[op];
    return this.wrap(() => fn(this.ptr, a.ptr, b.ptr), a.type, [...a.ne], undefined, op);
  }
  add(a: Tensor, b: Tensor): Tensor { return this.binary('add', a, b); }
  sub(a: Tensor, b: Tensor): Tensor { return this.binary('sub', a, b); }
  mul(a: Tensor, b: Tensor): Tensor { return this.binary('mul', a, b); }
  div(a: Tensor, b: Tensor): Tensor { return this.binary('div', a, b); }

  private unary(op: 'sqr' | 'sqrt' | 'exp' | 'neg' | 'silu' | 'sigmoid' | 'softplus', a: Tensor): Tensor {
    check(isContiguousN(a, 1), op, () => `${shapeText(a)} needs packed rows and planes`);
    const fn = {
      sqr: this.lib.ggml_sqr, sqrt: this.lib.ggml_sqrt, exp: this.lib.ggml_exp, neg: this.lib.ggml_neg,
      silu: this.lib.ggml_silu, sigmoid: this.lib.ggml_sigmoid, softplus: this.lib.ggml_softplus,
    }[op];
    return this.wrap(() => fn(this.ptr, a.ptr), a.type, [...a.ne], undefined, op);
  }
  sqr(a: Tensor): Tensor { return this.unary('sqr', a); }
  sqrt(a: Tensor): Tensor { return this.unary('sqrt', a); }
  exp(a: Tensor): Tensor { return this.unary('exp', a); }
  neg(a: Tensor): Tensor { return this.unary('neg', a); }
  silu(a: Tensor): Tensor { return this.unary('silu', a); }
  sigmoid(a: Tensor): Tensor { return this.unary('sigmoid', a); }
  softplus(a: Tensor): Tensor { return this.unary('softplus', a); }

  scale(a: Tensor, s: number): Tensor {
    check(isContiguousRows(a), 'scale', () => `${shapeText(a)} needs packed rows`);
    return this.wrap(() => this.lib.ggml_scale(this.ptr, a.ptr, s), a.type, [...a.ne], undefined, 'scale');
  }

  sumRows(a: Tensor): Tensor {
    return this.wrap(() => this.lib.ggml_sum_rows(this.ptr, a.ptr), a.type, [1, a.ne[1], a.ne[2], a.ne[3]], undefined, 'sum_rows');
  }

  /** Sum of all elements → [1]. */
  sum(a: Tensor): Tensor {
    return this.wrap(() => this.lib.ggml_sum(this.ptr, a.ptr), a.type, [1, 1, 1, 1], undefined, 'sum');
  }

  /** A copy of a with b written at byte `offset` through strides nb1..nb3 of a (not in place: it has a backward). */
  set(a: Tensor, b: Tensor, nb: readonly [number, number, number], offset: number): Tensor {
    check(a.type === 'F32' && b.type === 'F32' && isContiguous(a) && isContiguous(b), 'set', () => `${shapeText(a)} and ${shapeText(b)} must be contiguous f32`);
    const last = offset + (b.ne[0] - 1) * 4 + (b.ne[1] - 1) * nb[0] + (b.ne[2] - 1) * nb[1] + (b.ne[3] - 1) * nb[2];
    check(offset >= 0 && last + 4 <= nbytes(a), 'set', () => `${shapeText(b)} at byte ${offset} runs past ${shapeText(a)}`);
    // ggml keeps strides and offset in int32 op params
    check(nbytes(a) < 2 ** 31, 'set', () => `${shapeText(a)} is 2 GiB or larger`);
    return this.wrap(() => this.lib.ggml_set(this.ptr, a.ptr, b.ptr, nb[0], nb[1], nb[2], offset), a.type, [...a.ne], undefined, 'set');
  }

  /** -inf above the diagonal (column > row + nPast) of each [ne0, ne1] matrix. */
  diagMaskInf(a: Tensor, nPast: number): Tensor {
    check(a.type === 'F32' && isContiguous(a), 'diag_mask_inf', () => `${shapeText(a)} must be contiguous f32`);
    return this.wrap(() => this.lib.ggml_diag_mask_inf(this.ptr, a.ptr, nPast), a.type, [...a.ne], undefined, 'diag_mask_inf');
  }

  /** −Σ labels·log_softmax(logits) / rows, over [vocab, rows] → [1]. */
  crossEntropyLoss(logits: Tensor, labels: Tensor): Tensor {
    check(logits.ne.every((n, i) => n === labels.ne[i]) && isContiguous(logits) && isContiguous(labels), 'cross_entropy_loss', () => `${shapeText(logits)} and ${shapeText(labels)} must be contiguous and the same shape`);
    return this.wrap(() => this.lib.ggml_cross_entropy_loss(this.ptr, logits.ptr, labels.ptr), 'F32', [1, 1, 1, 1], undefined, 'cross_entropy_loss');
  }

  /** silu(a) * b, fused. */
  swiglu(a: Tensor, b: Tensor): Tensor {
    check(a.ne.every((n, i) => n === b.ne[i]), 'swiglu', () => `${shapeText(a)} and ${shapeText(b)} differ`);
    check(isContiguousN(a, 1) && isContiguousN(b, 1), 'swiglu', () => 'operands need packed rows');
    return this.wrap(() => this.lib.ggml_swiglu_split(this.ptr, a.ptr, b.ptr), a.type, [...a.ne], undefined, 'swiglu');
  }

  rmsNorm(a: Tensor, eps: number): Tensor {
    check(a.type === 'F32' && isContiguousRows(a), 'rms_norm', () => `${shapeText(a)} must be f32 with packed rows`);
    return this.wrap(() => this.lib.ggml_rms_norm(this.ptr, a.ptr, eps), a.type, [...a.ne], undefined, 'rms_norm');
  }

  l2Norm(a: Tensor, eps: number): Tensor {
    check(a.type === 'F32' && isContiguousRows(a), 'l2_norm', () => `${shapeText(a)} must be f32 with packed rows`);
    return this.wrap(() => this.lib.ggml_l2_norm(this.ptr, a.ptr, eps), a.type, [...a.ne], undefined, 'l2_norm');
  }

  softMax(a: Tensor, mask: Tensor | null, scale: number): Tensor {
    check(isContiguous(a), 'soft_max', () => `${shapeText(a)} is not contiguous`);
    if (mask) {
      check((mask.type === 'F32' || mask.type === 'F16') && isContiguous(mask), 'soft_max', () => `mask ${shapeText(mask)} must be contiguous f32/f16`);
      check(mask.ne[0] === a.ne[0] && mask.ne[1] >= a.ne[1] && a.ne[2] % mask.ne[2] === 0 && a.ne[3] % mask.ne[3] === 0, 'soft_max', () => `mask ${shapeText(mask)} does not fit ${shapeText(a)}`);
    }
    return this.wrap(() => this.lib.ggml_soft_max_ext(this.ptr, a.ptr, mask?.ptr ?? null, scale, 0), a.type, [...a.ne], undefined, 'soft_max');
  }

  /** RoPE over the first nDims of each head of a [headDim, heads, T, 1]; pos is I32 [T] (×4 for multi-section). */
  rope(a: Tensor, pos: Tensor, p: RopeParams): Tensor {
    const multi = (p.mode & ROPE_TYPE.MROPE) !== 0;
    check((p.mode & 1) === 0, 'rope', () => `mode ${p.mode} is not supported`);
    check(pos.type === 'I32' && pos.ne[1] === 1 && pos.ne[2] === 1 && pos.ne[3] === 1, 'rope', () => `positions ${shapeText(pos)} must be an I32 vector`);
    check(pos.ne[0] === a.ne[2] * (multi ? 4 : 1), 'rope', () => `${pos.ne[0]} positions for ${a.ne[2]} tokens${multi ? ' (4 per token)' : ''}`);
    check(p.nDims % 2 === 0 && p.nDims <= a.ne[0], 'rope', () => `n_dims ${p.nDims} must be even and at most ${a.ne[0]}`);
    check(a.type === 'F32' || a.type === 'F16', 'rope', () => `${a.type} input`);
    const args = [p.nCtxOrig ?? 0, p.freqBase, p.freqScale ?? 1, p.extFactor ?? 0, p.attnFactor ?? 1, p.betaFast ?? 32, p.betaSlow ?? 1] as const;
    if (multi) check(p.sections !== undefined && p.sections.length === 4, 'rope', () => 'multi-section RoPE needs 4 sections');
    const make = multi
      ? () => this.lib.ggml_rope_multi(this.ptr, a.ptr, pos.ptr, null, p.nDims, Int32Array.from(p.sections!), p.mode, ...args)
      : () => this.lib.ggml_rope_ext(this.ptr, a.ptr, pos.ptr, null, p.nDims, p.mode, ...args);
    return this.wrap(make, a.type, [...a.ne], undefined, 'rope');
  }

  /** Depthwise causal conv: sx [K-1+T, C, S], c [K, C] → [C, T, S]. */
  ssmConv(sx: Tensor, c: Tensor): Tensor {
    check(sx.ne[3] === 1 && c.ne[2] === 1 && c.ne[3] === 1, 'ssm_conv', () => `sx ${shapeText(sx)} must be 3-D and c ${shapeText(c)} 2-D`);
    const nT = sx.ne[0] - c.ne[0] + 1;
    check(nT >= 0 && sx.ne[1] === c.ne[1], 'ssm_conv', () => `sx ${shapeText(sx)} does not fit kernel ${shapeText(c)}`);
    check(sx.type === 'F32' && c.type === 'F32' && isContiguousRows(sx) && isContiguous(c), 'ssm_conv', () => 'f32 operands with packed rows required');
    return this.wrap(() => this.lib.ggml_ssm_conv(this.ptr, sx.ptr, c.ptr), 'F32', [c.ne[1], nT, sx.ne[2], 1], undefined, 'ssm_conv');
  }

  /**
   * Gated delta rule. q, k [S, Hk, T, B]; v [S, Hv, T, B]; g, beta [1, Hv, T, B]; state [S, S, Hv, B].
   * Returns [S*Hv, T*B + S*B]: outputs, then the final state.
   */
  gatedDeltaNet(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, state: Tensor): Tensor {
    const [S, Hv, T, B] = v.ne;
    const op = 'gated_delta_net';
    for (const [n, t] of [['q', q], ['k', k], ['v', v], ['g', g], ['beta', beta], ['state', state]] as const) check(t.type === 'F32', op, () => `${n} is ${t.type}, expected F32`);
    check(isContiguousRows(q) && isContiguousRows(k) && isContiguousRows(v), op, () => 'q, k, v need packed rows');
    check(isContiguous(g) && isContiguous(beta) && isContiguous(state), op, () => 'g, beta and state must be contiguous');
    check(q.ne[0] === S && k.ne[0] === S && q.ne[1] === k.ne[1] && Hv % q.ne[1] === 0, op, () => `q ${shapeText(q)}, k ${shapeText(k)} do not fit v ${shapeText(v)}`);
    check(q.ne[2] === T && k.ne[2] === T && q.ne[3] === B && k.ne[3] === B, op, () => 'q, k, v differ in tokens or sequences');
    check(g.ne[0] === 1 && g.ne[1] === Hv && g.ne[2] === T && g.ne[3] === B, op, () => `g ${shapeText(g)} must be [1, ${Hv}, ${T}, ${B}]`);
    check(beta.ne[0] === 1 && beta.ne[1] === Hv && beta.ne[2] === T && beta.ne[3] === B, op, () => `beta ${shapeText(beta)} must be [1, ${Hv}, ${T}, ${B}]`);
    check(state.ne[0] === S && state.ne[1] === S && state.ne[2] === Hv && state.ne[3] === B, op, () => `state ${shapeText(state)} must be [${S}, ${S}, ${Hv}, ${B}]`);
    return this.wrap(() => this.lib.ggml_gated_delta_net(this.ptr, q.ptr, k.ptr, v.ptr, g.ptr, beta.ptr, state.ptr, 1), 'F32', [S * Hv, T * B + S * B, 1, 1], undefined, op);
  }
}
