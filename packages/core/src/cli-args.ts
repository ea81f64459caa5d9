// One place where command-line numbers, sizes, durations, ports and choices are parsed.
// Every parser takes the flag's name and the raw value (a string, or what yargs made of it: a
// number, NaN, an array when the flag was repeated) and returns the value or throws a QtkError
// naming the flag, the value given and the allowed range. `undefined` in gives `undefined` out,
// so optional flags keep their package default.
import { QtkError } from './errors.js';

function flagName(flag: string): string {
  return flag.startsWith('-') || flag.startsWith('<') ? flag : flag.length === 1 ? `-${flag}` : `--${flag}`;
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' && Number.isNaN(value)) return 'a value that is not a number';
  if (Array.isArray(value)) return `${value.length} values (${value.map((v) => String(v)).join(', ')})`;
  return String(value);
}

function bad(flag: string, value: unknown, allowed: string, example: string): QtkError {
  return new QtkError(`${flagName(flag)}: got ${shown(value)}; allowed: ${allowed}. Pass e.g. ${flagName(flag)} ${example}.`);
}

/** The single raw value of a flag, refusing a flag given twice or given without a value. */
function single(flag: string, value: unknown, allowed: string, example: string): string | number {
  if (Array.isArray(value) || typeof value === 'boolean' || value === null || value === '') throw bad(flag, value, allowed, example);
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return value.trim();
  throw bad(flag, value, allowed, example);
}

function rangeText(kind: string, min: number | undefined, max: number | undefined, exclusiveMin = false): string {
  const lo = min === undefined ? '' : exclusiveMin ? `> ${min}` : `≥ ${min}`;
  const hi = max === undefined ? '' : `≤ ${max}`;
  return [kind, [lo, hi].filter(Boolean).join(' and ')].filter(Boolean).join(' ');
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export interface IntRange { min: number; max?: number; /** The value the message suggests (default: 4 clamped to the range). */ example?: number }

/** An integer flag such as --threads or --ctx: decimal digits only ("4", not "4.5", "0x4" or "4k"). */
export function intArg(flag: string, value: unknown, range: IntRange): number | undefined {
  if (value === undefined) return undefined;
  const allowed = rangeText('integers', range.min, range.max);
  const example = String(range.example ?? Math.max(range.min, Math.min(range.max ?? Infinity, 4)));
  const raw = single(flag, value, allowed, example);
  const n = typeof raw === 'number' ? raw : /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < range.min || (range.max !== undefined && n > range.max)) throw bad(flag, value, allowed, example);
  return n;
}

export interface NumberRange { min?: number; max?: number; exclusiveMin?: boolean; /** The value the message suggests. */ example?: number }

/** A finite decimal number such as --temperature or --lr ("0.5", "1e-4"). */
export function numberArg(flag: string, value: unknown, range: NumberRange = {}): number | undefined {
  if (value === undefined) return undefined;
  const allowed = rangeText('finite numbers', range.min, range.max, range.exclusiveMin);
  const example = String(range.example ?? (range.min !== undefined && range.min > 1 ? range.min : range.max !== undefined && range.max < 1 ? range.max : 1));
  const raw = single(flag, value, allowed, example);
  const n = typeof raw === 'number' ? raw : DECIMAL.test(raw) ? Number(raw) : NaN;
  const tooLow = range.min !== undefined && (range.exclusiveMin ? n <= range.min : n < range.min);
  if (!Number.isFinite(n) || tooLow || (range.max !== undefined && n > range.max)) throw bad(flag, value, allowed, example);
  return n;
}

// Decimal (KB, MB, GB, TB) are powers of 1000, binary (KiB …) powers of 1024; a bare letter
// (K, M, G, T), as memory sizes are usually written, is binary.
const SIZE_UNITS = {
  '': 1, b: 1,
  k: 1024, kib: 1024, kb: 1e3,
  m: 1024 ** 2, mib: 1024 ** 2, mb: 1e6,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1e9,
  t: 1024 ** 4, tib: 1024 ** 4, tb: 1e12,
} as const;

/** A size in bytes: "24GiB", "16GB", "512MiB", "1.5G", "1048576". Returns whole bytes. */
export function sizeArg(flag: string, value: unknown, range: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const min = range.min ?? 1;
  const allowed = `a size of at least ${min} bytes${range.max === undefined ? '' : ` and at most ${range.max} bytes`}, as bytes or with a unit (K, M, G, T; KiB, MiB, GiB; KB, MB, GB)`;
  const raw = single(flag, value, allowed, '24GiB');
  let bytes = NaN;
  if (typeof raw === 'number') {
    bytes = raw;
  } else {
    const m = /^(\d+\.?\d*|\.\d+)\s*([a-zA-Z]*)$/.exec(raw);
    const unit = m?.[2]?.toLowerCase() ?? '';
    if (m && unit in SIZE_UNITS) bytes = Number(m[1]) * SIZE_UNITS[unit as keyof typeof SIZE_UNITS];
  }
  bytes = Math.round(bytes);
  if (!Number.isSafeInteger(bytes) || bytes < min || (range.max !== undefined && bytes > range.max)) throw bad(flag, value, allowed, '24GiB');
  return bytes;
}

const TIME_UNITS = { '': 1, s: 1, ms: 1e-3, m: 60, min: 60, h: 3600 } as const;

/** A duration in seconds: "30", "2.5", "500ms", "30s", "5m", "1h". Finite and > 0 unless min says otherwise. */
export function secondsArg(flag: string, value: unknown, range: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const allowed = `${range.min === undefined ? 'finite seconds > 0' : `finite seconds ≥ ${range.min}`}${range.max === undefined ? '' : ` and ≤ ${range.max}`} (a number, or with ms, s, m, h)`;
  const raw = single(flag, value, allowed, '30');
  let s = NaN;
  if (typeof raw === 'number') {
    s = raw;
  } else {
    const m = /^(\d+\.?\d*|\.\d+)\s*([a-zA-Z]*)$/.exec(raw);
    const unit = m?.[2]?.toLowerCase() ?? '';
    if (m && unit in TIME_UNITS) s = Number(m[1]) * TIME_UNITS[unit as keyof typeof TIME_UNITS];
  }
  const tooLow = range.min === undefined ? !(s > 0) : !(s >= range.min);
  if (!Number.isFinite(s) || tooLow || (range.max !== undefined && s > range.max)) throw bad(flag, value, allowed, '30');
  return s;
}

/** One of a fixed set of words, matched without regard to case; returns the spelling in `choices`. */
export function enumArg<const C extends string>(flag: string, value: unknown, choices: readonly C[]): C | undefined {
  if (value === undefined) return undefined;
  const allowed = `one of ${choices.join(', ')}`;
  const raw = single(flag, value, allowed, choices[0] ?? '');
  const s = String(raw);
  const exact = choices.find((c) => c === s);
  if (exact !== undefined) return exact;
  const folded = choices.filter((c) => c.toLowerCase() === s.toLowerCase());
  if (folded.length === 1) return folded[0];
  throw bad(flag, value, allowed, choices[0] ?? '');
}

/** A TCP port, 1–65535 (0, "any free port", only when allowZero is set). */
export function portArg(flag: string, value: unknown, opts: { allowZero?: boolean } = {}): number | undefined {
  return intArg(flag, value, { min: opts.allowZero ? 0 : 1, max: 65535, example: 8080 });
}

/** A text flag such as a path, name or key: one value, kept as given (no trimming: a path may end in a space). */
export function stringArg(flag: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw bad(flag, value, 'one non-empty value', '<value>');
}
