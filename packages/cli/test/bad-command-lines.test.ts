// Bad command lines, run through the built `qtk` bin as a user runs it: each must exit non-zero,
// print exactly one line on stderr naming the flag or file at fault, and leave the working
// folder byte-for-byte as it was (no output, no temp file, no replaced input).
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufWriter } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { snapshot } from './dir-snapshot.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/qtk.js');

function qtk(cwd: string, args: readonly string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: 'true' } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

type Case = [args: string[], names: RegExp];

// The working folder: hf/ (a 2-shard checkpoint), m-f16.gguf, link.gguf → m-f16.gguf (symlink),
// hard.gguf (a hard link to it), text.txt, notes.txt, afile, emptydir/, outdir/.
const CASES: Case[] = [
  // quantize
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--threads', 'abc'], /--threads: got "abc"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--threads', '0'], /--threads: got "0"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--threads=-3'], /--threads: got "-3"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--threads', '2.5'], /--threads: got "2\.5"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', 'abc'], /--bits: got "abc"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '7'], /--bits: got "7"/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--type', 'Q8_0'], /--type and --bits/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--type', 'Q9_X'], /Q9_X/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--imatrix', 'a.dat', '--imatrix', 'b.dat'], /--imatrix: got 2 values/],
  [['quantize', 'm-f16.gguf', 'q.gguf'], /--bits/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--method', 'gptq', '--calib', 'text.txt', '--gptq-solver', 'turbo'], /--gptq-solver: got "turbo"; allowed: one of fast, reference/],
  [['quantize', 'link.gguf', 'm-f16.gguf', '--bits', '8', '--force'], /m-f16\.gguf: is the input link\.gguf/],
  [['quantize', 'm-f16.gguf', 'hard.gguf', '--bits', '8', '--force'], /hard\.gguf: is the input m-f16\.gguf/],
  [['quantize', 'm-f16.gguf', 'm-f16.gguf', '--bits', '8', '--force'], /m-f16\.gguf: is the input/],
  [['quantize', 'missing.gguf', 'q.gguf', '--bits', '4'], /missing\.gguf/],
  [['quantize', 'notes.txt', 'q.gguf', '--bits', '4'], /notes\.txt/],
  [['quantize', 'm-f16.gguf', 'outdir', '--bits', '4', '--force'], /outdir: is a folder/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--imatrix', 'missing.dat'], /missing\.dat/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--bits', '4', '--imatrix', 'm-f16.gguf'], /m-f16\.gguf/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--fit', '1KiB'], /--fit 0\.000 GiB \(1024 bytes\) is below the smallest this model can be: .*Pass --fit [\d.]+GiB or more/],
  [['quantize', 'm-f16.gguf', 'q.gguf', '--fit', 'lots'], /--fit: got "lots"/],
  // plan
  [['plan', 'mamba.json', '--vram', '24GiB'], /mamba\.json: architecture "MambaForCausalLM" is not supported\. The memory model .* knows: qwen3_5 \(.*; llama .*\. Pass the config\.json or GGUF/],
  [['plan', 'bare.gguf', '--vram', '24GiB'], /bare\.gguf: qwen35\.embedding_length is missing/],
  [['plan', 'notes.txt', '--vram', '24GiB'], /notes\.txt/],
  [['plan', 'missing.json', '--vram', '24GiB'], /missing\.json: no such file/],
  [['plan', 'hf', '--vram', 'abc'], /--vram: got "abc"/],
  [['plan', 'hf', '--vram', '24GiB', '--ctx', '0'], /--ctx: got "0"/],
  [['plan', 'hf', '--vram', '24GiB', '--train', '--rank', '0'], /--rank: got "0"/],
  [['plan', 'hf', '--vram', '24GiB', '--train', '--seq-len', '8'], /--seq-len: got "8"/],
  // convert
  [['convert', 'hf', '-o', 'hf/model-00001-of-00002.safetensors', '--force'], /--output .*model-00001-of-00002\.safetensors: is the input/],
  [['convert', 'hf', '-o', 'hf/config.json', '--force'], /config\.json: is the input/],
  [['convert', 'hf', '-o', 'outdir', '--force'], /outdir: is a folder/],
  [['convert', 'hf', '-o', 'm-f16.gguf'], /m-f16\.gguf: already exists.*--force/],
  [['convert', 'hf', '--outtype', 'f8'], /--outtype: got "f8"/],
  [['convert', 'hf', '-o', 'a.gguf', '-o', 'b.gguf'], /--output: got 2 values/],
  [['convert', 'missing-dir'], /missing-dir/],
  [['convert', 'notes.txt'], /notes\.txt: not a folder/],
  [['convert', 'emptydir'], /config\.json/],
  // imatrix
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '-o', 'm-f16.gguf', '--force'], /--output m-f16\.gguf: is the input/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '-o', 'link.gguf', '--force'], /--output link\.gguf: is the input/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '-o', 'text.txt', '--force'], /--output text\.txt: is the input/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '-o', 'hard.gguf', '--force'], /--output hard\.gguf: is the input/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '--ctx', 'abc'], /--ctx: got "abc"/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '--chunks', '0'], /--chunks: got "0"/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '--device', 'tpu'], /--device: got "tpu"/],
  [['imatrix', 'm-f16.gguf', '--data', 'text.txt', '--batch', '1.5'], /--batch: got "1\.5"/],
  // eval
  [['eval', 'ppl', 'm-f16.gguf', '--data', 'text.txt', '--ctx', '0'], /--ctx: got "0"/],
  [['eval', 'ppl', 'm-f16.gguf', '--data', 'text.txt', '--threads', 'x'], /--threads: got "x"/],
  [['eval', 'ppl', 'm-f16.gguf', '--data', 'text.txt', '--split', 'test'], /--split: got "test"/],
  [['eval', 'ppl', 'm-f16.gguf', '--data', 'missing.txt'], /missing\.txt/],
  [['eval', 'ppl', 'm-f16.gguf'], /data/],
  [['eval', 'kld', 'm-f16.gguf', 'missing.gguf', '--data', 'text.txt'], /missing\.gguf/],
  [['eval', 'frob', 'm-f16.gguf'], /frob/],
  // serve
  [['serve', 'm-f16.gguf', '--port', 'abc'], /--port: got "abc"/],
  [['serve', 'm-f16.gguf', '--port', '70000'], /--port: got "70000"/],
  [['serve', 'm-f16.gguf', '--timeout=-1'], /--timeout: got "-1"/],
  [['serve', 'm-f16.gguf', '--timeout', 'abc'], /--timeout: got "abc"/],
  [['serve', 'm-f16.gguf', '--queue=-1'], /--queue: got "-1"/],
  [['serve', 'm-f16.gguf', '--threads', 'abc'], /--threads: got "abc"/],
  [['serve', 'm-f16.gguf', '--parallel', '0'], /--parallel: got "0"/],
  [['serve', 'm-f16.gguf', '--body-limit', '12XB'], /--body-limit: got "12XB"/],
  [['serve', 'm-f16.gguf', '--ctx', '2.5'], /--ctx: got "2\.5"/],
  // dataset build
  [['dataset', 'build', 'hf', '--tokenizer', 'm-f16.gguf', '--seq-len', 'abc'], /--seq-len: got "abc"/],
  [['dataset', 'build', 'hf', '--tokenizer', 'm-f16.gguf', '--eval-fraction', '2'], /--eval-fraction: got "2"/],
  [['dataset', 'build', 'hf', '--tokenizer', 'm-f16.gguf', '--max-file-size', '12XB'], /--max-file-size: got "12XB"/],
  [['dataset', 'build', 'hf', '--tokenizer', 'm-f16.gguf', '--near-dup-threshold', 'abc'], /--near-dup-threshold: got "abc"/],
  [['dataset', 'build', 'hf', '--tokenizer', 'm-f16.gguf', '--out', 'afile/sub'], /--out .*afile\/sub: .*afile is a file/],
  [['dataset', 'build', 'emptydir', '--tokenizer', 'm-f16.gguf', '--out', 'newout'], /emptydir: no file was kept/],
  [['dataset', 'build', 'missing-repo', '--tokenizer', 'm-f16.gguf'], /missing-repo/],
  [['dataset', 'build', 'hf', '--tokenizer', 'missing.gguf', '--out', 'newout'], /missing\.gguf/],
  [['dataset', 'frob', 'hf'], /frob/],
  // export gptq
  [['export', 'gptq', 'm-f16.gguf', '--hf', 'hf', '-o', 'gq', '--calib', 'text.txt', '--bits', '3'], /--bits: got "3"; allowed: one of 2, 4, 8/],
  [['export', 'gptq', 'm-f16.gguf', '--hf', 'hf', '-o', 'gq', '--calib', 'text.txt', '--group-size', '100'], /--group-size: got "100"/],
  [['export', 'gptq', 'm-f16.gguf', '--hf', 'hf', '-o', 'gq', '--calib', 'text.txt', '--damp', '-1'], /--damp: got "-1"/],
  [['export', 'gptq', 'm-f16.gguf', '-o', 'gq', '--calib', 'text.txt'], /m-f16\.gguf: a GGUF needs --hf/],
  // inspect and the command table
  [['inspect', 'missing.gguf'], /missing\.gguf/],
  [['inspect', 'notes.txt'], /notes\.txt/],
  [['frobnicate'], /frobnicate/],
  [['quantize'], /input|arguments/],
  // adapt
  [['adapt', 'hf', 'emptydir', '--vram', '100MB'], /--vram 0\.1 GB .*training does not fit.*needs [\d.]+ GiB.*Pass --vram [\d.]+GiB or more/],
  [['adapt', 'hf', 'emptydir', '--vram', 'abc'], /--vram: got "abc"/],
  [['adapt', 'hf', 'emptydir'], /--vram is missing/],
  [['adapt', 'hf', 'emptydir', '--vram', '8GiB', '--rank', '0'], /--rank: got "0"/],
  [['adapt', 'hf', 'emptydir', '--vram', '8GiB', '--type', 'Q4_K_M', '--fit', 'auto'], /--type Q4_K_M and --fit auto/],
  [['adapt', 'hf', 'missing-repo', '--vram', '8GiB'], /missing-repo/],
  [['adapt', 'hf', 'emptydir', '--vram', '8GiB', '-o', 'hf'], /-o hf: .*input/],
];

describe('bad command lines', () => {
  let work: string;
  let before: string[];
  beforeAll(async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-bad-'));
    work = path.join(root, 'work');
    await fs.mkdir(work);
    await generateFixture({ arch: 'qwen3_5', outDir: path.join(work, 'hf'), seed: 3, shards: 2 });
    const c = qtk(work, ['convert', 'hf', '-o', 'm-f16.gguf', '--outtype', 'f16']);
    expect(c.code, c.stderr).toBe(0);
    await fs.symlink('m-f16.gguf', path.join(work, 'link.gguf'));
    await fs.link(path.join(work, 'm-f16.gguf'), path.join(work, 'hard.gguf'));
    await fs.writeFile(path.join(work, 'text.txt'), 'The quick brown fox jumps over the lazy dog. '.repeat(200));
    await fs.writeFile(path.join(work, 'notes.txt'), 'hello, not a model\n');
    await fs.writeFile(path.join(work, 'afile'), 'a file, not a folder\n');
    await fs.mkdir(path.join(work, 'emptydir'));
    await fs.mkdir(path.join(work, 'outdir'));
    await fs.writeFile(path.join(work, 'mamba.json'), JSON.stringify({ architectures: ['MambaForCausalLM'], model_type: 'mamba' }));
    // a qwen35 GGUF whose metadata stops at block_count
    const w = await GgufWriter.create(path.join(work, 'bare.gguf'));
    w.add('general.architecture', 'STRING', 'qwen35');
    w.add('qwen35.block_count', 'UINT32', 2);
    w.addTensorInfo('token_embd.weight', [4, 8], 'F32');
    await w.writeTensorData('token_embd.weight', new Uint8Array(4 * 8 * 4));
    await w.finish();
    before = await snapshot(work);
  });

  it('has at least 40 cases across every command', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    const commands = new Set(CASES.map(([a]) => a[0]));
    for (const c of ['quantize', 'convert', 'imatrix', 'eval', 'serve', 'dataset', 'inspect']) expect(commands).toContain(c);
  });

  it.each(CASES)('qtk %j fails with one line naming the fault and changes nothing', async (args, names) => {
    const r = qtk(work, args);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).not.toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^qtk: /);
    expect(lines[0]).toMatch(names);
    expect(lines[0]).not.toMatch(/unexpected error|NaN|null/);
    expect(await snapshot(work)).toEqual(before);
  });
});
