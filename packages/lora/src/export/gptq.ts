// `qtk export gptq`: a GPTQ checkpoint (the layout transformers and vLLM load) from a GGUF or an HF
// checkpoint. The linears of the decoder layers are solved first, layer by layer and true-sequentially: layer
// i's Hessians come from qtk's engine running the calibration text through layers 0..i−1 as already
// quantized (SequentialCalibration, as `qtk quantize --method gptq`). Each linear is taken back to the HF
// layout (the inverse transforms of `qtk export hf`), its Hessian permuted into HF column order, GPTQ-rounded
// into integer groups and packed as qweight/qzeros/scales/g_idx into a checkpoint folder beside the output
// (`<output>.gptq-checkpoint/`, one file per finished linear), so a run that stops loses no finished layer:
// the same command resumes, replaying the finished linears' weights to carry the calibration stream. The
// shards are then written from that folder. Every other tensor keeps its float values; tensors the GGUF
// does not hold (vision tower, MTP) are copied from the original checkpoint.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { convertCheckpoint, planTensors, type PlannedTensor } from '@qtk/convert';
import {
  createProgress, encodeFromF32, GgufReader, onInterrupt, QtkError, resolveArchitecture, SafetensorsCheckpoint,
  SAFETENSORS_DTYPES, type GgufTensorInfo, type SafetensorsDtype,
} from '@qtk/core';
import {
  batchColumns, concatGptq, gptqBytes, gptqFits, gptqIntSlabs, GgmlTrailingUpdate, GptqCheckpoint, packGptq, prepareHessianBlocked,
  SequentialCalibration, splitGptq, unpackGptq, type GptqTensors, type PreparedHessian,
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
  /** Called with each quantized linear's intended weights (HF layout, f32), for checks; restored ones too. */
  onSolved?: (name: string, weights: Float32Array) => void;
  /** Keep the finished-linear folder after a successful run (default: removed). */
  keepCheckpoint?: boolean;
}

export interface ExportGptqResult {
  files: string[];
  quantized: string[];
  kept: number;
  bytes: number;
  calibTokens: number;
}

type Source = { copy: string } | { float: GgufTensorInfo; plan: PlannedTensor } | { quant: GgufTensorInfo; plan: PlannedTensor; part: 'qweight' | 'qzeros' | 'scales' | 'g_idx' };

interface OutTensor { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: number; from: Source }

/** Rows the solver walks together, and columns per inner batch (the batch's bulk as products). */
const SLAB_ROWS = 128;
const INNER = 64;

const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);

/** HF-layout [rows, cols] values in GGUF order: GGUF row i is HF row rowPerm[i], GGUF column c HF column colPerm[c]. */
function toGgufLayout(v: Float32Array, cols: number, p: PlannedTensor): Float32Array {
  if (!p.rowPerm && !p.colPerm) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length / cols; i++) {
    const src = (p.rowPerm ? p.rowPerm[i]! : i) * cols;
    for (let c = 0; c < cols; c++) out[i * cols + c] = v[src + (p.colPerm ? p.colPerm[c]! : c)]!;
  }
  return out;
}

const trunkLayer = (ggufName: string): number => Number(/^blk\.(\d+)\./.exec(ggufName)?.[1] ?? Infinity);

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
  // set while the checkpoint folder holds finished linears that an interrupt leaves in place
  let keptIn: string | undefined;
  const off = onInterrupt(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
    return `removed the partial ${tmp}${keptIn ? `; finished linears are kept in ${keptIn} and the same command resumes from them` : ''}`;
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
    r = await GgufReader.open(gguf);
    ck = await SafetensorsCheckpoint.open(hfDir);
    const ggufArch = r.get<string>('general.architecture');
    if (ggufArch !== arch.ggufArch) throw new QtkError(`${gguf}: architecture ${ggufArch}, but ${cfgPath} is ${arch.modelType} (${arch.ggufArch}). Pass the checkpoint this GGUF was converted from.`, { file: gguf });
    const plan = new Map(planTensors(ck, arch, hparams, 'f32', false).tensors.filter((t) => t.hfName !== '').map((t) => [t.hfName, t]));
    const groupsOf = (nIn: number) => (groupSize === -1 ? 1 : nIn / groupSize);

    // Solve: the linears of the trunk layers in layer order, each finished one saved before the next starts.
    const candidates: { name: string; g: GgufTensorInfo; p: PlannedTensor }[] = [];
    for (const name of ck.names()) {
      const p = plan.get(name);
      const g = p && r.hasTensor(p.ggufName) ? r.tensor(p.ggufName) : undefined;
      if (p && g && p.srcShape.length === 2 && name.endsWith('.weight') && Number.isFinite(trunkLayer(g.name))) candidates.push({ name, g, p });
    }
    candidates.sort((x, y) => trunkLayer(x.g.name) - trunkLayer(y.g.name));
    const inputStat = await fs.stat(opts.input);
    const checkpoint = await GptqCheckpoint.open(`${out}.gptq-checkpoint`, {
      input: path.resolve(opts.input), size: inputStat.size, mtimeMs: inputStat.mtimeMs, hf: path.resolve(hfDir), calib: path.resolve(opts.calib),
      tokens: opts.calibTokens ?? null, ctx: opts.ctx ?? null, bits, groupSize, descAct: Boolean(opts.descAct), damp: opts.damp ?? null, block: opts.block ?? null,
    });
    if (checkpoint.reused > 0) log(`gptq: resuming with ${checkpoint.reused} finished linears from ${checkpoint.dir}`);
    keptIn = checkpoint.dir;
    const solved = new Set<string>();
    const cal = await SequentialCalibration.open(gguf, { calib: opts.calib, tokens: opts.calibTokens, ctx: opts.ctx, threads: opts.threads, calibOutput: false });
    let ok = false;
    // one factorization, and one upload of it for the matmuls, per Hessian (q/k/v and gate/up share theirs)
    let prepared: { H: Float32Array; h: PreparedHessian; update: GgmlTrailingUpdate } | undefined;
    try {
      log(`gptq: calibrating on ${cal.tokens} tokens (${cal.windowCount} windows), layer by layer through the quantized layers`);
      for (const { name, g, p } of candidates) {
        const [nOut, nIn] = p.srcShape as [number, number];
        const file = `${g.name}.gptq${bits}`;
        const size = gptqBytes(nOut, nIn, bits, groupsOf(nIn));
        const saved = gptqFits(nOut, nIn, bits, groupSize) ? await checkpoint.load(name, file, size) : undefined;
        let parts: GptqTensors;
        if (saved) parts = splitGptq(saved, nOut, nIn, bits, groupsOf(nIn));
        else {
          const hf = await cal.hessian(g.name);
          if (!hf || hf.nIn !== nIn) continue;
          if (!gptqFits(nOut, nIn, bits, groupSize)) {
            log(`notice: ${name} [${nOut}, ${nIn}] does not fit ${bits}-bit groups of ${groupSize}: kept in float`);
            continue;
          }
          const G = groupSize === -1 ? nIn : groupSize;
          if (prepared?.H !== hf.H) {
            prepared?.update.free();
            prepared = undefined;
            // desc_act: columns by decreasing diag(H), groups formed along that order (g_idx records them)
            const h = prepareHessianBlocked(hessianToHf(hf.H, nIn, p.colPerm), nIn, { damp: opts.damp, groupSize: opts.descAct ? 1 : G, actOrder: opts.descAct, threads: opts.threads });
            prepared = { H: hf.H, h, update: new GgmlTrailingUpdate(h, { batch: batchColumns(opts.block, G), slabRows: SLAB_ROWS, threads: opts.threads }) };
          }
          const W = await hfValues(r, g, p);
          const q = gptqIntSlabs(W, nOut, prepared.h, { bits, groupSize: G, block: opts.block, update: prepared.update, slabRows: SLAB_ROWS, inner: INNER });
          parts = packGptq(q, nOut, nIn, bits);
          await checkpoint.save(name, file, concatGptq(parts));
        }
        // the stream goes on with what the loaders reconstruct, so a resumed run equals an uninterrupted one
        const intended = unpackGptq(parts, nOut, nIn, bits);
        opts.onSolved?.(name, intended);
        cal.quantizedRows(g.name, g.ne, 0, toGgufLayout(intended, nIn, p));
        solved.add(name);
      }
      ok = true;
    } finally {
      prepared?.update.free();
      cal.close();
      if (!ok) log(`gptq: finished linears are kept in ${checkpoint.dir}; the same command resumes from them`);
    }
    log(`gptq: ${solved.size} linears solved on ${cal.tokens} tokens (${cal.windowCount} windows)`);

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
      const [nOut, nIn] = p.srcShape as [number, number];
      if (solved.has(name)) {
        const m = name.slice(0, -'.weight'.length);
        const pf = 32 / bits, nGroups = groupsOf(nIn);
        const parts = [
          ['qweight', 'I32', [nIn / pf, nOut]], ['qzeros', 'I32', [nGroups, nOut / pf]],
          ['scales', 'F16', [nGroups, nOut]], ['g_idx', 'I32', [nIn]],
        ] as const;
        for (const [part, dtype, shape] of parts) {
          tensors.push({ name: `${m}.${part}`, dtype, shape: [...shape], bytes: shape.reduce((a, b) => a * b, SAFETENSORS_DTYPES[dtype].bytes), from: { quant: g, plan: p, part } });
        }
        quantized.push(m);
        continue;
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
    let packed: { name: string; parts: GptqTensors } | undefined;
    const quantParts = async (g: GgufTensorInfo, p: PlannedTensor): Promise<GptqTensors> => {
      if (packed?.name === g.name) return packed.parts;
      const [nOut, nIn] = p.srcShape as [number, number];
      const saved = await checkpoint.load(p.hfName, `${g.name}.gptq${bits}`, gptqBytes(nOut, nIn, bits, groupsOf(nIn)));
      if (!saved) throw new QtkError(`${checkpoint.dir}: the solved ${p.hfName} went missing during the export. Run the command again.`, { file: checkpoint.dir });
      packed = { name: g.name, parts: splitGptq(saved, nOut, nIn, bits, groupsOf(nIn)) };
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
          const parts = await quantParts(f.quant, f.plan);
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
    if (!opts.keepCheckpoint) {
      keptIn = undefined;
      await checkpoint.remove();
    }
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
    damp_percent: damp, true_sequential: true, static_groups: false, lm_head: false,
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
