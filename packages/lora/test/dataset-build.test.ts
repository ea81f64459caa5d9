import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RecordBatchFileReader, tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qwen3TokenizerPaths } from '@qtk/fixtures';
import { buildDataset, datasetBuildMain, loadDatasetTokenizer, type DatasetTokenizer } from '../src/index.js';
import { SECRETS, expectedContent, makeFixtureRepo, type FixtureRepo } from './dataset-fixture.js';

const TOKENIZER = qwen3TokenizerPaths().tokenizerJson;
const SEQ = 256;
let root: string;
let plain: FixtureRepo;
let gitRepo: FixtureRepo;
let tok: DatasetTokenizer;

interface Row { ids: number[]; mask: number[]; docs: number[]; paths: string[]; split: string }

async function readRows(file: string): Promise<Row[]> {
  const table = tableFromIPC(await fs.readFile(file));
  expect(table.schema.fields.map((f) => f.name)).toEqual(['input_ids', 'loss_mask', 'document_ids', 'source_path', 'split']);
  const rows: Row[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const r = table.get(i)!.toJSON() as Record<string, unknown>;
    const list = (v: unknown) => Array.from((v as { toArray(): ArrayLike<number> }).toArray());
    rows.push({ ids: list(r.input_ids), mask: list(r.loss_mask), docs: list(r.document_ids), paths: String(r.source_path).split('\n'), split: String(r.split) });
  }
  return rows;
}

/** Paths of a split in order of first appearance. */
function splitPaths(rows: Row[]): string[] {
  const seen: string[] = [];
  for (const r of rows) for (const p of r.paths) if (seen[seen.length - 1] !== p) seen.push(p);
  return seen;
}

async function build(repo: FixtureRepo, out: string, extra: Partial<Parameters<typeof buildDataset>[0]> = {}) {
  const skips: Record<string, string> = {};
  const res = await buildDataset({
    repo: repo.dir, tokenizer: TOKENIZER, outDir: out, name: 'demo', repoName: 'demo', seqLen: SEQ, evalFraction: 0.3,
    exclude: ['**/*.test.ts'], onSkip: (p, reason) => { skips[p] = reason; }, ...extra,
  });
  return { ...res, skips };
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-dataset-'));
  plain = await makeFixtureRepo(path.join(root, 'plain'), { git: false });
  gitRepo = await makeFixtureRepo(path.join(root, 'git'), { git: true });
  tok = await loadDatasetTokenizer(TOKENIZER);
});
afterAll(async () => {
  await tok?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('qtk dataset build on a constructed repository', () => {
  it('keeps exactly the expected files and skips the rest for the expected reasons (plain walk)', async () => {
    const { dir, manifest, skips } = await build(plain, path.join(root, 'out-plain'));
    expect(manifest.repository.selection).toBe('walk');
    const rows = [...(await readRows(path.join(dir, 'train.arrow'))), ...(await readRows(path.join(dir, 'eval.arrow')))];
    const kept = [...new Set(rows.flatMap((r) => r.paths))].sort();
    expect(kept).toEqual(plain.kept);
    expect(manifest.files.kept).toBe(plain.kept.length);
    for (const [p, reason] of Object.entries(plain.skipped)) expect([p, skips[p]]).toEqual([p, reason]);
    // git-ignored files are never candidates; vendor/ is pruned as a folder in a walk
    for (const p of ['app.log', 'docs/guide.md', 'build/out.js', 'node_modules/x/index.js']) expect(skips[p]).toBeUndefined();
    expect(manifest.files.prunedVendoredDirs).toBe(1);
    expect(manifest.secrets.map((s) => s.path).sort()).toEqual(['.env', '.env.production', '.npmrc', 'certs/server.pem', 'config/deploy.ts', 'src/aws.ts', 'src/gh.ts']);
  });

  it('a git checkout gives the same files and byte-identical Arrow files, and records the commit', async () => {
    const a = await build(plain, path.join(root, 'cmp-plain'));
    const b = await build(gitRepo, path.join(root, 'cmp-git'));
    expect(b.manifest.repository.selection).toBe('git');
    expect(b.manifest.repository.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(b.manifest.repository.dirty).toBe(false);
    expect(b.skips['vendor/dep.js']).toBe('vendored');
    expect(b.skips['local-only/notes.ts']).toBeUndefined(); // .git/info/exclude
    for (const [p, reason] of Object.entries(gitRepo.skipped)) expect([p, b.skips[p]]).toEqual([p, reason]);
    for (const split of ['train', 'eval']) {
      const x = await fs.readFile(path.join(a.dir, `${split}.arrow`));
      const y = await fs.readFile(path.join(b.dir, `${split}.arrow`));
      expect(Buffer.compare(x, y)).toBe(0);
    }
  });

  it('Arrow files round-trip: decoded input ids are the rendered samples, masks and document ids line up', async () => {
    const { dir, manifest } = await build(plain, path.join(root, 'out-rt'));
    let files = 0;
    for (const split of ['train', 'eval'] as const) {
      const rows = await readRows(path.join(dir, `${split}.arrow`));
      expect(rows.length).toBe(manifest.splits[split].rows);
      const paths = splitPaths(rows);
      files += paths.length;
      let expectedText = '';
      let expectedLoss = '';
      for (const p of paths) {
        const content = await expectedContent(plain.dir, p);
        expectedText += `<|repo_name|>demo\n<|file_sep|>${p}\n${content}<|endoftext|>`;
        expectedLoss += `${content}<|endoftext|>`;
      }
      const ids: number[] = [];
      const lossIds: number[] = [];
      for (const r of rows) {
        expect(r.split).toBe(split);
        expect(r.ids.length).toBe(SEQ);
        expect(r.mask.length).toBe(SEQ);
        expect(r.docs.length).toBe(SEQ);
        // document ids: 0, 1, … in order, matching the source_path lines; -1 only as trailing padding
        const real = r.docs.filter((d) => d >= 0);
        expect(Math.max(...real) + 1).toBe(r.paths.length);
        for (let i = 1; i < real.length; i++) expect(real[i]! - real[i - 1]!).toBeGreaterThanOrEqual(0);
        for (let i = 0; i < SEQ; i++) {
          if (r.docs[i]! < 0) {
            expect(r.mask[i]).toBe(0);
            expect(r.docs.slice(i).every((d) => d === -1)).toBe(true);
            break;
          }
          ids.push(r.ids[i]!);
          if (r.mask[i] === 1) lossIds.push(r.ids[i]!);
        }
      }
      expect(tok.decode(ids)).toBe(expectedText);
      expect(tok.decode(lossIds)).toBe(expectedLoss); // loss mask = content + <|endoftext|>, headers excluded
      expect(ids.length).toBe(manifest.splits[split].tokens);
      expect(lossIds.length).toBe(manifest.splits[split].lossTokens);
      if (split === 'train') {
        expect(expectedText).not.toContain('\r'); // CRLF normalised
        expect(expectedText).toContain('ünïcødé ✓ 漢字'); // UTF-16 decoded
      }
    }
    expect(files).toBe(plain.kept.length);
    // IPC *file* format (what pyarrow.ipc.open_file reads): magic at both ends, batches found through the footer
    const bytes = await fs.readFile(path.join(dir, 'train.arrow'));
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('ARROW1\0\0');
    expect(bytes.subarray(bytes.length - 6).toString('latin1')).toBe('ARROW1');
    const reader = RecordBatchFileReader.from(bytes) as RecordBatchFileReader;
    reader.open();
    expect(reader.numRecordBatches).toBeGreaterThan(0);
    expect((reader.readRecordBatch(0) as { numRows: number } | null)?.numRows).toBeGreaterThan(0);
    // control-token text inside a file is plain text, not a control token: one <|endoftext|> id per document
    const all = [...(await readRows(path.join(dir, 'train.arrow'))), ...(await readRows(path.join(dir, 'eval.arrow')))];
    const eot = tok.special.endOfText!;
    const eotCount = all.flatMap((r) => r.ids.filter((id, i) => id === eot && r.docs[i]! >= 0)).length;
    expect(eotCount).toBe(plain.kept.length);
  });

  it('secrets appear in no output file, no decoded sample and no log line', async () => {
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string | Uint8Array) => { chunks.push(String(c)); return true; }) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => { chunks.push(String(c)); return true; }) as typeof process.stderr.write;
    try {
      await datasetBuildMain({ repo: gitRepo.dir, tokenizer: TOKENIZER, outDir: path.join(root, 'out-secret'), name: 'demo', seqLen: SEQ, evalFraction: 0.3, fimRate: 0.5 });
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const log = chunks.join('');
    expect(log).toContain('config/deploy.ts'); // reported by path …
    const dir = path.join(root, 'out-secret', 'demo');
    const outputs = [log];
    for (const f of await fs.readdir(dir)) {
      const bytes = await fs.readFile(path.join(dir, f));
      outputs.push(bytes.toString('latin1'));
      if (f.endsWith('.arrow')) outputs.push(tok.decode((await readRows(path.join(dir, f))).flatMap((r) => r.ids)));
    }
    for (const secret of [...Object.values(SECRETS), 'PRIVATE KEY']) {
      for (const o of outputs) expect(o.includes(secret)).toBe(false); // … never by content
    }
  });

  it('is deterministic: the same seed gives byte-identical outputs; another seed moves the split', async () => {
    const a = await build(plain, path.join(root, 'det-a'), { seed: 7, fimRate: 0.5 });
    const b = await build(plain, path.join(root, 'det-b'), { seed: 7, fimRate: 0.5 });
    for (const f of ['train.arrow', 'eval.arrow', 'manifest.json']) {
      expect(Buffer.compare(await fs.readFile(path.join(a.dir, f)), await fs.readFile(path.join(b.dir, f)))).toBe(0);
    }
    const splitsFor = async (seed: number) => {
      const r = await build(plain, path.join(root, `seed-${seed}`), { seed });
      return splitPaths(await readRows(path.join(r.dir, 'eval.arrow'))).join(',');
    };
    const evals = new Set<string>();
    for (const seed of [1, 2, 3, 4]) evals.add(await splitsFor(seed));
    expect(evals.size).toBeGreaterThan(1);
  });

  it('FIM samples are PSM with the tokenizer FIM tokens and reassemble to the file', async () => {
    const { dir, manifest } = await build(plain, path.join(root, 'out-fim'), { fimRate: 1, evalFraction: 0 });
    expect(manifest.files.fim).toBe(plain.kept.length);
    const rows = await readRows(path.join(dir, 'train.arrow'));
    const text = tok.decode(rows.flatMap((r) => r.ids.filter((_, i) => r.docs[i]! >= 0)));
    // Split on the header: mentions-eot.ts contains the control-token text itself, so split on real structure.
    const docs = text.split('<|repo_name|>demo\n<|file_sep|>').slice(1);
    expect(docs.length).toBe(plain.kept.length);
    for (const d of docs) {
      const nl = d.indexOf('\n');
      const p = d.slice(0, nl);
      const content = await expectedContent(plain.dir, p);
      const body = d.slice(nl + 1);
      expect(body.endsWith('<|endoftext|>')).toBe(true);
      const m = /^<\|fim_prefix\|>([\s\S]*)<\|fim_suffix\|>([\s\S]*)<\|fim_middle\|>([\s\S]*)<\|endoftext\|>$/.exec(body);
      expect(m, p).not.toBeNull();
      if (p !== 'src/mentions-eot.ts') expect(m![1]! + m![3]! + m![2]!).toBe(content);
    }
  });

  it('never clobbers an existing dataset without --force, and replaces it with --force', async () => {
    const out = path.join(root, 'out-force');
    await build(plain, out);
    await expect(build(plain, out)).rejects.toThrow(/already exists.*--force/);
    const again = await build(plain, out, { force: true, seed: 3 });
    expect(JSON.parse(await fs.readFile(path.join(again.dir, 'manifest.json'), 'utf8')).seed).toBe(3);
    expect((await fs.readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]); // no temp folders left
  });

  it('never reads a dataset back in: not --out inside the repository, nor another dataset folder there', async () => {
    const repo = await makeFixtureRepo(path.join(root, 'self-out'), { git: false });
    const first = await build(repo, path.join(repo.dir, 'datasets'));
    const second = await build(repo, path.join(repo.dir, 'datasets'), { force: true });
    expect(second.manifest.files.kept).toBe(first.manifest.files.kept);
    const fromOut = Object.entries(second.skips).filter(([p]) => p.startsWith('datasets/'));
    expect(fromOut.map(([p]) => p)).toContain('datasets/demo/manifest.json');
    expect(new Set(fromOut.map(([, reason]) => reason))).toEqual(new Set(['excluded']));
    // a dataset written elsewhere and copied into the repository is left out too
    await fs.cp(path.join(repo.dir, 'datasets', 'demo'), path.join(repo.dir, 'copied', 'ds'), { recursive: true });
    const third = await build(repo, path.join(root, 'self-out-elsewhere'));
    expect(third.skips['copied/ds/manifest.json']).toBe('excluded');
    expect(third.manifest.files.kept).toBe(first.manifest.files.kept);
  });

  it('refuses an empty selection with the reason and writes nothing', async () => {
    const empty = path.join(root, 'empty-repo');
    await fs.mkdir(path.join(empty, 'node_modules', 'x'), { recursive: true });
    await fs.writeFile(path.join(empty, 'node_modules', 'x', 'index.js'), 'module.exports = 1;\n');
    await fs.writeFile(path.join(empty, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
    const out = path.join(root, 'out-empty', 'nested');
    await expect(buildDataset({ repo: empty, tokenizer: TOKENIZER, outDir: out, name: 'e', seqLen: SEQ })).rejects.toThrow(/empty-repo: no file was kept.*1 candidate file\(s\); skipped: .*binary 1.*Point at a folder/);
    await expect(fs.stat(path.join(root, 'out-empty'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses --out under a file with a clear message', async () => {
    const file = path.join(root, 'a-file');
    await fs.writeFile(file, 'x');
    await expect(build(plain, path.join(file, 'sub'))).rejects.toThrow(/--out .*a-file\/sub: .*a-file is a file, not a folder/);
  });

  it('plain-text encoding equals the tokenizer library\'s own encode on text without added tokens', async () => {
    const { TokenizerLoader } = await import('@lenml/tokenizers');
    const dir = path.dirname(TOKENIZER);
    const ref = TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(await fs.readFile(TOKENIZER, 'utf8')),
      tokenizerConfig: JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    });
    const require = (await import('node:module')).createRequire(import.meta.url);
    const big = (await fs.readFile(require.resolve('typescript/lib/typescript.js'), 'utf8')).slice(0, 300_000);
    for (const text of [big, 'naïve café 漢字 🚀\n\n\t  x  ', "it's   THEY'RE 1234567 \r\n"]) {
      expect(tok.encode(text)).toEqual(ref.encode(text, { add_special_tokens: false }));
    }
  });

  it('reads only the first 8 KiB of a large binary to classify it', async () => {
    const { skips } = await build(plain, path.join(root, 'out-big'), { maxFileBytes: 64 * 1024 * 1024 });
    expect(skips['assets/blob']).toBe('binary');
  });
});
