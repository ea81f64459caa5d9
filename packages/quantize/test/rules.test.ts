// The per-tensor types our rules choose, against tables written by hand from llama.cpp's
// src/llama-quant.cpp (llama_tensor_get_type_impl, tensor_type_fallback, tensor_allows_quantization).
import { describe, expect, it } from 'vitest';
import { chooseTensorTypes, llamaTensorOrder } from '../src/rules.js';
import { qwen35Layout, qwen3Layout } from './layouts.js';

// use_more_bits(i, n) for n = 65 (64 trunk layers + the MTP block; n_attention_wv = n_ffn_down = 65):
// i < 65/8 = 8, or i >= 7*65/8 = 56, or (i - 8) % 3 == 2  →  written out:
const BUMPED_65 = new Set([0, 1, 2, 3, 4, 5, 6, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 43, 46, 49, 52, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64]);

// _norm.weight by name; nextn.enorm/hnorm, ssm_a, ssm_dt.bias because they are 1-D; ssm_conv1d by name
const NEVER_QUANTIZED = /(_norm\.weight|nextn\.[eh]norm\.weight|ssm_a|ssm_dt\.bias|ssm_conv1d\.weight)$/;

/** Expected type for Q4_K_M (base Q4_K) or Q5_K_M (base Q5_K) with widths that are multiples of 256. */
function expectedKM(name: string, base: 'Q4_K' | 'Q5_K'): string {
  // tensor_allows_quantization: 1-D tensors, *_norm.weight, ssm_conv1d and names not ending in "weight" keep their input type (F32)
  if (NEVER_QUANTIZED.test(name)) return 'F32';
  // OUTPUT: ne0 % 256 == 0 and the new type is not Q8_0 → Q6_K
  if (name === 'output.weight') return 'Q6_K';
  // TOKEN_EMBD with a separate output.weight (untied): no rule for *_K_M ftypes → default
  if (name === 'token_embd.weight') return base;
  const blk = Number(/^blk\.(\d+)\./.exec(name)![1]);
  // V-like (attn_v, and qwen35's GDN attn_qkv via ATTENTION_QKV): Q6_K when use_more_bits(i_attention_wv, n_attention_wv);
  // each block holds exactly one V-like tensor, so i_attention_wv is the block index
  if (/\.(attn_v|attn_qkv)\.weight$/.test(name)) return BUMPED_65.has(blk) ? 'Q6_K' : base;
  // FFN_DOWN: Q6_K when use_more_bits(i_ffn_down, n_ffn_down = block_count = 65); one per block
  if (/\.ffn_down\.weight$/.test(name)) return BUMPED_65.has(blk) ? 'Q6_K' : base;
  // every other quantizable tensor (attn_q/k/output, attn_gate, ssm_alpha/beta/out, ffn_gate/up, nextn.eh_proj): default
  return base;
}

const FULL = { layers: 64, mtp: true, hidden: 256, ffn: 512, vocab: 1024, nHead: 2, nHeadKv: 1, headDim: 256, nVHead: 4, nKHead: 2, vHeadDim: 128, kHeadDim: 128 };

describe('llama-quantize tensor types for qwen35 (64 layers, 3 GDN : 1 attention, MTP block 64)', () => {
  const layout = qwen35Layout(FULL);
  const opts = { blockCount: 65, nGqa: 2 } as const;

  for (const [preset, base] of [['Q4_K_M', 'Q4_K'], ['Q5_K_M', 'Q5_K']] as const) {
    it(`${preset}: every tensor's type equals the hand-written table`, () => {
      const { choices, nFallback } = chooseTensorTypes(layout, { preset, ...opts });
      expect(choices).toHaveLength(layout.length);
      const wrong = choices.filter((c) => c.type !== expectedKM(c.name, base)).map((c) => `${c.name}: ${c.type} (expected ${expectedKM(c.name, base)})`);
      expect(wrong).toEqual([]);
      expect(nFallback).toBe(0);
      // spot checks straight from spec section 6.3: attention layers among the bumped blocks
      const t = new Map(choices.map((c) => [c.name, c.type]));
      for (const b of [3, 7, 19, 31, 43, 55, 59, 63, 64]) expect(t.get(`blk.${b}.attn_v.weight`)).toBe('Q6_K');
      for (const b of [11, 15, 23, 27]) expect(t.get(`blk.${b}.attn_v.weight`)).toBe(base);
      expect(t.get('blk.8.attn_qkv.weight')).toBe(base);
      expect(t.get('blk.10.ffn_down.weight')).toBe('Q6_K');
      expect(t.get('blk.64.nextn.eh_proj.weight')).toBe(base);
      expect(t.get('blk.0.ssm_conv1d.weight')).toBe('F32');
    });
  }

  it('tensor order is llama-quantize\'s: non-block tensors by name, then blocks in numeric order', () => {
    const names = llamaTensorOrder(layout).map((t) => t.name);
    expect(names.slice(0, 3)).toEqual(['output.weight', 'output_norm.weight', 'token_embd.weight']);
    expect(names[3]).toBe('blk.0.attn_gate.weight');
    expect(names.indexOf('blk.9.attn_gate.weight')).toBeLessThan(names.indexOf('blk.10.attn_gate.weight'));
  });

  it('widths that are not multiples of 256 fall back (Q4_K→Q5_0, Q6_K→Q8_0) and are counted', () => {
    // hidden 320: every tensor with ne0 = hidden or 2·hidden falls back; ffn_down (ne0 = ffn = 512),
    // attn_output (ne0 = 512) and ssm_out (ne0 = 512) keep k-quants
    const d = { ...FULL, hidden: 320 };
    const lay = qwen35Layout(d);
    const { choices, nFallback } = chooseTensorTypes(lay, { preset: 'Q4_K_M', ...opts });
    const t = new Map(choices.map((c) => [c.name, c.type]));
    // OUTPUT: ne0 % blck(Q4_K) != 0 → Q8_0 by the output rule itself, not a fallback
    expect(t.get('output.weight')).toBe('Q8_0');
    expect(t.get('token_embd.weight')).toBe('Q5_0');
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q8_0'); // bumped Q6_K → Q8_0
    expect(t.get('blk.8.attn_qkv.weight')).toBe('Q5_0'); // Q4_K → Q5_0
    expect(t.get('blk.3.attn_v.weight')).toBe('Q8_0');
    expect(t.get('blk.11.attn_v.weight')).toBe('Q5_0');
    expect(t.get('blk.11.attn_q.weight')).toBe('Q5_0');
    expect(t.get('blk.0.ffn_down.weight')).toBe('Q6_K');
    expect(t.get('blk.8.ffn_down.weight')).toBe('Q4_K');
    expect(t.get('blk.3.attn_output.weight')).toBe('Q4_K');
    expect(t.get('blk.0.ssm_out.weight')).toBe('Q4_K');
    expect(t.get('blk.64.nextn.eh_proj.weight')).toBe('Q5_0'); // ne0 = 640
    // fallbacks: per GDN block attn_qkv, attn_gate, ssm_beta, ssm_alpha, ffn_gate, ffn_up (6);
    // per attention block (16 trunk + MTP) attn_q, attn_k, attn_v, ffn_gate, ffn_up (5); token_embd; eh_proj
    expect(nFallback).toBe(48 * 6 + 17 * 5 + 1 + 1);
    // ne0 not even a multiple of 32 → F16 (tensor_type_fallback's last resort)
    const odd = chooseTensorTypes([{ name: 'blk.0.ffn_up.weight', ne: [200, 64], type: 'F16' }], { preset: 'Q4_K_M', blockCount: 1, nGqa: 1 });
    expect(odd.choices[0]!.type).toBe('F16');
  });

  it('--pure keeps the default type everywhere; --leave-output-tensor keeps output.weight', () => {
    const { choices } = chooseTensorTypes(layout, { preset: 'Q4_K_M', ...opts, pure: true, leaveOutputTensor: true });
    const t = new Map(choices.map((c) => [c.name, c.type]));
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q4_K');
    expect(t.get('blk.0.ffn_down.weight')).toBe('Q4_K');
    expect(t.get('output.weight')).toBe('F16');
  });

  it('--tensor-type overrides by regex and, like llama.cpp, skips the counter for overridden tensors', () => {
    const { choices } = chooseTensorTypes(layout, { preset: 'Q4_K_M', ...opts, overrides: [{ pattern: /blk\.0\.attn_qkv/, type: 'Q8_0' }] });
    const t = new Map(choices.map((c) => [c.name, c.type]));
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q8_0');
    // block 0 no longer advances i_attention_wv, so block b now uses index b−1: 8 → 7 (bumped), 10 → 9 (not)
    expect(t.get('blk.8.attn_qkv.weight')).toBe('Q6_K');
    expect(t.get('blk.10.attn_qkv.weight')).toBe('Q4_K');
    expect(t.get('blk.0.ffn_down.weight')).toBe('Q6_K');
  });

  it('other presets on this layout (Q8_0, Q6_K, Q3_K_M, Q2_K, IQ4_XS with n_gqa = 6)', () => {
    const pick = (preset: Parameters<typeof chooseTensorTypes>[1]['preset'], nGqa = 6, hasImatrix = false) =>
      new Map(chooseTensorTypes(layout, { preset, blockCount: 65, nGqa, hasImatrix }).choices.map((c) => [c.name, c.type]));
    let t = pick('Q8_0');
    expect(t.get('output.weight')).toBe('Q8_0'); // OUTPUT rule leaves Q8_0 alone
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q8_0');
    t = pick('Q3_K_M');
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q5_K'); // i_attention_wv < 2
    expect(t.get('blk.2.attn_qkv.weight')).toBe('Q4_K');
    expect(t.get('blk.3.ffn_down.weight')).toBe('Q5_K'); // i < 65/16 = 4
    expect(t.get('blk.4.ffn_down.weight')).toBe('Q4_K');
    expect(t.get('blk.3.attn_output.weight')).toBe('Q4_K');
    expect(t.get('blk.3.attn_q.weight')).toBe('Q3_K');
    t = pick('Q2_K');
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q4_K'); // n_gqa >= 4
    expect(t.get('blk.0.ffn_down.weight')).toBe('Q3_K');
    expect(t.get('blk.3.attn_output.weight')).toBe('Q3_K');
    expect(t.get('blk.3.attn_k.weight')).toBe('Q2_K');
    t = pick('IQ4_XS');
    expect(t.get('output.weight')).toBe('Q6_K');
    expect(t.get('blk.0.attn_qkv.weight')).toBe('Q5_K'); // n_gqa >= 4
    expect(t.get('blk.7.ffn_down.weight')).toBe('Q5_K'); // i < 65/8 without an imatrix
    expect(t.get('blk.8.ffn_down.weight')).toBe('IQ4_XS');
    t = pick('IQ4_XS', 6, true);
    expect(t.get('blk.7.ffn_down.weight')).toBe('IQ4_XS');
  });
});

describe('qwen3', () => {
  it('tied embeddings: token_embd follows the output rule (Q6_K); 28 layers bump by use_more_bits(i, 28)', () => {
    const { choices } = chooseTensorTypes(qwen3Layout(28, 256, 512, 512, true), { preset: 'Q4_K_M', blockCount: 28, nGqa: 2 });
    const t = new Map(choices.map((c) => [c.name, c.type]));
    expect(t.get('token_embd.weight')).toBe('Q6_K');
    // n = 28: i < 3, i >= 24, or (i − 3) % 3 == 2 → 0,1,2,5,8,11,14,17,20,23,24..27
    const bumped = [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27];
    for (let i = 0; i < 28; i++) {
      const want = bumped.includes(i) ? 'Q6_K' : 'Q4_K';
      expect(t.get(`blk.${i}.attn_v.weight`), `blk.${i}.attn_v`).toBe(want);
      expect(t.get(`blk.${i}.ffn_down.weight`), `blk.${i}.ffn_down`).toBe(want);
    }
    expect(t.get('blk.0.ffn_norm.weight')).toBe('F32');
  });
});
