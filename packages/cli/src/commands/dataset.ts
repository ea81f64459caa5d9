import type { Argv } from 'yargs';
import { intArg, numberArg, sizeArg, stringArg } from '@qtk/core';
import { UsageError, type QtkCommand } from '../command.js';

const buildBuilder = (y: Argv) =>
  y
    .positional('repo', { type: 'string', describe: 'the repository folder (a git checkout or any folder)', demandOption: true })
    .option('tokenizer', { type: 'string', demandOption: true, describe: 'the model\'s tokenizer: a .gguf model (read through llama.cpp) or a tokenizer.json (or its folder)' })
    .option('name', { type: 'string', describe: 'dataset name (default: the repository folder\'s name)' })
    .option('out', { type: 'string', default: 'datasets', describe: 'folder that holds datasets; writes <out>/<name>/{train,eval}.arrow + manifest.json' })
    .option('repo-name', { type: 'string', describe: 'name written after <|repo_name|> (default: the folder\'s name)' })
    .option('seq-len', { type: 'string', default: 4096, describe: 'tokens per packed sequence' })
    .option('eval-fraction', { type: 'string', default: 0.05, describe: 'share of files held out for eval (split by file, seeded)' })
    .option('fim-rate', { type: 'string', default: 0, describe: 'share of files rendered as fill-in-the-middle (PSM)' })
    .option('seed', { type: 'string', default: 0, describe: 'seed of the split and FIM choices' })
    .option('max-file-size', { type: 'string', default: '1MiB', describe: 'skip files larger than this (bytes, or with a unit: 512K, 2MiB, 1MB)' })
    .option('near-dup-threshold', { type: 'string', default: 0.85, describe: 'MinHash Jaccard at or above which a file is a near duplicate of an earlier one' })
    .option('include', { type: 'string', array: true, describe: 'only files matching these globs (repeatable)' })
    .option('exclude', { type: 'string', array: true, describe: 'leave out files matching these globs (repeatable)' })
    .option('skip-vendored', { type: 'boolean', default: true, describe: 'leave out node_modules, vendor, dist, build… (--no-skip-vendored keeps them)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing dataset of the same name' })
    .option('json', { type: 'boolean', default: false, describe: 'print the manifest as JSON instead of the summary table' });

async function runBuild(args: Record<string, unknown>): Promise<void> {
  const seqLen = intArg('seq-len', args.seqLen, { min: 16, max: 1 << 20, example: 4096 });
  const evalFraction = numberArg('eval-fraction', args.evalFraction, { min: 0, max: 1, example: 0.05 });
  const fimRate = numberArg('fim-rate', args.fimRate, { min: 0, max: 1, example: 0.5 });
  const seed = intArg('seed', args.seed, { min: 0, max: 2 ** 32 - 1 });
  const maxFileBytes = sizeArg('max-file-size', args.maxFileSize, { max: 2 ** 31 - 1 });
  const nearDupThreshold = numberArg('near-dup-threshold', args.nearDupThreshold, { min: 0, max: 1, example: 0.85 });
  const { datasetBuildMain } = await import('@qtk/lora');
  const strings = (v: unknown) => (v === undefined ? undefined : (v as unknown[]).map(String));
  await datasetBuildMain({
    repo: String(args.repo),
    tokenizer: String(args.tokenizer),
    name: stringArg('name', args.name),
    outDir: String(args.out),
    repoName: stringArg('repo-name', args.repoName),
    seqLen,
    evalFraction,
    fimRate,
    seed,
    maxFileBytes,
    nearDupThreshold,
    include: strings(args.include),
    exclude: strings(args.exclude),
    skipVendored: args.skipVendored !== false,
    force: Boolean(args.force),
    json: Boolean(args.json),
  });
}

export const datasetCommand: QtkCommand = {
  command: 'dataset',
  describe: 'Build a tokenized training/eval dataset (Arrow) from a code repository: `qtk dataset build ./repo --tokenizer model.gguf`',
  builder: (y) =>
    y
      .command('build <repo>', 'Repository → deduplicated, secret-free, tokenized and packed datasets/<name>/{train,eval}.arrow', buildBuilder, runBuild)
      .demandCommand(1, 'Name an action: `qtk dataset build <repo>`.'),
  // Reached only when no sub-command matched (yargs runs the sub-command's own handler otherwise).
  run: async () => {
    throw new UsageError(`name an action: use \`qtk dataset build <repo>\`.`);
  },
};
