// `qtk inspect` for a .gguf file: header, metadata (long arrays and strings abbreviated unless --all),
// tensor table and totals, like gguf-py's gguf-dump.
import { GgufReader, type GgufTensorInfo } from '../gguf/index.js';
import type { GgufKV, GgufScalar } from '../gguf/constants.js';
import { humanBytes, humanCount, table } from './format.js';

/** Arrays longer than this show their first ARRAY_HEAD elements and a count, unless --all. */
export const ARRAY_HEAD = 8;
/** Strings longer than this (chat templates) are cut, unless --all. */
export const STRING_HEAD = 120;

export interface GgufInspection {
  format: 'gguf';
  path: string;
  version: number;
  alignment: number;
  fileSize: number;
  dataOffset: number;
  metadata: { key: string; type: string; elemType?: string; count?: number; value: unknown; abbreviated?: boolean }[];
  tensors: { name: string; type: string; ne: number[]; elements: number; offset: number; bytes: number }[];
  totals: { tensors: number; elements: number; bytes: number; bitsPerWeight: number; byType: Record<string, { tensors: number; elements: number; bytes: number }> };
}

function cutString(s: string, all: boolean): { value: string; abbreviated: boolean } {
  return all || s.length <= STRING_HEAD ? { value: s, abbreviated: false } : { value: s.slice(0, STRING_HEAD), abbreviated: true };
}

function describeKv(kv: GgufKV, all: boolean): GgufInspection['metadata'][number] {
  if (kv.type !== 'ARRAY') {
    if (typeof kv.value === 'string') {
      const c = cutString(kv.value, all);
      return { key: kv.key, type: kv.type, value: c.value, ...(c.abbreviated ? { abbreviated: true } : {}) };
    }
    return { key: kv.key, type: kv.type, value: kv.value };
  }
  const arr = kv.value as GgufScalar[];
  const shown = all || arr.length <= ARRAY_HEAD ? arr : arr.slice(0, ARRAY_HEAD);
  const cut = shown.map((v) => (typeof v === 'string' ? cutString(v, all).value : v));
  return { key: kv.key, type: 'ARRAY', elemType: kv.elemType!, count: arr.length, value: cut, ...(shown.length < arr.length ? { abbreviated: true } : {}) };
}

export async function inspectGguf(path: string, all: boolean): Promise<GgufInspection> {
  const r = await GgufReader.open(path);
  try {
    const byType: GgufInspection['totals']['byType'] = {};
    let elements = 0;
    let bytes = 0;
    const tensors = r.tensors.map((t: GgufTensorInfo) => {
      const n = t.ne.reduce((a, b) => a * b, 1);
      elements += n;
      bytes += t.byteLength;
      const bt = (byType[t.type] ??= { tensors: 0, elements: 0, bytes: 0 });
      bt.tensors++;
      bt.elements += n;
      bt.bytes += t.byteLength;
      return { name: t.name, type: t.type, ne: t.ne, elements: n, offset: t.offset, bytes: t.byteLength };
    });
    return {
      format: 'gguf',
      path,
      version: r.version,
      alignment: r.alignment,
      fileSize: r.fileSize,
      dataOffset: r.dataOffset,
      metadata: [...r.kv.values()].map((kv) => describeKv(kv, all)),
      tensors,
      totals: { tensors: tensors.length, elements, bytes, bitsPerWeight: elements > 0 ? (bytes * 8) / elements : 0, byType },
    };
  } finally {
    await r.close();
  }
}

function showScalar(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  return String(v);
}

export function formatGguf(x: GgufInspection): string {
  const out: string[] = [];
  out.push(`${x.path}: GGUF v${x.version}, ${humanBytes(x.fileSize)}, alignment ${x.alignment}, tensor data at byte ${x.dataOffset}`);
  out.push('', `Metadata (${x.metadata.length} keys):`);
  const rows = x.metadata.map((m, i) => {
    let value: string;
    if (m.type === 'ARRAY') {
      const items = (m.value as unknown[]).map(showScalar).join(', ');
      value = `[${items}${m.abbreviated ? `, … ${m.count! - (m.value as unknown[]).length} more` : ''}]`;
    } else {
      value = showScalar(m.value) + (m.abbreviated ? '…' : '');
    }
    const type = m.type === 'ARRAY' ? `[${m.elemType}; ${m.count}]` : m.type;
    return [String(i + 1), m.key, type, value];
  });
  out.push(...table(['#', 'key', 'type', 'value'], rows, new Set([0])).map((l) => '  ' + l));
  out.push('', `Tensors (${x.tensors.length}):`);
  const trows = x.tensors.map((t, i) => [String(i + 1), t.type, `[${t.ne.join(', ')}]`, String(t.bytes), t.name]);
  out.push(...table(['#', 'type', 'ne', 'bytes', 'name'], trows, new Set([0, 3])).map((l) => '  ' + l));
  const t = x.totals;
  out.push('', `Totals: ${t.tensors} tensors, ${humanCount(t.elements)} weights (${t.elements}), ${humanBytes(t.bytes)} (${t.bytes} bytes), ${t.bitsPerWeight.toFixed(2)} bits per weight`);
  for (const [type, b] of Object.entries(t.byType).sort((a, b) => b[1].bytes - a[1].bytes)) {
    out.push(`  ${type.padEnd(8)} ${String(b.tensors).padStart(6)} tensors  ${humanCount(b.elements).padStart(9)} weights  ${humanBytes(b.bytes).padStart(11)}`);
  }
  return out.join('\n') + '\n';
}
