// Executes a conversion plan: metadata, tensor infos, then tensor data streamed chunk by chunk into a
// GgufWriter (temp file + rename). Any failure, SIGINT or SIGTERM deletes the temp file: no partial .gguf remains.
import { createProgress, GgufWriter, onInterrupt } from '@qtk/core';
import { planConversion, type ConversionPlan, type ConvertOptions } from './plan.js';
import { tensorChunks } from './tensor-data.js';

export interface ConvertResult {
  plan: ConversionPlan;
  output: string;
  /** Bytes written (the output file size). */
  bytes: number;
  seconds: number;
}

export interface RunOptions {
  /** Stops the run (as Ctrl-C does): the writer aborts and the temp file is removed. */
  signal?: AbortSignal;
  /** Test hook: wraps the writer before use (e.g. to simulate a full disk). */
  wrapWriter?: (w: GgufWriter) => GgufWriter;
}

/** Plans and converts a checkpoint; returns once the output file is complete and renamed into place. */
export async function convertCheckpoint(opts: ConvertOptions & RunOptions): Promise<ConvertResult> {
  const plan = await planConversion(opts);
  try {
    const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
    for (const n of plan.notices) log(n);
    return await writePlan(plan, opts);
  } finally {
    await plan.checkpoint.close();
  }
}

async function* allChunks(plan: ConversionPlan): AsyncGenerator<{ name: string; chunk: Uint8Array }> {
  for (const t of plan.tensorPlan.tensors) {
    for await (const chunk of tensorChunks(plan.checkpoint, t)) yield { name: t.ggufName, chunk };
  }
}

/** Starts producing the next item while the consumer handles this one: reads overlap writes (two chunks alive). */
async function* readAhead<T>(source: AsyncGenerator<T>): AsyncGenerator<T> {
  let next = source.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = source.next();
      yield r.value;
    }
  } finally {
    // Stopped early (error, Ctrl-C): let the pending read settle, then close the source.
    await next.catch(() => undefined);
    await source.return(undefined);
  }
}

export async function writePlan(plan: ConversionPlan, opts: { force?: boolean } & RunOptions = {}): Promise<ConvertResult> {
  const start = performance.now();
  const stop = () => opts.signal?.aborted ? opts.signal.reason : undefined;

  let writer: GgufWriter | undefined;
  // SIGINT/SIGTERM: remove the temp file, then the process exits 130/143.
  const offInterrupt = onInterrupt(async () => {
    await writer?.abort();
    return `removed the partial ${plan.output}`;
  }, 'convert');
  const progress = createProgress({ title: 'convert', total: plan.fileSize, kind: 'bytes' });
  try {
    writer = await GgufWriter.create(plan.output, { overwrite: opts.force });
    if (opts.wrapWriter) writer = opts.wrapWriter(writer);
    for (const e of plan.metadata) {
      if (e.type === 'ARRAY') writer.addArray(e.key, e.elemType, e.value);
      else writer.add(e.key, e.type, e.value);
    }
    for (const t of plan.tensorPlan.tensors) writer.addTensorInfo(t.ggufName, t.ne, t.type);
    for await (const { name, chunk } of readAhead(allChunks(plan))) {
      const why = stop();
      if (why !== undefined) throw why;
      await writer.writeTensorData(name, chunk);
      progress.tick(chunk.length, name);
    }
    await writer.finish();
  } catch (e) {
    await writer?.abort().catch(() => {});
    throw e;
  } finally {
    offInterrupt();
    progress.done();
  }
  return { plan, output: plan.output, bytes: plan.fileSize, seconds: (performance.now() - start) / 1000 };
}
