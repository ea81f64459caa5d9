// A `qtk dataset build` output as evaluation data: the folder (manifest.json + <split>.arrow) or one
// .arrow split, and the check that its token ids belong to the model's vocabulary.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, fileError } from '@qtk/core';

export const DATASET_SPLITS = ['train', 'eval'] as const;
export type DatasetSplit = (typeof DATASET_SPLITS)[number];
export const MANIFEST_FILE = 'manifest.json';
/** manifest.json's format tag, as @qtk/lora writes it. */
export const DATASET_FORMAT = 'qtk-dataset/1';

/** The parts of manifest.json that evaluation reads. */
export interface DatasetManifestInfo {
  format: string;
  seqLen?: number;
  tokenizer: { kind: string; file: string; fingerprint: string; special?: Record<string, number> };
}

export interface DatasetSource {
  /** The .arrow split to read. */
  arrowFile: string;
  manifestFile?: string;
  manifest?: DatasetManifestInfo;
}

async function readManifest(file: string): Promise<DatasetManifestInfo> {
  let m: Partial<DatasetManifestInfo>;
  try {
    m = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<DatasetManifestInfo>;
  } catch (e) {
    throw fileError(file, `cannot be read as JSON (${(e as Error).message})`, 'Rebuild the dataset with `qtk dataset build`', e);
  }
  if (m.format !== DATASET_FORMAT || typeof m.tokenizer?.fingerprint !== 'string') {
    throw fileError(file, `is not a qtk dataset manifest (format ${JSON.stringify(m.format)}, expected "${DATASET_FORMAT}" with a tokenizer fingerprint)`, 'Rebuild the dataset with `qtk dataset build`');
  }
  return m as DatasetManifestInfo;
}

/**
 * Decides what `--data` names: a dataset folder (its `split`, eval by default), one .arrow split (with
 * the manifest beside it, when there is one), or `undefined` for a text file.
 */
export async function resolveDataset(data: string, split: DatasetSplit | undefined): Promise<DatasetSource | undefined> {
  if (split !== undefined && !DATASET_SPLITS.includes(split)) throw new QtkError(`--split ${String(split)} is not a dataset split. Pass --split train or --split eval.`);
  const st = await fs.stat(data).catch(() => undefined);
  if (st?.isDirectory()) {
    const manifestFile = path.join(data, MANIFEST_FILE);
    if (!(await fs.stat(manifestFile).catch(() => undefined))) {
      throw fileError(data, `is a folder without ${MANIFEST_FILE}, so not a dataset`, 'Pass --data a UTF-8 text file, a folder written by `qtk dataset build` (datasets/<name>/) or one of its .arrow files');
    }
    const manifest = await readManifest(manifestFile);
    const s = split ?? 'eval';
    const arrowFile = path.join(data, `${s}.arrow`);
    if (!(await fs.stat(arrowFile).catch(() => undefined))) {
      const have = (await fs.readdir(data)).filter((f) => f.endsWith('.arrow'));
      throw fileError(arrowFile, `the dataset has no ${s} split (it has: ${have.join(', ') || 'no .arrow files'})`, `Pass --split ${s === 'eval' ? 'train' : 'eval'}, or rebuild the dataset`);
    }
    return { arrowFile, manifestFile, manifest };
  }
  if (data.toLowerCase().endsWith('.arrow')) {
    if (split !== undefined && path.basename(data, '.arrow') !== split) {
      throw fileError(data, `--split ${split} names a split, but --data already names one .arrow file`, 'Drop --split, or pass the dataset folder with --split');
    }
    const manifestFile = path.join(path.dirname(data), MANIFEST_FILE);
    const manifest = (await fs.stat(manifestFile).catch(() => undefined)) ? await readManifest(manifestFile) : undefined;
    return { arrowFile: data, manifestFile: manifest ? manifestFile : undefined, manifest };
  }
  if (split !== undefined) throw fileError(data, `--split ${split} applies to datasets, and this is not a dataset folder or .arrow file`, 'Drop --split, or pass --data a folder written by `qtk dataset build`');
  return undefined;
}

/**
 * The fingerprint `qtk dataset build --tokenizer model.gguf` records: sha256 of the GGUF's tokenizer.*
 * metadata as node-llama-cpp's reader returns it, JSON with BigInts as strings (@qtk/lora,
 * src/dataset/tokenizer.ts). Identical for every quantization of one conversion.
 */
export async function ggufTokenizerFingerprint(gguf: string): Promise<string | undefined> {
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const info = await readGgufFileInfo(gguf, { readTensorInfo: false, logWarnings: false });
  const vocabMeta = (info.metadata as Record<string, unknown>).tokenizer;
  if (!vocabMeta) return undefined;
  return fingerprintTokenizerMetadata(vocabMeta);
}

/** sha256 of a GGUF's tokenizer.* metadata (node-llama-cpp's reading), JSON with BigInts as strings. */
export function fingerprintTokenizerMetadata(vocabMeta: unknown): string {
  return 'sha256:' + createHash('sha256').update(JSON.stringify(vocabMeta, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).digest('hex');
}

export interface ModelVocab {
  gguf: string;
  /** Embedding rows: an id at or past this cannot be evaluated. */
  nVocab: number;
  /** The text of a token id with special tokens rendered (llama.cpp's detokenize). */
  tokenText(id: number): string;
}

/**
 * The dataset's ids must be the model's: equal tokenizer fingerprints when the dataset was built from a
 * GGUF; for a tokenizer.json (whose bytes a GGUF does not keep) its control-token ids must name the same
 * tokens in the model. In every case each id must be below the model's vocabulary size.
 */
export async function checkDatasetVocab(src: DatasetSource, tokens: readonly number[], model: ModelVocab): Promise<string> {
  const m = src.manifest;
  let how = 'ids in range';
  if (m && src.manifestFile) {
    if (m.tokenizer.kind === 'gguf') {
      const fp = await ggufTokenizerFingerprint(model.gguf);
      if (fp !== m.tokenizer.fingerprint) {
        throw new QtkError(
          `${src.manifestFile}: the dataset was tokenized by ${m.tokenizer.file} (tokenizer fingerprint ${m.tokenizer.fingerprint}), ` +
          `but ${model.gguf} has tokenizer fingerprint ${fp ?? '(none: no tokenizer.* metadata)'}. ` +
          `Rebuild the dataset with \`qtk dataset build --tokenizer ${model.gguf}\`, or evaluate it with the model it was built for.`,
          { file: src.manifestFile },
        );
      }
      how = 'tokenizer fingerprint';
    } else {
      for (const [text, id] of Object.entries(m.tokenizer.special ?? {})) {
        const got = id < model.nVocab ? model.tokenText(id) : '(out of range)';
        if (got !== text) {
          throw new QtkError(
            `${src.manifestFile}: the dataset's tokenizer (${m.tokenizer.file}) has ${text} = id ${id}, but in ${model.gguf} id ${id} is ${JSON.stringify(got)}. ` +
            `The dataset was built for another vocabulary: rebuild it with \`qtk dataset build --tokenizer ${model.gguf}\`.`,
            { file: src.manifestFile },
          );
        }
      }
      how = 'control-token ids';
    }
  }
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i]!;
    if (id < 0 || id >= model.nVocab) {
      throw new QtkError(
        `${src.arrowFile}: token ${i} of the split is id ${id}, outside ${model.gguf}'s vocabulary of ${model.nVocab} ids. ` +
        `The dataset was built with another tokenizer: rebuild it with \`qtk dataset build --tokenizer ${model.gguf}\`.`,
        { file: src.arrowFile },
      );
    }
  }
  return how;
}
