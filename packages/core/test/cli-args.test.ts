import { describe, it, expect } from 'vitest';
import { intArg, numberArg, sizeArg, secondsArg, enumArg, portArg, stringArg, QtkError } from '../src/index.js';

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(QtkError);
    return (e as Error).message;
  }
  throw new Error('expected a QtkError');
}

describe('intArg', () => {
  it('parses integers within range from strings and numbers', () => {
    expect(intArg('threads', '4', { min: 1 })).toBe(4);
    expect(intArg('threads', 8, { min: 1, max: 8 })).toBe(8);
    expect(intArg('--ctx', ' 512 ', { min: 1 })).toBe(512);
    expect(intArg('threads', undefined, { min: 1 })).toBeUndefined();
  });

  it.each([
    ['abc'], ['4.5'], ['0x4'], ['4k'], [''], ['-3'], ['0'], [NaN], [2.5], [true], [['2', '3']], ['9007199254740993'],
  ])('refuses %j for --threads ≥ 1, naming the flag, the value and the range', (v) => {
    const m = message(() => intArg('threads', v, { min: 1 }));
    expect(m).toMatch(/^--threads: got /);
    expect(m).toContain('integers ≥ 1');
    expect(m).toMatch(/Pass e\.g\. --threads 4\.$/);
  });

  it('names the value as typed and the upper bound', () => {
    expect(message(() => intArg('bits', 'abc', { min: 2, max: 8 }))).toBe('--bits: got "abc"; allowed: integers ≥ 2 and ≤ 8. Pass e.g. --bits 4.');
    expect(message(() => intArg('bits', '9', { min: 2, max: 8 }))).toContain('got "9"');
  });
});

describe('numberArg', () => {
  it('parses finite decimals', () => {
    expect(numberArg('temperature', '0.5', { min: 0 })).toBe(0.5);
    expect(numberArg('lr', '1e-4', { min: 0, exclusiveMin: true })).toBe(1e-4);
    expect(numberArg('x', '.25')).toBe(0.25);
    expect(numberArg('x', undefined)).toBeUndefined();
  });

  it.each([['abc'], ['Infinity'], ['1/2'], [NaN], [Infinity], ['0'], ['-1']])('refuses %j for a value > 0', (v) => {
    const m = message(() => numberArg('lr', v, { min: 0, exclusiveMin: true }));
    expect(m).toMatch(/^--lr: got .*allowed: finite numbers > 0\./);
  });

  it('applies min and max inclusively', () => {
    expect(numberArg('p', '1', { min: 0, max: 1 })).toBe(1);
    expect(message(() => numberArg('p', '1.01', { min: 0, max: 1 }))).toContain('≥ 0 and ≤ 1');
  });
});

describe('sizeArg', () => {
  it.each([
    ['24GiB', 24 * 1024 ** 3],
    ['16GB', 16e9],
    ['512MiB', 512 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['1048576', 1048576],
    ['64k', 65536],
    ['2 TB', 2e12],
    ['100b', 100],
    [4096, 4096],
  ])('%j is %d bytes', (v, bytes) => {
    expect(sizeArg('vram', v)).toBe(bytes);
  });

  it.each([['abc'], ['12XB'], ['-1G'], ['0'], ['G'], ['1.5.2G'], [NaN]])('refuses %j', (v) => {
    const m = message(() => sizeArg('vram', v));
    expect(m).toMatch(/^--vram: got .*allowed: a size of at least 1 bytes.*Pass e\.g\. --vram 24GiB\.$/);
  });

  it('applies a maximum', () => {
    expect(message(() => sizeArg('slab', '2G', { max: 1024 ** 3 }))).toContain('at most 1073741824 bytes');
  });
});

describe('secondsArg', () => {
  it.each([['30', 30], ['2.5', 2.5], ['500ms', 0.5], ['30s', 30], ['5m', 300], ['1h', 3600], [10, 10]])('%j is %d s', (v, s) => {
    expect(secondsArg('timeout', v)).toBe(s);
  });

  it.each([['-1'], ['0'], ['abc'], ['Infinity'], ['5d'], [NaN], [-1]])('refuses %j', (v) => {
    const m = message(() => secondsArg('timeout', v));
    expect(m).toMatch(/^--timeout: got .*allowed: finite seconds > 0/);
  });

  it('allows 0 when min is 0', () => {
    expect(secondsArg('drain', '0', { min: 0 })).toBe(0);
  });
});

describe('enumArg', () => {
  const presets = ['Q4_K_M', 'Q8_0', 'F16'] as const;
  it('returns the canonical spelling, case-insensitively', () => {
    expect(enumArg('type', 'q4_k_m', presets)).toBe('Q4_K_M');
    expect(enumArg('type', 'F16', presets)).toBe('F16');
    expect(enumArg('type', undefined, presets)).toBeUndefined();
  });
  it('lists the choices when refusing', () => {
    expect(message(() => enumArg('type', 'q5', presets))).toBe('--type: got "q5"; allowed: one of Q4_K_M, Q8_0, F16. Pass e.g. --type Q4_K_M.');
    expect(message(() => enumArg('type', ['Q8_0', 'F16'], presets))).toContain('got 2 values');
  });
});

describe('stringArg', () => {
  it('keeps one value as given, spaces included', () => {
    expect(stringArg('alias', 'my model ')).toBe('my model ');
    expect(stringArg('alias', undefined)).toBeUndefined();
  });
  it('refuses a flag given twice, with the values and the flag', () => {
    expect(message(() => stringArg('out', ['a', 'b']))).toBe('--out: got 2 values (a, b); allowed: one non-empty value. Pass e.g. --out <value>.');
  });
  it('names a positional as written in the usage line', () => {
    expect(message(() => stringArg('<repo>', ''))).toBe('<repo>: got ""; allowed: one non-empty value. Pass e.g. <repo> <value>.');
  });
});

describe('portArg', () => {
  it('accepts 1–65535', () => {
    expect(portArg('port', '8080')).toBe(8080);
    expect(portArg('port', 65535)).toBe(65535);
    expect(portArg('port', '0', { allowZero: true })).toBe(0);
  });
  it.each([['abc'], ['0'], ['65536'], ['-1'], ['80.5']])('refuses %j', (v) => {
    expect(message(() => portArg('port', v))).toMatch(/^--port: got .*integers ≥ 1 and ≤ 65535/);
  });
});
