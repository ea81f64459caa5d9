// Maps every safetensors tensor of a checkpoint through an architecture's tables: which GGUF tensor it
// becomes, with which shape, type and transforms — or why it is left out. Nothing is read but headers;
// every problem (unmapped name, shape mismatch, missing tensor) is found before the output is opened.
import {
  convertedTensorType,
  fileError,
  ggmlTensorBytes,
  QtkError,
  type ArchDefinition,
  type ConvertedType,
  type HParams,
  type LayerKind,
  type Outtype,
  type SafetensorsCheckpoint,
  type SafetensorsDtype,
  type TensorRule,
  type ValueOp,
} from '@qtk/core';

export interface PlannedTensor {
  /** Safetensors name (empty for generated tensors). */
  hfName: string;
  ggufName: string;
  srcDtype: SafetensorsDtype | 'generated';
  srcShape: readonly number[];
  /** HF shape after squeeze: rows = shape[0], each row the remaining dims. */
  shape: readonly number[];
  /** GGUF dims, ne0 first (the reverse of shape). */
  ne: number[];
  type: ConvertedType;
  bytes: number;
  rowPerm: Int32Array | null;
  colPerm: Int32Array | null;
  value?: ValueOp;
  /** FP8 weights: the block-scale tensor and its block size [rows, cols]. */
  fp8Scale?: { name: string; block: readonly [number, number]; shape: readonly number[] };
  /** Generated tensors (llama3 rope_freqs): the values. */
  generated?: Float32Array;
}

export interface TensorPlan {
  tensors: PlannedTensor[];
  /** Trunk layers + MTP blocks present. */
  blockCount: number;
  nMtp: number;
  /** Names skipped as vision tower / MTP (--no-mtp) / unused buffers. */
  skipped: { vision: string[]; mtp: string[]; unused: string[] };
}

const FP8_SCALE_SUFFIX = '.weight_scale_inv';

/** Block size of FP8 weight_scale_inv (quantization_config.weight_block_size, 128×128 in Qwen's FP8 repos). */
function fp8BlockSize(h: HParams): [number, number] {
  const qc = h.get('quantization_config') as { weight_block_size?: unknown } | undefined;
  const b = qc?.weight_block_size;
  if (Array.isArray(b) && b.length === 2 && b.every((x) => Number.isSafeInteger(x) && x > 0)) return [b[0], b[1]];
  return [128, 128];
}

export function planTensors(ckpt: SafetensorsCheckpoint, arch: ArchDefinition, h: HParams, outtype: Outtype, noMtp: boolean): TensorPlan {
  const trunk = arch.layerKinds(h);
  const L = trunk.length;
  const skipped = { vision: [] as string[], mtp: [] as string[], unused: [] as string[] };
  const globals = new Map(arch.globalTensors.map((r) => [r.hf, r]));
  const blockRules = new Map(arch.blockTensors.map((r) => [r.hf, r]));
  const names = ckpt.names();
  const scales = new Set(names.filter((n) => n.endsWith(FP8_SCALE_SUFFIX)));

  // First pass: rename, to learn how many MTP blocks are actually present (spec checklist 10).
  const renamed: { hfName: string; canonical: string }[] = [];
  let maxBlock = L - 1;
  for (const hfName of names) {
    if (scales.has(hfName)) continue; // consumed with its weight
    const r = arch.rename(hfName, h, { noMtp });
    if ('skip' in r) {
      skipped[r.skip].push(hfName);
      continue;
    }
    const m = /^model\.layers\.(\d+)\./.exec(r.name);
    if (m) maxBlock = Math.max(maxBlock, Number(m[1]));
    renamed.push({ hfName, canonical: r.name });
  }
  const nMtp = maxBlock - L + 1;
  if (nMtp > 0 && !arch.blockTensors.some((r) => r.layers?.includes('mtp'))) {
    throw fileError(h.file, `num_hidden_layers is ${L}, but the weights have layer ${maxBlock}`,
      'config.json and the weights disagree: check both come from the same model (re-download the checkpoint)');
  }
  const kinds: LayerKind[] = [...trunk, ...Array.from({ length: nMtp }, () => 'mtp' as const)];

  const tensors: PlannedTensor[] = [];
  const unmapped: string[] = [];
  const seen = new Set<string>();
  for (const { hfName, canonical } of renamed) {
    let rule: TensorRule | undefined;
    let ggufName: string | undefined;
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(canonical);
    if (m) {
      const bid = Number(m[1]);
      rule = blockRules.get(m[2]!);
      if (rule && !(rule.layers ?? ['attention']).includes(kinds[bid]!)) {
        throw fileError(ckpt.info(hfName).file, `tensor ${hfName} belongs to a ${rule.layers!.join('/')} block, but block ${bid} is ${kinds[bid]}`,
          'config.json (layer_types / full_attention_interval) does not match the weights: check both come from the same model');
      }
      ggufName = rule ? `blk.${bid}.${rule.gguf}` : undefined;
    } else {
      rule = globals.get(canonical);
      ggufName = rule?.gguf;
    }
    if (!rule || !ggufName) {
      unmapped.push(hfName);
      continue;
    }
    seen.add(ggufName);
    tensors.push(planOne(ckpt, h, rule, hfName, ggufName, outtype, scales));
  }
  if (unmapped.length > 0) {
    throw new QtkError(`${ckpt.dir}: ${unmapped.length} tensor(s) have no GGUF name in the ${arch.modelType} table: ${unmapped.slice(0, 8).join(', ')}${unmapped.length > 8 ? ', …' : ''}. `
      + `The checkpoint has tensors this architecture does not define (a variant qtk does not support yet); nothing was written.`, { file: ckpt.dir });
  }

  // Every required tensor must be there: a missing one would fail at load time in llama.cpp.
  const missing: string[] = [];
  for (const r of arch.globalTensors) if (!seen.has(r.gguf) && !r.optional?.(h)) missing.push(`${r.hf} (→ ${r.gguf})`);
  kinds.forEach((kind, bid) => {
    for (const r of arch.blockTensors) {
      if ((r.layers ?? ['attention']).includes(kind) && !seen.has(`blk.${bid}.${r.gguf}`) && !r.optional?.(h)) missing.push(`layer ${bid}: ${r.hf}`);
    }
  });
  if (missing.length > 0) {
    throw new QtkError(`${ckpt.dir}: ${missing.length} tensor(s) the ${arch.modelType} architecture needs are missing: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}. `
      + `The checkpoint is incomplete or does not match config.json (num_hidden_layers ${L}); re-download it. Nothing was written.`, { file: ckpt.dir });
  }

  for (const g of arch.extraTensors?.(h) ?? []) {
    tensors.push({ hfName: '', ggufName: g.gguf, srcDtype: 'generated', srcShape: [g.values.length], shape: [g.values.length], ne: [g.values.length],
      type: 'F32', bytes: g.values.length * 4, rowPerm: null, colPerm: null, generated: g.values });
  }
  return { tensors, blockCount: kinds.length, nMtp, skipped };
}

function planOne(ckpt: SafetensorsCheckpoint, h: HParams, rule: TensorRule, hfName: string, ggufName: string, outtype: Outtype, scales: Set<string>): PlannedTensor {
  const info = ckpt.info(hfName);
  const want = rule.shape(h);
  if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
    throw fileError(info.file, `tensor ${hfName} has shape [${info.shape.join(', ')}], but config.json implies [${want.join(', ')}]`,
      'config.json and the weights disagree: check both come from the same model (re-download the checkpoint)');
  }
  const t = rule.transform ?? {};
  const shape = t.squeeze ? info.shape.filter((d) => d !== 1) : [...info.shape];
  const ne = [...shape].reverse();
  const type = convertedTensorType(ggufName, ne, outtype, t.keepF32);
  const rows = shape[0] ?? 1;
  const cols = shape.length <= 1 ? 1 : shape.slice(1).reduce((a, b) => a * b, 1);
  const perm = t.permute?.perm(h) ?? null;
  if (perm && perm.length !== (t.permute!.axis === 'rows' ? rows : cols)) {
    throw new Error(`${ggufName}: permutation of ${perm.length} entries for an axis of ${t.permute!.axis === 'rows' ? rows : cols}`);
  }
  const plan: PlannedTensor = {
    hfName, ggufName, srcDtype: info.dtype, srcShape: info.shape, shape, ne, type, bytes: ggmlTensorBytes(type, ne),
    rowPerm: t.permute?.axis === 'rows' ? perm : null,
    colPerm: t.permute?.axis === 'cols' ? perm : null,
    value: t.value,
  };
  if (info.dtype === 'F8_E4M3') {
    const scaleName = hfName.replace(/\.weight$/, FP8_SCALE_SUFFIX);
    if (!scales.has(scaleName) || shape.length !== 2) {
      throw fileError(info.file, `FP8 tensor ${hfName} has no ${scaleName} block scales`, 'Only block-scaled FP8 checkpoints (weight_scale_inv, as Qwen publishes them) can be converted');
    }
    const block = fp8BlockSize(h);
    const sInfo = ckpt.info(scaleName);
    const wantScale = [Math.ceil(rows / block[0]), Math.ceil(cols / block[1])];
    if (sInfo.shape.length !== 2 || sInfo.shape[0] !== wantScale[0] || sInfo.shape[1] !== wantScale[1]) {
      throw fileError(sInfo.file, `${scaleName} has shape [${sInfo.shape.join(', ')}], expected [${wantScale.join(', ')}] for ${block[0]}×${block[1]} blocks of [${rows}, ${cols}]`,
        'The FP8 scales do not match the weights or quantization_config.weight_block_size: re-download the checkpoint');
    }
    plan.fp8Scale = { name: scaleName, block, shape: sInfo.shape };
  } else if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
    throw fileError(info.file, `tensor ${hfName} is ${info.dtype}`, 'qtk converts F32, F16, BF16 and block-scaled F8_E4M3 weights');
  }
  return plan;
}
