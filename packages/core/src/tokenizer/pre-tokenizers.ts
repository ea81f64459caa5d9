// tokenizer.ggml.pre from the tokenizer itself. llama.cpp's converter hashes the ids of a probe text;
// this reads the Split regex of tokenizer.json's pre-tokenizer instead, and maps the regexes whose
// llama.cpp pre-type reproduces them exactly (src/llama-vocab.cpp keeps each original as a comment).
import { isObject, type JsonObject } from '../arch/hparams.js';

export const BPE_PRE_TOKENIZERS = [
  // Qwen1.5 / Qwen2 / Qwen2.5 / Qwen3: letters \p{L}, single digits.
  { pre: 'qwen2', regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  // Qwen3.5 / Qwen3.6: as qwen2, with combining marks \p{M} joined to letters.
  { pre: 'qwen35', regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  // Llama 3: as qwen2, with digits in runs of up to three.
  { pre: 'llama-bpe', regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
] as const;

export type BpePreName = (typeof BPE_PRE_TOKENIZERS)[number]['pre'];

/** The Split regexes of a tokenizer.json pre_tokenizer (a Sequence or a single Split). */
export function splitRegexes(preTokenizer: unknown): string[] {
  if (!isObject(preTokenizer)) return [];
  if (preTokenizer.type === 'Sequence' && Array.isArray(preTokenizer.pretokenizers)) {
    return preTokenizer.pretokenizers.flatMap((p) => splitRegexes(p));
  }
  if (preTokenizer.type === 'Split' && isObject(preTokenizer.pattern)) {
    const r = (preTokenizer.pattern as JsonObject).Regex;
    return typeof r === 'string' ? [r] : [];
  }
  return [];
}

/** The pre name for these Split regexes, or undefined when llama.cpp has no matching pre-type here. */
export function bpePreFor(regexes: readonly string[]): BpePreName | undefined {
  if (regexes.length !== 1) return undefined;
  return BPE_PRE_TOKENIZERS.find((p) => p.regex === regexes[0])?.pre;
}
