// libllama of node-llama-cpp's prebuilt CPU or CUDA build, called through koffi from the JS thread. node-llama-cpp
// runs llama_decode in a libuv worker and starts ggml's compute threads per decode, which doubles the cost
// of a generated token (bench/decode-loop.mjs); a direct call with a persistent ggml threadpool runs at
// llama-server's speed. Struct layouts follow include/llama.h of the bundled llama.cpp and are checked
// against the library's own defaults when it is loaded.
import * as path from 'node:path';
import { koffi, llamaLibFile, loadGgml, LLAMA_LIB, LlamaModelParams as ModelParams, withLogCallback, type GgmlVariant } from '@qtk/engine';
import { QtkError } from '@qtk/core';

/** ggml_log_level: warnings and errors are kept. */
const LOG_WARN = 3;

const ContextParams = koffi.struct('qtk_serve_llama_context_params', {
  n_ctx: 'uint32_t',
  n_batch: 'uint32_t',
  n_ubatch: 'uint32_t',
  n_seq_max: 'uint32_t',
  n_rs_seq: 'uint32_t',
  n_outputs_max: 'uint32_t',
  n_outputs_max_per_seq: 'uint32_t',
  n_threads: 'int32_t',
  n_threads_batch: 'int32_t',
  ctx_type: 'int',
  rope_scaling_type: 'int',
  pooling_type: 'int',
  attention_type: 'int',
  flash_attn_type: 'int',
  rope_freq_base: 'float',
  rope_freq_scale: 'float',
  yarn_ext_factor: 'float',
  yarn_attn_factor: 'float',
  yarn_beta_fast: 'float',
  yarn_beta_slow: 'float',
  yarn_orig_ctx: 'uint32_t',
  defrag_thold: 'float',
  cb_eval: 'void *',
  cb_eval_user_data: 'void *',
  type_k: 'int',
  type_v: 'int',
  abort_callback: 'void *',
  abort_callback_data: 'void *',
  embeddings: 'bool',
  offload_kqv: 'bool',
  no_perf: 'bool',
  op_offload: 'bool',
  swa_full: 'bool',
  kv_unified: 'bool',
  samplers: 'void *',
  n_samplers: 'size_t',
  ctx_other: 'void *',
});

export const Batch = koffi.struct('qtk_serve_llama_batch', {
  n_tokens: 'int32_t',
  token: 'void *',
  embd: 'void *',
  pos: 'void *',
  n_seq_id: 'void *',
  seq_id: 'void *',
  logits: 'void *',
});

const LogitBias = koffi.struct('qtk_serve_llama_logit_bias', { token: 'int32_t', bias: 'float' });
const ChainParams = koffi.struct('qtk_serve_llama_sampler_chain_params', { no_perf: 'bool' });

export interface BatchStruct {
  n_tokens: number;
  token: unknown;
  embd: unknown;
  pos: unknown;
  n_seq_id: unknown;
  seq_id: unknown;
  logits: unknown;
}

function bind(variant: GgmlVariant) {
  const ggml = loadGgml(variant);
  const ll = koffi.load(llamaLibFile(ggml.binDir));
  const f = (proto: string) => ll.func(proto);
  const logProto = koffi.proto('void qtk_serve_llama_log_cb(int level, const char *text, void *user_data)');
  return {
    ggml,
    LogitBias,
    modelDefaults: ll.func('llama_model_default_params', ModelParams, []),
    contextDefaults: ll.func('llama_context_default_params', ContextParams, []),
    modelLoad: ll.func('llama_model_load_from_file', 'void *', ['const char *', ModelParams]),
    modelFree: f('void llama_model_free(void *model)'),
    initFromModel: ll.func('llama_init_from_model', 'void *', ['void *', ContextParams]),
    free: f('void llama_free(void *ctx)'),
    attachThreadpool: f('void llama_attach_threadpool(void *ctx, void *tp, void *tpb)'),
    detachThreadpool: f('void llama_detach_threadpool(void *ctx)'),
    modelVocab: f('const void *llama_model_get_vocab(const void *model)'),
    nVocab: f('int32_t llama_vocab_n_tokens(const void *vocab)'),
    isEog: f('bool llama_vocab_is_eog(const void *vocab, int32_t token)'),
    isRecurrent: f('bool llama_model_is_recurrent(const void *model)'),
    isHybrid: f('bool llama_model_is_hybrid(const void *model)'),
    nCtx: f('uint32_t llama_n_ctx(const void *ctx)'),
    nCtxSeq: f('uint32_t llama_n_ctx_seq(const void *ctx)'),
    tokenize: f('int32_t llama_tokenize(const void *vocab, const char *text, int32_t text_len, _Out_ int32_t *tokens, int32_t n_tokens_max, bool add_special, bool parse_special)'),
    tokenToPiece: f('int32_t llama_token_to_piece(const void *vocab, int32_t token, _Out_ uint8_t *buf, int32_t length, int32_t lstrip, bool special)'),
    batchInit: ll.func('llama_batch_init', Batch, ['int32_t', 'int32_t', 'int32_t']),
    batchFree: ll.func('llama_batch_free', 'void', [Batch]),
    decode: ll.func('llama_decode', 'int32_t', ['void *', Batch]),
    logitsIth: f('void *llama_get_logits_ith(void *ctx, int32_t i)'),
    memory: f('void *llama_get_memory(void *ctx)'),
    memoryClear: f('void llama_memory_clear(void *mem, bool data)'),
    seqRm: f('bool llama_memory_seq_rm(void *mem, int32_t seq_id, int32_t p0, int32_t p1)'),
    seqPosMax: f('int32_t llama_memory_seq_pos_max(void *mem, int32_t seq_id)'),
    stateSeqSize: f('size_t llama_state_seq_get_size_ext(void *ctx, int32_t seq_id, uint32_t flags)'),
    stateSeqGet: f('size_t llama_state_seq_get_data_ext(void *ctx, _Out_ uint8_t *dst, size_t size, int32_t seq_id, uint32_t flags)'),
    stateSeqSet: f('size_t llama_state_seq_set_data_ext(void *ctx, const uint8_t *src, size_t size, int32_t seq_id, uint32_t flags)'),
    loraInit: f('void *llama_adapter_lora_init(void *model, const char *path)'),
    loraFree: f('void llama_adapter_lora_free(void *adapter)'),
    setLoras: f('int32_t llama_set_adapters_lora(void *ctx, void **adapters, size_t n, float *scales)'),
    chainDefaults: ll.func('llama_sampler_chain_default_params', ChainParams, []),
    chainInit: ll.func('llama_sampler_chain_init', 'void *', [ChainParams]),
    chainAdd: f('void llama_sampler_chain_add(void *chain, void *smpl)'),
    samplerFree: f('void llama_sampler_free(void *smpl)'),
    samplerAccept: f('void llama_sampler_accept(void *smpl, int32_t token)'),
    samplerSample: f('int32_t llama_sampler_sample(void *smpl, void *ctx, int32_t idx)'),
    samplerApply: f('void llama_sampler_apply(void *smpl, void *cur_p)'),
    greedy: f('void *llama_sampler_init_greedy()'),
    dist: f('void *llama_sampler_init_dist(uint32_t seed)'),
    topK: f('void *llama_sampler_init_top_k(int32_t k)'),
    topP: f('void *llama_sampler_init_top_p(float p, size_t min_keep)'),
    minP: f('void *llama_sampler_init_min_p(float p, size_t min_keep)'),
    temp: f('void *llama_sampler_init_temp(float t)'),
    // this build's penalties sampler takes the vocabulary size first (upstream llama.h does not)
    penalties: f('void *llama_sampler_init_penalties(int32_t n_vocab, int32_t last_n, float repeat, float freq, float present)'),
    logitBias: ll.func('llama_sampler_init_logit_bias', 'void *', ['int32_t', 'int32_t', koffi.pointer(LogitBias)]),
    grammar: f('void *llama_sampler_init_grammar(const void *vocab, const char *grammar, const char *root)'),
    logGet: f('void llama_log_get(_Out_ void **cb, _Out_ void **user_data)'),
    logSet: f('void llama_log_set(void *cb, void *user_data)'),
    quietLog: koffi.register((level: number, text: string) => {
      if (level >= LOG_WARN || process.env.QTK_GGML_LOG) process.stderr.write(text);
    }, koffi.pointer(logProto)),
  };
}

export type LlamaFns = ReturnType<typeof bind>;
let fns: LlamaFns | undefined;

/** The bound functions of one ggml build (`variant`, CPU by default), once per process; throws when the
 *  structs differ from this build's, or when another build is already loaded. */
export function llamaFns(variant: GgmlVariant = 'cpu'): LlamaFns {
  if (fns) {
    if (fns.ggml.variant !== variant) throw new QtkError(`libllama's ${fns.ggml.variant} build is already loaded in this process; the ${variant} build cannot be loaded beside it. Run it in a separate process.`);
    return fns;
  }
  const f = bind(variant);
  const mp = f.modelDefaults() as Record<string, unknown>;
  const cp = f.contextDefaults() as Record<string, unknown>;
  // llama.cpp's defaults: a wrong field offset reads other values here
  const ok =
    mp.n_gpu_layers === -1 && mp.use_extra_bufts === true && mp.vocab_only === false &&
    cp.n_ctx === 512 && cp.n_batch === 2048 && cp.n_ubatch === 512 && cp.n_seq_max === 1 &&
    cp.type_k === 1 && cp.type_v === 1 && cp.offload_kqv === true && cp.op_offload === true && cp.kv_unified === false && cp.n_samplers === 0;
  if (!ok) throw new QtkError(`${LLAMA_LIB}: llama_model_params/llama_context_params do not have the layout qtk serve was written for. Install node-llama-cpp 3.21.1 as qtk pins it.`);
  fns = f;
  return f;
}

/** Runs `fn` with llama.cpp's INFO logs dropped, then puts back whoever logged before. */
export function quietly<T>(f: LlamaFns, fn: () => T): T {
  return withLogCallback({ get: f.logGet, set: f.logSet, cb: f.quietLog }, fn);
}
