// `qtk inspect <path>`: decides what the path is (GGUF file, safetensors file, checkpoint folder)
// and prints it as text or one JSON object.
import { promises as fs } from 'node:fs';
import * as nodePath from 'node:path';
import { QtkError, fileError } from './errors.js';
import { SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE } from './safetensors/index.js';
import { formatGguf, inspectGguf, type GgufInspection } from './inspect/gguf.js';
import { formatSafetensors, inspectSafetensors, type SafetensorsInspection } from './inspect/safetensors.js';
import { toJson } from './inspect/format.js';

export type Inspection = GgufInspection | SafetensorsInspection;
export type { GgufInspection, SafetensorsInspection };

export interface InspectOptions {
  path: string;
  json?: boolean;
  /** Print long arrays and strings in full. */
  all?: boolean;
  /** Where to print; stdout by default. */
  out?: { write(s: string): unknown };
}

const EXPECTED = `a .gguf file, a .safetensors file, or a folder with ${SAFETENSORS_SINGLE_FILE} or ${SAFETENSORS_INDEX_FILE}`;

async function sniff(path: string): Promise<'gguf' | 'safetensors' | undefined> {
  const fh = await fs.open(path, 'r');
  try {
    const head = Buffer.alloc(9);
    const { bytesRead } = await fh.read(head, 0, 9, 0);
    if (bytesRead >= 4 && head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
    // safetensors: u64 header length, then the JSON header's '{'.
    if (bytesRead === 9 && head[8] === 0x7b && head.readBigUInt64LE(0) < 100_000_000n) return 'safetensors';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Reads what `path` holds; QtkError when it is none of the supported kinds. */
export async function inspect(path: string, opts: { all?: boolean } = {}): Promise<Inspection> {
  const st = await fs.stat(path).catch((e: NodeJS.ErrnoException) => {
    throw fileError(path, e.code === 'ENOENT' ? 'does not exist' : `cannot be read (${e.message})`, `Give ${EXPECTED}`, e);
  });
  if (st.isDirectory()) {
    const entries = await fs.readdir(path);
    if (entries.some((f) => f.endsWith('.safetensors')) || entries.includes(SAFETENSORS_INDEX_FILE)) return inspectSafetensors(path);
    const ggufs = entries.filter((f) => f.endsWith('.gguf'));
    const hint = ggufs.length > 0 ? `; it holds ${ggufs.slice(0, 3).join(', ')}${ggufs.length > 3 ? ', …' : ''}: inspect one of those` : '';
    throw fileError(path, `is a folder without safetensors weights (no ${SAFETENSORS_SINGLE_FILE}, ${SAFETENSORS_INDEX_FILE} or *.safetensors)${hint}`, `Give ${EXPECTED}`);
  }
  if (!st.isFile()) throw fileError(path, 'is neither a file nor a folder', `Give ${EXPECTED}`);
  const kind = await sniff(path);
  const ext = nodePath.extname(path).toLowerCase();
  // A known extension goes to its parser even when the bytes are wrong: its error says what is wrong.
  if (kind === 'gguf' || (kind === undefined && ext === '.gguf')) return inspectGguf(path, Boolean(opts.all));
  if (kind === 'safetensors' || ext === '.safetensors') return inspectSafetensors(path);
  throw new QtkError(`${path}: is not a model file (it starts neither with "GGUF" nor with a safetensors header). Give ${EXPECTED}.`, { file: path });
}

export function formatInspection(x: Inspection): string {
  return x.format === 'gguf' ? formatGguf(x) : formatSafetensors(x);
}

export async function inspectMain(opts: InspectOptions): Promise<void> {
  const result = await inspect(opts.path, { all: opts.all });
  const out = opts.out ?? process.stdout;
  out.write(opts.json ? toJson(result) + '\n' : formatInspection(result));
}
