// Tensor lists shaped like converted qwen35 / qwen3 GGUFs (names and ne as in spec sections 4 and 7),
// with tiny widths: enough to run llama-quantize's rules over a full-depth layout.
import type { GgmlTypeName } from '@qtk/core';

export interface LayoutTensor { name: string; ne: number[]; type: GgmlTypeName }

export interface Qwen35Dims {
  layers: number; mtp: boolean; hidden: number; ffn: number; vocab: number;
  nHead: number; nHeadKv: number; headDim: number; nVHead: number; nKHead: number; vHeadDim: number; kHeadDim: number;
}

export function qwen35Layout(d: Qwen35Dims, weightType: GgmlTypeName = 'F16'): LayoutTensor[] {
  const W = weightType;
  const t: LayoutTensor[] = [
    { name: 'token_embd.weight', ne: [d.hidden, d.vocab], type: W },
    { name: 'output_norm.weight', ne: [d.hidden], type: 'F32' },
    { name: 'output.weight', ne: [d.hidden, d.vocab], type: W },
  ];
  const qkv = 2 * d.nKHead * d.kHeadDim + d.nVHead * d.vHeadDim;
  const vDim = d.nVHead * d.vHeadDim;
  const ffn = (b: string) => [
    { name: `${b}.ffn_gate.weight`, ne: [d.hidden, d.ffn], type: W },
    { name: `${b}.ffn_up.weight`, ne: [d.hidden, d.ffn], type: W },
    { name: `${b}.ffn_down.weight`, ne: [d.ffn, d.hidden], type: W },
  ];
  const attention = (b: string) => [
    { name: `${b}.attn_norm.weight`, ne: [d.hidden], type: 'F32' as const },
    { name: `${b}.post_attention_norm.weight`, ne: [d.hidden], type: 'F32' as const },
    { name: `${b}.attn_q.weight`, ne: [d.hidden, 2 * d.nHead * d.headDim], type: W },
    { name: `${b}.attn_k.weight`, ne: [d.hidden, d.nHeadKv * d.headDim], type: W },
    { name: `${b}.attn_v.weight`, ne: [d.hidden, d.nHeadKv * d.headDim], type: W },
    { name: `${b}.attn_output.weight`, ne: [d.nHead * d.headDim, d.hidden], type: W },
    { name: `${b}.attn_q_norm.weight`, ne: [d.headDim], type: 'F32' as const },
    { name: `${b}.attn_k_norm.weight`, ne: [d.headDim], type: 'F32' as const },
    ...ffn(b),
  ];
  for (let i = 0; i < d.layers; i++) {
    const b = `blk.${i}`;
    if ((i + 1) % 4 === 0) t.push(...attention(b));
    else {
      t.push(
        { name: `${b}.attn_norm.weight`, ne: [d.hidden], type: 'F32' },
        { name: `${b}.post_attention_norm.weight`, ne: [d.hidden], type: 'F32' },
        { name: `${b}.attn_qkv.weight`, ne: [d.hidden, qkv], type: W },
        { name: `${b}.attn_gate.weight`, ne: [d.hidden, vDim], type: W },
        { name: `${b}.ssm_beta.weight`, ne: [d.hidden, d.nVHead], type: W },
        { name: `${b}.ssm_alpha.weight`, ne: [d.hidden, d.nVHead], type: W },
        { name: `${b}.ssm_a`, ne: [d.nVHead], type: 'F32' },
        { name: `${b}.ssm_dt.bias`, ne: [d.nVHead], type: 'F32' },
        { name: `${b}.ssm_conv1d.weight`, ne: [4, qkv], type: 'F32' },
        { name: `${b}.ssm_norm.weight`, ne: [d.vHeadDim], type: 'F32' },
        { name: `${b}.ssm_out.weight`, ne: [vDim, d.hidden], type: W },
        ...ffn(b),
      );
    }
  }
  if (d.mtp) {
    const b = `blk.${d.layers}`;
    t.push(
      { name: `${b}.nextn.eh_proj.weight`, ne: [2 * d.hidden, d.hidden], type: W },
      { name: `${b}.nextn.enorm.weight`, ne: [d.hidden], type: 'F32' },
      { name: `${b}.nextn.hnorm.weight`, ne: [d.hidden], type: 'F32' },
      { name: `${b}.nextn.shared_head_norm.weight`, ne: [d.hidden], type: 'F32' },
      ...attention(b),
    );
  }
  return t;
}

export function qwen3Layout(layers: number, hidden: number, ffn: number, vocab: number, tied: boolean, W: GgmlTypeName = 'F16'): LayoutTensor[] {
  const t: LayoutTensor[] = [
    { name: 'token_embd.weight', ne: [hidden, vocab], type: W },
    { name: 'output_norm.weight', ne: [hidden], type: 'F32' },
  ];
  if (!tied) t.push({ name: 'output.weight', ne: [hidden, vocab], type: W });
  for (let i = 0; i < layers; i++) {
    const b = `blk.${i}`;
    t.push(
      { name: `${b}.attn_norm.weight`, ne: [hidden], type: 'F32' },
      { name: `${b}.attn_q.weight`, ne: [hidden, 256], type: W },
      { name: `${b}.attn_k.weight`, ne: [hidden, 128], type: W },
      { name: `${b}.attn_v.weight`, ne: [hidden, 128], type: W },
      { name: `${b}.attn_output.weight`, ne: [256, hidden], type: W },
      { name: `${b}.attn_q_norm.weight`, ne: [128], type: 'F32' },
      { name: `${b}.attn_k_norm.weight`, ne: [128], type: 'F32' },
      { name: `${b}.ffn_norm.weight`, ne: [hidden], type: 'F32' },
      { name: `${b}.ffn_gate.weight`, ne: [hidden, ffn], type: W },
      { name: `${b}.ffn_up.weight`, ne: [hidden, ffn], type: W },
      { name: `${b}.ffn_down.weight`, ne: [ffn, hidden], type: W },
    );
  }
  return t;
}
