// LoRA configuration and PEFT's initialisation, in Hugging Face module space.
import { LORA_MODULE_NAMES, mulberry32, LORA_TARGET_GROUPS, QtkError, type LoraTarget, type LoraTargetGroup } from '@qtk/core';

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** rsLoRA: scale alpha/√rank instead of alpha/rank. */
  rslora?: boolean;
  /** Dropout probability on each adapted module's input (PEFT's lora_dropout), training only. */
  dropout?: number;
  /** Module names ('q_proj', 'in_proj_qkv', …) and/or groups ('attn', 'gdn', 'mlp'); default: every linear. */
  targets?: readonly string[];
  /** Seed of A's initialisation. */
  seed?: number;
}

export function loraScale(c: LoraConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank;
}

export function validateLoraConfig(c: LoraConfig): void {
  if (!Number.isInteger(c.rank) || c.rank < 1 || c.rank > 4096) throw new QtkError(`LoRA rank ${c.rank} must be an integer in 1..4096. Pass a rank such as 16.`);
  if (!Number.isFinite(c.alpha) || c.alpha <= 0) throw new QtkError(`LoRA alpha ${c.alpha} must be a positive number. Pass e.g. alpha = 2 × rank.`);
  const d = c.dropout ?? 0;
  if (!(d >= 0 && d < 1)) throw new QtkError(`LoRA dropout ${d} must be in [0, 1). Pass 0 to disable it.`);
  for (const t of c.targets ?? []) {
    if (!(LORA_TARGET_GROUPS as readonly string[]).includes(t) && !(LORA_MODULE_NAMES as readonly string[]).includes(t)) {
      throw new QtkError(`LoRA target '${t}' is neither a group (${LORA_TARGET_GROUPS.join(', ')}) nor a module (${LORA_MODULE_NAMES.join(', ')}). Pick from those.`);
    }
  }
}

/** Whether a module is selected by `targets` (groups and names may be mixed). */
export function selectsTarget(targets: readonly string[] | undefined, t: Pick<LoraTarget, 'group' | 'name'>): boolean {
  if (!targets || targets.length === 0) return true;
  return targets.includes(t.group as LoraTargetGroup) || targets.includes(t.name);
}

export { mulberry32 };

/** A stream per (seed, index), so adding a target does not change the others' numbers. */
export function streamSeed(seed: number, index: number, salt = 0): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35)) >>> 0;
}

/**
 * PEFT's init: lora_A ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in) (gain √(2/(1+5)), bound
 * gain·√(3/in)), lora_B = 0, so the adapted model starts equal to the base.
 */
export function initLoraA(rank: number, inFeatures: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const bound = 1 / Math.sqrt(inFeatures);
  return Float32Array.from({ length: rank * inFeatures }, () => (2 * rnd() - 1) * bound);
}

/** The dropout stream of one target in one step: the step's seed, the layer and the target's index. */
export function dropoutSeed(stepSeed: number, layer: number, targetIndex: number): number {
  return streamSeed(stepSeed, layer * 64 + targetIndex, 7);
}

/**
 * PEFT's lora_dropout mask on a module's input [T, in] (GGUF column order, row-major, a token's
 * features contiguous): 0 with probability p, else 1/(1−p), so the branch keeps its expectation.
 */
export function dropoutMask(p: number, seed: number, n: number): Float32Array {
  const rnd = mulberry32(seed);
  const keep = 1 / (1 - p);
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) m[i] = rnd() < p ? 0 : keep;
  return m;
}
