import { describe, it, expect } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint, formatPlan, planConversion } from '../src/index.js';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';

describe('smoke', () => {
  it('qwen3 + qwen3_5', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-smoke-'));
    const llama = await getLlama({ gpu: false, build: 'never' });
    for (const arch of ['qwen3', 'qwen3_5'] as const) {
      const { dir } = await generateFixture({ arch, outDir: path.join(root, arch) });
      const plan = await planConversion({ input: dir, outtype: 'f32' });
      console.log(formatPlan(plan).split('\n').slice(0, 12).join('\n'));
      await plan.checkpoint.close();
      const t0 = Date.now();
      const r = await convertCheckpoint({ input: dir, output: path.join(root, `${arch}.gguf`), outtype: 'f32', log: console.log });
      console.log('converted', r.bytes, Date.now() - t0, 'ms');
      const model = await llama.loadModel({ modelPath: r.output });
      const ctx = await model.createContext({ contextSize: 256 });
      const c = new LlamaCompletion({ contextSequence: ctx.getSequence() });
      const text = await c.generateCompletion('Hello world', { maxTokens: 8 });
      console.log(arch, JSON.stringify(text));
      await ctx.dispose(); await model.dispose();
    }
    await fs.rm(root, { recursive: true, force: true });
  });
});
