// Best, median and spread of a bench's timed runs, so a reader sees the noise beside the best figure.
/** @param {number[]} seconds */
export function runStats(seconds) {
  const s = [...seconds].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { best: s[0], median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** "best 1.20 s, median 1.31 s, spread 1.20–1.52 s (n=3)" */
export function formatStats(seconds, unit = 's') {
  const r = runStats(seconds);
  return `best ${r.best.toFixed(2)} ${unit}, median ${r.median.toFixed(2)} ${unit}, spread ${r.min.toFixed(2)}–${r.max.toFixed(2)} ${unit} (n=${r.n})`;
}
