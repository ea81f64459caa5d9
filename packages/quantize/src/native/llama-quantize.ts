// llama.cpp's own quantizer (llama_model_quantize, the function the llama-quantize tool wraps) through
// koffi on node-llama-cpp's prebuilt libllama: the whole-file oracle and the speed anchor for
// bench/quantize.mjs. A GGML_ASSERT inside aborts the process, so callers run it in a child process.
import path from 'node:path';
import { GGML_TYPES, QtkError, type GgmlTypeName } from '@qtk/core';
import { GGML_VARIANTS, koffi, llamaLibFile, registryFile, variantBinDir } from '@qtk/engine';

export interface LlamaQuantizeOptions {
  input: string;
  output: string;
  /** llama_ftype id (PRESETS[name].ftype). */
  ftype: number;
  threads: number;
  imatrix?: ReadonlyMap<string, Float32Array>;
  overrides?: readonly { pattern: string; type: GgmlTypeName }[];
  allowRequantize?: boolean;
  leaveOutputTensor?: boolean;
  pure?: boolean;
}

let bound: ((o: LlamaQuantizeOptions) => number) | undefined;

/** Returns llama_model_quantize's status (0 = success). Throws when libllama cannot be loaded. */
export function llamaModelQuantize(o: LlamaQuantizeOptions): number {
  bound ??= bind();
  return bound(o);
}

function bind(): (o: LlamaQuantizeOptions) => number {
  const binDir = variantBinDir('cpu');
  if (!binDir) throw new QtkError(`libllama of ${GGML_VARIANTS.cpu.pkg} is not installed: run npm ci (node-llama-cpp 3.21.1), or set GGML_BIN_DIR to a folder holding it.`);
  koffi.load(path.join(binDir, 'libggml-base.so'));
  koffi.load(registryFile(binDir, 'cpu')!);
  const lib = koffi.load(llamaLibFile(binDir));
  // include/llama.h: struct llama_model_quantize_params
  const ImatrixData = koffi.struct('qtk_llama_model_imatrix_data', { name: 'const char *', data: 'float *', size: 'size_t' });
  const TensorOverride = koffi.struct('qtk_llama_model_tensor_override', { pattern: 'const char *', type: 'int32_t' });
  const Params = koffi.struct('qtk_llama_model_quantize_params', {
    nthread: 'int32_t', ftype: 'int32_t', output_tensor_type: 'int32_t', token_embedding_type: 'int32_t',
    allow_requantize: 'bool', quantize_output_tensor: 'bool', only_copy: 'bool', pure: 'bool', keep_split: 'bool', dry_run: 'bool',
    imatrix: koffi.pointer(ImatrixData), kv_overrides: 'void *', tt_overrides: koffi.pointer(TensorOverride), prune_layers: 'void *', max_buf_size: 'size_t',
  });
  const defaults = lib.func('qtk_llama_model_quantize_params llama_model_quantize_default_params(void)');
  const quantize = lib.func('uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const qtk_llama_model_quantize_params *params)');
  const backendInit = lib.func('void llama_backend_init(void)');
  backendInit();

  return (o) => {
    const p = defaults() as Record<string, unknown>;
    p.nthread = o.threads;
    p.ftype = o.ftype;
    p.allow_requantize = Boolean(o.allowRequantize);
    p.quantize_output_tensor = !o.leaveOutputTensor;
    p.pure = Boolean(o.pure);
    if (o.imatrix) {
      // A NULL name terminates the list; the float arrays stay alive in `o` for the call.
      const entries = [...o.imatrix].map(([name, data]) => ({ name, data, size: data.length }));
      p.imatrix = [...entries, { name: null, data: null, size: 0 }];
    }
    if (o.overrides?.length) {
      const list = [...o.overrides.map((x) => ({ pattern: x.pattern, type: GGML_TYPES[x.type].id })), { pattern: null, type: 0 }];
      p.tt_overrides = list;
    }
    return Number(quantize(o.input, o.output, p));
  };
}
