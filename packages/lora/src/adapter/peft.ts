// PEFT LoRA adapters on disk: adapter_config.json + adapter_model.safetensors with tensors named
// `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]. The reader checks every
// pair (both halves present, 2-D, equal ranks, the rank the config gives that module) and names the tensor.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { decodeToF32, encodeFromF32, fileError, QtkError, SafetensorsFile, SafetensorsWriter } from '@qtk/core';
import { moduleRankAlpha, parsePeftConfig, peftScale, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, type PeftLoraConfig } from './peft-config.js';
import type { LoraPair } from './types.js';
import { mergeOnly } from './merge-only.js';

/** What PEFT puts before the module path (the LoraModel wrapper around the base model). */
export const PEFT_PREFIX = 'base_model.model.';
const NAME_RE = /^(.+)\.lora_([AB])(?:\.default)?\.weight$/;

export interface PeftAdapter {
  readonly config: PeftLoraConfig;
  /** name = the module path inside the base model, e.g. `model.language_model.layers.3.linear_attn.in_proj_qkv`. */
  readonly modules: readonly LoraPair[];
}

async function readConfig(dir: string): Promise<PeftLoraConfig> {
  const file = path.join(dir, PEFT_CONFIG_FILE);
  const text = await fs.readFile(file, 'utf8').catch((e: Error) => {
    throw fileError(file, `cannot be read (${e.message})`, 'Give the folder PEFT saved (adapter_config.json beside adapter_model.safetensors)');
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fileError(file, `is not valid JSON (${(e as Error).message})`, 'Restore the file PEFT wrote', e);
  }
  return parsePeftConfig(file, json);
}

export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const config = await readConfig(dir);
  const file = path.join(dir, PEFT_WEIGHTS_FILE);
  const st = await SafetensorsFile.open(file);
  try {
    const halves = new Map<string, { A?: string; B?: string }>();
    for (const name of st.names()) {
      const m = NAME_RE.exec(name);
      if (!m) throw fileError(file, `tensor ${JSON.stringify(name)} is not a LoRA A/B weight (lora_magnitude_vector, embeddings and biases are not supported)`, 'Use a plain LoRA adapter, or merge it with PEFT and convert the merged model');
      const module = m[1]!.startsWith(PEFT_PREFIX) ? m[1]!.slice(PEFT_PREFIX.length) : m[1]!;
      const h = halves.get(module) ?? {};
      h[m[2] as 'A' | 'B'] = name;
      halves.set(module, h);
    }
    if (halves.size === 0) throw fileError(file, 'holds no LoRA tensors', 'Give a trained adapter');
    const modules: LoraPair[] = [];
    for (const [module, h] of halves) {
      if (h.A === undefined || h.B === undefined) {
        throw fileError(file, `${h.A ?? h.B} has no ${h.A === undefined ? 'lora_A' : 'lora_B'} partner`, 'The adapter is incomplete: save it again');
      }
      const refused = mergeOnly(module);
      if (refused) throw fileError(file, `${h.A}: llama.cpp cannot apply LoRA to ${refused} at run time`, 'Merge the adapter with PEFT (merge_and_unload) and convert the merged model');
      const a = st.info(h.A);
      const b = st.info(h.B);
      for (const t of [a, b]) {
        if (t.shape.length !== 2) throw fileError(file, `${t.name} has shape [${t.shape}], expected 2 dimensions`, 'Only linear-layer LoRA is supported');
        if (!['F32', 'F16', 'BF16'].includes(t.dtype)) throw fileError(file, `${t.name} is ${t.dtype}, expected F32, F16 or BF16`, 'Save the adapter in a float type');
      }
      const [rank, nIn] = a.shape as [number, number];
      const [nOut, rankB] = b.shape as [number, number];
      if (rank !== rankB) throw fileError(file, `rank mismatch for ${module}: ${h.A} has rank ${rank} (shape [${a.shape}]) but ${h.B} has rank ${rankB} (shape [${b.shape}])`, 'The adapter is corrupt: save it again');
      const want = moduleRankAlpha(config, module);
      if (want.rank !== rank) throw fileError(file, `${h.A} has rank ${rank} but adapter_config.json gives ${module} rank ${want.rank}`, 'Fix r / rank_pattern in adapter_config.json');
      modules.push({
        name: module, rank, nIn, nOut,
        a: decodeToF32(a.dtype, await st.read(h.A)),
        b: decodeToF32(b.dtype, await st.read(h.B)),
        scale: peftScale(want.alpha, rank, config.useRslora),
      });
    }
    return { config, modules };
  } finally {
    await st.close();
  }
}

export interface PeftWriteOptions {
  /** Tensor dtype (default F32, which round-trips exactly). */
  dtype?: 'F32' | 'F16' | 'BF16';
  overwrite?: boolean;
}

/**
 * Writes adapter_config.json and adapter_model.safetensors into `dir`. `config` is the JSON to write:
 * build it with peftConfigFor() so r, lora_alpha, rank_pattern and alpha_pattern give each module its scale.
 */
export async function writePeftAdapter(dir: string, config: Record<string, unknown>, modules: readonly LoraPair[], opts: PeftWriteOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const parsed = parsePeftConfig(path.join(dir, PEFT_CONFIG_FILE), config);
  for (const m of modules) {
    const { rank, alpha } = moduleRankAlpha(parsed, m.name);
    const s = peftScale(alpha, rank, parsed.useRslora);
    if (rank !== m.rank || Math.abs(s - m.scale) > 1e-6 * Math.abs(m.scale)) {
      throw new Error(`writePeftAdapter: config gives ${m.name} rank ${rank} scale ${s}, the module has rank ${m.rank} scale ${m.scale}`);
    }
  }
  await fs.mkdir(dir, { recursive: true });
  const tensors = modules.flatMap((m) => [
    { name: `${PEFT_PREFIX}${m.name}.lora_A.weight`, dtype, shape: [m.rank, m.nIn] },
    { name: `${PEFT_PREFIX}${m.name}.lora_B.weight`, dtype, shape: [m.nOut, m.rank] },
  ]);
  const w = await SafetensorsWriter.create(path.join(dir, PEFT_WEIGHTS_FILE), tensors, { metadata: { format: 'pt' }, overwrite: opts.overwrite });
  try {
    for (const m of modules) {
      await w.write(`${PEFT_PREFIX}${m.name}.lora_A.weight`, encodeFromF32(m.a, dtype));
      await w.write(`${PEFT_PREFIX}${m.name}.lora_B.weight`, encodeFromF32(m.b, dtype));
    }
    const cfgPath = path.join(dir, PEFT_CONFIG_FILE);
    if (!opts.overwrite && await fs.stat(cfgPath).then(() => true, () => false)) {
      throw new QtkError(`${cfgPath}: already exists. Pass --force to overwrite it, or choose another output folder.`, { file: cfgPath });
    }
    const tmp = `${cfgPath}.tmp-${process.pid}`;
    await fs.writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`);
    await w.finish();
    await fs.rename(tmp, cfgPath);
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/**
 * adapter_config.json for `modules`: the most common rank and alpha become r / lora_alpha, the others go
 * to rank_pattern / alpha_pattern keyed by the full module name; target_modules always lists the leaf names.
 */
export function peftConfigFor(modules: readonly LoraPair[], opts: { baseModel?: string; rslora?: boolean; extra?: Record<string, unknown> } = {}): Record<string, unknown> {
  const rslora = opts.rslora ?? false;
  const alphaOf = (m: LoraPair) => (rslora ? m.scale * Math.sqrt(m.rank) : m.scale * m.rank);
  const mode = <T>(xs: T[]): T => {
    const n = new Map<T, number>();
    for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
    return [...n.entries()].sort((p, q) => q[1] - p[1])[0]![0];
  };
  const r = mode(modules.map((m) => m.rank));
  const alpha = mode(modules.map(alphaOf));
  // A leaf name (`in_proj_a`) keys the pattern when every module of that leaf agrees, else the full path.
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const leafOf = (m: LoraPair) => m.name.split('.').pop()!;
  const byLeaf = new Map<string, LoraPair[]>();
  for (const m of modules) byLeaf.set(leafOf(m), [...(byLeaf.get(leafOf(m)) ?? []), m]);
  for (const [leaf, ms] of byLeaf) {
    for (const [pattern, value, base] of [[rankPattern, (m: LoraPair) => m.rank, r], [alphaPattern, alphaOf, alpha]] as const) {
      const values = new Set(ms.map(value));
      if (values.size === 1) {
        const v = [...values][0]!;
        if (v !== base) pattern[leaf] = v;
      } else {
        for (const m of ms) if (value(m) !== base) pattern[m.name.replace(/\./g, '\\.')] = value(m);
      }
    }
  }
  const leaves = [...new Set(modules.map((m) => m.name.split('.').pop()!))].sort();
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: opts.baseModel ?? null,
    r,
    lora_alpha: alpha,
    use_rslora: rslora,
    target_modules: leaves,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    ...opts.extra,
  };
}
