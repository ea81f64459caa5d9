// Raw koffi bindings to node-llama-cpp 3.21.1's prebuilt ggml (ggml 0.23.0). Every pointer is a
// BigInt (koffi 3); nothing here validates arguments — ops.ts does, because a GGML_ASSERT aborts.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import { QtkError } from '@qtk/core';

const require = createRequire(import.meta.url);

const CPU = `linux-${process.arch}`;

/** One ggml build shipped by node-llama-cpp: its package, its folder and its registry library. */
export const GGML_VARIANTS = {
  cpu: { pkg: `@node-llama-cpp/${CPU}`, dir: `bins/${CPU}`, registry: 'libggml.v0.4.0.so' },
  cuda: { pkg: '@node-llama-cpp/linux-x64-cuda', dir: 'bins/linux-x64-cuda', registry: 'libggml.cuda.v0.4.0.so' },
  vulkan: { pkg: '@node-llama-cpp/linux-x64-vulkan', dir: 'bins/linux-x64-vulkan', registry: 'libggml.vulkan.v0.4.0.so' },
} as const;
export type GgmlVariant = keyof typeof GGML_VARIANTS;

/** node_modules folders Node would search for `pkg`, then node-llama-cpp's own (a nested install). */
function nodeModulesFor(pkg: string): string[] {
  const dirs = [...(require.resolve.paths(pkg) ?? [])];
  try {
    const main = require.resolve('node-llama-cpp');
    const marker = `${path.sep}node-llama-cpp${path.sep}`;
    dirs.push(path.join(main.slice(0, main.lastIndexOf(marker) + marker.length), 'node_modules'));
  } catch {
    // node-llama-cpp itself is not installed: only the folders above can hold the package
  }
  return dirs;
}

/**
 * The names a llama.cpp build of its own gives the registry library and libllama (cmake's defaults),
 * accepted in GGML_BIN_DIR beside node-llama-cpp's: a ggml compiled on and for the machine can be
 * much faster than the prebuilt variants (docs/native-ggml.md).
 */
export const PLAIN_NAMES = { registry: 'libggml.so', llama: 'libllama.so' } as const;
/** node-llama-cpp 3.21.1's name for libllama, beside its ggml libraries. */
export const LLAMA_LIB = 'libllama.v0.4.0.so';

/** The registry library of `variant` in `dir`: node-llama-cpp's name, else a llama.cpp build's. */
export function registryFile(dir: string, variant: GgmlVariant): string | undefined {
  for (const name of [GGML_VARIANTS[variant].registry, PLAIN_NAMES.registry]) {
    if (existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** libllama in `dir` (a variant's folder): node-llama-cpp's name, else a llama.cpp build's. */
export function llamaLibFile(dir: string): string {
  const plain = path.join(dir, PLAIN_NAMES.llama);
  return !existsSync(path.join(dir, LLAMA_LIB)) && existsSync(plain) ? plain : path.join(dir, LLAMA_LIB);
}

/**
 * The folder holding a variant's libraries, or undefined when its package is not installed. This is
 * the one place qtk looks for ggml (the engine, the quantizers and llama.cpp's own quantizer all ask
 * here). GGML_BIN_DIR overrides when it holds the variant's libraries, under node-llama-cpp's names or
 * under those of a llama.cpp build (libggml.so, libllama.so).
 */
export function variantBinDir(variant: GgmlVariant): string | undefined {
  const v = GGML_VARIANTS[variant];
  const env = process.env['GGML_BIN_DIR'];
  if (env && existsSync(path.join(env, 'libggml-base.so')) && registryFile(env, variant)) return env;
  // the packages have an "exports" map without package.json, so look in node_modules folders
  for (const nm of nodeModulesFor(v.pkg)) {
    const dir = path.join(nm, v.pkg, v.dir);
    if (existsSync(path.join(dir, 'libggml-base.so')) && existsSync(path.join(dir, v.registry))) return dir;
  }
  return undefined;
}

function missing(variant: GgmlVariant): QtkError {
  return new QtkError(`the ${variant} build of ggml (${GGML_VARIANTS[variant].pkg}) is not installed. Install node-llama-cpp 3.21.1 with its ${variant} binaries (npm ci), set GGML_BIN_DIR to a folder holding libggml-base.so and ${GGML_VARIANTS[variant].registry} (or a llama.cpp build's ${PLAIN_NAMES.registry}), or choose --device cpu.`);
}

interface GgmlBase { variant: GgmlVariant; binDir: string; base: LibraryHandle }
let engineBase: GgmlBase | undefined;
let plainBase: GgmlBase | undefined;

function openBase(variant: GgmlVariant): GgmlBase {
  const binDir = variantBinDir(variant);
  if (!binDir) throw missing(variant);
  const file = path.join(binDir, 'libggml-base.so');
  try {
    return { variant, binDir, base: koffi.load(file) };
  } catch (e) {
    throw new QtkError(`${file}: cannot load it (${(e as Error).message}). Reinstall node-llama-cpp 3.21.1 (npm ci), or point GGML_BIN_DIR at a matching build.`, { cause: e });
  }
}

/**
 * libggml-base of the build the engine uses (the one loadGgml loaded, else the CPU build), for
 * callers that need only its plain functions (quantizers, type traits, row conversions): no backend
 * is loaded and no variant is chosen for the engine. Throws a QtkError naming what is missing.
 */
export function loadGgmlBase(): { binDir: string; base: LibraryHandle } {
  if (engineBase) return engineBase;
  plainBase ??= openBase('cpu');
  return plainBase;
}

export type Ptr = bigint;

function declare(base: LibraryHandle, reg: LibraryHandle) {
  const initParams = koffi.struct('qtk_ggml_init_params', { mem_size: 'size_t', mem_buffer: 'void *', no_alloc: 'bool' });
  const b = (proto: string) => base.func(proto);
  const r = (proto: string) => reg.func(proto);
  const P = 'void *';
  return {
    setNThreadsProto: koffi.proto('void qtk_set_n_threads_t(void *backend, int n_threads)'),
    getExtraBuftsProto: koffi.proto('void *qtk_dev_get_extra_bufts_t(void *dev)'),
    evalCallbackProto: koffi.proto('bool qtk_sched_eval_cb(void *t, bool ask, void *user_data)'),
    logCallbackProto: koffi.proto('void qtk_log_cb(int level, const char *text, void *user_data)'),
    // meta
    ggml_version: b('const char *ggml_version(void)'),
    ggml_commit: b('const char *ggml_commit(void)'),
    ggml_tensor_overhead: b('size_t ggml_tensor_overhead(void)'),
    ggml_graph_overhead_custom: b('size_t ggml_graph_overhead_custom(size_t size, bool grads)'),
    ggml_init: base.func('ggml_init', P, [initParams]),
    ggml_free: b('void ggml_free(void *ctx)'),
    ggml_type_size: b('size_t ggml_type_size(int type)'),
    ggml_blck_size: b('int64_t ggml_blck_size(int type)'),
    ggml_row_size: b('size_t ggml_row_size(int type, int64_t ne)'),
    ggml_quantize_chunk: b('size_t ggml_quantize_chunk(int type, const float *src, _Out_ uint8_t *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)'),
    ggml_quantize_requires_imatrix: b('bool ggml_quantize_requires_imatrix(int type)'),
    ggml_quantize_init: b('void ggml_quantize_init(int type)'),
    ggml_status_to_string: b('const char *ggml_status_to_string(int status)'),
    ggml_op_desc: b('const char *ggml_op_desc(void *t)'),
    ggml_get_name: b('const char *ggml_get_name(void *t)'),
    ggml_set_name: b('void *ggml_set_name(void *t, const char *name)'),
    ggml_set_input: b('void ggml_set_input(void *t)'),
    ggml_set_output: b('void ggml_set_output(void *t)'),
    ggml_set_param: b('void ggml_set_param(void *t)'),
    ggml_set_loss: b('void ggml_set_loss(void *t)'),
    ggml_nbytes: b('size_t ggml_nbytes(void *t)'),
    ggml_backend_buft_alloc_buffer: b('void *ggml_backend_buft_alloc_buffer(void *buft, size_t size)'),
    // tensors
    ggml_new_tensor_4d: b('void *ggml_new_tensor_4d(void *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)'),
    ggml_view_4d: b('void *ggml_view_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, size_t nb1, size_t nb2, size_t nb3, size_t offset)'),
    ggml_reshape_4d: b('void *ggml_reshape_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)'),
    ggml_permute: b('void *ggml_permute(void *ctx, void *a, int axis0, int axis1, int axis2, int axis3)'),
    ggml_transpose: b('void *ggml_transpose(void *ctx, void *a)'),
    ggml_cont: b('void *ggml_cont(void *ctx, void *a)'),
    ggml_cpy: b('void *ggml_cpy(void *ctx, void *a, void *b)'),
    ggml_concat: b('void *ggml_concat(void *ctx, void *a, void *b, int dim)'),
    ggml_repeat_4d: b('void *ggml_repeat_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)'),
    ggml_get_rows: b('void *ggml_get_rows(void *ctx, void *a, void *b)'),
    ggml_argmax: b('void *ggml_argmax(void *ctx, void *a)'),
    // ops
    ggml_mul_mat: b('void *ggml_mul_mat(void *ctx, void *a, void *b)'),
    ggml_add: b('void *ggml_add(void *ctx, void *a, void *b)'),
    ggml_sub: b('void *ggml_sub(void *ctx, void *a, void *b)'),
    ggml_mul: b('void *ggml_mul(void *ctx, void *a, void *b)'),
    ggml_div: b('void *ggml_div(void *ctx, void *a, void *b)'),
    ggml_scale: b('void *ggml_scale(void *ctx, void *a, float s)'),
    ggml_sqr: b('void *ggml_sqr(void *ctx, void *a)'),
    ggml_sqrt: b('void *ggml_sqrt(void *ctx, void *a)'),
    ggml_exp: b('void *ggml_exp(void *ctx, void *a)'),
    ggml_log: b('void *ggml_log(void *ctx, void *a)'),
    ggml_neg: b('void *ggml_neg(void *ctx, void *a)'),
    ggml_silu: b('void *ggml_silu(void *ctx, void *a)'),
    ggml_sigmoid: b('void *ggml_sigmoid(void *ctx, void *a)'),
    ggml_softplus: b('void *ggml_softplus(void *ctx, void *a)'),
    ggml_sum_rows: b('void *ggml_sum_rows(void *ctx, void *a)'),
    ggml_swiglu_split: b('void *ggml_swiglu_split(void *ctx, void *a, void *b)'),
    ggml_rms_norm: b('void *ggml_rms_norm(void *ctx, void *a, float eps)'),
    ggml_l2_norm: b('void *ggml_l2_norm(void *ctx, void *a, float eps)'),
    ggml_soft_max_ext: b('void *ggml_soft_max_ext(void *ctx, void *a, void *mask, float scale, float max_bias)'),
    ggml_rope_ext: b('void *ggml_rope_ext(void *ctx, void *a, void *b, void *c, int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)'),
    ggml_rope_multi: b('void *ggml_rope_multi(void *ctx, void *a, void *b, void *c, int n_dims, int *sections, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)'),
    ggml_ssm_conv: b('void *ggml_ssm_conv(void *ctx, void *sx, void *c)'),
    ggml_gated_delta_net: b('void *ggml_gated_delta_net(void *ctx, void *q, void *k, void *v, void *g, void *beta, void *state, int64_t K)'),
    ggml_flash_attn_ext: b('void *ggml_flash_attn_ext(void *ctx, void *q, void *k, void *v, void *mask, float scale, float max_bias, float logit_softcap)'),
    ggml_flash_attn_ext_set_prec: b('void ggml_flash_attn_ext_set_prec(void *a, int prec)'),
    // graphs
    ggml_out_prod: b('void *ggml_out_prod(void *ctx, void *a, void *b)'),
    ggml_sum: b('void *ggml_sum(void *ctx, void *a)'),
    ggml_set: b('void *ggml_set(void *ctx, void *a, void *b, size_t nb1, size_t nb2, size_t nb3, size_t offset)'),
    ggml_diag_mask_inf: b('void *ggml_diag_mask_inf(void *ctx, void *a, int n_past)'),
    ggml_cross_entropy_loss: b('void *ggml_cross_entropy_loss(void *ctx, void *a, void *b)'),
    ggml_new_graph_custom: b('void *ggml_new_graph_custom(void *ctx, size_t size, bool grads)'),
    ggml_build_forward_expand: b('void ggml_build_forward_expand(void *gf, void *t)'),
    ggml_build_backward_expand: b('void ggml_build_backward_expand(void *ctx, void *gf, void *grad_accs)'),
    ggml_graph_n_nodes: b('int ggml_graph_n_nodes(void *gf)'),
    ggml_graph_node: b('void *ggml_graph_node(void *gf, int i)'),
    ggml_graph_get_grad: b('void *ggml_graph_get_grad(void *gf, void *t)'),
    ggml_graph_reset: b('void ggml_graph_reset(void *gf)'),
    // backend objects (ggml-backend.c and ggml-alloc.c live in libggml-base)
    ggml_backend_name: b('const char *ggml_backend_name(void *backend)'),
    ggml_backend_free: b('void ggml_backend_free(void *backend)'),
    ggml_backend_get_default_buffer_type: b('void *ggml_backend_get_default_buffer_type(void *backend)'),
    ggml_backend_get_device: b('void *ggml_backend_get_device(void *backend)'),
    ggml_backend_alloc_ctx_tensors: b('void *ggml_backend_alloc_ctx_tensors(void *ctx, void *backend)'),
    ggml_backend_alloc_ctx_tensors_from_buft: b('void *ggml_backend_alloc_ctx_tensors_from_buft(void *ctx, void *buft)'),
    ggml_backend_buffer_free: b('void ggml_backend_buffer_free(void *buf)'),
    ggml_backend_buffer_get_size: b('size_t ggml_backend_buffer_get_size(void *buf)'),
    ggml_backend_buffer_clear: b('void ggml_backend_buffer_clear(void *buf, uint8_t value)'),
    ggml_backend_buffer_set_usage: b('void ggml_backend_buffer_set_usage(void *buf, int usage)'),
    ggml_backend_buft_name: b('const char *ggml_backend_buft_name(void *buft)'),
    ggml_backend_tensor_set: b('void ggml_backend_tensor_set(void *t, const void *data, size_t offset, size_t size)'),
    ggml_backend_tensor_set_ptr: base.func('ggml_backend_tensor_set', 'void', [P, P, 'size_t', 'size_t']),
    ggml_backend_cpu_buffer_from_ptr: b('void *ggml_backend_cpu_buffer_from_ptr(void *ptr, size_t size)'),
    ggml_backend_tensor_alloc: b('int ggml_backend_tensor_alloc(void *buffer, void *tensor, void *addr)'),
    ggml_backend_tensor_get: b('void ggml_backend_tensor_get(void *t, _Out_ void *data, size_t offset, size_t size)'),
    ggml_backend_tensor_get_ptr: base.func('ggml_backend_tensor_get', 'void', [P, P, 'size_t', 'size_t']),
    ggml_backend_graph_compute: b('int ggml_backend_graph_compute(void *backend, void *gf)'),
    ggml_backend_supports_op: b('bool ggml_backend_supports_op(void *backend, void *op)'),
    ggml_backend_synchronize: b('void ggml_backend_synchronize(void *backend)'),
    ggml_gallocr_new: b('void *ggml_gallocr_new(void *buft)'),
    ggml_gallocr_reserve: b('bool ggml_gallocr_reserve(void *galloc, void *gf)'),
    ggml_gallocr_alloc_graph: b('bool ggml_gallocr_alloc_graph(void *galloc, void *gf)'),
    ggml_gallocr_get_buffer_size: b('size_t ggml_gallocr_get_buffer_size(void *galloc, int buffer_id)'),
    ggml_gallocr_free: b('void ggml_gallocr_free(void *galloc)'),
    ggml_backend_sched_new: b('void *ggml_backend_sched_new(void **backends, void **bufts, int n_backends, size_t graph_size, bool parallel, bool op_offload)'),
    ggml_backend_sched_free: b('void ggml_backend_sched_free(void *sched)'),
    ggml_backend_dev_name: b('const char *ggml_backend_dev_name(void *dev)'),
    ggml_backend_dev_description: b('const char *ggml_backend_dev_description(void *dev)'),
    ggml_backend_dev_type: b('int ggml_backend_dev_type(void *dev)'),
    ggml_backend_dev_backend_reg: b('void *ggml_backend_dev_backend_reg(void *dev)'),
    ggml_backend_dev_init: b('void *ggml_backend_dev_init(void *dev, const char *params)'),
    ggml_backend_reg_name: b('const char *ggml_backend_reg_name(void *reg)'),
    ggml_backend_reg_get_proc_address: b('void *ggml_backend_reg_get_proc_address(void *reg, const char *name)'),
    // libggml: the backend registry and dynamic loader
    ggml_backend_load_all_from_path: r('void ggml_backend_load_all_from_path(const char *dir)'),
    ggml_backend_dev_count: r('size_t ggml_backend_dev_count(void)'),
    ggml_backend_dev_get: r('void *ggml_backend_dev_get(size_t i)'),
  };
}

export type GgmlLib = ReturnType<typeof declare> & { variant: GgmlVariant; binDir: string };

let loaded: GgmlLib | undefined;

/** The ggml build this process has loaded, if any (every build also holds the CPU backend). */
export const loadedGgmlVariant = (): GgmlVariant | undefined => loaded?.variant;

/**
 * Loads one variant's libggml-base + registry library and all its backends, once per process.
 * The libraries cannot be unloaded, so a second, different variant is refused.
 */
export function loadGgml(variant: GgmlVariant = 'cpu'): GgmlLib {
  if (loaded) {
    if (loaded.variant !== variant) {
      throw new QtkError(`ggml's ${loaded.variant} build is already loaded in this process; the ${variant} build cannot be loaded beside it. Run the ${variant} job in a separate process.`);
    }
    return loaded;
  }
  const opened = openBase(variant);
  const { binDir: dir, base } = opened;
  const reg = koffi.load(registryFile(dir, variant)!);
  const lib = declare(base, reg) as GgmlLib;
  lib.variant = variant;
  lib.binDir = dir;
  withQuietLogs(base, lib, () => lib.ggml_backend_load_all_from_path(dir));
  loaded = lib;
  engineBase = opened;
  return lib;
}

// ggml logs every backend it loads and every tensor it repacks at INFO level on stderr. Around
// such synchronous calls, keep warnings and errors only (level >= 3), then put back whatever logger
// was there (node-llama-cpp installs its own in the same libggml-base). The JS callback is never
// left installed: ggml's compute threads must not call into JS.
/** A library's logger getter and setter (ggml's or llama.cpp's), and the callback to install around a call. */
export interface LogHooks {
  get: (cb: unknown[], ud: unknown[]) => void;
  set: (cb: unknown, ud: unknown) => void;
  cb: unknown;
}

/** Runs a synchronous call with `hooks.cb` as the library's logger, then puts back whatever logger was there. */
export function withLogCallback<T>(hooks: LogHooks, fn: () => T): T {
  const prevCb: unknown[] = [null], prevUd: unknown[] = [null];
  hooks.get(prevCb, prevUd);
  hooks.set(hooks.cb, null);
  try {
    return fn();
  } finally {
    hooks.set(prevCb[0] ?? null, prevUd[0] ?? null);
  }
}

let logFns: LogHooks | undefined;
function logHooks(base: LibraryHandle, lib: ReturnType<typeof declare>): LogHooks {
  const cb = koffi.register((level: number, text: string) => {
    if (level >= 3 || process.env.QTK_GGML_LOG) process.stderr.write(text);
  }, koffi.pointer(lib.logCallbackProto));
  return {
    get: base.func('void ggml_log_get(_Out_ void **cb, _Out_ void **user_data)'),
    set: base.func('void ggml_log_set(void *cb, void *user_data)'),
    cb,
  };
}

function withQuietLogs<T>(base: LibraryHandle | undefined, lib: ReturnType<typeof declare>, fn: () => T): T {
  if (base) logFns ??= logHooks(base, lib);
  return logFns ? withLogCallback(logFns, fn) : fn();
}

/** Runs a synchronous ggml call with INFO logging silenced (warnings and errors still print). */
export function quietGgml<T>(lib: GgmlLib, fn: () => T): T {
  return withQuietLogs(undefined, lib, fn);
}

export { koffi };
