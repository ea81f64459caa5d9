// Sequences served at once plus a bounded FIFO queue. A context carries one set of LoRA scales for
// all its sequences, so requests run together only when their scales agree (llama-server does not
// batch slots with different adapters either); the set switches when the context is idle.
import { ApiError } from './errors.js';

export interface Slot {
  /** Index of the sequence in the context. */
  readonly index: number;
}

/** How much of a request's prompt a free sequence already holds (tokens); the best one is taken. */
export type Affinity = (index: number) => number;

interface Waiter {
  key: string;
  scales: readonly number[];
  affinity?: Affinity;
  resolve: (slot: Slot) => void;
  reject: (err: unknown) => void;
}

export class SlotPool {
  private readonly free: number[];
  private readonly queue: Waiter[] = [];
  private active = 0;
  private activeKey: string | null = null;
  private currentKey: string;
  /** Set while the LoRA scales of the context are being changed. */
  private switching: Promise<void> | null = null;
  draining = false;

  constructor(
    readonly size: number,
    readonly queueLimit: number,
    initialScales: readonly number[],
    /** Applies a new set of scales to the context; called only while no sequence is busy. */
    private readonly applyScales: (scales: readonly number[]) => Promise<void>,
  ) {
    this.free = Array.from({ length: size }, (_, i) => i);
    this.currentKey = initialScales.join(',');
  }

  get processing(): number {
    return this.active;
  }
  get deferred(): number {
    return this.queue.length;
  }
  get idle(): number {
    return this.free.length;
  }

  /** Waits for a sequence that runs with these adapter scales; 429 when the queue is full. */
  async acquire(scales: readonly number[], signal: AbortSignal, affinity?: Affinity): Promise<Slot> {
    if (this.draining) throw new ApiError(503, 'The server is shutting down and takes no new requests.', 'server_error', 'shutting_down');
    const key = scales.join(',');
    if (this.queue.length === 0 && this.canStart(key)) return this.start(key, scales, affinity);
    if (this.queue.length >= this.queueLimit) {
      throw new ApiError(
        429,
        `All ${this.size} sequences are busy and ${this.queue.length} requests are already waiting (queue limit ${this.queueLimit}). Retry later, or start the server with a larger --parallel or --queue.`,
        'rate_limit_error',
        'queue_full',
        null,
        { 'Retry-After': '1' },
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = { key, scales, affinity, resolve, reject };
      this.queue.push(waiter);
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal.reason ?? new Error('aborted'));
        this.pump();
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      waiter.resolve = (slot) => {
        signal.removeEventListener('abort', onAbort);
        resolve(slot);
      };
    });
  }

  release(slot: Slot): void {
    this.active--;
    this.free.push(slot.index);
    if (this.active === 0) this.activeKey = null;
    this.pump();
  }

  /** Resolves once nothing runs or waits. */
  async idleNow(): Promise<void> {
    while (this.active > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, 20));
  }

  private canStart(key: string): boolean {
    return this.free.length > 0 && (this.active === 0 || this.activeKey === key);
  }

  /** The free sequence holding most of the prompt; otherwise the lowest index, so the busy sequence ids stay
   *  consecutive (llama.cpp packs only consecutive ids into one micro-batch, see batching.ts). */
  private take(affinity: Affinity | undefined): number {
    let best = 0;
    for (let i = 1; i < this.free.length; i++) {
      const a = this.free[i]!;
      const b = this.free[best]!;
      const sa = affinity?.(a) ?? 0;
      const sb = affinity?.(b) ?? 0;
      if (sa > sb || (sa === sb && a < b)) best = i;
    }
    return this.free.splice(best, 1)[0]!;
  }

  private async start(key: string, scales: readonly number[], affinity?: Affinity): Promise<Slot> {
    const index = this.take(affinity);
    this.active++;
    const first = this.activeKey === null;
    this.activeKey = key;
    if (first && key !== this.currentKey) {
      this.currentKey = key;
      this.switching = this.applyScales(scales).finally(() => (this.switching = null));
    }
    try {
      if (this.switching) await this.switching;
    } catch (err) {
      this.currentKey = ''; // unknown state: the next request applies its scales again
      this.release({ index });
      throw err;
    }
    return { index };
  }

  private pump(): void {
    while (this.queue.length > 0 && this.canStart(this.queue[0]!.key)) {
      const w = this.queue.shift()!;
      this.start(w.key, w.scales, w.affinity).then(w.resolve, w.reject);
    }
  }
}
