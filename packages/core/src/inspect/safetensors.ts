// `qtk inspect` for a .safetensors file or a Hugging Face checkpoint folder: tensors with dtype, shape
// and bytes, plus config.json's architectures and model_type when the folder has one.
import { promises as fs } from 'node:fs';
import * as nodePath from 'node:path';
import { SafetensorsCheckpoint } from '../safetensors/index.js';
import { humanBytes, humanCount, table } from './format.js';

export interface SafetensorsInspection {
  format: 'safetensors';
  path: string;
  files: string[];
  config?: { architectures?: unknown; model_type?: unknown; text_model_type?: unknown };
  metadata: Record<string, string>;
  tensors: { name: string; dtype: string; shape: number[]; bytes: number; file: string }[];
  totals: { tensors: number; elements: number; bytes: number; byDtype: Record<string, { tensors: number; elements: number; bytes: number }> };
}

async function readConfig(dir: string): Promise<SafetensorsInspection['config']> {
  let text: string;
  try {
    text = await fs.readFile(nodePath.join(dir, 'config.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const c = JSON.parse(text) as Record<string, unknown>;
    const tc = c.text_config as Record<string, unknown> | undefined;
    return { architectures: c.architectures, model_type: c.model_type, ...(tc?.model_type !== undefined ? { text_model_type: tc.model_type } : {}) };
  } catch {
    return undefined; // inspect shows tensors; a broken config.json is convert's to report
  }
}

export async function inspectSafetensors(path: string): Promise<SafetensorsInspection> {
  const ck = await SafetensorsCheckpoint.open(path);
  try {
    const byDtype: SafetensorsInspection['totals']['byDtype'] = {};
    let elements = 0;
    let bytes = 0;
    const tensors = ck.names().map((name) => {
      const i = ck.info(name);
      const n = i.shape.reduce((a, b) => a * b, 1);
      elements += n;
      bytes += i.byteLength;
      const bd = (byDtype[i.dtype] ??= { tensors: 0, elements: 0, bytes: 0 });
      bd.tensors++;
      bd.elements += n;
      bd.bytes += i.byteLength;
      return { name, dtype: i.dtype, shape: i.shape, bytes: i.byteLength, file: nodePath.basename(i.file) };
    });
    const config = await readConfig(ck.dir);
    return {
      format: 'safetensors',
      path,
      files: ck.files,
      ...(config ? { config } : {}),
      metadata: ck.metadata(),
      tensors,
      totals: { tensors: tensors.length, elements, bytes, byDtype },
    };
  } finally {
    await ck.close();
  }
}

export function formatSafetensors(x: SafetensorsInspection): string {
  const out: string[] = [];
  out.push(`${x.path}: safetensors, ${x.files.length} file${x.files.length === 1 ? '' : 's'}`);
  if (x.config) {
    out.push(`  config.json: architectures ${JSON.stringify(x.config.architectures ?? null)}, model_type ${JSON.stringify(x.config.model_type ?? null)}${x.config.text_model_type !== undefined ? `, text_config.model_type ${JSON.stringify(x.config.text_model_type)}` : ''}`);
  }
  const meta = Object.entries(x.metadata);
  if (meta.length > 0) out.push(`  metadata: ${meta.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`);
  const multi = x.files.length > 1;
  out.push('', `Tensors (${x.tensors.length}):`);
  const rows = x.tensors.map((t, i) => [String(i + 1), t.dtype, `[${t.shape.join(', ')}]`, String(t.bytes), t.name + (multi ? `  (${t.file})` : '')]);
  out.push(...table(['#', 'dtype', 'shape', 'bytes', 'name'], rows, new Set([0, 3])).map((l) => '  ' + l));
  const t = x.totals;
  out.push('', `Totals: ${t.tensors} tensors, ${humanCount(t.elements)} weights (${t.elements}), ${humanBytes(t.bytes)} (${t.bytes} bytes)`);
  for (const [dtype, b] of Object.entries(t.byDtype).sort((a, b) => b[1].bytes - a[1].bytes)) {
    out.push(`  ${dtype.padEnd(8)} ${String(b.tensors).padStart(6)} tensors  ${humanCount(b.elements).padStart(9)} weights  ${humanBytes(b.bytes).padStart(11)}`);
  }
  return out.join('\n') + '\n';
}
