// Repository → tokenized, packed, deduplicated training data in Arrow (issue 7).
export { buildDataset, SPLITS, type BuildDatasetOptions, type DatasetManifest, type SplitStats, type SplitName } from './build.js';
export { datasetBuildMain, type DatasetBuildArgs } from './main.js';
export { formatSummary, splitWarnings } from './summary.js';
export { DATASET_COLUMNS, datasetSchema } from './arrow-out.js';
export { loadDatasetTokenizer, SPECIAL_TOKEN_TEXT, type DatasetTokenizer } from './tokenizer.js';
export { renderDocument, fimCut, seededUnit, type Segment } from './render.js';
export { Packer, type PackedRow } from './pack.js';
export { decodeSource, normaliseText } from './decode.js';
export { Classifier, classifyContent, isMinified, type Verdict } from './classify.js';
export { selectPaths, type Selection } from './select.js';
export { MINHASH, NearDupIndex, minhashSignature, shingleHashes, estimateJaccard } from './minhash.js';
export * from './rules.js';
