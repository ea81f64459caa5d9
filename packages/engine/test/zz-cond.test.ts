import { it } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { generateFixture } from '@qtk/fixtures';
import { referenceForward } from '../src/reference/index.js';
const ids = [9707, 11, 1879, 0, 576, 374, 264, 1273, 315, 279, 5785, 4637, 13, 151645, 198, 151644, 872, 198, 3838, 374, 220, 17, 10, 17];
function top(l: Float32Array, V: number, t: number) { let b = 0; for (let i = 1; i < V; i++) if (l[t * V + i]! > l[t * V + b]!) b = i; return b; }
function gaps(l: Float32Array, V: number, T: number) { const g: number[] = []; for (let t = 0; t < T; t++) { let a = -Infinity, b = -Infinity; for (let i = 0; i < V; i++) { const x = l[t * V + i]!; if (x > a) { b = a; a = x; } else if (x > b) b = x; } g.push(a - b); } return g; }
it('cond', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-ref-'));
  for (const arch of ['qwen3_5', 'qwen3'] as const) for (const rs of [1, 0.5, 0.3]) {
    await generateFixture({ arch, outDir: root + '/a', seed: 0, residualScale: rs, overwrite: true });
    await generateFixture({ arch, outDir: root + '/b', seed: 0, residualScale: rs, fp8: true, overwrite: true });
    const a = await referenceForward(root + '/a', ids);
    const r = await referenceForward(root + '/a', ids, { roundMatmulInputs: 'bf16' });
    const b = await referenceForward(root + '/b', ids);
    const c = await referenceForward(root + '/a', [42, ...ids.slice(1)]);
    const V = a.vocab, T = ids.length;
    let dR = 0, dB = 0, agR = 0, agB = 0, ctx = 0;
    for (let i = 0; i < a.logits.length; i++) { dR = Math.max(dR, Math.abs(a.logits[i]! - r.logits[i]!)); dB = Math.max(dB, Math.abs(a.logits[i]! - b.logits[i]!)); }
    for (let t = 0; t < T; t++) { if (top(a.logits, V, t) === top(r.logits, V, t)) agR++; if (top(a.logits, V, t) === top(b.logits, V, t)) agB++; }
    for (let t = 1; t < T; t++) if (top(a.logits, V, t) !== top(c.logits, V, t)) ctx++;
    const g = gaps(a.logits, V, T).sort((x, y) => x - y);
    console.log(`RES ${arch} rs=${rs}: bf16 maxΔ ${dR.toFixed(3)} agree ${agR}/${T}; fp8 maxΔ ${dB.toFixed(2)} agree ${agB}/${T}; ctx-changed top1 ${ctx}/${T - 1}; gaps min ${g[0]!.toFixed(3)} med ${g[T >> 1]!.toFixed(2)} <0.1: ${g.filter((x) => x < 0.1).length}`);
  }
  await fs.rm(root, { recursive: true });
});
