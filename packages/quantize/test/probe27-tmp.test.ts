import { it } from 'vitest';
import { GgufReader, GgufWriter, describeConfig, ggmlTensorBytes } from '@qtk/core';
import { QWEN3_6_27B_CONFIG } from '@qtk/fixtures';
import { chooseTensorTypes } from '../src/rules.js';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
it('probe27', async () => {
  const d = describeConfig(JSON.parse(JSON.stringify(QWEN3_6_27B_CONFIG)), 'cfg');
  const src = await GgufReader.open('/tmp/i15/fx-qwen3_5/m-f16.gguf');
  const out = '/tmp/i15/fake27.gguf';
  const w = await GgufWriter.create(out, { overwrite: true });
  const arch = 'qwen35';
  const real: Record<string, number> = { block_count: 65, embedding_length: 5120, feed_forward_length: 17408, 'attention.head_count': 24, 'attention.head_count_kv': 4, 'attention.key_length': 256, 'attention.value_length': 256, 'ssm.conv_kernel': 4, 'ssm.state_size': 128, 'ssm.group_count': 16, 'ssm.time_step_rank': 48, 'ssm.inner_size': 6144, full_attention_interval: 4, 'rope.dimension_count': 64, nextn_predict_layers: 1 };
  for (const kv of src.kv.values()) {
    const k = kv.key.startsWith(arch + '.') ? kv.key.slice(arch.length + 1) : undefined;
    if (k && real[k] !== undefined) { w.add(kv.key, 'UINT32', real[k]); continue; }
    if (kv.key === 'tokenizer.ggml.tokens') { const t = [...(kv.value as string[])]; for (let i = t.length; i < 248320; i++) t.push(`[PAD${i}]`); w.addArray(kv.key, 'STRING', t); continue; }
    if (kv.key === 'tokenizer.ggml.token_type') { const t = [...(kv.value as number[])]; for (let i = t.length; i < 248320; i++) t.push(4); w.addArray(kv.key, 'INT32', t); continue; }
    if (kv.key === 'general.file_type') { w.add(kv.key, 'UINT32', 15); continue; }
    w.addKV(kv);
  }
  const { choices } = chooseTensorTypes(d.tensors, { preset: 'Q4_K_M', blockCount: 65, nGqa: 6 });
  for (const c of choices) w.addTensorInfo(c.name, d.tensors.find((t) => t.name === c.name)!.ne, c.type);
  const anyW = w as any;
  const orig = anyW.writeAt.bind(w);
  const Z = new Uint8Array(64 << 20);
  anyW.writeAt = async (b: Uint8Array) => { if (b.buffer === Z.buffer) { anyW.pos += b.length; return; } return orig(b); };
  let total = 0;
  for (const c of choices) {
    const n = ggmlTensorBytes(c.type, d.tensors.find((t) => t.name === c.name)!.ne); total += n;
    for (let o = 0; o < n; o += Z.length) await w.writeTensorData(c.name, Z.subarray(0, Math.min(Z.length, n - o)));
  }
  await w.finish();
  console.log('tensor bytes', total);
  const lines: string[] = [];
  const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.debug, logger: (_l, m) => { lines.push(m); } });
  const { readGgufFileInfo, GgufInsights } = await import('node-llama-cpp');
  const info = await readGgufFileInfo(out);
  const ins = await GgufInsights.from(info, llama);
  for (const [ctx, seq] of [[4096, 1], [32768, 1], [32768, 2]]) {
    lines.length = 0;
    const r = await ins.estimateContextResourceRequirementsV2({ contextSize: ctx, modelGpuLayers: 0, sequences: seq });
    const v1 = ins.estimateContextResourceRequirements({ contextSize: ctx, modelGpuLayers: 0, sequences: seq });
    console.log(ctx, seq, 'v2', r, 'v1', v1);
    console.log(lines.filter((l) => /buffer size|Simulat/.test(l)).join('\n'));
  }
  console.log('model ram', ins.estimateModelResourceRequirements({ gpuLayers: 0 }));
}, 600000);
