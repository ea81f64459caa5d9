// A packed row: which document each token belongs to, and what that means for positions, the
// attention mask and the conv window. Nothing may flow across a change of document id.

export interface RowLayout {
  readonly T: number;
  /** Document spans [start, end) in order. */
  readonly docs: readonly (readonly [number, number])[];
  /** Document index (0, 1, …) of each token. */
  readonly docOf: Int32Array;
  /** Position of each token inside its document (RoPE restarts at each document). */
  readonly positions: Int32Array;
  /** f32 [T keys, T queries]: 0 where key j ≤ query i in the same document, −inf elsewhere. */
  mask(): Float32Array;
  /** [1, T] 0/1 for conv tap i of K: 1 where the tap's token t + i − (K−1) is in t's document. */
  convKeep(K: number, i: number): Float32Array;
}

export function rowLayout(T: number, documentIds?: ArrayLike<number>): RowLayout {
  const docOf = new Int32Array(T);
  const docs: [number, number][] = [];
  let start = 0;
  for (let t = 1; t <= T; t++) {
    if (t === T || (documentIds && documentIds[t] !== documentIds[t - 1])) {
      docs.push([start, t]);
      start = t;
    }
  }
  const positions = new Int32Array(T);
  const startOf = new Int32Array(T);
  docs.forEach(([s, e], d) => {
    for (let t = s; t < e; t++) {
      docOf[t] = d;
      positions[t] = t - s;
      startOf[t] = s;
    }
  });
  return {
    T,
    docs,
    docOf,
    positions,
    mask() {
      const m = new Float32Array(T * T).fill(-Infinity);
      for (let i = 0; i < T; i++) m.fill(0, i * T + startOf[i]!, i * T + i + 1);
      return m;
    },
    convKeep(K, i) {
      const k = new Float32Array(T);
      for (let t = 0; t < T; t++) k[t] = t + i - (K - 1) >= startOf[t]! ? 1 : 0;
      return k;
    },
  };
}
