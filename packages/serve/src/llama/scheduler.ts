// Continuous batching on the JS thread: one llama_decode per step carries the next token of every
// generating sequence and, up to the batch size, chunks of the prompts being read, as llama-server's
// slots do. Facts that shape it:
// - With one KV stream per sequence, llama.cpp splits a batch into micro-batches of consecutive,
//   ascending sequence ids, so the batch is laid out sequence by sequence in id order (measured with
//   node-llama-cpp: 4 sequences in descending order cost ≈ 4× one token, ascending ≈ 1.3×).
// - A step waits for nothing: it runs from setImmediate, after every sequence answered by the last step
//   has had its microtasks (text, stop strings, SSE writes) and asked for its next token.
// - Each sequence samples right after the decode with its own libllama sampler chain.
// - Recurrent and hybrid models cannot cut their state back to a shorter prefix (llama_memory_seq_rm
//   refuses). As llama-server does, the recurrent part of the state is saved at the end of each prompt
//   (llama_state_seq_get_data_ext with LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY: the attention KV stays, and
//   is trimmed to the checkpoint's length after a restore); a follow-up prompt restarts from the longest
//   checkpoint it extends, or from scratch.
import { koffi } from '@qtk/engine';
import type { LlamaDirect } from './direct.js';
import type { SamplerChain } from './sampler.js';

export interface DecodeStats {
  /** llama_decode calls. */
  calls: number;
  /** Tokens in those calls (prompt and generated). */
  tokens: number;
  /** Seconds inside llama_decode. */
  decodeSeconds: number;
  /** Seconds of the steps outside llama_decode: batch layout, sampling, prompt-end checkpoints. */
  stepSeconds: number;
  /** Seconds spent saving recurrent-state checkpoints (part of stepSeconds). */
  checkpointSeconds: number;
}

export interface Sampled {
  token: number;
  /** The logits row the token was drawn from (a copy), when the run asked for it. */
  logits?: Float32Array;
}

/** llama_state_seq_flags: only the state that cannot be trimmed (recurrent, SWA). */
const STATE_PARTIAL_ONLY = 1;
/** Checkpoints kept per sequence (llama-server keeps up to 32, --ctx-checkpoints; these bound the RAM). */
const MAX_CHECKPOINTS = 8;

interface Checkpoint {
  /** Tokens of `held` the saved state covers. */
  tokens: number;
  data: Buffer;
}

interface Seq {
  /** Tokens whose state the context holds for this sequence, in order. */
  held: number[];
  /** Tokens submitted by the current run and not yet decoded. */
  pending: number[];
  /** Tokens sent to llama_decode since start (re-evaluations included). */
  evaluated: number;
  run: SequenceRun | undefined;
  checkpoints: Checkpoint[];
}

export class SequenceRun {
  /** Prompt tokens whose state was already in the context. */
  readonly cachedTokens: number;
  private waiter: { resolve: (s: Sampled) => void; reject: (e: unknown) => void } | undefined;
  private last: number | undefined;
  closed = false;
  /** Set once the prompt has been decoded (its first token sampled). */
  promptDone = false;

  constructor(
    private readonly scheduler: DecodeScheduler,
    readonly id: number,
    readonly sampler: SamplerChain,
    readonly wantLogits: boolean,
    cachedTokens: number,
    /** An aborted run leaves the next step without its tokens (a long prompt stops between chunks). */
    readonly signal?: AbortSignal,
  ) {
    this.cachedTokens = cachedTokens;
  }

  /** Decodes what is pending (the prompt, then the last sampled token) and samples the next token. */
  next(): Promise<Sampled> {
    if (this.closed) return Promise.reject(new Error('the run is closed'));
    if (this.last !== undefined) this.scheduler.submit(this.id, this.last);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.scheduler.wake();
    });
  }

  /** @internal */
  get waiting(): boolean {
    return this.waiter !== undefined;
  }

  /** @internal */
  settle(result: Sampled | Error): void {
    const w = this.waiter!;
    this.waiter = undefined;
    if (result instanceof Error) w.reject(result);
    else {
      this.last = result.token;
      w.resolve(result);
    }
  }

  /** Ends the run; the last sampled token is never decoded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sampler.free();
    this.scheduler.release(this.id);
  }
}

export class DecodeScheduler {
  readonly stats: DecodeStats = { calls: 0, tokens: 0, decodeSeconds: 0, stepSeconds: 0, checkpointSeconds: 0 };
  private readonly seqs: Seq[];
  private scheduled = false;
  private readonly batch: { struct: Record<string, unknown>; token: Int32Array; pos: Int32Array; nSeqId: Int32Array; seqId: Int32Array[]; logits: Int8Array };
  private readonly batchSize: number;

  constructor(private readonly direct: LlamaDirect) {
    const f = direct.f;
    const { sequences, batchSize } = direct.options;
    this.batchSize = batchSize;
    this.seqs = Array.from({ length: sequences }, () => ({ held: [], pending: [], evaluated: 0, run: undefined, checkpoints: [] }));
    // llama_batch_init allocates every array; the JS side writes through views of that memory
    const b = f.batchInit(batchSize, 0, 1) as Record<string, unknown>;
    const view = <T>(ptr: unknown, bytes: number, Ctor: new (buf: ArrayBuffer) => T): T => new Ctor(koffiView(ptr, bytes));
    const seqPtrs = new BigUint64Array(koffiView(b.seq_id, 8 * batchSize));
    this.batch = {
      struct: b,
      token: view(b.token, 4 * batchSize, Int32Array),
      pos: view(b.pos, 4 * batchSize, Int32Array),
      nSeqId: view(b.n_seq_id, 4 * batchSize, Int32Array),
      seqId: Array.from(seqPtrs, (p) => new Int32Array(koffiView(p, 4))),
      logits: view(b.logits, batchSize, Int8Array),
    };
  }

  evaluated(id: number): number {
    return this.seqs[id]!.evaluated;
  }

  /** Tokens sequence `id` holds (for choosing the sequence that shares most of a prompt). */
  held(id: number): readonly number[] {
    return this.seqs[id]!.held;
  }

  /**
   * Starts a request on sequence `id`: keeps the longest prefix of `prompt` the context already holds
   * (at least the last prompt token is evaluated again, to have its logits), drops the rest.
   */
  open(id: number, prompt: readonly number[], sampler: SamplerChain, wantLogits: boolean, signal?: AbortSignal): SequenceRun {
    const s = this.seqs[id]!;
    if (s.run) throw new Error(`sequence ${id} is busy`);
    if (prompt.length === 0) throw new Error('empty prompt');
    const f = this.direct.f;
    let n = 0;
    const limit = Math.min(s.held.length, prompt.length - 1);
    while (n < limit && s.held[n] === prompt[n]) n++;
    if (n < s.held.length) {
      if (!(f.seqRm(this.direct.memory, id, n, -1) as boolean)) n = this.restore(id, n);
      s.held.length = n;
      s.checkpoints = s.checkpoints.filter((c) => c.tokens <= n);
    }
    s.pending = prompt.slice(n);
    s.run = new SequenceRun(this, id, sampler, wantLogits, n, signal);
    return s.run;
  }

  /** Restores the longest checkpoint of sequence `id` that covers at most `n` tokens; returns the tokens
   *  now held (0 when none fits: the whole sequence is dropped, which never fails). */
  private restore(id: number, n: number): number {
    const f = this.direct.f;
    const s = this.seqs[id]!;
    const best = s.checkpoints.filter((c) => c.tokens <= n).sort((a, b) => b.tokens - a.tokens)[0];
    if (best) {
      const read = f.stateSeqSet(this.direct.ctx, best.data, best.data.length, id, STATE_PARTIAL_ONLY) as number;
      if (read === best.data.length && (f.seqRm(this.direct.memory, id, best.tokens, -1) as boolean)) return best.tokens;
    }
    f.seqRm(this.direct.memory, id, -1, -1);
    return 0;
  }

  private checkpoint(id: number): void {
    const f = this.direct.f;
    const s = this.seqs[id]!;
    const size = Number(f.stateSeqSize(this.direct.ctx, id, STATE_PARTIAL_ONLY));
    if (size === 0) return;
    const data = Buffer.alloc(size);
    if (Number(f.stateSeqGet(this.direct.ctx, data, size, id, STATE_PARTIAL_ONLY)) !== size) return;
    s.checkpoints = s.checkpoints.filter((c) => c.tokens !== s.held.length);
    s.checkpoints.push({ tokens: s.held.length, data });
    if (s.checkpoints.length > MAX_CHECKPOINTS) s.checkpoints.shift();
  }

  /** Drops every sequence's state (after the LoRA scales changed); only while no run is open. */
  clearAll(): void {
    for (const s of this.seqs) if (s.run) throw new Error('clearAll while a sequence runs');
    this.direct.f.memoryClear(this.direct.memory, true);
    for (const s of this.seqs) {
      s.held = [];
      s.checkpoints = [];
    }
  }

  /** @internal */
  submit(id: number, token: number): void {
    this.seqs[id]!.pending.push(token);
  }

  /** @internal */
  release(id: number): void {
    const s = this.seqs[id]!;
    s.run = undefined;
    s.pending = [];
  }

  /** @internal A run waits for a token: step once the current microtasks are done. */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const t0 = performance.now();
      try {
        this.step();
      } catch (err) {
        // a failure outside llama_decode's own status: no waiting run may hang on it
        for (const s of this.seqs) if (s.run?.waiting) s.run.settle(err instanceof Error ? err : new Error(String(err)));
      }
      this.stats.stepSeconds += (performance.now() - t0) / 1000;
    });
  }

  private step(): void {
    for (const s of this.seqs) {
      const reason = s.run?.waiting && s.run.signal?.aborted ? s.run.signal.reason : undefined;
      if (reason !== undefined) s.run!.settle(reason instanceof Error ? reason : new Error(String(reason)));
    }
    const ready = this.seqs.map((s, id) => ({ s, id })).filter(({ s }) => s.run?.waiting && s.pending.length > 0);
    if (ready.length === 0) return;
    // one token of each sequence first (generation never waits behind a long prompt), then the rest of
    // the prompts in id order up to the batch size
    const take = ready.map(() => 0);
    let left = this.batchSize;
    for (let i = 0; i < ready.length && left > 0; i++) {
      take[i] = 1;
      left--;
    }
    for (let i = 0; i < ready.length && left > 0; i++) {
      const more = Math.min(ready[i]!.s.pending.length - take[i]!, left);
      take[i]! += more;
      left -= more;
    }
    const b = this.batch;
    let n = 0;
    const outputs: { id: number; row: number }[] = [];
    for (let i = 0; i < ready.length; i++) {
      const { s, id } = ready[i]!;
      const k = take[i]!;
      if (k === 0) continue;
      for (let j = 0; j < k; j++) {
        b.token[n] = s.pending[j]!;
        b.pos[n] = s.held.length + j;
        b.nSeqId[n] = 1;
        b.seqId[n]![0] = id;
        b.logits[n] = 0;
        n++;
      }
      if (k === s.pending.length) {
        b.logits[n - 1] = 1;
        outputs.push({ id, row: n - 1 });
      }
    }
    b.struct.n_tokens = n;
    const f = this.direct.f;
    const td = performance.now();
    const r = f.decode(this.direct.ctx, b.struct) as number;
    const decodeSeconds = (performance.now() - td) / 1000;
    this.stats.decodeSeconds += decodeSeconds;
    this.stats.stepSeconds -= decodeSeconds;
    this.stats.calls++;
    this.stats.tokens += n;
    if (r !== 0) {
      // the context's memory is as before the call: fail the runs in this batch
      const err = new Error(r === 1 ? 'the context has no room left for these tokens' : `llama_decode failed (${r})`);
      for (let i = 0; i < ready.length; i++) if (take[i]! > 0) ready[i]!.s.run!.settle(err);
      return;
    }
    for (let i = 0; i < ready.length; i++) {
      const { s } = ready[i]!;
      const k = take[i]!;
      s.held.push(...s.pending.slice(0, k));
      s.pending = s.pending.slice(k);
      s.evaluated += k;
    }
    for (const { id, row } of outputs) {
      const run = this.seqs[id]!.run!;
      if (!run.promptDone) {
        run.promptDone = true;
        if (this.direct.recurrent) {
          const tc = performance.now();
          this.checkpoint(id);
          this.stats.checkpointSeconds += (performance.now() - tc) / 1000;
        }
      }
      try {
        const logits = run.wantLogits ? new Float32Array(koffiView(f.logitsIth(this.direct.ctx, row), 4 * this.direct.nVocab).slice(0)) : undefined;
        run.settle({ token: run.sampler.sample(row), logits });
      } catch (err) {
        run.settle(err as Error);
      }
    }
    // sequences still reading their prompt go on without waiting for anyone
    if (this.seqs.some((s) => s.run?.waiting && s.pending.length > 0)) this.wake();
  }

  dispose(): void {
    this.direct.f.batchFree(this.batch.struct);
  }
}

function koffiView(ptr: unknown, bytes: number): ArrayBuffer {
  return koffi.view(ptr, bytes);
}
