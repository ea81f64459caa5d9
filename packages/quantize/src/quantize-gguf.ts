// `qtk quantize`: a GGUF in, the same model with llama-quantize's per-tensor types out. KV metadata is
// copied (general.file_type and general.quantization_version rewritten), tensors are written in
// llama-quantize's order, rows are converted in slabs so memory stays bounded, and the output file
// appears only when complete (GgufWriter writes a temp file, then renames).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GGML_TYPES, GgufReader, GgufWriter, QtkError, assertOutputNotInput, createProgress, decodeToF32, ggmlTypeByName, ggmlRowBytes,
  intArg, onInterrupt, type GgmlTypeName,
} from '@qtk/core';
import { CODECS, getCodec } from './codecs/index.js';
import { createRowQuantizer, type EngineName } from './engine.js';
import { imatrixFor, readImatrix, type Imatrix } from './imatrix.js';
import { BITS_TO_PRESET, PRESETS, QUANTIZATION_VERSION, presetByName, type PresetName } from './presets.js';
import { chooseTensorTypes, type TypeOverride } from './rules.js';
import type { GptqOptions } from './gptq/quantize-gptq.js';

export interface QuantizeOptions {
  input: string;
  /** Default: `<input stem without -F16/-BF16/-F32>-<PRESET>.gguf` beside the input. */
  output?: string;
  preset?: PresetName | string;
  bits?: number;
  imatrix?: string;
  /** `PATTERN=TYPE` (regex searched in the tensor name, as llama-quantize --tensor-type). */
  tensorTypes?: readonly string[];
  threads?: number;
  allowRequantize?: boolean;
  leaveOutputTensor?: boolean;
  pure?: boolean;
  outputTensorType?: string;
  tokenEmbeddingType?: string;
  /** Overwrite an existing output. */
  force?: boolean;
  engine?: 'auto' | EngineName;
  /** Lines for the user (warnings, notices); default: stderr. */
  log?: (line: string) => void;
  /** Extra metadata written after general.file_type (e.g. --fit's quantize.fit.* keys). */
  metadata?: (writer: GgufWriter) => void;
  /** Replaces plain rounding per tensor (GPTQ); a tensor it returns nothing for keeps plain rounding. Its
   *  importance counts as an imatrix for the type rules, so the types equal an imatrix run's. */
  rounding?: TensorRounding;
}

/** Quantizes nRows whole rows of one tensor from src into dst. */
export type SlabRounder = (src: Float32Array, dst: Uint8Array, nRows: number) => Promise<void>;
export interface TensorRounding {
  readonly method: string;
  forTensor(name: string, type: GgmlTypeName, ne: readonly number[]): Promise<SlabRounder | undefined>;
}

export interface QuantizedTensor {
  name: string;
  ne: number[];
  inType: GgmlTypeName;
  outType: GgmlTypeName;
  inBytes: number;
  outBytes: number;
  imatrix: boolean;
  /** The rounding method when not plain (e.g. 'gptq'). */
  rounding?: string;
}

export interface QuantizeResult {
  output: string;
  preset: PresetName;
  ftype: number;
  engine: EngineName;
  tensors: QuantizedTensor[];
  inBytes: number;
  outBytes: number;
  nElements: number;
  /** Output bits per weight over all tensors, as llama-quantize prints it. */
  bitsPerWeight: number;
  nFallback: number;
  seconds: number;
}

/** Bytes of f32 rows converted at a time: 16 MB measured faster than 4, 8, 32 and 64 MB (Q8_0, 2 cores). */
const SLAB_BYTES = 16 << 20;
/** Bytes copied at a time for tensors that keep their type. */
const COPY_BYTES = 64 << 20;
const DROPPED_KEYS = new Set(['general.file_type', 'general.quantization_version', 'general.alignment', 'split.no', 'split.count', 'split.tensors.count']);

export function resolvePreset(opts: { preset?: string; bits?: number }): PresetName {
  if (opts.preset !== undefined && opts.bits !== undefined) throw new QtkError('--type and --bits both given. Pass one of them');
  if (opts.bits !== undefined) {
    const p = (BITS_TO_PRESET as Record<number, PresetName>)[opts.bits];
    if (!p) throw new QtkError(`--bits ${opts.bits} is not supported (choose ${Object.keys(BITS_TO_PRESET).join(', ')}). Or pass --type with a preset`);
    return p;
  }
  if (opts.preset === undefined) throw new QtkError(`No quantization chosen. Pass --bits (${Object.keys(BITS_TO_PRESET).join(', ')}) or --type (${Object.keys(PRESETS).join(', ')})`);
  const p = presetByName(opts.preset);
  if (!p) throw new QtkError(`Unknown preset ${opts.preset}. Choose one of ${Object.keys(PRESETS).join(', ')}`);
  return p;
}

export function defaultOutputPath(input: string, preset: PresetName): string {
  const stem = path.basename(input).replace(/\.gguf$/i, '').replace(/-(f16|bf16|f32)$/i, '');
  return path.join(path.dirname(input), `${stem}-${preset}.gguf`);
}

function codecType(name: string, what: string): GgmlTypeName {
  const t = ggmlTypeByName(name);
  if (!t || !CODECS.has(t) || t === 'Q8_K') {
    const ok = [...CODECS.keys()].filter((k) => k !== 'Q8_K').join(', ');
    throw new QtkError(`${what}: type ${name} is not supported. Choose one of ${ok}`);
  }
  return t;
}

export function parseTensorTypes(specs: readonly string[]): TypeOverride[] {
  return specs.map((spec) => {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new QtkError(`--tensor-type ${spec}: expected PATTERN=TYPE, e.g. attn_v=q8_0`);
    const pattern = spec.slice(0, eq);
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (e) {
      throw new QtkError(`--tensor-type ${spec}: ${(e as Error).message}. Fix the regular expression`);
    }
    return { pattern: re, type: codecType(spec.slice(eq + 1), `--tensor-type ${spec}`) };
  });
}

function firstNumber(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length ? Number(v[0]) : undefined;
  return v === undefined ? undefined : Number(v);
}

/** f32 rows of a tensor slab, whatever the stored type, into `out` (its length is the value count). */
function toF32(type: GgmlTypeName, bytes: Uint8Array, out: Float32Array): Float32Array {
  if (type === 'F32' || type === 'F16' || type === 'BF16') return decodeToF32(type, bytes, out);
  const codec = getCodec(type);
  if (!codec) throw new QtkError(`tensor type ${type} cannot be read back to f32 by qtk. Quantize from an F16/BF16/F32 GGUF`);
  codec.dequantizeBlocks(bytes, out, out.length);
  return out;
}

/** Three of each slab buffer, reused for the whole file: slab k is read and converted while slab k−1 is
 *  quantized and slab k−2 written. Fresh 64 MB arrays per slab cost more in page faults than the conversion. */
class SlabBuffers {
  private readonly bytes: Uint8Array[];
  private readonly f32: Float32Array[];
  private readonly out: Uint8Array[];
  constructor(maxIn: number, maxValues: number, maxOut: number) {
    this.bytes = [0, 1, 2].map(() => new Uint8Array(maxIn));
    this.f32 = [0, 1, 2].map(() => new Float32Array(maxValues));
    this.out = [0, 1, 2].map(() => new Uint8Array(maxOut));
  }
  input(k: number, n: number): Uint8Array { return this.bytes[k % 3]!.subarray(0, n); }
  values(k: number, n: number): Float32Array { return this.f32[k % 3]!.subarray(0, n); }
  output(k: number, n: number): Uint8Array { return this.out[k % 3]!.subarray(0, n); }
}

/** Reads `dst.length` bytes at `position` of the input into `dst`. */
async function readInto(file: string, handle: fs.FileHandle, dst: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < dst.length; ) {
    const { bytesRead } = await handle.read(dst, done, dst.length - done, position + done);
    if (bytesRead === 0) throw new QtkError(`${file}: truncated at byte ${position + done}. Re-create or re-download the GGUF`, { file });
    done += bytesRead;
  }
}

function checkFinite(file: string, tensor: string, rows: Float32Array, nPerRow: number, firstRow: number): void {
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]!;
    if (v - v !== 0) {
      const row = firstRow + Math.floor(i / nPerRow);
      throw new QtkError(
        `${file}: tensor ${tensor} row ${row} holds ${v} at column ${i % nPerRow}; NaN and Inf cannot be quantized. ` +
          'Fix the checkpoint (or the conversion) that produced it',
        { file },
      );
    }
  }
}

export async function quantizeGguf(opts: QuantizeOptions): Promise<QuantizeResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const preset = resolvePreset({ preset: opts.preset, bits: opts.bits });
  const { ftype } = PRESETS[preset];
  const output = opts.output ?? defaultOutputPath(opts.input, preset);
  await assertOutputNotInput(output, [opts.input, opts.imatrix]);
  const overrides = parseTensorTypes(opts.tensorTypes ?? []);
  const outputTensorType = opts.outputTensorType ? codecType(opts.outputTensorType, '--output-tensor-type') : undefined;
  const tokenEmbeddingType = opts.tokenEmbeddingType ? codecType(opts.tokenEmbeddingType, '--token-embedding-type') : undefined;
  const threads = intArg('threads', opts.threads, { min: 1 }) ?? os.availableParallelism();
  const imatrix: Imatrix | undefined = opts.imatrix ? await readImatrix(opts.imatrix) : undefined;

  const reader = await GgufReader.open(opts.input);
  let writer: GgufWriter | undefined;
  let offInterrupt: (() => void) | undefined;
  try {
    const arch = String(reader.get('general.architecture') ?? '');
    const blockCount = firstNumber(reader.get(`${arch}.block_count`));
    if (!arch || blockCount === undefined) {
      throw new QtkError(`${opts.input}: general.architecture or ${arch || '<arch>'}.block_count is missing. Quantize a GGUF written by qtk convert or llama.cpp`, { file: opts.input });
    }
    const nHead = firstNumber(reader.get(`${arch}.attention.head_count`)) ?? 0;
    const nHeadKv = firstNumber(reader.get(`${arch}.attention.head_count_kv`)) ?? nHead;
    const { choices, nFallback } = chooseTensorTypes(reader.tensors, {
      preset, blockCount, nGqa: nHeadKv > 0 ? Math.floor(nHead / nHeadKv) : 0,
      nExpert: firstNumber(reader.get(`${arch}.expert_count`)) ?? 0, hasImatrix: imatrix !== undefined || opts.rounding !== undefined, pure: opts.pure,
      leaveOutputTensor: opts.leaveOutputTensor, overrides, outputTensorType, tokenEmbeddingType,
    });

    // Refusals first, before anything is written (llama-quantize's preliminary loop); warnings wait
    // until the output is open, so a refused output prints none.
    const warnings: string[] = [];
    let requantizeWarned = false;
    for (const c of choices) {
      const info = reader.tensor(c.name);
      if (c.allowsQuantization && c.requiresImatrix && !imatrix && !opts.rounding) {
        throw new QtkError(`${opts.input}: tensor ${c.name} → ${c.type} requires an importance matrix. Pass --imatrix FILE (llama-imatrix output)`, { file: opts.input });
      }
      if (c.type === info.type) continue;
      if (imatrix) imatrixFor(imatrix, opts.input, c.name, info.ne); // a wrong length fails now, not mid-file
      if (GGML_TYPES[info.type].quantized) {
        if (!opts.allowRequantize) {
          throw new QtkError(`${opts.input}: tensor ${c.name} is already ${info.type}; requantizing is disabled. Pass --allow-requantize (quality suffers), or start from the F16/BF16 GGUF`, { file: opts.input });
        }
        if (!requantizeWarned) warnings.push(`warning: requantizing ${info.type} tensors (first: ${c.name}): quality is worse than quantizing from F16/BF16`);
        requantizeWarned = true;
      }
      if (!getCodec(c.type)) throw new QtkError(`tensor ${c.name}: type ${c.type} is not supported by qtk. Use --tensor-type to choose another`);
    }
    if (nFallback > 0) warnings.push(`warning: ${nFallback} of ${choices.length} tensor(s) required fallback quantization (row length not a multiple of the block size)`);

    const inputAlignment = firstNumber(reader.get('general.alignment'));
    writer = await GgufWriter.create(output, { overwrite: opts.force, alignment: inputAlignment });
    const partial = writer;
    offInterrupt = onInterrupt(async () => { await partial.abort(); return `removed the partial ${output}`; }, 'quantize');
    for (const w of warnings) log(w);
    for (const kv of reader.kv.values()) if (!DROPPED_KEYS.has(kv.key)) writer.addKV(kv);
    writer.add('general.quantization_version', 'UINT32', QUANTIZATION_VERSION);
    writer.add('general.file_type', 'UINT32', ftype);
    opts.metadata?.(writer);
    for (const c of choices) writer.addTensorInfo(c.name, reader.tensor(c.name).ne, c.type);

    const engine = createRowQuantizer(opts.engine ?? 'auto', threads);
    if (engine.name === 'ts' && opts.engine !== 'ts') log('notice: no prebuilt ggml for this platform; using the TypeScript codecs on one thread (same bytes, slower)');
    const totalIn = reader.tensors.reduce((s, t) => s + t.byteLength, 0);
    const progress = createProgress({ title: `quantize ${preset}`, total: totalIn, kind: 'bytes' });
    const tensors: QuantizedTensor[] = [];
    let nElements = 0;
    // Slab rows per quantized tensor; slabs never cross an expert boundary (each expert has its own row of weights).
    const slabRowsOf = (c: (typeof choices)[number]): number => {
      const info = reader.tensor(c.name);
      const rows = Math.max(1, Math.floor(SLAB_BYTES / (info.ne[0]! * 4)));
      const weights = imatrix ? imatrixFor(imatrix, opts.input, c.name, info.ne) : undefined;
      return weights && weights.length > info.ne[0]! ? Math.min(rows, info.ne[1] ?? 1) : rows;
    };
    let maxIn = 0, maxValues = 0, maxOut = 0;
    for (const c of choices) {
      const info = reader.tensor(c.name);
      if (c.type === info.type || info.byteLength === 0) continue;
      const ne0 = info.ne[0]!;
      const rows = Math.min(slabRowsOf(c), info.ne.slice(1).reduce((a, b) => a * b, 1));
      maxIn = Math.max(maxIn, rows * ggmlRowBytes(info.type, ne0));
      maxValues = Math.max(maxValues, rows * ne0);
      maxOut = Math.max(maxOut, rows * ggmlRowBytes(c.type, ne0));
    }
    const buffers = new SlabBuffers(maxIn, maxValues, maxOut);
    const input = await fs.open(opts.input, 'r');
    // Slabs are numbered across the whole file, so that set k % 3 is never one still quantized or written.
    let slabNo = 0;
    // The last write in flight, and the slab being quantized that follows it: slab k is queued for the
    // quantizer's lanes before slab k−1 is done, so the lanes never wait at a slab boundary.
    let writing: Promise<void> = Promise.resolve();
    let quantizing: { name: string; done: Promise<void>; dst: Uint8Array; inBytes: number } | undefined;
    const retire = async (): Promise<void> => {
      if (!quantizing) return;
      const q = quantizing;
      quantizing = undefined;
      await q.done;
      await writing;
      writing = writer!.writeTensorData(q.name, q.dst);
      writing.catch(() => {}); // surfaced by the next await
      progress.tick(q.inBytes, q.name);
    };
    try {
      for (const c of choices) {
        const info = reader.tensor(c.name);
        const ne0 = info.ne[0]!;
        const nRows = info.byteLength === 0 ? 0 : info.ne.slice(1).reduce((a, b) => a * b, 1);
        nElements += ne0 * nRows;
        let usedImatrix = false;
        let custom: SlabRounder | undefined;
        if (c.type === info.type) {
          await retire();
          await writing;
          for (let off = 0; off < info.byteLength; off += COPY_BYTES) {
            const n = Math.min(COPY_BYTES, info.byteLength - off);
            await writer.writeTensorData(c.name, await reader.readTensorRange(info, off, n));
            progress.tick(n, c.name);
          }
        } else {
          const weights = imatrix ? imatrixFor(imatrix, opts.input, c.name, info.ne) : undefined;
          if (imatrix && !weights) log(`notice: no importance weights for ${c.name}`);
          usedImatrix = weights !== undefined;
          await retire();
          custom = await opts.rounding?.forTensor(c.name, c.type, info.ne);
          const inRow = ggmlRowBytes(info.type, ne0);
          const outRow = ggmlRowBytes(c.type, ne0);
          const rowsPerExpert = info.ne[1] ?? 1;
          const slabRows = slabRowsOf(c);
          // Reading and converting slab k+1 overlaps quantizing slab k; writing overlaps the next slabs' work.
          const slabs: [number, number, number][] = [];
          for (let r = 0; r < nRows; ) {
            const n = Math.min(slabRows, nRows - r, rowsPerExpert - (r % rowsPerExpert));
            slabs.push([r, n, slabNo++]);
            r += n;
          }
          const load = async ([r, n, k]: [number, number, number]): Promise<Float32Array> => {
            const bytes = buffers.input(k, n * inRow);
            await readInto(opts.input, input, bytes, info.absoluteOffset + r * inRow);
            const out = buffers.values(k, n * ne0);
            if (info.type === 'F32' || info.type === 'F16' || info.type === 'BF16') {
              // ggml checks the stored values in C; only when it finds NaN/Inf do we scan to name the row.
              const { values, finite } = await engine.toF32(info.type, bytes, n * ne0, out);
              if (finite !== true) checkFinite(opts.input, c.name, values, ne0, r);
              return values;
            }
            const src = toF32(info.type, bytes, out);
            checkFinite(opts.input, c.name, src, ne0, r);
            return src;
          };
          let next = slabs.length ? load(slabs[0]!) : undefined;
          for (let k = 0; k < slabs.length; k++) {
            const [r, n, no] = slabs[k]!;
            const src = await next!;
            next = k + 1 < slabs.length ? load(slabs[k + 1]!) : undefined;
            next?.catch(() => {}); // surfaced when awaited
            const dst = buffers.output(no, n * outRow);
            const e = Math.floor(r / rowsPerExpert) * ne0;
            const done = custom ? custom(src, dst, n) : engine.quantize(c.type, src, dst, n, ne0, weights?.subarray(e, e + ne0));
            done.catch(() => {}); // surfaced by retire()
            await retire();
            quantizing = { name: c.name, done, dst, inBytes: n * inRow };
          }
        }
        tensors.push({ name: c.name, ne: [...info.ne], inType: info.type, outType: c.type, inBytes: info.byteLength, outBytes: nRows * ggmlRowBytes(c.type, ne0), imatrix: usedImatrix, ...(custom && opts.rounding ? { rounding: opts.rounding.method } : {}) });
      }
      await retire();
      await writing;
    } finally {
      await quantizing?.done.catch(() => {});
      await writing.catch(() => {});
      await input.close();
    }
    progress.done();
    await writer.finish();
    writer = undefined;
    const outBytes = tensors.reduce((s, t) => s + t.outBytes, 0);
    return {
      output, preset, ftype, engine: engine.name, tensors, inBytes: totalIn, outBytes, nElements,
      bitsPerWeight: nElements > 0 ? (outBytes * 8) / nElements : 0, nFallback, seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    if (writer) await writer.abort().catch(() => {});
    throw e;
  } finally {
    offInterrupt?.();
    await reader.close();
  }
}

/** The per-tensor table and totals that `qtk quantize` prints. */
export function formatQuantizeReport(r: QuantizeResult): string {
  const mib = (b: number) => (b / 1048576).toFixed(2);
  const rows = r.tensors.map((t) => [t.name, `[${t.ne.join(', ')}]`, `${t.inType} → ${t.outType}${t.rounding ? ` (${t.rounding})` : t.imatrix ? ' (imatrix)' : ''}`, `${mib(t.inBytes)} → ${mib(t.outBytes)} MiB`]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length), 0));
  const lines = rows.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  '));
  lines.push(
    `${r.preset} (file type ${r.ftype}), engine ${r.engine}: ${mib(r.inBytes)} MiB → ${mib(r.outBytes)} MiB, ` +
      `${r.bitsPerWeight.toFixed(2)} bits per weight, ${r.tensors.length} tensors in ${r.seconds.toFixed(1)} s` +
      (r.nFallback ? `, ${r.nFallback} fallback(s)` : ''),
    `wrote ${r.output}`,
  );
  return lines.join('\n');
}

export interface QuantizeMainArgs extends QuantizeOptions, Partial<GptqOptions> {
  quiet?: boolean;
  /** 'gptq' calibrates on `calib` and rounds each matmul weight by GPTQ (default: plain rounding). */
  method?: 'rtn' | 'gptq';
}

export async function quantizeMain(args: QuantizeMainArgs): Promise<QuantizeResult> {
  if (args.method !== 'gptq' && args.calib !== undefined) throw new QtkError('--calib is only read by --method gptq. Pass --method gptq, or drop --calib');
  if (args.method === 'gptq' && args.calib === undefined) throw new QtkError('--method gptq needs calibration text. Pass --calib <text file | dataset folder>');
  const result = args.method === 'gptq' ? await (await import('./gptq/quantize-gptq.js')).quantizeGptq({ ...args, calib: args.calib! }) : await quantizeGguf(args);
  if (!args.quiet) process.stdout.write(formatQuantizeReport(result) + '\n');
  return result;
}
