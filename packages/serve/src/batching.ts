// How the sequences of one context share a decode. node-llama-cpp queues each sequence's tokens and
// packs the queue into one llama_decode; three facts decide whether that packing pays:
// - llama.cpp keeps one KV stream per sequence (kv_unified off, as node-llama-cpp creates contexts), and
//   then splits a batch into micro-batches of *consecutive, ascending* sequence ids (split_equal with
//   sequential = true). Tokens added in queue order (e.g. 3, 1, 2, 0) run as several graph computes,
//   so the batch is ordered by sequence id here (measured: 4 sequences in descending order cost ≈ 4×
//   one token, in ascending order ≈ 1.3×).
// - node-llama-cpp samples each sequence in its own worker after the decode and hands the token back as
//   soon as that sample is done; a sequence whose consumer queues its next token before the others'
//   samples finish is decoded alone by the dispatcher's next loop. So submissions are held here until
//   every generating sequence has submitted (or GATHER_LIMIT_MS passed) and then enter the queue together.
// - node-llama-cpp's own dispatch waits for the next event-loop turn; held submissions need no more wait.
import type { BatchItem, LlamaContext, PrioritizedBatchItem } from 'node-llama-cpp';

/** node-llama-cpp 3.21.1 internals used here (checked at start-up). */
interface ContextInternals {
  _queuedDecodes: { tokens: readonly unknown[]; sequenceId: number }[];
  _decodeTokens(item: { sequenceId: number; tokens: readonly unknown[] }, mapper: unknown): Promise<unknown>;
}

export interface DecodeStats {
  /** llama_decode calls. */
  calls: number;
  /** Tokens in those calls (prompt and generated). */
  tokens: number;
}

interface Held {
  item: { sequenceId: number; tokens: readonly unknown[] };
  mapper: unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Longest wait for the remaining generating sequences before a partial batch goes out. */
const GATHER_LIMIT_MS = 2;

export class BatchScheduler {
  readonly stats: DecodeStats = { calls: 0, tokens: 0 };
  private context: (LlamaContext & ContextInternals) | undefined;
  private submit: ContextInternals['_decodeTokens'] | undefined;
  private held: Held[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Submissions handed to node-llama-cpp and not yet answered. */
  private inflight = 0;
  /** Sequences inside a generation (between their first and last decode). */
  private generating = 0;
  /** Tokens submitted per sequence id: what a request really evaluated, re-evaluations included. */
  private readonly submitted = new Map<number, number>();

  evaluated(sequenceId: number): number {
    return this.submitted.get(sequenceId) ?? 0;
  }

  /** Takes over the context's decode queue entry; throws when the node-llama-cpp build lacks it. */
  attach(context: LlamaContext): void {
    const c = context as LlamaContext & Partial<ContextInternals>;
    if (!Array.isArray(c._queuedDecodes) || typeof c._decodeTokens !== 'function') {
      throw new Error('This node-llama-cpp build has no LlamaContext._queuedDecodes/_decodeTokens; install node-llama-cpp 3.21.1 as qtk pins it.');
    }
    this.context = c as LlamaContext & ContextInternals;
    this.submit = c._decodeTokens.bind(c);
    c._decodeTokens = (item, mapper) =>
      new Promise((resolve, reject) => {
        this.submitted.set(item.sequenceId, this.evaluated(item.sequenceId) + item.tokens.length);
        this.held.push({ item, mapper, resolve, reject });
        this.check();
      });
  }

  /** `batching` options for createContext. */
  options(): { dispatchSchedule: (dispatch: () => void) => void; itemPrioritizationStrategy: (o: { items: readonly BatchItem[]; size: number }) => PrioritizedBatchItem[] } {
    return {
      dispatchSchedule: (dispatch) => queueMicrotask(dispatch),
      itemPrioritizationStrategy: ({ items, size }) => this.order(items, size),
    };
  }

  /** Brackets one request's generation on a sequence. */
  begin(): void {
    this.generating++;
  }
  end(): void {
    this.generating--;
    this.check();
  }

  /** Everyone generating has submitted: go. Otherwise wait, but only while no decode is running: the
   *  sequences of a running decode come back to join, and a group sent early would stay out of step. */
  private check(): void {
    if (this.held.length === 0) return;
    if (this.held.length >= this.generating) this.flush();
    else if (this.inflight === 0) this.timer ??= setTimeout(() => this.flush(), GATHER_LIMIT_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const held = this.held.sort((a, b) => a.item.sequenceId - b.item.sequenceId);
    this.held = [];
    this.inflight += held.length;
    const settled = (): void => {
      this.inflight--;
      this.check();
    };
    for (const h of held) {
      this.submit!(h.item, h.mapper).then(
        (v) => {
          h.resolve(v);
          settled();
        },
        (e: unknown) => {
          h.reject(e);
          settled();
        },
      );
    }
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
