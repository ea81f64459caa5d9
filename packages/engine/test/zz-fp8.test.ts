import { it } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { generateFixture } from '@qtk/fixtures';
import { referenceForward } from '../src/reference/index.js';
it('fp8', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-ref-'));
  await generateFixture({ arch: 'qwen3_5', outDir: root + '/a', seed: 0 });
  await generateFixture({ arch: 'qwen3_5', outDir: root + '/b', seed: 0, fp8: true });
  const ids = [9707, 11, 1879, 0, 576, 374, 264, 1273, 315, 279, 5785, 4637];
  const H = 64, T = ids.length;
  const la: Float64Array[] = [], lb: Float64Array[] = [];
  await referenceForward(root + '/a', ids, { onLayer: (i, x) => (la[i] = x.slice()) });
  await referenceForward(root + '/a', ids, { roundMatmulInputs: 'bf16', onLayer: (i, x) => (lb[i] = x.slice()) });
  for (let l = 0; l < la.length; l++) {
    const row: string[] = [];
    for (let t = 0; t < T; t++) {
      let num = 0, den = 0;
      for (let i = 0; i < H; i++) { num += (la[l]![t * H + i]! - lb[l]![t * H + i]!) ** 2; den += la[l]![t * H + i]! ** 2; }
      row.push(`${Math.sqrt(den / H).toFixed(1)}/${Math.sqrt(num / den).toFixed(3)}`);
    }
    console.log('LAYER', l, row.join(' '));
  }
  await fs.rm(root, { recursive: true });
});
