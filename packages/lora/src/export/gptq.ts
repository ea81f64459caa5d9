// `qtk export gptq`: a GPTQ checkpoint (the layout transformers and vLLM load) from a GGUF or an HF
// checkpoint. Calibration runs on the GGUF with qtk's engine (one layer's Hessians at a time, f32 files in a
// scratch folder); each linear of the decoder layers is then taken back to the HF layout (the inverse
// transforms of `qtk export hf`), its Hessian permuted into HF column order, GPTQ-rounded into integer
// groups and packed as qweight/qzeros/scales/g_idx. Every other tensor keeps its float values; tensors the
// GGUF does not hold (vision tower, MTP) are copied from the original checkpoint.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { convertCheckpoint, planTensors, type PlannedTensor } from '@qtk/convert';
import {
  createProgress, encodeFromF32, GgufReader, onInterrupt, QtkError, resolveArchitecture, SafetensorsCheckpoint,
  SAFETENSORS_DTYPES, type GgufTensorInfo, type SafetensorsDtype,
} from '@qtk/core';
import {
  collectHessians, gptqFits, gptqIntRows, packGptq, prepareHessian, readHessian, type HessianFile, type PreparedHessian,
} from '@qtk/quantize';
import { exportedConfig, FLOAT, hfValues, type FloatType } from './hf.js';
import { writeShards } from './sharded-writer.js';

export interface ExportGptqOptions {
  /** A GGUF (then `hf` names its original checkpoint) or an HF checkpoint folder. */
  input: string;
  hf?: string;
  output: string;
  calib: string;
  bits?: number;
  /** Input columns per group, or −1 for one group per row (default 128). */
  groupSize?: number;
  descAct?: boolean;
  calibTokens?: number;
  ctx?: number;
  damp?: number;
  block?: number;
  threads?: number;
  maxShardBytes?: number;
  overwrite?: boolean;
  log?: (line: string) => void;
  /** Called with each quantized linear's intended weights (HF layout, f32), for checks. */
  onSolved?: (name: string, weights: Float32Array) => void;
}

export interface ExportGptqResult {
  files: string[];
  quantized: string[];
  kept: number;
  bytes: number;
  calibTokens: number;
}

type Source = { copy: string } | { float: GgufTensorInfo; plan: PlannedTensor } | { quant: GgufTensorInfo; plan: PlannedTensor; hessian: HessianFile; part: 'qweight' | 'qzeros' | 'scales' | 'g_idx' };

interface OutTensor { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: number; from: Source }

const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);

/** H (GGUF column order) in HF column order: GGUF column c is HF column perm[c]. */
function hessianToHf(H: Float32Array, n: number, perm: Int32Array | null): Float32Array {
  if (!perm) return H;
  const out = new Float32Array(n * n);
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) out[perm[a]! * n + perm[b]!] = H[a * n + b]!;
  return out;
}

export async function exportGptq(opts: ExportGptqOptions): Promise<ExportGptqResult> {
  const log = opts.log ?? (() => {});
  const bits = opts.bits ?? 4;
  const groupSize = opts.groupSize ?? 128;
  const out = path.resolve(opts.output);
  if (await fs.stat(out).then(() => true, () => false)) {
    if (!opts.overwrite) throw new QtkError(`${out}: already exists. Pass --force to replace it, or choose another output folder.`, { file: out });
  }
  const fromHf = await isDir(opts.input);
  const hfDir = fromHf ? opts.input : opts.hf;
  if (!hfDir) throw new QtkError(`${opts.input}: a GGUF needs --hf <the checkpoint it was converted from> (config, tokenizer and names come from it).`, { file: opts.input });
  const cfgPath = path.join(hfDir, 'config.json');
  const config = JSON.parse(await fs.readFile(cfgPath, 'utf8').catch((e: Error) => {
    throw new QtkError(`${cfgPath}: cannot be read (${e.message}). Pass --hf <the checkpoint the GGUF was converted from>.`, { file: cfgPath });
  })) as Record<string, unknown>;
  const { arch, hparams } = resolveArchitecture(config, cfgPath);
  const tmp = `${out}.tmp-${process.pid}`;
  const off = onInterrupt(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
    return `removed the partial ${tmp}`;
  }, 'export gptq');
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(path.join(tmp, '.work'), { recursive: true });
  const work = path.join(tmp, '.work');
  let r: GgufReader | undefined;
  let ck: SafetensorsCheckpoint | undefined;
  try {
    let gguf = opts.input;
    if (fromHf) {
      gguf = path.join(work, 'model-f16.gguf');
      log(`converting ${opts.input} to f16 GGUF for calibration`);
      await convertCheckpoint({ input: opts.input, output: gguf, outtype: 'f16', log });
    }
    const cal = await collectHessians(gguf, work, { calib: opts.calib, tokens: opts.calibTokens, ctx: opts.ctx, threads: opts.threads, calibOutput: false });
    log(`gptq: ${cal.byWeight.size} weights calibrated on ${cal.tokens} tokens (${cal.windows} windows)`);
    r = await GgufReader.open(gguf);
    ck = await SafetensorsCheckpoint.open(hfDir);
    const ggufArch = r.get<string>('general.architecture');
    if (ggufArch !== arch.ggufArch) throw new QtkError(`${gguf}: architecture ${ggufArch}, but ${cfgPath} is ${arch.modelType} (${arch.ggufArch}). Pass the checkpoint this GGUF was converted from.`, { file: gguf });
    const plan = new Map(planTensors(ck, arch, hparams, 'f32', false).tensors.filter((t) => t.hfName !== '').map((t) => [t.hfName, t]));
    const tensors: OutTensor[] = [];
    const quantized: string[] = [];
    const keptLinears: string[] = [];
    const keptTowers = new Set<string>();
    for (const name of ck.names()) {
      const p = plan.get(name);
      const g = p && r.hasTensor(p.ggufName) ? r.tensor(p.ggufName) : undefined;
      if (!p || !g) {
        if (name.endsWith('.weight_scale_inv') && plan.has(name.replace(/_scale_inv$/, ''))) continue;
        const info = ck.info(name);
        tensors.push({ name, dtype: info.dtype, shape: [...info.shape], bytes: info.byteLength, from: { copy: name } });
        continue;
      }
      const hessian = cal.byWeight.get(g.name);
      const [nOut, nIn] = p.srcShape as [number, number];
      if (hessian && p.srcShape.length === 2 && name.endsWith('.weight') && hessian.nIn === nIn) {
        if (gptqFits(nOut, nIn, bits, groupSize)) {
          const m = name.slice(0, -'.weight'.length);
          const pf = 32 / bits, nGroups = groupSize === -1 ? 1 : nIn / groupSize;
          const parts = [
            ['qweight', 'I32', [nIn / pf, nOut]], ['qzeros', 'I32', [nGroups, nOut / pf]],
            ['scales', 'F16', [nGroups, nOut]], ['g_idx', 'I32', [nIn]],
          ] as const;
          for (const [part, dtype, shape] of parts) {
            tensors.push({ name: `${m}.${part}`, dtype, shape: [...shape], bytes: shape.reduce((a, b) => a * b, SAFETENSORS_DTYPES[dtype].bytes), from: { quant: g, plan: p, hessian, part } });
          }
          quantized.push(m);
          continue;
        }
        log(`notice: ${name} [${nOut}, ${nIn}] does not fit ${bits}-bit groups of ${groupSize}: kept in float`);
      }
      const dtype: FloatType = (FLOAT as readonly string[]).includes(g.type) ? (g.type as FloatType) : 'F16';
      const shape = [...p.srcShape];
      tensors.push({ name, dtype, shape, bytes: shape.reduce((a, b) => a * b, SAFETENSORS_DTYPES[dtype].bytes), from: { float: g, plan: p } });
    }
    // float linears the loader must not take for GPTQ ones: whole towers by prefix, others by name
    for (const t of tensors) {
      if (!('float' in t.from || 'copy' in t.from) || t.shape.length !== 2 || !t.name.endsWith('.weight') || /embed|lm_head/.test(t.name)) continue;
      const tower = /(^|\.)(visual|mtp)\./.exec(t.name);
      if (tower) keptTowers.add(tower[2]!);
      else keptLinears.push(t.name.slice(0, -'.weight'.length));
    }
    if (quantized.length === 0) throw new QtkError(`${opts.input}: no linear fits ${bits}-bit groups of ${groupSize}. Pass a smaller --group-size (32 or -1).`, { file: opts.input });

    const progress = createProgress({ title: 'gptq export', total: tensors.length, kind: 'count', unit: 'tensors' });
    let prepared: { key: string; h: PreparedHessian } | undefined;
    let packed: { name: string; parts: ReturnType<typeof packGptq> } | undefined;
    const quantParts = async (g: GgufTensorInfo, p: PlannedTensor, hf: HessianFile): Promise<ReturnType<typeof packGptq>> => {
      if (packed?.name === g.name) return packed.parts;
      const [nOut, nIn] = p.srcShape as [number, number];
      const G = groupSize === -1 ? nIn : groupSize;
      const key = `${hf.file}`;
      if (prepared?.key !== key) {
        const H = hessianToHf(await readHessian(hf), nIn, p.colPerm);
        // desc_act: columns by decreasing diag(H), groups formed along that order (g_idx records them)
        prepared = { key, h: prepareHessian(H, nIn, { damp: opts.damp, groupSize: opts.descAct ? 1 : G, actOrder: opts.descAct }) };
      }
      const W = await hfValues(r!, g, p);
      const solved = gptqIntRows(W, nOut, prepared.h, { bits, groupSize: G, block: opts.block });
      opts.onSolved?.(p.hfName, solved.dequantized);
      packed = { name: g.name, parts: packGptq(solved, nOut, nIn, bits) };
      return packed.parts;
    };
    // both are open here (the calibration above read them); the callback cannot see that narrowing
    const [reader, original] = [r!, ck!];
    let written: { files: string[]; total: number };
    try {
      written = await writeShards(tmp, tensors, {
        maxShardBytes: opts.maxShardBytes,
        bytesOf: async (t) => {
          const f = t.from;
          if ('copy' in f) return original.read(f.copy);
          if ('float' in f) return encodeFromF32(await hfValues(reader, f.float, f.plan), t.dtype as FloatType);
          const parts = await quantParts(f.quant, f.plan, f.hessian);
          return { qweight: parts.qweight, qzeros: parts.qzeros, scales: parts.scales, g_idx: parts.gIdx }[f.part].bytes;
        },
        onWritten: (t) => progress.tick(1, t.name),
      });
    } finally {
      progress.done();
    }
    await fs.rm(work, { recursive: true, force: true });
    const { files, total } = written;
    for (const f of await fs.readdir(hfDir)) {
      if (f.endsWith('.safetensors') || f.endsWith('.gguf') || f === 'model.safetensors.index.json' || f.startsWith('.')) continue;
      const src = path.join(hfDir, f);
      if (!(await fs.stat(src)).isFile()) continue;
      if (f === 'config.json') {
        const c = exportedConfig(config);
        c.quantization_config = gptqConfig(bits, groupSize, Boolean(opts.descAct), opts.damp ?? 0.01, keptLinears, [...keptTowers]);
        await fs.writeFile(path.join(tmp, f), `${JSON.stringify(c, null, 2)}\n`);
      } else await fs.copyFile(src, path.join(tmp, f));
      files.push(f);
    }
    if (opts.overwrite) await fs.rm(out, { recursive: true, force: true });
    await fs.rename(tmp, out);
    return { files, quantized, kept: tensors.length - 4 * quantized.length, bytes: total, calibTokens: cal.tokens };
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    off();
    await r?.close();
    await ck?.close();
  }
}

/** quantization_config of config.json; linears left in float are excluded by name (GPTQModel's `dynamic` "-:" rules). */
export function gptqConfig(bits: number, groupSize: number, descAct: boolean, damp: number, kept: readonly string[], towers: readonly string[] = []): Record<string, unknown> {
  const c: Record<string, unknown> = {
    quant_method: 'gptq', bits, group_size: groupSize, desc_act: descAct, sym: false, checkpoint_format: 'gptq',
    damp_percent: damp, true_sequential: false, static_groups: false, lm_head: false,
  };
  // loaders name modules with their own prefixes (vLLM maps model.language_model. → language_model.model.),
  // so each rule matches the name's tail from `layers.` on, or a whole copied tower
  const rules = [
    ...kept.map((m) => `-:.*${m.slice(Math.max(0, m.search(/(^|\.)layers\./))).replace(/^\./, '').replace(/\./g, '\\.')}$`),
    ...towers.map((t) => `-:.*${t}\\..*`),
  ];
  if (rules.length > 0) c.dynamic = Object.fromEntries(rules.map((k) => [k, {}]));
  return c;
}
