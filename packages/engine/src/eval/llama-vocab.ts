// llama.cpp's tokenizer called directly in the libllama that sits beside the loaded ggml build
// (node-llama-cpp's prebuilt, the same library its addon uses), vocabulary only: the ids equal what
// llama-perplexity and llama-imatrix evaluate, at the cost of llama.cpp's own vocabulary load, without
// node-llama-cpp's start-up (its JS GGUF parse and module graph cost ~2 CPU-s per process).
import { QtkError } from '@qtk/core';
import { koffi, LLAMA_LIB, llamaLibFile, loadGgml } from '../ggml/lib.js';

/** struct llama_model_params of this build (include/llama.h), checked against its defaults on load. */
export const LlamaModelParams = koffi.struct('qtk_llama_model_params', {
  devices: 'void *',
  tensor_buft_overrides: 'void *',
  n_gpu_layers: 'int32_t',
  split_mode: 'int',
  load_mode: 'int',
  lazy_mode: 'int',
  main_gpu: 'int32_t',
  tensor_split: 'void *',
  progress_callback: 'void *',
  progress_callback_user_data: 'void *',
  kv_overrides: 'void *',
  vocab_only: 'bool',
  check_tensors: 'bool',
  use_extra_bufts: 'bool',
  no_host: 'bool',
  no_alloc: 'bool',
  load_mtp: 'bool',
});
/** ggml_log_level: warnings and errors are kept. */
const LOG_WARN = 3;

function bind() {
  const ll = koffi.load(llamaLibFile(loadGgml('cpu').binDir));
  const logProto = koffi.proto('void qtk_llama_log_cb(int level, const char *text, void *user_data)');
  return {
    defaultParams: ll.func('llama_model_default_params', LlamaModelParams, []),
    load: ll.func('llama_model_load_from_file', 'void *', ['const char *', LlamaModelParams]),
    free: ll.func('void llama_model_free(void *model)'),
    vocab: ll.func('const void *llama_model_get_vocab(const void *model)'),
    tokenize: ll.func('int32_t llama_tokenize(const void *vocab, const char *text, int32_t text_len, _Out_ int32_t *tokens, int32_t n_tokens_max, bool add_special, bool parse_special)'),
    addBos: ll.func('bool llama_vocab_get_add_bos(const void *vocab)'),
    bos: ll.func('int32_t llama_vocab_bos(const void *vocab)'),
    logGet: ll.func('void llama_log_get(_Out_ void **cb, _Out_ void **user_data)'),
    logSet: ll.func('void llama_log_set(void *cb, void *user_data)'),
    quietLog: koffi.register((level: number, text: string) => {
      if (level >= LOG_WARN || process.env.QTK_GGML_LOG) process.stderr.write(text);
    }, koffi.pointer(logProto)),
  };
}
let fns: ReturnType<typeof bind> | undefined;

export interface LlamaTokens {
  tokens: number[];
  /** The id llama.cpp puts first in every window, when this vocabulary adds BOS. */
  bos: number | undefined;
}

/**
 * common_tokenize(text, add_special = true, parse_special = false), as llama-perplexity and
 * llama-imatrix tokenize their text file: BOS first when the vocabulary adds it, special-token text
 * kept literal.
 */
export function llamaTokenize(ggufPath: string, text: string): LlamaTokens {
  fns ??= bind();
  const f = fns;
  const params = f.defaultParams() as Record<string, unknown>;
  if (params.n_gpu_layers !== -1 || params.use_extra_bufts !== true || params.vocab_only !== false) {
    throw new Error(`${LLAMA_LIB}: llama_model_params does not have the layout this code was written for`);
  }
  params.vocab_only = true;
  // llama.cpp logs the whole vocabulary load at INFO: keep warnings, then put back whoever logged before
  const prevCb: unknown[] = [null], prevUd: unknown[] = [null];
  f.logGet(prevCb, prevUd);
  f.logSet(f.quietLog, null);
  let model: unknown;
  try {
    model = f.load(ggufPath, params);
  } finally {
    f.logSet(prevCb[0] ?? null, prevUd[0] ?? null);
  }
  if (!model) throw new QtkError(`${ggufPath}: llama.cpp could not load the vocabulary of this GGUF. Check it with \`qtk inspect\`.`, { file: ggufPath });
  try {
    const vocab = f.vocab(model);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > 0x7fff_fff0) throw new QtkError(`${ggufPath}: the text is ${bytes.length} bytes; llama.cpp tokenizes at most 2 GiB at once. Use a smaller --data file.`);
    // at most one token per byte, plus BOS/EOS
    const out = new Int32Array(bytes.length + 2);
    const n = f.tokenize(vocab, bytes, bytes.length, out, out.length, true, false) as number;
    if (n < 0) throw new Error(`llama_tokenize needed ${-n} tokens, more than the ${out.length} given`);
    const bos = f.addBos(vocab) ? (f.bos(vocab) as number) : undefined;
    return { tokens: Array.from(out.subarray(0, n)), bos };
  } finally {
    f.free(model);
  }
}
