// PEFT's adapter_config.json for LoRA: the fields that decide each module's rank and scale, validated.
// Pattern keys match as PEFT's get_pattern_key does: the key (a regex) must match the end of the module
// name at a dot boundary; target_modules is a list of module-name suffixes or one full-match regex.
import { fileError } from '@qtk/core';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';

export interface PeftLoraConfig {
  readonly r: number;
  readonly loraAlpha: number;
  readonly useRslora: boolean;
  readonly targetModules: readonly string[] | string;
  readonly rankPattern: Readonly<Record<string, number>>;
  readonly alphaPattern: Readonly<Record<string, number>>;
  /** The JSON as read (fields qtk does not interpret are written back unchanged). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Features an adapter may use that a plain B·A delta cannot express; each refused by name. */
const REFUSED = [
  { field: 'use_dora', bad: (v: unknown) => v === true, why: 'DoRA adapters (use_dora) rescale whole weight columns, which GGUF LoRA cannot express' },
  { field: 'bias', bad: (v: unknown) => v !== undefined && v !== 'none', why: 'LoRA biases (bias != "none") have no place in GGUF LoRA' },
  { field: 'modules_to_save', bad: (v: unknown) => Array.isArray(v) && v.length > 0, why: 'fully trained modules (modules_to_save) are not low-rank deltas' },
] as const;

function positive(file: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw fileError(file, `${field} is ${JSON.stringify(v)}, expected a positive number`, 'Fix adapter_config.json');
  return v;
}

function numberMap(file: string, field: string, v: unknown): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw fileError(file, `${field} is ${JSON.stringify(v)}, expected an object of module pattern → number`, 'Fix adapter_config.json');
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) out[k] = positive(file, `${field}[${JSON.stringify(k)}]`, n);
  return out;
}

export function parsePeftConfig(file: string, json: unknown): PeftLoraConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fileError(file, 'is not a JSON object', 'Give the adapter_config.json PEFT wrote');
  const c = json as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw fileError(file, `peft_type is ${JSON.stringify(c.peft_type)}, only "LORA" adapters are supported`, 'Use a LoRA adapter');
  for (const f of REFUSED) {
    if (f.bad(c[f.field])) throw fileError(file, `${f.field} is ${JSON.stringify(c[f.field])}: ${f.why}`, 'Merge it with PEFT (merge_and_unload) and convert the merged model instead');
  }
  const t = c.target_modules;
  const targets = typeof t === 'string' ? t : Array.isArray(t) && t.every((x) => typeof x === 'string') ? (t as string[]) : undefined;
  if (targets === undefined) throw fileError(file, `target_modules is ${JSON.stringify(t)}, expected a list of module names or a regex`, 'List the adapted modules in adapter_config.json');
  return {
    r: positive(file, 'r', c.r),
    loraAlpha: positive(file, 'lora_alpha', c.lora_alpha ?? c.r),
    useRslora: c.use_rslora === true,
    targetModules: targets,
    rankPattern: numberMap(file, 'rank_pattern', c.rank_pattern),
    alphaPattern: numberMap(file, 'alpha_pattern', c.alpha_pattern),
    raw: c,
  };
}

/** The first pattern key matching `module` as PEFT matches them (suffix at a dot boundary, regex). */
export function patternKey(keys: Iterable<string>, module: string): string | undefined {
  for (const k of keys) {
    let re: RegExp;
    try {
      re = new RegExp(`(^|.*\\.)(${k})$`);
    } catch {
      continue;
    }
    if (re.test(module)) return k;
  }
  return undefined;
}

/** Whether PEFT would adapt `module` under target_modules. */
export function isTargeted(cfg: PeftLoraConfig, module: string): boolean {
  if (typeof cfg.targetModules === 'string') return new RegExp(`^(?:${cfg.targetModules})$`).test(module);
  return cfg.targetModules.some((t) => module === t || module.endsWith(`.${t}`));
}

/** Rank and alpha of one module (rank_pattern / alpha_pattern override r / lora_alpha). */
export function moduleRankAlpha(cfg: PeftLoraConfig, module: string): { rank: number; alpha: number } {
  const rk = patternKey(Object.keys(cfg.rankPattern), module);
  const ak = patternKey(Object.keys(cfg.alphaPattern), module);
  return { rank: rk === undefined ? cfg.r : cfg.rankPattern[rk]!, alpha: ak === undefined ? cfg.loraAlpha : cfg.alphaPattern[ak]! };
}

/** PEFT's scaling: alpha / r, or alpha / √r with rsLoRA. */
export function peftScale(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}
