// The filter tables, decoding, MinHash and packing, each against an independent expectation.
import { describe, expect, it } from 'vitest';
import {
  GENERATED_NAME_PATTERNS, MINHASH, NearDupIndex, Packer, SECRET_FILE_PATTERNS, SECRET_TOKEN_PATTERNS, SKIP_REASONS,
  classifyContent, decodeSource, estimateJaccard, isMinified, minhashSignature, shingleHashes, type PackedRow,
} from '../src/index.js';

// One real-format example per rule (assembled at run time) and a near miss that must not match.
const r = (n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789') =>
  Array.from({ length: n }, (_, i) => alphabet[(i * 7 + 3) % alphabet.length]).join('');
const TOKEN_EXAMPLES: Record<(typeof SECRET_TOKEN_PATTERNS)[number]['rule'], [string, string]> = {
  'private-key': ['-----BEGIN ' + 'OPENSSH PRIVATE KEY-----', '-----BEGIN PUBLIC KEY-----'],
  'aws-access-key-id': ['id=AKIA' + r(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), 'AKIA' + 'short'],
  'github-token': ['ghp_' + r(36), 'ghp_' + r(10)],
  'github-fine-grained-token': ['github_pat_' + r(30), 'github_pat_x'],
  'gitlab-token': ['glpat-' + r(20), 'glpat-abc'],
  'slack-token': ['xoxb-' + '1234567890-abcdef', 'xoxz-1234567890'],
  'slack-webhook': ['https://hooks.slack.com/services/' + 'T0000/B0000/' + r(24), 'https://hooks.slack.com/'],
  'npm-token': ['npm_' + r(36), 'npm_install'],
  'npmrc-auth': ['//registry.npmjs.org/:_authToken=' + r(20), '//registry.npmjs.org/:_authToken=${NPM_TOKEN}'],
  'google-api-key': ['AIza' + r(35), 'AIza' + r(5)],
  'stripe-live-key': ['sk_' + 'live_' + r(24), 'sk_test_' + r(24)],
  'huggingface-token': ['hf_' + r(34, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'), 'hf_hub_download'],
  'openai-key': ['sk-proj-' + r(24) + 'T3Blbk' + 'FJ' + r(24), 'sk-' + r(10)],
  'anthropic-key': ['sk-ant-' + 'api03-' + r(90), 'sk-ant-' + r(5)],
};

describe('filter tables', () => {
  it('every secret token rule has an example it matches and a near miss it does not', () => {
    expect(Object.keys(TOKEN_EXAMPLES).sort()).toEqual(SECRET_TOKEN_PATTERNS.map((s) => s.rule).sort());
    for (const s of SECRET_TOKEN_PATTERNS) {
      const [hit, miss] = TOKEN_EXAMPLES[s.rule];
      // npmrc-auth is a config-line rule; the others are found anywhere in a line of code
      const wrap = (t: string) => (s.rule === 'npmrc-auth' ? `# registry\n${t}\n` : `const x = "${t}";\n`);
      expect([s.rule, s.pattern.test(wrap(hit))]).toEqual([s.rule, true]);
      expect([s.rule, s.pattern.test(wrap(miss))]).toEqual([s.rule, false]);
      const v = classifyContent(Buffer.from(wrap(hit)));
      expect(v).toEqual({ keep: false, reason: 'secret', rule: s.rule });
    }
  });

  it('secret file names, generated-name reasons and skip reasons agree', () => {
    const names = ['.env', '.env.local', 'id_rsa', 'id_ed25519', 'server.pem', 'tls.key', '.netrc', 'credentials.json', 'credentials'];
    for (const n of names) expect([n, SECRET_FILE_PATTERNS.some((s) => s.pattern.test(n))]).toEqual([n, true]);
    for (const n of ['environment.ts', 'id_rsa.pub', 'keys.ts', 'README.md', 'credentials.ts']) {
      expect([n, SECRET_FILE_PATTERNS.some((s) => s.pattern.test(n))]).toEqual([n, false]);
    }
    for (const g of GENERATED_NAME_PATTERNS) expect(SKIP_REASONS).toContain(g.reason);
    expect(new Set(SKIP_REASONS).size).toBe(SKIP_REASONS.length);
  });
});

describe('decoding', () => {
  it('UTF-8 (with or without BOM), UTF-16 LE/BE with BOM; NUL → binary; bad bytes → not-utf8; CRLF → LF', () => {
    const text = 'a\r\nb ✓ 漢\r\n';
    const want = 'a\nb ✓ 漢\n';
    expect(decodeSource(Buffer.from(text))).toMatchObject({ ok: true, text: want, encoding: 'utf-8' });
    expect(decodeSource(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).toMatchObject({ ok: true, text: want });
    expect(decodeSource(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]))).toMatchObject({ ok: true, text: want, encoding: 'utf-16le' });
    const be = Buffer.from(text, 'utf16le').swap16();
    expect(decodeSource(Buffer.concat([Buffer.from([0xfe, 0xff]), be]))).toMatchObject({ ok: true, text: want, encoding: 'utf-16be' });
    expect(decodeSource(Buffer.from([0x61, 0x00, 0x62]))).toEqual({ ok: false, reason: 'binary' });
    expect(decodeSource(Buffer.from([0x63, 0xe9, 0x0a]))).toEqual({ ok: false, reason: 'not-utf8' });
    expect(decodeSource(Buffer.from('e\u0301'))).toMatchObject({ ok: true, text: '\u00e9' }); // NFC
  });

  it('minified: a long line and long lines on average; ordinary code is not', () => {
    expect(isMinified('var a=' + '1,'.repeat(2000) + '1;\n')).toBe(true);
    expect(isMinified(Array.from({ length: 50 }, (_, i) => `const v${i} = ${i};`).join('\n') + '\n' + 'x'.repeat(1500))).toBe(false);
  });
});

describe('MinHash', () => {
  /** Exact Jaccard of the two shingle sets: the oracle the estimate is checked against. */
  function exact(a: string, b: string): number {
    const A = new Set(shingleHashes(a));
    const B = new Set(shingleHashes(b));
    let inter = 0;
    for (const x of A) if (B.has(x)) inter++;
    return inter / (A.size + B.size - inter);
  }
  const words = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `w${from + i}`).join(' ');

  it('the signature estimates the exact Jaccard within 0.1, and the index finds pairs above the threshold only', () => {
    const base = words(0, 1000);
    const cases = [words(0, 1000), words(0, 950) + ' ' + words(5000, 5050), words(0, 700) + ' ' + words(6000, 6300), words(300, 1300), words(2000, 3000)];
    const idx = new NearDupIndex(0.85);
    idx.add('base', minhashSignature(shingleHashes(base)));
    for (const c of cases) {
      const j = exact(base, c);
      const est = estimateJaccard(minhashSignature(shingleHashes(base)), minhashSignature(shingleHashes(c)));
      expect(Math.abs(est - j)).toBeLessThan(0.1);
      const hit = idx.query(minhashSignature(shingleHashes(c)));
      if (j >= 0.92) expect(hit?.name).toBe('base');
      if (j <= 0.75) expect(hit).toBeUndefined();
    }
    expect(MINHASH.bands * MINHASH.rows).toBe(MINHASH.numHashes);
  });
});

describe('packing', () => {
  it('fills rows exactly, continues long documents in the next row, pads only the last row', () => {
    const rows: PackedRow[] = [];
    const p = new Packer(8, 0, (r) => rows.push({ ...r, inputIds: r.inputIds.slice(), lossMask: r.lossMask.slice(), documentIds: r.documentIds.slice() }));
    p.add('a', [{ ids: [1, 2], loss: 0 }, { ids: [3, 4, 5], loss: 1 }]);
    p.add('b', [{ ids: [6], loss: 0 }, { ids: [7, 8, 9, 10, 11, 12], loss: 1 }]);
    p.finish();
    expect(rows.map((r) => Array.from(r.inputIds))).toEqual([[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 0, 0, 0, 0]]);
    expect(rows.map((r) => Array.from(r.lossMask))).toEqual([[0, 0, 1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0]]);
    expect(rows.map((r) => Array.from(r.documentIds))).toEqual([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, -1, -1, -1, -1]]);
    expect(rows.map((r) => r.paths)).toEqual([['a', 'b'], ['b']]);
    expect([p.tokens, p.padTokens, p.rows]).toEqual([12, 4, 2]);
  });
});
