// Everything `qtk convert` decides before writing a byte: architecture, tensor map, metadata, output
// path and size. A dry run prints this plan; a real run executes it.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  assertOutputNotInput,
  buildGgufVocab,
  GGUF_DEFAULT_ALIGNMENT,
  isOuttype,
  OUTTYPES,
  QtkError,
  readJsonFile,
  readTokenizerSources,
  resolveArchitecture,
  SafetensorsCheckpoint,
  type ArchDefinition,
  type HParams,
  type JsonObject,
  type MetadataEntry,
  type Outtype,
} from '@qtk/core';
import { architectureEntries, defaultOutputName, fileTypeEntries, generalEntries, modelNaming, type ModelNaming } from './metadata.js';
import { planTensors, type TensorPlan } from './tensors.js';

export interface ConvertOptions {
  /** Hugging Face checkpoint folder. */
  input: string;
  /** Output .gguf; default `<input>/<Basename>-<Size>-<OUTTYPE>.gguf`. */
  output?: string;
  /** f32 | f16 | bf16 | q8_0 (default f16, as llama.cpp), or auto: bf16 for a bf16 checkpoint, else f16. */
  outtype?: Outtype | 'auto';
  /** Leave out the MTP (multi-token prediction) block. */
  noMtp?: boolean;
  /** Replace an existing output file. */
  force?: boolean;
  /** One-line notices (vision skipped, ids not written…); default: stderr. */
  log?: (line: string) => void;
}

export interface ConversionPlan {
  input: string;
  output: string;
  outtype: Outtype;
  arch: ArchDefinition;
  hparams: HParams;
  naming: ModelNaming;
  metadata: MetadataEntry[];
  tensorPlan: TensorPlan;
  /** Exact size of the output file. */
  fileSize: number;
  /** Bytes of tensor data read from the checkpoint. */
  inputBytes: number;
  notices: string[];
  checkpoint: SafetensorsCheckpoint;
}

async function readOptionalJson(file: string): Promise<JsonObject | undefined> {
  const exists = await fs.stat(file).then((s) => s.isFile(), () => false);
  return exists ? readJsonFile(file, path.basename(file)) : undefined;
}

function resolveOuttype(o: ConvertOptions['outtype'], ckpt: SafetensorsCheckpoint): Outtype {
  const v = o ?? 'f16';
  if (v === 'auto') {
    // The first ≥2-D bf16/f16 tensor decides, as in llama.cpp's converter.
    for (const n of ckpt.names()) {
      const i = ckpt.info(n);
      if (i.shape.length >= 2 && (i.dtype === 'BF16' || i.dtype === 'F16')) return i.dtype === 'BF16' ? 'bf16' : 'f16';
    }
    return 'f16';
  }
  if (!isOuttype(v)) throw new QtkError(`--outtype ${JSON.stringify(v)} is not supported. Choose one of: ${Object.keys(OUTTYPES).join(', ')}, auto.`);
  return v;
}

export async function planConversion(opts: ConvertOptions): Promise<ConversionPlan> {
  const input = path.resolve(opts.input);
  const st = await fs.stat(input).catch(() => undefined);
  if (!st?.isDirectory()) throw new QtkError(`${input}: not a folder. Give the folder of a Hugging Face checkpoint (config.json, tokenizer.json, *.safetensors).`, { file: input });
  const configPath = path.join(input, 'config.json');
  const config = await readJsonFile(configPath, 'the model config (config.json)');
  const { arch, hparams } = resolveArchitecture(config, configPath);
  const notices: string[] = [];

  const checkpoint = await SafetensorsCheckpoint.open(input);
  try {
    const outtype = resolveOuttype(opts.outtype, checkpoint);
    const tensorPlan = planTensors(checkpoint, arch, hparams, outtype, opts.noMtp ?? false);
    const { skipped, nMtp } = tensorPlan;
    if (skipped.vision.length > 0) notices.push(`skipping ${skipped.vision.length} vision-tower tensors (the text GGUF does not include them)`);
    if (skipped.mtp.length > 0) notices.push(`skipping ${skipped.mtp.length} MTP tensors (--no-mtp)`);
    const declaredMtp = hparams.int('mtp_num_hidden_layers', 0);
    if (!opts.noMtp && declaredMtp > 0 && nMtp === 0) {
      notices.push(`config.json declares ${declaredMtp} MTP layer(s) but the checkpoint has no mtp.* tensors; writing the model without MTP`);
    }

    const vocabSize = hparams.int('vocab_size');
    const vocab = buildGgufVocab(await readTokenizerSources(input, config, vocabSize));
    notices.push(...vocab.notices);

    const params = tensorPlan.tensors.reduce((a, t) => a + t.ne.reduce((x, y) => x * y, 1), 0);
    const naming = modelNaming(input, config, params);
    const gen = await readOptionalJson(path.join(input, 'generation_config.json'));
    const metadata: MetadataEntry[] = [
      ...generalEntries(arch, naming, gen),
      ...architectureEntries(arch, hparams, nMtp),
      ...fileTypeEntries(outtype),
      ...vocab.entries,
    ];
    const output = path.resolve(opts.output ?? path.join(input, defaultOutputName(naming, outtype)));
    // The default output lives in the checkpoint folder (as llama.cpp's converter writes it), so the
    // guard compares with the files read there rather than refusing the whole folder.
    const readFiles = (await fs.readdir(input)).filter((f) => !f.endsWith('.gguf')).map((f) => path.join(input, f));
    await assertOutputNotInput(output, [input, ...readFiles], { flag: opts.output === undefined ? undefined : '--output', allowInsideInputDir: true });
    const inputBytes = tensorPlan.tensors.reduce((a, t) => a + (t.generated ? 0 : checkpoint.info(t.hfName).byteLength), 0);
    return {
      input, output, outtype, arch, hparams, naming, metadata, tensorPlan, notices, checkpoint, inputBytes,
      fileSize: ggufFileSize(metadata, tensorPlan),
    };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}

const align = (n: number) => Math.ceil(n / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
const strBytes = (s: string) => 8 + Buffer.byteLength(s);

/** Size of the GGUF these entries and tensors make (header, KV, infos, aligned data). */
export function ggufFileSize(metadata: readonly MetadataEntry[], plan: TensorPlan): number {
  let header = 4 + 4 + 8 + 8;
  for (const e of metadata) {
    header += strBytes(e.key) + 4;
    if (e.type === 'ARRAY') {
      header += 4 + 8;
      if (e.elemType === 'STRING') for (const s of e.value) header += strBytes(s);
      else header += 4 * e.value.length;
    } else if (e.type === 'STRING') header += strBytes(e.value);
    else header += e.type === 'BOOL' ? 1 : 4;
  }
  let data = 0;
  for (const t of plan.tensors) {
    header += strBytes(t.ggufName) + 4 + 8 * t.ne.length + 4 + 8;
    data += align(t.bytes);
  }
  return align(header) + data;
}

