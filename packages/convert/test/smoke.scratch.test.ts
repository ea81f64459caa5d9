import { describe, it } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';

describe('smoke', () => {
  it('timing', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-smoke-'));
    let t = Date.now();
    const lap = (s: string) => { console.log(s, Date.now() - t, 'ms'); t = Date.now(); };
    const llama = await getLlama({ gpu: false, build: 'never' }); lap('getLlama');
    const { dir } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'q') }); lap('fixture');
    const r = await convertCheckpoint({ input: dir, output: path.join(root, `q.gguf`), outtype: 'f32', log: () => {} }); lap('convert');
    const model = await llama.loadModel({ modelPath: r.output }); lap('load');
    const ctx = await model.createContext({ contextSize: 256 }); lap('ctx');
    const c = new LlamaCompletion({ contextSequence: ctx.getSequence() });
    await c.generateCompletion('Hello world', { maxTokens: 8 }); lap('gen');
    await ctx.dispose(); await model.dispose();
    await fs.rm(root, { recursive: true, force: true });
  });
});
