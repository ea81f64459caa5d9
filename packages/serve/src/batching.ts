// How the sequences of one context share a decode. node-llama-cpp queues each sequence's tokens and
// packs the queue into one llama_decode; two facts decide whether that packing pays:
// - llama.cpp keeps one KV stream per sequence (kv_unified off, as node-llama-cpp creates contexts), and
//   then splits a batch into micro-batches of *consecutive, ascending* sequence ids (split_equal with
//   sequential = true). Tokens added in queue order (e.g. 3, 1, 2, 0) run as several graph computes,
//   so the batch is ordered by sequence id here (measured: 4 sequences in descending order cost ≈ 4×
//   one token, in ascending order ≈ 1.3×).
// - the batch must be dispatched once every generating sequence has queued its token, not on the
//   next event-loop turn, which a sequence still doing its per-token JS work misses.
import type { BatchItem, LlamaContext, PrioritizedBatchItem } from 'node-llama-cpp';

/** node-llama-cpp 3.21.1 internals read to map a batch item to its sequence (checked at start-up). */
interface ContextQueue {
  _queuedDecodes: { tokens: readonly unknown[]; sequenceId: number }[];
  _queuedDecodeSequenceIds: Set<number>;
}

export interface DecodeStats {
  /** llama_decode calls. */
  calls: number;
  /** Tokens in those calls (prompt and generated). */
  tokens: number;
}

/** Longest wait for the remaining generating sequences before a partial batch goes out. */
const GATHER_LIMIT_MS = 2;

export class BatchScheduler {
  readonly stats: DecodeStats = { calls: 0, tokens: 0 };
  private context: (LlamaContext & ContextQueue) | undefined;
  /** Sequences inside a generation (between their first and last decode). */
  generating = 0;

  attach(context: LlamaContext): void {
    const c = context as LlamaContext & Partial<ContextQueue>;
    if (!Array.isArray(c._queuedDecodes) || !(c._queuedDecodeSequenceIds instanceof Set)) {
      throw new Error('This node-llama-cpp build has no LlamaContext._queuedDecodes; install node-llama-cpp 3.21.1 as qtk pins it.');
    }
    this.context = c as LlamaContext & ContextQueue;
  }

  /** `batching` options for createContext. */
  options(): { dispatchSchedule: (dispatch: () => void) => void; itemPrioritizationStrategy: (o: { items: readonly BatchItem[]; size: number }) => PrioritizedBatchItem[] } {
    return {
      dispatchSchedule: (dispatch) => this.gather(dispatch),
      itemPrioritizationStrategy: ({ items, size }) => this.order(items, size),
    };
  }

  private queuedSequences(): number {
    return this.context?._queuedDecodeSequenceIds.size ?? 0;
  }

  private gather(dispatch: () => void): void {
    const start = performance.now();
    const poll = (): void => {
      if (this.queuedSequences() >= this.generating || performance.now() - start >= GATHER_LIMIT_MS) dispatch();
      else setImmediate(poll);
    };
    setImmediate(poll);
  }

  /** Whole items in sequence-id order up to the batch size; a prompt that does not fit is continued next call. */
  private order(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
    const ids = new Map<readonly unknown[], number>();
    for (const q of this.context?._queuedDecodes ?? []) ids.set(q.tokens, q.sequenceId);
    const sorted = [...items].sort((a, b) => (ids.get(a.tokens) ?? 0) - (ids.get(b.tokens) ?? 0));
    const out: PrioritizedBatchItem[] = [];
    let left = size;
    // One token of every sequence first (generating sequences never wait behind a long prompt), then
    // the rest of the prompts in id order, as llama-server interleaves prompt chunks with generation.
    for (const item of sorted) {
      if (left <= 0) break;
      out.push({ item, processAmount: 1 });
      left--;
    }
    for (const p of out) {
      const more = Math.min(p.item.tokens.length - 1, left);
      p.processAmount += more;
      left -= more;
    }
    this.stats.calls++;
    this.stats.tokens += out.reduce((s, p) => s + p.processAmount, 0);
    return out;
  }
}
