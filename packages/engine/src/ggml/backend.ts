// Backend choice (cpu | cuda | vulkan | auto), threads, buffers and graph computation.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { QtkError } from '@qtk/core';
import { koffi, loadGgml, loadedGgmlVariant, variantBinDir, type GgmlLib, type GgmlVariant, type Ptr } from './lib.js';
import { GgmlContext } from './context.js';
import { nbytes, type Tensor } from './tensor.js';

export type DeviceChoice = 'auto' | 'cpu' | 'cuda' | 'vulkan';
export const DEVICE_CHOICES: readonly DeviceChoice[] = ['auto', 'cpu', 'cuda', 'vulkan'];

/** ggml_backend_dev_type */
const DEV_TYPE = { CPU: 0, GPU: 1, IGPU: 2, ACCEL: 3 } as const;

export interface BackendOptions {
  device?: DeviceChoice;
  /** CPU threads (default: all cores, at most 16). */
  threads?: number;
}

export interface DeviceInfo {
  name: string;
  description: string;
  type: number;
}

function listDevices(lib: GgmlLib): { ptr: Ptr; info: DeviceInfo }[] {
  const out = [];
  const n = Number(lib.ggml_backend_dev_count());
  for (let i = 0; i < n; i++) {
    const ptr = lib.ggml_backend_dev_get(i) as Ptr;
    out.push({ ptr, info: { name: lib.ggml_backend_dev_name(ptr) as string, description: lib.ggml_backend_dev_description(ptr) as string, type: lib.ggml_backend_dev_type(ptr) as number } });
  }
  return out;
}

// auto picks CUDA only when an NVIDIA driver is visible: loading the CUDA build costs seconds.
/** The ggml build `--device auto` uses: CUDA where its prebuilt package and an NVIDIA driver are present, else the CPU. */
export function autoVariant(): GgmlVariant {
  if (variantBinDir('cuda') && existsSync('/proc/driver/nvidia/version')) return 'cuda';
  return 'cpu';
}

export class Backend {
  private freed = false;
  private constructor(
    readonly lib: GgmlLib,
    readonly ptr: Ptr,
    readonly device: DeviceInfo,
    readonly isCpu: boolean,
    readonly threads: number,
  ) {}

  static create(opts: BackendOptions = {}): Backend {
    const choice = opts.device ?? 'auto';
    if (!DEVICE_CHOICES.includes(choice)) {
      throw new QtkError(`--device ${String(choice)} is not a device choice; use one of ${DEVICE_CHOICES.join(', ')}.`);
    }
    // the CPU device is in every build: a CPU backend beside a loaded GPU build uses that build's
    const variant: GgmlVariant = choice === 'auto' ? autoVariant() : choice === 'cpu' ? (loadedGgmlVariant() ?? 'cpu') : choice;
    const lib = loadGgml(variant);
    const devices = listDevices(lib);
    const wantGpu = choice !== 'cpu' && variant !== 'cpu';
    let dev = devices.find((d) => (wantGpu ? d.info.type === DEV_TYPE.GPU || d.info.type === DEV_TYPE.IGPU : d.info.type === DEV_TYPE.CPU));
    if (!dev && wantGpu && choice === 'auto') dev = devices.find((d) => d.info.type === DEV_TYPE.CPU);
    if (!dev) {
      const seen = devices.map((d) => d.info.name).join(', ') || 'none';
      throw new QtkError(`no ${variant.toUpperCase()} device found (ggml sees: ${seen}). Check the driver (nvidia-smi / vulkaninfo), or choose --device cpu.`);
    }
    const ptr = lib.ggml_backend_dev_init(dev.ptr, null) as Ptr | null;
    if (!ptr) throw new QtkError(`ggml could not start the ${dev.info.name} backend (${dev.info.description}). Choose --device cpu.`);
    const isCpu = dev.info.type === DEV_TYPE.CPU;
    const threads = Math.max(1, Math.min(opts.threads ?? defaultThreads(), 512));
    const be = new Backend(lib, ptr, dev.info, isCpu, threads);
    if (isCpu) be.setThreads(threads);
    return be;
  }

  get name(): string {
    return this.lib.ggml_backend_name(this.ptr) as string;
  }

  setThreads(n: number): void {
    const reg = this.lib.ggml_backend_dev_backend_reg(this.lib.ggml_backend_get_device(this.ptr));
    const fp = this.lib.ggml_backend_reg_get_proc_address(reg, 'ggml_backend_set_n_threads');
    if (fp) koffi.call(fp, this.lib.setNThreadsProto, this.ptr, n);
  }

  /**
   * The CPU's repacking buffer type ("CPU_REPACK"), as llama.cpp uses for weights: Q4_0, Q4_K, Q8_0,
   * IQ4_NL… rearranged for the SIMD gemm kernels. Undefined on other devices or CPUs without it.
   */
  get repackBufferType(): Ptr | undefined {
    if (!this.isCpu) return undefined;
    const dev = this.lib.ggml_backend_get_device(this.ptr);
    const fp = this.lib.ggml_backend_reg_get_proc_address(this.lib.ggml_backend_dev_backend_reg(dev), 'ggml_backend_dev_get_extra_bufts');
    if (!fp) return undefined;
    const list = koffi.call(fp, this.lib.getExtraBuftsProto, dev) as Ptr | null;
    for (let i = 0; list && i < 16; i++) {
      const buft = koffi.decode(list, i * 8, 'void *') as Ptr | null;
      if (!buft) break;
      if (this.lib.ggml_backend_buft_name(buft) === 'CPU_REPACK') return buft;
    }
    return undefined;
  }

  /** Allocates a context's tensors in a buffer of the given type. */
  allocContextIn(ctx: GgmlContext, buft: Ptr): BackendBuffer {
    const buf = this.lib.ggml_backend_alloc_ctx_tensors_from_buft(ctx.ptr, buft) as Ptr | null;
    if (!buf) throw new QtkError(`could not allocate a ${this.lib.ggml_backend_buft_name(buft)} buffer for ${ctx.maxTensors} tensors (out of memory?). Use a smaller model.`);
    return new BackendBuffer(this.lib, buf);
  }

  get bufferType(): Ptr {
    return this.lib.ggml_backend_get_default_buffer_type(this.ptr) as Ptr;
  }

  /** Allocates every tensor of a no_alloc context in one backend buffer. */
  allocContext(ctx: GgmlContext): BackendBuffer {
    const buf = this.lib.ggml_backend_alloc_ctx_tensors(ctx.ptr, this.ptr) as Ptr | null;
    if (!buf) throw new QtkError(`could not allocate a ${this.device.name} buffer for ${ctx.maxTensors} tensors (out of memory?). Use a smaller model or context, or another device.`);
    return new BackendBuffer(this.lib, buf);
  }

  setData(t: Tensor, data: ArrayBufferView, offset = 0): void {
    const n = nbytes(t);
    if (offset < 0 || offset + data.byteLength > n) throw new RangeError(`tensor_set: ${data.byteLength} bytes at ${offset} past the tensor's ${n} bytes`);
    this.lib.ggml_backend_tensor_set(t.ptr, data, offset, data.byteLength);
  }

  getF32(t: Tensor, out?: Float32Array): Float32Array {
    if (t.type !== 'F32') throw new TypeError(`getF32 on a ${t.type} tensor`);
    const n = nbytes(t);
    const dst = out ?? new Float32Array(n / 4);
    if (dst.byteLength !== n) throw new RangeError(`getF32: buffer of ${dst.byteLength} bytes for a tensor of ${n}`);
    this.lib.ggml_backend_tensor_get(t.ptr, dst, 0, n);
    return dst;
  }

  getBytes(t: Tensor, offset: number, size: number, out?: Uint8Array): Uint8Array {
    if (offset < 0 || offset + size > nbytes(t)) throw new RangeError(`tensor_get: ${size} bytes at ${offset} past the tensor's ${nbytes(t)} bytes`);
    const dst = out ?? new Uint8Array(size);
    this.lib.ggml_backend_tensor_get(t.ptr, dst, offset, size);
    return dst;
  }

  supportsOp(t: Tensor): boolean {
    return Boolean(this.lib.ggml_backend_supports_op(this.ptr, t.ptr));
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lib.ggml_backend_free(this.ptr);
  }
}

export class BackendBuffer {
  private freed = false;
  constructor(readonly lib: GgmlLib, readonly ptr: Ptr) {}
  get size(): number {
    return Number(this.lib.ggml_backend_buffer_get_size(this.ptr));
  }
  clear(value = 0): void {
    this.lib.ggml_backend_buffer_clear(this.ptr, value);
  }
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lib.ggml_backend_buffer_free(this.ptr);
  }
}

function defaultThreads(): number {
  const env = Number(process.env.QTK_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  // availableParallelism respects CPU affinity limits
  return Math.min(16, availableParallelism());
}

/** A compute graph plus its allocator, reused across evaluations of graphs of similar size. */
export class GraphRunner {
  private readonly galloc: Ptr;
  private freed = false;
  constructor(readonly backend: Backend) {
    const g = backend.lib.ggml_gallocr_new(backend.bufferType) as Ptr | null;
    if (!g) throw new Error('ggml_gallocr_new failed');
    this.galloc = g;
  }

  /** Builds the forward graph of `outputs` in ctx (which must have been created with graphSize > 0). */
  graph(ctx: GgmlContext, outputs: Tensor[]): Ptr {
    if (ctx.graphSize <= 0) throw new Error('graph: the context was created without room for a graph');
    const gf = ctx.lib.ggml_new_graph_custom(ctx.ptr, ctx.graphSize, ctx.grads) as Ptr;
    for (const t of outputs) ctx.lib.ggml_build_forward_expand(gf, t.ptr);
    return gf;
  }

  /** Allocates the graph's intermediate tensors; inputs must be set AFTER this (the allocator reuses memory). */
  alloc(gf: Ptr): void {
    if (!this.backend.lib.ggml_gallocr_alloc_graph(this.galloc, gf)) {
      throw new QtkError(`could not allocate ${this.backend.device.name} memory for the compute graph. Use a smaller --ctx/--batch, or another device.`);
    }
  }

  compute(gf: Ptr): void {
    // a GPU backend aborts on an op it lacks; CPU runs every op, so only other devices are checked
    if (!this.backend.isCpu) {
      const lib = this.backend.lib;
      const n = lib.ggml_graph_n_nodes(gf) as number;
      for (let i = 0; i < n; i++) {
        const node = lib.ggml_graph_node(gf, i) as Ptr;
        if (!lib.ggml_backend_supports_op(this.backend.ptr, node)) {
          throw new QtkError(`the ${this.backend.device.name} backend cannot run ggml op ${lib.ggml_op_desc(node) as string} (node ${i}). Run with --device cpu.`);
        }
      }
    }
    const st = this.backend.lib.ggml_backend_graph_compute(this.backend.ptr, gf) as number;
    if (st !== 0) throw new Error(`ggml graph compute failed: ${this.backend.lib.ggml_status_to_string(st)}`);
  }

  get bufferSize(): number {
    return Number(this.backend.lib.ggml_gallocr_get_buffer_size(this.galloc, 0));
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.backend.lib.ggml_gallocr_free(this.galloc);
  }
}

