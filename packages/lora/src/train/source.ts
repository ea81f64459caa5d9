// What `qtk lora train <input>` reads: a dataset folder (manifest.json + train/eval.arrow) checked against
// the model's tokenizer, or a repository, whose dataset is built first with the model's own tokenizer and
// cached under a key of its contents and build options, so a second run on the same tree reuses it.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GgufReader, QtkError, fileError } from '@qtk/core';
import { checkDatasetVocab, ggufTokenizerFingerprint, resolveDataset, type DatasetSource } from '@qtk/engine';
import { buildDataset, type BuildDatasetOptions } from '../dataset/build.js';
import { DATASET_DEFAULTS } from '../dataset/rules.js';
import { selectPaths } from '../dataset/select.js';

export type RepoBuildOptions = Pick<BuildDatasetOptions, 'evalFraction' | 'fimRate' | 'include' | 'exclude' | 'maxFileBytes' | 'nearDupThreshold' | 'seed'>;

export interface TrainDataSource {
  dir: string;
  train: DatasetSource;
  eval?: DatasetSource;
  /** sha256 of the manifest: which dataset this run saw. */
  fingerprint: string;
  /** 'built' when this run built it, 'cached' when a previous run had, 'given' for a dataset folder. */
  origin: 'given' | 'built' | 'cached';
  seqLen: number;
}

/** Where repository datasets are cached: $QTK_CACHE, else $XDG_CACHE_HOME/qtk, else ~/.cache/qtk. */
export function cacheRoot(): string {
  return process.env.QTK_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'qtk');
}

/** sha256 over every candidate path's name and bytes (files over the size limit by size only). */
async function treeHash(repo: string, maxFileBytes: number): Promise<string> {
  const sel = await selectPaths(repo, { skipVendored: true });
  const h = createHash('sha256');
  for (const rel of sel.paths) {
    const st = await fs.lstat(path.join(repo, rel)).catch(() => undefined);
    h.update(`${rel}\0${st?.isFile() ? st.size : -1}\0`);
    if (st?.isFile() && st.size <= maxFileBytes) h.update(await fs.readFile(path.join(repo, rel)));
  }
  return h.digest('hex');
}

async function manifestHash(dir: string): Promise<string> {
  return 'sha256:' + createHash('sha256').update(await fs.readFile(path.join(dir, 'manifest.json'))).digest('hex');
}

/** The model's vocabulary as checkDatasetVocab needs it, from the GGUF's tokenizer metadata. */
async function ggufVocab(model: string): Promise<{ gguf: string; nVocab: number; tokenText(id: number): string }> {
  const r = await GgufReader.open(model);
  try {
    const tokens = r.get<string[]>('tokenizer.ggml.tokens') ?? [];
    return { gguf: model, nVocab: tokens.length, tokenText: (id) => tokens[id] ?? '' };
  } finally {
    await r.close();
  }
}

async function checkAgainstModel(dir: string, model: string): Promise<{ train: DatasetSource; eval?: DatasetSource }> {
  const train = (await resolveDataset(dir, 'train'))!;
  const evalSrc = await resolveDataset(dir, 'eval').catch(() => undefined);
  const m = train.manifest;
  if (m?.tokenizer.kind === 'gguf') {
    const fp = await ggufTokenizerFingerprint(model);
    if (fp !== m.tokenizer.fingerprint) {
      throw new QtkError(
        `${train.manifestFile}: the dataset was tokenized by ${m.tokenizer.file} (tokenizer fingerprint ${m.tokenizer.fingerprint}), but ${model} has ${fp ?? 'no tokenizer metadata'}. ` +
        `Train on the repository itself (its dataset is then built with ${model}'s tokenizer), or rebuild the dataset with \`qtk dataset build <repo> --tokenizer ${model}\`.`,
        { file: train.manifestFile },
      );
    }
  }
  await checkDatasetVocab(train, [], await ggufVocab(model));
  return { train, eval: evalSrc };
}

export async function resolveTrainData(input: string, opts: { model: string; seqLen: number; build?: RepoBuildOptions; log?: (line: string) => void }): Promise<TrainDataSource> {
  const st = await fs.stat(input).catch(() => undefined);
  if (!st?.isDirectory()) throw fileError(input, st ? 'is not a folder' : 'does not exist', 'Pass a repository folder or a dataset folder written by `qtk dataset build`');
  if (await fs.stat(path.join(input, 'manifest.json')).catch(() => undefined)) {
    const { train, eval: ev } = await checkAgainstModel(input, opts.model);
    return { dir: input, train, eval: ev, fingerprint: await manifestHash(input), origin: 'given', seqLen: train.manifest?.seqLen ?? opts.seqLen };
  }
  const b = opts.build ?? {};
  const maxFileBytes = b.maxFileBytes ?? DATASET_DEFAULTS.maxFileBytes;
  const fp = await ggufTokenizerFingerprint(opts.model);
  if (!fp) throw fileError(opts.model, 'has no tokenizer metadata', 'Convert the model again with `qtk convert`, which writes the tokenizer into the GGUF');
  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, tokenizer: fp, seqLen: opts.seqLen, build: b }))
    .update(await treeHash(path.resolve(input), maxFileBytes))
    .digest('hex')
    .slice(0, 16);
  const base = path.basename(path.resolve(input)).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '') || 'repo';
  const name = `${base}-${key}`;
  const outDir = path.join(cacheRoot(), 'datasets');
  const dir = path.join(outDir, name);
  let origin: TrainDataSource['origin'] = 'cached';
  if (!(await fs.stat(path.join(dir, 'manifest.json')).catch(() => undefined))) {
    opts.log?.(`building the dataset of ${input} with ${opts.model}'s tokenizer into ${dir}`);
    try {
      await buildDataset({ repo: input, tokenizer: opts.model, outDir, name, seqLen: opts.seqLen, force: true, ...b });
    } catch (e) {
      if (e instanceof QtkError) throw e;
      throw new QtkError(`${input}: building its dataset failed (${(e as Error).message}). Build it with \`qtk dataset build ${input} --tokenizer ${opts.model}\` to see why, then pass the dataset folder.`, { cause: e });
    }
    origin = 'built';
  } else {
    opts.log?.(`reusing the dataset of ${input} built earlier: ${dir}`);
  }
  const { train, eval: ev } = await checkAgainstModel(dir, opts.model);
  return { dir, train, eval: ev, fingerprint: await manifestHash(dir), origin, seqLen: opts.seqLen };
}
