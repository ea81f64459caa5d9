// The training formula's inputs from a model description (a config.json or a GGUF header, no weights
// read), so `qtk plan --train` and `qtk lora train --plan` evaluate the same trainingMemory on the same
// sizes: the LoRA targets come from the module map (every adaptable linear of the trunk), the layer
// shape from the hyperparameters.
import { fileError } from '../errors.js';
import { loraArchitecture, LORA_MODULES } from '../lora/module-map.js';
import type { ModelDescription, ModelShape } from './model.js';
import { trainingMemory, type LayerShape, type TrainingMemory } from './training.js';

/** GGUF tensor suffixes ('attn_q.weight', 'ssm_alpha.weight') that `--targets all` adapts. */
export function loraTensorSuffixes(arch: string): Set<string> {
  const a = loraArchitecture(arch);
  const hf = new Set<string>(LORA_MODULES.map((m) => `${m.module}.weight`));
  return new Set(a.blockTensors.filter((r) => hf.has(r.hf)).map((r) => r.gguf));
}

/** Σ over the trunk's LoRA targets of rank × (in + out): the trainable parameters of `--targets all`. */
export function loraParamCount(d: ModelDescription, rank: number): number {
  const suffixes = loraTensorSuffixes(d.shape.arch);
  let n = 0;
  for (const t of d.tensors) {
    const m = /^blk\.(\d+)\.(.+)$/.exec(t.name);
    if (!m || Number(m[1]) >= d.shape.nLayer || !suffixes.has(m[2]!)) continue;
    n += rank * (t.ne[0]! + t.ne[1]!);
  }
  return n;
}

/** What sets one layer's working set, from the model's shape. */
export function trainingLayerShape(s: ModelShape, source = 'the model'): LayerShape {
  if (s.ssm && !s.ssm.valueHeads) throw fileError(source, `${s.arch}.ssm.time_step_rank (the DeltaNet value heads) is missing`, 'Pass a GGUF written by qtk convert or llama.cpp, or the model\'s config.json');
  const gdn = s.ssm ? {
    gdnHeads: s.ssm.valueHeads!,
    gdnHeadDim: s.ssm.innerSize / s.ssm.valueHeads!,
    gdnConv: 2 * s.ssm.groupCount * s.ssm.stateSize + s.ssm.innerSize,
  } : {};
  return { ff: s.nFf, qDim: s.nHead * s.headDimK, nHead: s.nHead, ...gdn };
}

/** Peak memory of one training step on `tokens` tokens with base weights of `baseWeightBytes`. */
export function trainingMemoryFor(d: ModelDescription, o: { baseWeightBytes: number; loraParams: number; tokens: number }): TrainingMemory {
  const s = d.shape;
  return trainingMemory({
    baseWeightBytes: o.baseWeightBytes,
    loraParams: o.loraParams,
    nLayers: s.nLayer,
    hidden: s.nEmbd,
    tokens: o.tokens,
    vocab: s.nVocab,
    layer: trainingLayerShape(s, d.source),
  });
}
