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
