// `qtk dataset build`: repository → datasets/<name>/{train,eval}.arrow + manifest.json. One pass, file by
// file in sorted path order: classify, deduplicate, render, tokenize, pack, append to the split's Arrow
// file. Only one file's text is held at a time; what grows with the repository is per-file bookkeeping
// (a content hash and a 512-byte MinHash signature per kept file).
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, assertOutputNotInput, createProgress, fileError, onInterrupt } from '@qtk/core';
import { ArrowSplitWriter, DATASET_COLUMNS } from './arrow-out.js';
import { Classifier } from './classify.js';
import { MINHASH, NearDupIndex, minhashSignature, shingleHashes } from './minhash.js';
import { Packer, type PackedRow } from './pack.js';
import { renderDocument, seededUnit } from './render.js';
import { DATASET_DEFAULTS, SKIP_REASONS, type SkipReason } from './rules.js';
import { selectPaths } from './select.js';
import { loadDatasetTokenizer, requireFimTokens, SPECIAL_TOKEN_TEXT, type DatasetTokenizer } from './tokenizer.js';

export const SPLITS = ['train', 'eval'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface BuildDatasetOptions {
  /** The repository folder (a git work tree or any folder). */
  repo: string;
  /** A .gguf model, a tokenizer.json, or a folder holding tokenizer.json. */
  tokenizer: string;
  /** Folder that holds datasets (default "datasets"); the output is <outDir>/<name>. */
  outDir?: string;
  /** Dataset name (default: the repository folder's name). */
  name?: string;
  /** The name after <|repo_name|> (default: the repository folder's name). */
  repoName?: string;
  seqLen?: number;
  evalFraction?: number;
  fimRate?: number;
  seed?: number;
  maxFileBytes?: number;
  nearDupThreshold?: number;
  include?: string[];
  exclude?: string[];
  /** Leave out vendored and build trees (node_modules, vendor, dist…); default true. */
  skipVendored?: boolean;
  /** Replace an existing dataset of the same name. */
  force?: boolean;
  /** Called for each skipped file (path and reason only; never content). */
  onSkip?: (path: string, reason: SkipReason, rule?: string) => void;
}

export interface SplitStats {
  files: number;
  rows: number;
  tokens: number;
  lossTokens: number;
  padTokens: number;
  bytes: number;
}

export interface DatasetManifest {
  format: 'qtk-dataset/1';
  name: string;
  repository: { name: string; selection: 'git' | 'walk'; commit: string | null; dirty: boolean | null };
  tokenizer: { kind: string; file: string; fingerprint: string; special: Record<string, number> };
  sample: { template: string; lossMask: string; fim: string; documentIds: string };
  seqLen: number;
  seed: number;
  evalFraction: number;
  fimRate: number;
  filters: {
    maxFileBytes: number;
    nearDupThreshold: number;
    minhash: typeof MINHASH;
    include: string[];
    exclude: string[];
    skipVendored: boolean;
  };
  files: { candidates: number; kept: number; fim: number; skipped: Record<string, number>; prunedVendoredDirs: number };
  /** Files left out as secrets: path and the rule that matched; their contents are never read into any output. */
  secrets: { path: string; rule: string }[];
  tokens: { total: number; byExtension: Record<string, { files: number; tokens: number }> };
  splits: Record<SplitName, SplitStats>;
  columns: typeof DATASET_COLUMNS;
}

function extensionKey(rel: string): string {
  const base = path.posix.basename(rel);
  const ext = path.posix.extname(base).toLowerCase();
  return ext || base;
}

function checkNumber(name: string, v: number, lo: number, hi: number, integer: boolean): number {
  if (!Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new QtkError(`${name} ${v} is out of range: expected ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}. Pass a value in that range.`);
  }
  return v;
}

export async function buildDataset(opts: BuildDatasetOptions): Promise<{ dir: string; manifest: DatasetManifest }> {
  const repo = path.resolve(opts.repo);
  const st = await fs.stat(repo).catch(() => undefined);
  if (!st?.isDirectory()) throw fileError(opts.repo, 'is not a folder', 'Pass the path of a repository checkout');
  const seqLen = checkNumber('--seq-len', opts.seqLen ?? DATASET_DEFAULTS.seqLen, 16, 1 << 20, true);
  const evalFraction = checkNumber('--eval-fraction', opts.evalFraction ?? DATASET_DEFAULTS.evalFraction, 0, 1, false);
  const fimRate = checkNumber('--fim-rate', opts.fimRate ?? DATASET_DEFAULTS.fimRate, 0, 1, false);
  const seed = checkNumber('--seed', opts.seed ?? DATASET_DEFAULTS.seed, 0, 2 ** 32 - 1, true);
  const maxFileBytes = checkNumber('--max-file-size', opts.maxFileBytes ?? DATASET_DEFAULTS.maxFileBytes, 1, 2 ** 31 - 1, true);
  const nearDupThreshold = checkNumber('--near-dup-threshold', opts.nearDupThreshold ?? DATASET_DEFAULTS.nearDupThreshold, 0, 1, false);
  const skipVendored = opts.skipVendored ?? true;
  const include = opts.include ?? [];
  const exclude = opts.exclude ?? [];
  const repoName = (opts.repoName ?? path.basename(repo)).normalize('NFC');
  const name = opts.name ?? path.basename(repo);
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
    throw new QtkError(`dataset name "${name}" must be letters, digits, '.', '_' or '-' and not start with '.'. Pass --name.`);
  }
  const outDir = path.resolve(opts.outDir ?? 'datasets');
  const target = path.join(outDir, name);
  await assertOutDirUsable(outDir);
  // The output may sit inside the repository (the walk leaves it out), never on the tokenizer.
  await assertOutputNotInput(target, [repo, opts.tokenizer], { flag: '--out', kind: 'dir', allowInsideInputDir: true });
  if (!opts.force && (await fs.stat(target).then(() => true, () => false))) {
    throw new QtkError(`${target}: a dataset of that name already exists. Pass --force to replace it, or --name to choose another.`, { file: target });
  }

  const tok = await loadDatasetTokenizer(opts.tokenizer);
  const tmp = path.join(outDir, `.${name}.tmp-${process.pid}`);
  const writers: Partial<Record<SplitName, ArrowSplitWriter>> = {};
  // The first folder this run created on the way to --out: removed again when the run fails.
  let createdOutDir: string | undefined;
  const removePartial = async () => {
    for (const w of Object.values(writers)) await w.abort().catch(() => {});
    await fs.rm(tmp, { recursive: true, force: true });
    if (createdOutDir) await fs.rm(createdOutDir, { recursive: true, force: true });
  };
  const offInterrupt = onInterrupt(async () => {
    await removePartial();
    return `removed the partial ${target}`;
  }, 'dataset build');
  try {
    if (fimRate > 0) requireFimTokens(tok);
    createdOutDir = await fs.mkdir(outDir, { recursive: true });
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp);
    const batchRows = Math.max(1, Math.floor(DATASET_DEFAULTS.batchTokens / seqLen));
    for (const split of SPLITS) {
      writers[split] = new ArrowSplitWriter(path.join(tmp, `${split}.arrow`), split, seqLen, batchRows);
      await writers[split]!.open();
    }
    const manifest = await processRepository({
      repo, tok, seqLen, evalFraction, fimRate, seed, maxFileBytes, nearDupThreshold, skipVendored, include, exclude,
      repoName, name, target, writers: writers as Record<SplitName, ArrowSplitWriter>, onSkip: opts.onSkip,
    });
    for (const split of SPLITS) {
      await writers[split]!.close();
      manifest.splits[split].bytes = writers[split]!.bytes;
    }
    const mf = path.join(tmp, 'manifest.json');
    await fs.writeFile(mf, JSON.stringify(manifest, null, 2) + '\n');
    // Swap in the finished folder: an interrupted run leaves only the temp folder, never a half dataset.
    const old = path.join(outDir, `.${name}.old-${process.pid}`);
    const hadOld = await fs.rename(target, old).then(() => true, () => false);
    try {
      await fs.rename(tmp, target);
    } catch (e) {
      if (hadOld) await fs.rename(old, target).catch(() => {});
      throw e;
    }
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
    return { dir: target, manifest };
  } catch (e) {
    await removePartial();
    throw e;
  } finally {
    offInterrupt();
    await tok.close();
  }
}

interface ProcessContext {
  repo: string;
  tok: DatasetTokenizer;
  seqLen: number;
  evalFraction: number;
  fimRate: number;
  seed: number;
  maxFileBytes: number;
  nearDupThreshold: number;
  skipVendored: boolean;
  include: string[];
  exclude: string[];
  repoName: string;
  name: string;
  target: string;
  writers: Record<SplitName, ArrowSplitWriter>;
  onSkip?: BuildDatasetOptions['onSkip'];
}

async function processRepository(c: ProcessContext): Promise<DatasetManifest> {
  const selection = await selectPaths(c.repo, { skipVendored: c.skipVendored });
  const classifier = new Classifier(c.repo, { include: c.include, exclude: c.exclude, maxFileBytes: c.maxFileBytes, skipVendored: c.skipVendored });
  // Never read a dataset back in: not the --out folder (when it lives inside the repository), nor
  // any other dataset folder (a manifest.json beside a train.arrow or eval.arrow).
  const outRel = path.relative(c.repo, path.dirname(c.target)).split(path.sep).join('/');
  const outInside = !outRel.startsWith('..') && !path.isAbsolute(outRel);
  const outPrefixes = !outInside ? [] : outRel === '' ? [`${c.name}/`, `.${c.name}.`] : [`${outRel}/`];
  const datasetPrefixes = await datasetFolders(c.repo, selection.paths);
  const isOutput = (rel: string) => outPrefixes.some((p) => rel.startsWith(p)) || datasetPrefixes.some((p) => rel.startsWith(p));

  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  skipped.vendored += selection.prunedVendoredDirs;
  const secrets: { path: string; rule: string }[] = [];
  const hashes = new Set<string>();
  const near = new NearDupIndex(c.nearDupThreshold);
  const byExtension = new Map<string, { files: number; tokens: number }>();
  const splits = Object.fromEntries(SPLITS.map((s) => [s, { files: 0, rows: 0, tokens: 0, lossTokens: 0, padTokens: 0, bytes: 0 }])) as Record<SplitName, SplitStats>;
  const queues: Record<SplitName, PackedRow[]> = { train: [], eval: [] };
  const packers = Object.fromEntries(SPLITS.map((s) => [s, new Packer(c.seqLen, c.tok.padId, (row) => {
    queues[s].push(row);
    splits[s].lossTokens += row.lossMask.reduce((a, b) => a + b, 0);
  })])) as Record<SplitName, Packer>;
  const drain = async (s: SplitName) => {
    const q = queues[s];
    queues[s] = [];
    for (const row of q) await c.writers[s].addRow(row);
  };
  let kept = 0;
  let fimDocs = 0;
  const skip = (rel: string, reason: SkipReason, rule?: string) => {
    skipped[reason]++;
    if (reason === 'secret') secrets.push({ path: rel, rule: rule ?? 'secret' });
    c.onSkip?.(rel, reason, rule);
  };

  const progress = createProgress({ title: 'dataset', total: selection.paths.length, kind: 'count', unit: 'files' });
  try {
    for (const rel of selection.paths) {
      progress.tick(1);
      if (rel.includes('\n')) { skip(rel, 'excluded', 'newline in path'); continue; }
      if (isOutput(rel)) { skip(rel, 'excluded', 'dataset output folder'); continue; }
      const v = await classifier.classify(rel);
      if (!v.keep) { skip(rel, v.reason, v.rule); continue; }
      const digest = createHash('sha256').update(v.text).digest('base64');
      if (hashes.has(digest)) { skip(rel, 'duplicate'); continue; }
      hashes.add(digest);
      const shingles = shingleHashes(v.text);
      if (shingles.length > 0) {
        const sig = minhashSignature(shingles);
        if (near.query(sig)) { skip(rel, 'near-duplicate'); continue; }
        near.add(rel, sig);
      }
      kept++;
      const split: SplitName = seededUnit(c.seed, 'split', rel) < c.evalFraction ? 'eval' : 'train';
      const relNfc = rel.normalize('NFC');
      const r = renderDocument(c.tok, relNfc, v.text, { repoName: c.repoName, seed: c.seed, fimRate: c.fimRate });
      if (r.fim) fimDocs++;
      const docTokens = r.segments.reduce((a, s) => a + s.ids.length, 0);
      packers[split].add(relNfc, r.segments);
      splits[split].files++;
      const key = extensionKey(rel);
      const e = byExtension.get(key) ?? { files: 0, tokens: 0 };
      e.files++;
      e.tokens += docTokens;
      byExtension.set(key, e);
      await drain(split);
    }
  } finally {
    progress.done();
  }
  if (kept === 0) {
    const reasons = Object.entries(skipped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ');
    throw new QtkError(`${c.repo}: no file was kept, so the dataset would be empty (${selection.paths.length} candidate file(s)${reasons ? `; skipped: ${reasons}` : ''}). Point at a folder with source files, or loosen --include/--exclude/--max-file-size.`, { file: c.repo });
  }
  for (const s of SPLITS) {
    packers[s].finish();
    await drain(s);
    splits[s].rows = packers[s].rows;
    splits[s].tokens = packers[s].tokens;
    splits[s].padTokens = packers[s].padTokens;
  }
  const sortedExt = [...byExtension.entries()].sort((a, b) => b[1].tokens - a[1].tokens || (a[0] < b[0] ? -1 : 1));
  return {
    format: 'qtk-dataset/1',
    name: c.name,
    repository: { name: c.repoName, selection: selection.mode, commit: selection.commit ?? null, dirty: selection.dirty ?? null },
    tokenizer: {
      kind: c.tok.kind,
      file: path.basename(c.tok.file),
      fingerprint: c.tok.fingerprint,
      special: Object.fromEntries(Object.entries(c.tok.special).map(([k, id]) => [SPECIAL_TOKEN_TEXT[k as keyof typeof SPECIAL_TOKEN_TEXT], id])),
    },
    sample: {
      template: c.tok.special.repoName !== undefined && c.tok.special.fileSep !== undefined
        ? '<|repo_name|>{repo}\\n<|file_sep|>{path}\\n{content}<|endoftext|>'
        : '{repo}/{path}\\n{content}<|endoftext|>',
      lossMask: '0 on the repo/path header and on padding; 1 on content, FIM tokens and <|endoftext|>',
      fim: 'PSM: <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}, chosen per file with probability fimRate',
      documentIds: 'per row: 0, 1, … in order of appearance (source_path line i is document i); -1 on padding',
    },
    seqLen: c.seqLen,
    seed: c.seed,
    evalFraction: c.evalFraction,
    fimRate: c.fimRate,
    filters: {
      maxFileBytes: c.maxFileBytes,
      nearDupThreshold: c.nearDupThreshold,
      minhash: MINHASH,
      include: c.include,
      exclude: c.exclude,
      skipVendored: c.skipVendored,
    },
    files: { candidates: selection.paths.length, kept, fim: fimDocs, skipped, prunedVendoredDirs: selection.prunedVendoredDirs },
    secrets,
    tokens: { total: splits.train.tokens + splits.eval.tokens, byExtension: Object.fromEntries(sortedExt) },
    splits,
    columns: DATASET_COLUMNS,
  };
}

/** The nearest existing folder above (or at) --out must be a folder: `--out some-file/sub` fails here, clearly. */
async function assertOutDirUsable(outDir: string): Promise<void> {
  for (let p = outDir; ; p = path.dirname(p)) {
    const st = await fs.stat(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? undefined : null));
    if (st === null || (st && !st.isDirectory())) {
      throw new QtkError(`--out ${outDir}: ${p} is ${st ? 'a file, not a folder' : 'not usable as a folder'}. Choose an --out folder whose parents are folders.`, { file: outDir });
    }
    if (st || path.dirname(p) === p) return;
  }
}

/** "dir/" for every folder of the selection that holds a qtk dataset (manifest.json beside a split). */
async function datasetFolders(repo: string, paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const rel of paths) {
    if (!rel.endsWith('/manifest.json')) continue;
    const dir = rel.slice(0, rel.length - 'manifest.json'.length);
    const split = await Promise.any(SPLITS.map((sp) => fs.stat(path.join(repo, dir, `${sp}.arrow`)))).then(() => true, () => false);
    if (split) out.push(dir);
  }
  return out;
}
