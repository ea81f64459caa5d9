// One kept file → its token segments in the Qwen2.5-Coder repository-level format:
//   <|repo_name|>{repo}\n<|file_sep|>{path}\n{content}<|endoftext|>
// or, when chosen for fill-in-the-middle (PSM order, as Qwen2.5-Coder was trained):
//   <|repo_name|>{repo}\n<|file_sep|>{path}\n<|fim_prefix|>{pre}<|fim_suffix|>{suf}<|fim_middle|>{mid}<|endoftext|>
// Without <|repo_name|>/<|file_sep|> in the vocabulary the header is the plain line "{repo}/{path}\n".
// Loss mask: 0 on the header (the model is given the path, it is not asked to guess it), 1 on content,
// FIM tokens and <|endoftext|> (so it learns where a file ends).
import { createHash } from 'node:crypto';
import type { DatasetTokenizer } from './tokenizer.js';

export interface Segment {
  ids: number[];
  /** 1 when these tokens count in the loss. */
  loss: 0 | 1;
}

/** A uniform number in [0, 1) from the seed, a purpose and a path: order-independent and reproducible. */
export function seededUnit(seed: number, purpose: string, key: string): number {
  const h = createHash('sha256').update(`${seed}\0${purpose}\0${key}`).digest();
  return (h.readUInt32BE(0) * 2 ** 21 + (h.readUInt32BE(4) >>> 11)) / 2 ** 53;
}

/** Character offsets of the FIM cut, never inside a surrogate pair. */
export function fimCut(text: string, seed: number, path: string): [number, number] {
  const at = (u: number) => {
    let i = Math.floor(u * (text.length + 1));
    if (i > 0 && i < text.length && (text.charCodeAt(i) & 0xfc00) === 0xdc00) i--;
    return i;
  };
  const a = at(seededUnit(seed, 'fim-cut-a', path));
  const b = at(seededUnit(seed, 'fim-cut-b', path));
  return a <= b ? [a, b] : [b, a];
}

export interface RenderOptions {
  repoName: string;
  seed: number;
  fimRate: number;
}

export interface Rendered {
  segments: Segment[];
  fim: boolean;
  /** Tokens of content (loss 1), for the per-language totals. */
  contentTokens: number;
}

export function renderDocument(tok: DatasetTokenizer, path: string, text: string, opts: RenderOptions): Rendered {
  const s = tok.special;
  const header: number[] = [];
  if (s.repoName !== undefined && s.fileSep !== undefined) {
    header.push(s.repoName, ...tok.encode(`${opts.repoName}\n`), s.fileSep, ...tok.encode(`${path}\n`));
  } else {
    header.push(...tok.encode(`${opts.repoName}/${path}\n`));
  }
  const segments: Segment[] = [{ ids: header, loss: 0 }];
  const fim = opts.fimRate > 0 && seededUnit(opts.seed, 'fim', path) < opts.fimRate;
  let body: number[];
  if (fim) {
    const [a, b] = fimCut(text, opts.seed, path);
    body = [
      s.fimPrefix!, ...tok.encode(text.slice(0, a)),
      s.fimSuffix!, ...tok.encode(text.slice(b)),
      s.fimMiddle!, ...tok.encode(text.slice(a, b)),
    ];
  } else {
    body = tok.encode(text);
  }
  if (s.endOfText !== undefined) body.push(s.endOfText);
  segments.push({ ids: body, loss: 1 });
  return { segments, fim, contentTokens: body.length };
}
