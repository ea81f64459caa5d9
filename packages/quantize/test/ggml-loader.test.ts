// One finder for ggml: the quantizers bind the libggml-base the engine finds, and a broken library
// is an error with the file and what to do, never "no ggml here".
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GGML_VARIANTS, loadGgml, loadGgmlBase, variantBinDir } from '@qtk/engine';
import { loadGgmlQuantizer } from '../src/native/ggml-quantize.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));

/** loadGgmlQuantizer() in a fresh process (the load is cached per process); prints the error. */
function loadInChild(env: NodeJS.ProcessEnv): { code: number; out: string } {
  const script = `import { loadGgmlQuantizer } from '@qtk/quantize';
try { console.log(loadGgmlQuantizer().binDir); } catch (e) { console.log(e.constructor.name + ': ' + e.message); process.exit(3); }`;
  try {
    return { code: 0, out: execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PKG, env: { ...process.env, ...env }, encoding: 'utf8' }) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout };
  }
}

describe('ggml loader', () => {
  it('the quantizers use the engine\'s libggml-base', () => {
    const dir = variantBinDir('cpu');
    expect(dir).toBeDefined();
    expect(loadGgmlQuantizer().binDir).toBe(dir);
    expect(loadGgml('cpu').binDir).toBe(dir);
    expect(loadGgmlBase().binDir).toBe(dir);
  });

  it('a library that does not load is a QtkError naming the file', () => {
    const bad = mkdtempSync(path.join(tmpdir(), 'qtk-badggml-'));
    try {
      writeFileSync(path.join(bad, 'libggml-base.so'), 'not a shared object');
      writeFileSync(path.join(bad, GGML_VARIANTS.cpu.registry), 'not a shared object');
      const { code, out } = loadInChild({ GGML_BIN_DIR: bad });
      expect(code).toBe(3);
      expect(out).toMatch(new RegExp(`^QtkError: ${path.join(bad, 'libggml-base.so')}: cannot load it .*npm ci`));
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('GGML_BIN_DIR holding the libraries is where they are loaded from', () => {
    const real = variantBinDir('cpu')!;
    const other = mkdtempSync(path.join(tmpdir(), 'qtk-ggmldir-'));
    try {
      for (const lib of ['libggml-base.so', GGML_VARIANTS.cpu.registry]) symlinkSync(path.join(real, lib), path.join(other, lib));
      const { code, out } = loadInChild({ GGML_BIN_DIR: other });
      expect(code).toBe(0);
      expect(out.trim()).toBe(other);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
