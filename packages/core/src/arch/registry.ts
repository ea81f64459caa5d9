// HF config.json → the architecture file that converts it. Matched on `architectures[0]` (as llama.cpp
// does), falling back to `model_type`; anything else is refused with the list of supported ones.
import { fileError } from '../errors.js';
import { HParams, isObject, type JsonObject } from './hparams.js';
import { llama } from './llama.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import { qwen3_5 } from './qwen3_5.js';
import type { ArchDefinition } from './types.js';

export const ARCHITECTURES: readonly ArchDefinition[] = [qwen3_5, qwen3, qwen2, llama];

export function supportedArchitectures(): string {
  return ARCHITECTURES.map((a) => `${a.modelType} (${a.hfArchitectures.join(', ')})`).join('; ');
}

export interface ResolvedArchitecture {
  arch: ArchDefinition;
  hparams: HParams;
  /** The HF class name the match was made on. */
  hfArchitecture: string | undefined;
}

/** Who refuses an unknown architecture, and what the user can do instead (the default: qtk convert's). */
export interface ArchitectureRefusal {
  knownBy: string;
  nextStep: string;
}

const CONVERT_REFUSAL: ArchitectureRefusal = { knownBy: 'qtk convert supports', nextStep: 'Convert a checkpoint of one of these' };

export function resolveArchitecture(config: JsonObject, file: string, refusal: ArchitectureRefusal = CONVERT_REFUSAL): ResolvedArchitecture {
  const text = isObject(config.text_config) ? config.text_config : {};
  const names = [firstString(text.architectures), firstString(config.architectures)].filter((s): s is string => s !== undefined);
  const modelType = typeof config.model_type === 'string' ? config.model_type : undefined;
  const arch =
    ARCHITECTURES.find((a) => names.some((n) => a.hfArchitectures.includes(n))) ??
    (names.length === 0 ? ARCHITECTURES.find((a) => a.modelType === modelType) : undefined);
  if (!arch) {
    const what = names.length > 0 ? `architecture ${names.map((n) => JSON.stringify(n)).join(' / ')}` : `model_type ${JSON.stringify(modelType)}`;
    throw fileError(file, `${what} is not supported`, `${refusal.knownBy}: ${supportedArchitectures()}. ${refusal.nextStep}`);
  }
  return { arch, hparams: new HParams(config, file), hfArchitecture: names[0] };
}

function firstString(v: unknown): string | undefined {
  return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}
