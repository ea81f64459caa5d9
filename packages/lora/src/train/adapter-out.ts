// The trained adapter in both formats: adapter/ (PEFT) and adapter.gguf (llama.cpp LoRA).
import type { LoraTarget } from '@qtk/core';
import type { LoraParam } from './model.js';

export interface AdapterMeta {
  arch: string;
  model: string;
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  targets: readonly LoraTarget[];
}

export async function writeAdapters(_runDir: string, _params: readonly LoraParam[], _meta: AdapterMeta): Promise<void> {
  // filled in with the adapter writers
}
