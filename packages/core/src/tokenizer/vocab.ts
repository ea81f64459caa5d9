// tokenizer.json + tokenizer_config.json (+ config.json ids, chat template) → the GGUF tokenizer keys of
// llama.cpp's GPT-2-style BPE path (spec section 3): tokens padded to vocab_size, token types, merges,
// special ids, add_* flags, chat template. Pure: the caller reads the files.
import { fileError, QtkError } from '../errors.js';
import { isObject, type JsonObject } from '../arch/hparams.js';
import type { MetadataEntry } from '../arch/types.js';
import { BPE_PRE_TOKENIZERS, bpePreFor, splitRegexes } from './pre-tokenizers.js';

/** tokenizer.ggml.token_type values (llama_token_type). */
export const TOKEN_TYPES = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Special-token kinds in the converter's order, with the key each id is written under (cls has no writer key). */
export const SPECIAL_TOKEN_KEYS = {
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  cls: undefined,
  mask: 'tokenizer.ggml.mask_token_id',
} as const;
export const ADD_TOKEN_KEYS = { bos: 'tokenizer.ggml.add_bos_token', eos: 'tokenizer.ggml.add_eos_token', sep: 'tokenizer.ggml.add_sep_token' } as const;
type SpecialKind = keyof typeof SPECIAL_TOKEN_KEYS;

export interface TokenizerSources {
  tokenizerJson: JsonObject;
  tokenizerJsonPath: string;
  /** tokenizer_config.json, classic (added_tokens_decoder) or transformers-v5 (without it). */
  tokenizerConfig?: JsonObject;
  tokenizerConfigPath?: string;
  /** chat_template.jinja, used when tokenizer_config.json has no chat_template. */
  chatTemplateJinja?: string;
  /** chat_template.json's "chat_template", the last fallback. */
  chatTemplateJson?: unknown;
  /** config.json (raw): `<kind>_token_id` at the root or under text_config. */
  config: JsonObject;
  /** config vocab_size: the token list is padded to it. */
  vocabSize: number;
}

export interface GgufVocab {
  entries: MetadataEntry[];
  pre: string;
  tokens: string[];
  tokenTypes: number[];
  /** Things the user may want to know (ids skipped, fallbacks taken). */
  notices: string[];
}

interface AddedToken { id: number; content: string; special: boolean; normalized: boolean }

export function buildGgufVocab(src: TokenizerSources): GgufVocab {
  const file = src.tokenizerJsonPath;
  const tj = src.tokenizerJson;
  const model = isObject(tj.model) ? tj.model : undefined;
  if (!model || model.type !== 'BPE' || !isObject(model.vocab)) {
    throw fileError(file, `tokenizer model is ${JSON.stringify(model?.type)}, expected a byte-level "BPE" model with a vocab`,
      'qtk converts GPT-2-style BPE tokenizers (Qwen, Llama 3); this tokenizer is not supported');
  }
  const notices: string[] = [];

  const regexes = splitRegexes(tj.pre_tokenizer);
  const pre = bpePreFor(regexes);
  if (pre === undefined) {
    throw fileError(file, `pre-tokenizer ${regexes.length ? `regex ${JSON.stringify(regexes.join(' + '))}` : JSON.stringify(tj.pre_tokenizer)} matches none llama.cpp implements here`,
      `Supported pre-tokenizers: ${BPE_PRE_TOKENIZERS.map((p) => p.pre).join(', ')}. A different regex would tokenize differently in llama.cpp, so conversion stops`);
  }

  // id → text over the BPE vocab plus added tokens (the HF tokenizer's full vocab).
  const byId = new Map<number, string>();
  for (const [text, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw fileError(file, `vocab entry ${JSON.stringify(text)} has id ${JSON.stringify(id)}`, 'The tokenizer file is corrupt: re-download it');
    byId.set(id, text);
  }
  const added = addedTokens(src);
  for (const t of added.values()) byId.set(t.id, t.content);

  let maxId = -1;
  for (const id of byId.keys()) if (id > maxId) maxId = id;
  if (maxId >= src.vocabSize) {
    throw fileError(file, `token id ${maxId} (${JSON.stringify(byId.get(maxId))}) is not below config.json vocab_size ${src.vocabSize}`,
      'The tokenizer does not belong to this checkpoint: check tokenizer.json and config.json come from the same model');
  }

  const tokens: string[] = new Array(src.vocabSize);
  const tokenTypes: number[] = new Array(src.vocabSize);
  for (let i = 0; i < src.vocabSize; i++) {
    const text = byId.get(i);
    const a = added.get(i);
    if (text === undefined) {
      tokens[i] = `[PAD${i}]`;
      tokenTypes[i] = TOKEN_TYPES.UNUSED;
    } else if (a) {
      // Byte-level BPE round-trips added-token text unchanged, so the converter's decode(encode(t)) of
      // non-normalized tokens is the identity here.
      if (a.special || looksSpecial(text)) {
        tokens[i] = text;
        tokenTypes[i] = TOKEN_TYPES.CONTROL;
      } else {
        tokens[i] = text.replaceAll('\u2581', ' ');
        tokenTypes[i] = TOKEN_TYPES.USER_DEFINED;
      }
    } else {
      tokens[i] = text;
      tokenTypes[i] = TOKEN_TYPES.NORMAL;
    }
  }

  const entries: MetadataEntry[] = [
    { key: 'tokenizer.ggml.model', type: 'STRING', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: 'STRING', value: pre },
    { key: 'tokenizer.ggml.tokens', type: 'ARRAY', elemType: 'STRING', value: tokens },
    { key: 'tokenizer.ggml.token_type', type: 'ARRAY', elemType: 'INT32', value: tokenTypes },
  ];
  const merges = readMerges(model.merges, file);
  if (merges.length > 0) entries.push({ key: 'tokenizer.ggml.merges', type: 'ARRAY', elemType: 'STRING', value: merges });
  else notices.push(`${file}: no merges; the GGUF tokenizer will not merge anything`);

  const special = specialTokens(src, notices);
  for (const [kind, id] of special.ids) {
    const key = SPECIAL_TOKEN_KEYS[kind];
    if (key === undefined) continue; // llama.cpp's writer has no cls key either
    if (id >= src.vocabSize) {
      notices.push(`${kind} token id ${id} is not below vocab_size ${src.vocabSize}; not written`);
      continue;
    }
    entries.push({ key, type: 'UINT32', value: id });
  }
  for (const [kind, v] of special.add) entries.push({ key: ADD_TOKEN_KEYS[kind], type: 'BOOL', value: v });
  entries.push(...chatTemplateEntries(src));
  return { entries, pre, tokens, tokenTypes, notices };
}

/** Token texts llama.cpp's converter treats as control tokens even when not flagged special. */
export function looksSpecial(t: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t)
    || (t.startsWith('<|') && t.endsWith('|>'))
    || (t.startsWith('<｜') && t.endsWith('｜>'))
    || (t.startsWith('<unused') && t.endsWith('>'));
}

/**
 * Added tokens by id. tokenizer_config.json's added_tokens_decoder (classic form) decides `special`,
 * as transformers does; the v5 form has none, so tokenizer.json's added_tokens do.
 */
function addedTokens(src: TokenizerSources): Map<number, AddedToken> {
  const out = new Map<number, AddedToken>();
  const list = src.tokenizerJson.added_tokens;
  if (Array.isArray(list)) {
    for (const t of list) {
      if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') {
        throw fileError(src.tokenizerJsonPath, `added token ${JSON.stringify(t)} lacks an id or content`, 'The tokenizer file is corrupt: re-download it');
      }
      out.set(t.id, { id: t.id, content: t.content, special: t.special === true, normalized: t.normalized !== false });
    }
  }
  const decoder = src.tokenizerConfig?.added_tokens_decoder;
  if (isObject(decoder)) {
    for (const [idText, t] of Object.entries(decoder)) {
      const id = Number(idText);
      if (!isObject(t) || !Number.isSafeInteger(id) || typeof t.content !== 'string') continue;
      out.set(id, { id, content: t.content, special: t.special === true, normalized: t.normalized !== false });
    }
  }
  return out;
}

/** model.merges in either format: "a b" strings, or [a, b] pairs (spaces inside re-encoded as U+0120). */
function readMerges(merges: unknown, file: string): string[] {
  if (!Array.isArray(merges) || merges.length === 0) return [];
  if (typeof merges[0] === 'string') return merges as string[];
  return merges.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw fileError(file, `merge ${i} is ${JSON.stringify(pair)}, expected "a b" or ["a", "b"]`, 'The tokenizer file is corrupt: re-download it');
    }
    return pair.map((part: string) => part.replaceAll(' ', '\u0120')).join(' ');
  });
}

interface Specials { ids: Map<SpecialKind, number>; add: Map<keyof typeof ADD_TOKEN_KEYS, boolean> }

/** Spec 3.5: tokenizer_config.json names (mapped through tokenizer.json's added_tokens) first, then config.json ids. */
function specialTokens(src: TokenizerSources, notices: string[]): Specials {
  const ids = new Map<SpecialKind, number>();
  const add = new Map<keyof typeof ADD_TOKEN_KEYS, boolean>();
  const tc: JsonObject = { ...(src.tokenizerConfig ?? {}) };
  const addedList = Array.isArray(src.tokenizerJson.added_tokens) ? (src.tokenizerJson.added_tokens as JsonObject[]) : [];
  const contentOf = (v: unknown) => (typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : undefined);

  if (src.tokenizerConfig) {
    if (!contentOf(tc.bos_token) && contentOf(tc.cls_token)) tc.bos_token = tc.cls_token;
    if (!contentOf(tc.eos_token) && contentOf(tc.sep_token)) tc.eos_token = tc.sep_token;
  }
  templateProcessingFlags(src.tokenizerJson.post_processor, tc, add);

  if (src.tokenizerConfig) {
    for (const kind of Object.keys(SPECIAL_TOKEN_KEYS) as SpecialKind[]) {
      const flag = tc[`add_${kind}_token`];
      if (typeof flag === 'boolean' && kind in ADD_TOKEN_KEYS) add.set(kind as keyof typeof ADD_TOKEN_KEYS, flag);
      const content = contentOf(tc[`${kind}_token`]);
      if (content === undefined) continue;
      const hit = addedList.find((t) => t.content === content);
      if (typeof hit?.id === 'number' && !ids.has(kind)) ids.set(kind, hit.id);
      else if (!hit) notices.push(`${src.tokenizerConfigPath ?? 'tokenizer_config.json'}: ${kind}_token ${JSON.stringify(content)} is not an added token; no ${kind} id from it`);
    }
  }
  const text = isObject(src.config.text_config) ? src.config.text_config : {};
  for (const kind of Object.keys(SPECIAL_TOKEN_KEYS) as SpecialKind[]) {
    const v = src.config[`${kind}_token_id`] ?? text[`${kind}_token_id`];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && !ids.has(kind)) ids.set(kind, v);
  }
  return { ids, add };
}

/**
 * A TemplateProcessing post-processor that starts with the bos token means "add bos" (Llama 3), and one
 * that ends with eos means "add eos" — the simple cases of llama.cpp's converter; Qwen's ByteLevel adds nothing.
 */
function templateProcessingFlags(post: unknown, tc: JsonObject, add: Map<keyof typeof ADD_TOKEN_KEYS, boolean>): void {
  if (!isObject(post)) return;
  const processors = Array.isArray(post.processors) ? post.processors : [post];
  for (const p of processors) {
    if (!isObject(p) || p.type !== 'TemplateProcessing' || !Array.isArray(p.single) || p.single.length < 2) continue;
    const specialId = (e: unknown) => (isObject(e) && isObject(e.SpecialToken) && typeof e.SpecialToken.id === 'string' ? e.SpecialToken.id : undefined);
    const first = specialId(p.single[0]);
    const last = specialId(p.single[p.single.length - 1]);
    const bos = typeof tc.bos_token === 'string' ? tc.bos_token : isObject(tc.bos_token) ? tc.bos_token.content : undefined;
    const eos = typeof tc.eos_token === 'string' ? tc.eos_token : isObject(tc.eos_token) ? tc.eos_token.content : undefined;
    if (first !== undefined) {
      if (!bos) tc.bos_token = first;
      add.set('bos', !bos || first === bos);
    }
    if (last !== undefined) add.set('eos', last === (eos ?? last));
  }
}

/** tokenizer_config.json chat_template, else chat_template.jinja, else chat_template.json; named lists too. */
function chatTemplateEntries(src: TokenizerSources): MetadataEntry[] {
  const t = src.tokenizerConfig?.chat_template ?? src.chatTemplateJinja ?? src.chatTemplateJson;
  if (typeof t === 'string') return t ? [{ key: 'tokenizer.chat_template', type: 'STRING', value: t }] : [];
  if (!Array.isArray(t)) {
    if (t !== undefined && t !== null) {
      throw new QtkError(`${src.tokenizerConfigPath ?? 'tokenizer_config.json'}: chat_template is ${typeof t}, expected a string or a list of {name, template}. Fix the file or remove the field`);
    }
    return [];
  }
  const out: MetadataEntry[] = [];
  const names: string[] = [];
  let dflt: string | undefined;
  for (const c of t) {
    if (!isObject(c) || typeof c.template !== 'string') continue;
    const name = String(c.name ?? '').replace(/[^A-Za-z0-9]/g, '_');
    if (!name) continue;
    if (name === 'default') dflt = c.template;
    else if (!names.includes(name)) {
      names.push(name);
      out.push({ key: `tokenizer.chat_template.${name}`, type: 'STRING', value: c.template });
    }
  }
  if (names.length > 0) out.push({ key: 'tokenizer.chat_templates', type: 'ARRAY', elemType: 'STRING', value: names });
  if (dflt !== undefined) out.push({ key: 'tokenizer.chat_template', type: 'STRING', value: dflt });
  return out;
}
