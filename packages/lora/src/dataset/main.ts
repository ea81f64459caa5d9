// `qtk dataset build <repo>`: parse-free entry (the CLI parsed already), build, print the summary table.
import { buildDataset, type BuildDatasetOptions, type DatasetManifest } from './build.js';
import { formatSummary, splitWarnings } from './summary.js';

export interface DatasetBuildArgs extends BuildDatasetOptions {
  /** Print the manifest as JSON instead of the table. */
  json?: boolean;
}

export async function datasetBuildMain(args: DatasetBuildArgs): Promise<DatasetManifest> {
  const { json, ...opts } = args;
  const { dir, manifest } = await buildDataset(opts);
  process.stdout.write((json ? JSON.stringify(manifest, null, 2) : formatSummary(manifest, dir)) + '\n');
  // the table carries its warnings; with --json stdout is for the manifest only
  if (json) for (const w of splitWarnings(manifest)) process.stderr.write(`${w}\n`);
  return manifest;
}

/** "1MB", "512k", "2MiB", "1048576" → bytes (k/M/G are powers of 1024, as for file sizes). */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return Number.NaN;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}
