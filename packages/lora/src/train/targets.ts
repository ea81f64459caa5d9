// --targets: 'all', layer-kind groups (attn, gdn, mlp) and/or PEFT module names (q_proj, in_proj_qkv…),
// resolved against the model's module table; the rank must fit every chosen module.
import { LORA_MODULE_NAMES, LORA_TARGET_GROUPS, QtkError, loraTargets, type HParams, type LoraTarget } from '@qtk/core';

export function resolveTargets(arch: string, h: HParams, spec: readonly string[], rank: number, model: string): LoraTarget[] {
  const items = spec.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const groups = new Set<string>();
  const names = new Set<string>();
  for (const it of items.length ? items : ['all']) {
    if (it === 'all') for (const g of LORA_TARGET_GROUPS) groups.add(g);
    else if ((LORA_TARGET_GROUPS as readonly string[]).includes(it)) groups.add(it);
    else if ((LORA_MODULE_NAMES as readonly string[]).includes(it)) names.add(it);
    else throw new QtkError(`--targets: "${it}" is not a target; allowed: all, ${LORA_TARGET_GROUPS.join(', ')} or module names ${LORA_MODULE_NAMES.join(', ')}. Pass e.g. --targets attn,mlp or --targets q_proj,v_proj.`);
  }
  const chosen = loraTargets(arch, h).filter((t) => groups.has(t.group) || names.has(t.name));
  if (chosen.length === 0) {
    throw new QtkError(`--targets ${items.join(',')}: ${model} has no such module (${arch} has: ${[...new Set(loraTargets(arch, h).map((t) => t.name))].join(', ')}). Pass --targets all or modules it has.`);
  }
  for (const t of chosen) {
    const lim = Math.min(t.inFeatures, t.outFeatures);
    if (rank > lim) {
      throw new QtkError(`--rank ${rank} is larger than ${t.module} allows (${t.outFeatures}×${t.inFeatures}, at most ${lim}). Pass --rank ${lim} or less, or leave ${t.name} out of --targets.`);
    }
  }
  return chosen;
}
