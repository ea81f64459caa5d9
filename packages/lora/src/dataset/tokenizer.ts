// The model's own tokenizer, from an HF tokenizer.json or from a GGUF through llama.cpp. Sample text is
// always encoded as plain text: control tokens (<|endoftext|>, <|file_sep|>, FIM…) are inserted by id and
// never parsed out of file contents, so a file that mentions "<|endoftext|>" cannot end a document early.
// llama.cpp treats the Qwen FIM/repo tokens as control tokens and still splits out user-defined ones
// (<think>, <tool_call>); the tokenizer.json path mirrors exactly that, so both give identical ids.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, fileError } from '@qtk/core';

/** Control tokens the sample format uses, by the text the Qwen tokenizers give them. */
export const SPECIAL_TOKEN_TEXT = {
  repoName: '<|repo_name|>',
  fileSep: '<|file_sep|>',
  fimPrefix: '<|fim_prefix|>',
  fimMiddle: '<|fim_middle|>',
  fimSuffix: '<|fim_suffix|>',
  fimPad: '<|fim_pad|>',
  endOfText: '<|endoftext|>',
} as const;
export type SpecialTokenName = keyof typeof SPECIAL_TOKEN_TEXT;

export interface DatasetTokenizer {
  readonly kind: 'tokenizer.json' | 'gguf';
  readonly file: string;
  /** sha256 of tokenizer.json's bytes, or of the GGUF's tokenizer.* metadata. */
  readonly fingerprint: string;
  /** Ids of the control tokens this vocabulary has. */
  readonly special: Partial<Record<SpecialTokenName, number>>;
  /** Padding id: <|endoftext|> where present (Qwen's pad token), else 0. */
  readonly padId: number;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  close(): Promise<void>;
}

export async function loadDatasetTokenizer(file: string): Promise<DatasetTokenizer> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st) throw fileError(file, 'tokenizer not found', 'Pass --tokenizer a .gguf model or a tokenizer.json (or the folder holding it)');
  if (st.isDirectory()) return loadHfTokenizer(path.join(file, 'tokenizer.json'));
  if (file.toLowerCase().endsWith('.gguf')) return loadGgufTokenizer(file);
  return loadHfTokenizer(file);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function loadHfTokenizer(file: string): Promise<DatasetTokenizer> {
  const bytes = await fs.readFile(file).catch((e: unknown) => {
    throw fileError(file, `cannot read (${(e as Error).message})`, 'Pass --tokenizer a readable tokenizer.json', e);
  });
  let json: { added_tokens?: { id: number; content: string; special?: boolean }[] };
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw fileError(file, 'is not valid JSON', 'Pass the tokenizer.json of a Hugging Face checkpoint', e);
  }
  const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config = await fs.readFile(configFile, 'utf8').then((t) => JSON.parse(t) as object, () => ({}));
  const { TokenizerLoader } = await import('@lenml/tokenizers');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const tok: any = TokenizerLoader.fromPreTrained({ tokenizerJSON: json as never, tokenizerConfig: config as never });
  const added = json.added_tokens ?? [];
  const special: Partial<Record<SpecialTokenName, number>> = {};
  for (const [name, text] of Object.entries(SPECIAL_TOKEN_TEXT)) {
    const t = added.find((a) => a.content === text);
    if (t) special[name as SpecialTokenName] = t.id;
  }
  // Added tokens that llama.cpp keeps user-defined (parsed even from plain text): not special, not ours.
  const controlTexts = new Set<string>(Object.values(SPECIAL_TOKEN_TEXT));
  const userDefined = added.filter((a) => !a.special && !controlTexts.has(a.content));
  const userIds = new Map(userDefined.map((a) => [a.content, a.id]));
  const splitter = userDefined.length
    ? new RegExp(`(${userDefined.map((a) => a.content).sort((a, b) => b.length - a.length).map(escapeRegExp).join('|')})`)
    : undefined;
  // Ids per pre-token piece, cached: BPE works piece by piece, so a piece always gives the same ids.
  // For the usual byte-level BPE (a Split regex then ByteLevel, as Qwen/GPT-style tokenizer.json files
  // have) the split runs here and the cache is keyed by the raw piece, skipping the library's per-piece
  // byte mapping and LRU on hits: ~10× faster on code; other pipelines run through the library whole.
  const pieceCache = new Map<string, number[]>();
  const PIECE_CACHE_MAX = 1 << 18;
  const pieceIds = (piece: string): number[] => {
    let ids = pieceCache.get(piece);
    if (ids === undefined) {
      const pre = tok.pre_tokenizer ? tok.pre_tokenizer(piece, { section_index: 0 }) : [piece];
      ids = tok.model.convert_tokens_to_ids(tok.model(pre)) as number[];
      if (pieceCache.size >= PIECE_CACHE_MAX) pieceCache.clear();
      pieceCache.set(piece, ids);
    }
    return ids;
  };
  const steps = tok.pre_tokenizer?.tokenizers as { constructor: { name: string }; pattern?: RegExp; config?: Record<string, unknown> }[] | undefined;
  const splitRe = steps?.length === 2
    && steps[0]!.constructor.name === 'SplitPreTokenizer' && steps[0]!.config?.behavior === 'Isolated' && !steps[0]!.config?.invert
    && steps[0]!.pattern instanceof RegExp
    && steps[1]!.constructor.name === 'ByteLevelPreTokenizer' && steps[1]!.config?.use_regex === false && !steps[1]!.config?.add_prefix_space
    ? new RegExp(steps[0]!.pattern.source, 'gu')
    : undefined;
  const plain = (text: string): number[] => {
    // The pipeline of tokenizer.json minus its added-token splitter: normaliser, pre-tokeniser, model.
    let x = text;
    if (tok.normalizer) x = tok.normalizer(x);
    if (x.length === 0) return [];
    const out: number[] = [];
    const emit = (piece: string) => { for (const id of pieceIds(piece)) out.push(id); };
    if (splitRe) {
      let last = 0;
      for (const m of x.matchAll(splitRe)) {
        if (m.index > last) emit(x.slice(last, m.index));
        if (m[0].length > 0) emit(m[0]);
        last = m.index + m[0].length;
      }
      if (last < x.length) emit(x.slice(last));
    } else {
      const pieces: string[] = tok.pre_tokenizer ? tok.pre_tokenizer(x, { section_index: 0 }) : [x];
      for (const piece of pieces) {
        const ids = tok.model.convert_tokens_to_ids(tok.model([piece])) as number[];
        for (const id of ids) out.push(id);
      }
    }
    return out;
  };
  return {
    kind: 'tokenizer.json',
    file,
    fingerprint: 'sha256:' + createHash('sha256').update(bytes).digest('hex'),
    special,
    padId: special.endOfText ?? 0,
    encode(text) {
      if (!splitter) return plain(text);
      const out: number[] = [];
      for (const part of text.split(splitter)) {
        if (part.length === 0) continue;
        const id = userIds.get(part);
        if (id !== undefined) out.push(id);
        else for (const t of plain(part)) out.push(t);
      }
      return out;
    },
    decode(ids) {
      if (ids.length === 0) return '';
      return tok.decode(Array.from(ids), { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    },
    async close() {},
  };
}

async function loadGgufTokenizer(file: string): Promise<DatasetTokenizer> {
  const { getLlama, readGgufFileInfo } = await import('node-llama-cpp');
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(file, { readTensorInfo: false, logWarnings: false });
  } catch (e) {
    throw fileError(file, `is not a readable GGUF (${(e as Error).message})`, 'Pass --tokenizer a .gguf model or a tokenizer.json', e);
  }
  const vocabMeta = (info.metadata as Record<string, unknown>).tokenizer;
  if (!vocabMeta) throw fileError(file, 'has no tokenizer.* metadata', 'Pass a GGUF converted with its vocabulary, or the checkpoint\'s tokenizer.json');
  const { fingerprintTokenizerMetadata } = await import('@qtk/engine');
  const fingerprint = fingerprintTokenizerMetadata(vocabMeta);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
  const special: Partial<Record<SpecialTokenName, number>> = {};
  for (const [name, text] of Object.entries(SPECIAL_TOKEN_TEXT)) {
    const ids = model.tokenize(text, true);
    if (ids.length === 1 && model.detokenize(ids, true) === text) special[name as SpecialTokenName] = ids[0] as unknown as number;
  }
  return {
    kind: 'gguf',
    file,
    fingerprint,
    special,
    padId: special.endOfText ?? 0,
    encode(text) {
      return model.tokenize(text, false) as unknown as number[];
    },
    decode(ids) {
      return model.detokenize(Array.from(ids) as never, true);
    },
    async close() {
      await model.dispose();
    },
  };
}

/** A readable error when FIM is asked of a vocabulary without FIM tokens. */
export function requireFimTokens(tok: DatasetTokenizer): { prefix: number; middle: number; suffix: number } {
  const { fimPrefix, fimMiddle, fimSuffix } = tok.special;
  if (fimPrefix === undefined || fimMiddle === undefined || fimSuffix === undefined) {
    throw new QtkError(`${tok.file}: the vocabulary has no ${SPECIAL_TOKEN_TEXT.fimPrefix}/${SPECIAL_TOKEN_TEXT.fimSuffix}/${SPECIAL_TOKEN_TEXT.fimMiddle} tokens, so --fim-rate cannot be used. Drop --fim-rate, or use a coder model's tokenizer.`);
  }
  return { prefix: fimPrefix, middle: fimMiddle, suffix: fimSuffix };
}
