// The per-tensor type allocation: minimise Σ error(tensor, type) subject to Σ bytes ≤ budget.
// A Lagrangian sweep (each tensor takes argmin error + λ·bytes; bisect λ) finds the best allocation on
// the convex hull of every tensor's (bytes, error) curve; a greedy exchange then spends what is left of
// the budget on the upgrades with the most error saved per byte. Exact on the hull, and never above budget.

export interface AllocItem {
  /** Bytes of each option, ascending. */
  bytes: readonly number[];
  /** Error of each option (same order). */
  error: readonly number[];
}

export interface Allocation {
  /** Option index per item. */
  choice: number[];
  bytes: number;
  error: number;
}

export function minimumBytes(items: readonly Pick<AllocItem, 'bytes'>[]): number {
  return items.reduce((s, it) => s + Math.min(...it.bytes), 0);
}

function pick(items: readonly AllocItem[], lambda: number): number[] {
  return items.map((it) => {
    let best = 0, bestCost = Infinity;
    for (let k = 0; k < it.bytes.length; k++) {
      const cost = it.error[k]! + lambda * it.bytes[k]!;
      if (cost < bestCost || (cost === bestCost && it.bytes[k]! < it.bytes[best]!)) { best = k; bestCost = cost; }
    }
    return best;
  });
}

const total = (items: readonly AllocItem[], choice: readonly number[], f: 'bytes' | 'error') =>
  choice.reduce((s, k, i) => s + items[i]![f][k]!, 0);

/** Throws (RangeError) when even the smallest option of every item exceeds the budget. */
export function allocate(items: readonly AllocItem[], budget: number): Allocation {
  const min = minimumBytes(items);
  if (min > budget) throw new RangeError(`budget ${budget} is below the minimum ${min}`);
  // λ large enough to make the smallest option win everywhere
  let hi = 1;
  while (total(items, pick(items, hi), 'bytes') > budget) hi *= 4;
  let lo = 0;
  let choice = total(items, pick(items, 0), 'bytes') <= budget ? pick(items, 0) : pick(items, hi);
  if (total(items, choice, 'bytes') > budget) {
    for (let iter = 0; iter < 100; iter++) {
      const mid = (lo + hi) / 2;
      if (total(items, pick(items, mid), 'bytes') <= budget) hi = mid;
      else lo = mid;
    }
    choice = pick(items, hi);
  }
  // Greedy exchange: the upgrade with the most error saved per extra byte that still fits, until none does.
  let used = total(items, choice, 'bytes');
  for (;;) {
    let best = -1, bestK = -1, bestGain = 0;
    items.forEach((it, i) => {
      const cur = choice[i]!;
      for (let k = 0; k < it.bytes.length; k++) {
        const extra = it.bytes[k]! - it.bytes[cur]!;
        const saved = it.error[cur]! - it.error[k]!;
        if (extra <= 0 || saved <= 0 || used + extra > budget) continue;
        if (saved / extra > bestGain) { bestGain = saved / extra; best = i; bestK = k; }
      }
    });
    if (best < 0) break;
    used += items[best]!.bytes[bestK]! - items[best]!.bytes[choice[best]!]!;
    choice[best] = bestK;
  }
  return { choice, bytes: total(items, choice, 'bytes'), error: total(items, choice, 'error') };
}
