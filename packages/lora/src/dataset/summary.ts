// The table `qtk dataset build` prints: files kept and skipped by reason, tokens per language (by file
// extension), train/eval sizes. Secrets are listed by path and rule only.
import type { DatasetManifest } from './build.js';

const SECRET_PATHS_SHOWN = 20;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const n = (x: number) => x.toLocaleString('en-US');

/** Warnings for splits that got no files: `qtk eval` refuses an empty split. */
export function splitWarnings(m: DatasetManifest): string[] {
  const kept = m.files.kept;
  if (kept === 0) return ['warning: no files were kept, so both splits are empty. Check the skip reasons above, --include/--exclude and --max-file-size.'];
  const out: string[] = [];
  if (m.splits.eval.files === 0) {
    out.push(`warning: the eval split is empty: none of the ${n(kept)} kept file(s) was held out at --eval-fraction ${m.evalFraction}. ` +
      'Evaluate with --split train, or rebuild with a larger --eval-fraction (or another --seed) to hold out at least one file.');
  }
  if (m.splits.train.files === 0) {
    out.push(`warning: the train split is empty: all ${n(kept)} kept file(s) went to eval at --eval-fraction ${m.evalFraction}. ` +
      'Rebuild with a smaller --eval-fraction (or another --seed) before training on it.');
  }
  return out;
}

export function formatSummary(m: DatasetManifest, dir: string, topExtensions = 15): string {
  const out: string[] = [];
  out.push(`dataset ${m.name} → ${dir}`);
  out.push(`repository ${m.repository.name} (${m.repository.selection}${m.repository.commit ? ` @ ${m.repository.commit.slice(0, 12)}${m.repository.dirty ? ' + local changes' : ''}` : ''}), tokenizer ${m.tokenizer.file} ${m.tokenizer.fingerprint.slice(0, 19)}`);
  out.push('');
  const fileRows: string[][] = [['files', 'count'], ['candidates', n(m.files.candidates)], ['kept', n(m.files.kept)]];
  for (const [reason, count] of Object.entries(m.files.skipped)) if (count > 0) fileRows.push([`skipped: ${reason}`, n(count)]);
  out.push(table(fileRows));
  if (m.files.prunedVendoredDirs > 0) out.push(`(vendored includes ${n(m.files.prunedVendoredDirs)} folder(s) not entered)`);
  if (m.secrets.length > 0) {
    out.push('');
    out.push(`left out as secrets (contents not read into the dataset; review and rotate if they are real):`);
    for (const s of m.secrets.slice(0, SECRET_PATHS_SHOWN)) out.push(`  ${s.path}  [${s.rule}]`);
    if (m.secrets.length > SECRET_PATHS_SHOWN) out.push(`  … and ${m.secrets.length - SECRET_PATHS_SHOWN} more (manifest.json lists all)`);
  }
  out.push('');
  const ext = Object.entries(m.tokens.byExtension);
  const extRows: string[][] = [['language (extension)', 'files', 'tokens']];
  for (const [k, v] of ext.slice(0, topExtensions)) extRows.push([k, n(v.files), n(v.tokens)]);
  if (ext.length > topExtensions) {
    const rest = ext.slice(topExtensions).reduce((a, [, v]) => ({ files: a.files + v.files, tokens: a.tokens + v.tokens }), { files: 0, tokens: 0 });
    extRows.push([`(${ext.length - topExtensions} more)`, n(rest.files), n(rest.tokens)]);
  }
  out.push(table(extRows));
  out.push('');
  const splitRows: string[][] = [['split', 'files', 'rows', 'tokens', 'loss tokens', 'padding', 'MB']];
  for (const [s, v] of Object.entries(m.splits)) {
    splitRows.push([s, n(v.files), n(v.rows), n(v.tokens), n(v.lossTokens), n(v.padTokens), (v.bytes / 1e6).toFixed(1)]);
  }
  out.push(table(splitRows));
  out.push(`seq_len ${m.seqLen}, seed ${m.seed}, eval fraction ${m.evalFraction}, FIM rate ${m.fimRate} (${n(m.files.fim)} files)`);
  const warnings = splitWarnings(m);
  if (warnings.length > 0) out.push('', ...warnings);
  return out.join('\n');
}
