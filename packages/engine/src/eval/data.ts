// `--data` for eval ppl / kld and imatrix: a UTF-8 text file (tokenized by llama.cpp), or a dataset from
// `qtk dataset build` (a folder or one .arrow split) whose ids are used as they are, with no
// re-tokenization, once they are known to be the model's. Either way the result is one token stream,
// BOS first when the vocabulary adds it, that the windows are cut from.
import { checkDatasetVocab, resolveDataset, type DatasetSplit } from '../data/dataset.js';
import { readDatasetTokens } from '../data/arrow-tokens.js';
import { llamaWindowBos, readTextFile, tokenizeWithLlama, withLlamaVocab, type Tokenized } from './tokenize.js';

export interface EvalData extends Tokenized {
  /** What the tokens came from, for messages and imatrix.datasets: the text file or the .arrow split. */
  source: string;
  kind: 'text' | 'dataset';
  /** For a dataset: how its vocabulary was matched to the model's, rows and record batches read. */
  dataset?: { check: string; rows: number; batches: number; padding: number; truncated: boolean };
}

export async function loadEvalData(model: string, nVocab: number, a: { data: string; split?: DatasetSplit; maxTokens?: number }): Promise<EvalData> {
  const src = await resolveDataset(a.data, a.split);
  if (!src) {
    const text = await readTextFile(a.data);
    return { ...(await tokenizeWithLlama(model, text)), source: a.data, kind: 'text' };
  }
  const read = await readDatasetTokens(src.arrowFile, { maxTokens: a.maxTokens });
  return withLlamaVocab(model, async (m) => {
    const check = await checkDatasetVocab(src, read.tokens, { gguf: model, nVocab, tokenText: (id) => m.detokenize([id as never], true) });
    const bos = llamaWindowBos(m);
    // as a text file's tokens: llama.cpp's tokenizer puts BOS first when the vocabulary asks for it
    const tokens = bos !== undefined ? [bos, ...read.tokens] : read.tokens;
    return { tokens, bos, source: src.arrowFile, kind: 'dataset', dataset: { check, rows: read.rows, batches: read.batches, padding: read.padding, truncated: read.truncated } };
  });
}
