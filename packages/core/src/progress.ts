// Progress for long work: a single redrawn line on a TTY, nothing at all in pipes and CI.

export interface Progress {
  /** Advance by `units` (bytes, tensors, tokens…); `label` names the current item. */
  tick(units: number, label?: string): void;
  /** Clear the line (on a TTY) and stop drawing. */
  done(): void;
}

export interface ProgressOptions {
  title: string;
  total: number;
  /** How to print amounts: 'bytes' shows MB and MB/s, 'count' plain numbers with `unit`. */
  kind?: 'bytes' | 'count';
  unit?: string;
  stream?: NodeJS.WriteStream;
}

const QUIET: Progress = { tick() {}, done() {} };

export function progressEnabled(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !process.env.CI && process.env.QTK_PROGRESS !== '0';
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!progressEnabled(stream)) return QUIET;
  const start = performance.now();
  let done = 0;
  let lastDraw = 0;
  const fmt = (n: number) => (opts.kind === 'bytes' ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n)}${opts.unit ? ' ' + opts.unit : ''}`);
  const draw = (label?: string) => {
    const secs = (performance.now() - start) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const pct = opts.total > 0 ? Math.min(100, (100 * done) / opts.total) : 0;
    const eta = rate > 0 && opts.total > done ? (opts.total - done) / rate : 0;
    const rateText = opts.kind === 'bytes' ? `${(rate / 1e6).toFixed(1)} MB/s` : `${rate.toFixed(1)} ${opts.unit ?? ''}/s`;
    const line = `${opts.title} ${pct.toFixed(1)}% ${fmt(done)}/${fmt(opts.total)} ${rateText} ETA ${eta.toFixed(0)}s${label ? ' ' + label : ''}`;
    stream.write(`\r${line.slice(0, (stream.columns || 100) - 1)}\x1b[K`);
  };
  return {
    tick(units, label) {
      done += units;
      const now = performance.now();
      if (now - lastDraw > 100) {
        lastDraw = now;
        draw(label);
      }
    },
    done() {
      stream.write('\r\x1b[K');
    },
  };
}
