// Targets llama.cpp cannot adapt at run time: its graphs add LoRA to matmul weights only, so conv1d,
// the DeltaNet decay parameters, norms and embeddings can only be merged into the base.
const MERGE_ONLY = ['conv1d', 'A_log', 'dt_bias', 'norm', 'layernorm', 'embed_tokens'] as const;

/** The merge-only part a module path names, or undefined for an ordinary linear. */
export function mergeOnly(module: string): string | undefined {
  const leaf = module.split('.').pop() ?? '';
  return MERGE_ONLY.find((m) => leaf === m || leaf.endsWith(m));
}
