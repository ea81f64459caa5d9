// `qtk plan <hf-dir | config.json | gguf> --vram 24GiB`: the preset table and the recommendation.
import { KV_TYPES, type KvType } from '@qtk/core';
import { loadModelDescription } from './source.js';
import { planModel, type Plan, type PlanOptions } from './plan.js';
import type { TrainingPlan } from './training.js';

export interface PlanMainArgs extends PlanOptions {
  input: string;
  json?: boolean;
  out?: (line: string) => void;
}

const GIB = 1024 ** 3;
const gib = (b: number): string => (b / GIB).toFixed(2);

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)];
}

export function formatTraining(t: TrainingPlan): string[] {
  const head = ['base', 'weights', 'LoRA+AdamW', 'layer inputs', 'layer', 'loss chunk', 'runtime', 'train GiB', 'fits', 'spare GiB'];
  const rows = t.rows.map((r) => {
    const m = r.memory;
    return [r.base === 'BF16' ? 'BF16 (LoRA)' : `${r.base} (QLoRA)`, gib(m.base), gib(m.lora), gib(m.layerInputs), gib(m.layerWorkingSet), gib(m.lossChunk), gib(m.runtime), gib(m.total), r.fits ? 'yes' : 'no', gib(r.spareBytes)];
  });
  return [
    `training: LoRA rank ${t.rank} on every linear of the trunk (${t.loraParams} parameters), ${t.seqLen} tokens per step, qtk's engine (layer-wise recomputation, chunked loss head)`,
    '',
    ...table(head, rows),
    '',
    t.recommended ? `train on: ${t.recommended === 'BF16' ? 'the bf16 model (LoRA)' : `a ${t.recommended} base (QLoRA)`}` : `no base fits for training: the smallest (${t.rows.at(-1)?.base}) needs ${gib(t.rows.at(-1)?.memory.total ?? 0)} GiB. Lower --seq-len or --rank.`,
  ];
}

export function formatPlan(p: Plan): string {
  const o = p.options;
  const s = p.model.shape;
  const head = ['preset', 'file GiB', 'bpw', 'weights', 'KV', 'state', 'compute', 'VRAM GiB', 'fits', 'spare GiB'];
  const rows = p.rows.map((r) => [
    r.preset, gib(r.fileBytes), r.bitsPerWeight.toFixed(2), gib(r.vramBytes - r.serving.kvCache - r.serving.recurrentState - r.serving.compute),
    gib(r.serving.kvCache), gib(r.serving.recurrentState), gib(r.serving.compute), gib(r.vramBytes), r.fits ? 'yes' : 'no', gib(r.spareBytes),
  ]);
  const out = [
    `${p.model.source}: ${s.arch}, ${s.nLayer} layers (${s.nAttentionLayers} with a KV cache${s.nRecurrentLayers ? `, ${s.nRecurrentLayers} recurrent` : ''})${s.nMtp ? ` + ${s.nMtp} MTP` : ''}, vocab ${s.nVocab}`,
    `${gib(o.vram)} GiB GPU, context ${o.ctx} × ${o.parallel} sequence(s), KV ${o.kvType}, ${gib(o.headroom)} GiB kept free; all layers on the GPU`,
    '',
    ...table(head, rows),
    '',
  ];
  const host = p.rows[0] ? ` Host memory beside it: the token embedding and logits (${gib(p.rows.find((r) => r.preset === p.recommended)?.hostBytes ?? p.rows[0].hostBytes)} GiB).` : '';
  if (p.recommended) {
    out.push(`recommended: ${p.recommended} (qtk quantize <f16.gguf> --type ${p.recommended}); for a file between two presets: qtk quantize --fit <size>.${host}`);
  } else {
    const smallest = p.rows[p.rows.length - 1];
    out.push(`nothing fits: the smallest preset (${smallest?.preset}) needs ${gib(smallest?.vramBytes ?? 0)} GiB. Lower --ctx or --parallel, use --kv-type q8_0/q4_0, or offload layers to the CPU.`);
  }
  if (p.training) out.push('', ...formatTraining(p.training));
  return out.join('\n');
}

export async function planMain(args: PlanMainArgs): Promise<Plan> {
  const model = await loadModelDescription(args.input);
  const plan = planModel(model, { vram: args.vram, ctx: args.ctx, parallel: args.parallel, kvType: args.kvType, headroom: args.headroom, train: args.train });
  const out = args.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  if (args.json) {
    out(JSON.stringify({
      model: { source: model.source, ...model.shape },
      options: plan.options,
      rows: plan.rows.map((r) => ({ ...r })),
      recommended: plan.recommended ?? null,
      ...(plan.training ? { training: { ...plan.training, recommended: plan.training.recommended ?? null } } : {}),
    }, null, 2));
  } else out(formatPlan(plan));
  return plan;
}

export const PLAN_KV_TYPES: readonly KvType[] = KV_TYPES;
