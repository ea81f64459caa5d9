// Bytes of a source file → the text a sample holds. UTF-16 files with a byte-order mark are decoded
// (Windows tools write them; their text is ordinary code); UTF-8 must be valid; NUL bytes mean binary.
// Line endings become LF and the text is NFC-normalised: the Qwen tokenizer.json normalises to NFC and
// llama.cpp does not, so normalising here makes both tokenizers see the same string.

export type Decoded =
  | { ok: true; text: string; encoding: 'utf-8' | 'utf-16le' | 'utf-16be' }
  | { ok: false; reason: 'binary' | 'not-utf8' };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const utf16le = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: false });
const utf16be = new TextDecoder('utf-16be', { fatal: true, ignoreBOM: false });

export function decodeSource(bytes: Uint8Array): Decoded {
  let text: string;
  let encoding: 'utf-8' | 'utf-16le' | 'utf-16be' = 'utf-8';
  const bom16 = bytes.length >= 2 ? (bytes[0]! << 8) | bytes[1]! : -1;
  if (bom16 === 0xfffe || bom16 === 0xfeff) {
    encoding = bom16 === 0xfffe ? 'utf-16le' : 'utf-16be';
    if (bytes.length % 2 !== 0) return { ok: false, reason: 'not-utf8' };
    try {
      text = (encoding === 'utf-16le' ? utf16le : utf16be).decode(bytes);
    } catch {
      return { ok: false, reason: 'not-utf8' };
    }
    if (text.includes('\0')) return { ok: false, reason: 'binary' };
  } else {
    if (bytes.includes(0)) return { ok: false, reason: 'binary' };
    try {
      text = utf8.decode(bytes);
    } catch {
      return { ok: false, reason: 'not-utf8' };
    }
  }
  return { ok: true, text: normaliseText(text), encoding };
}

/** CRLF → LF (a lone CR is kept: it is content), then NFC. */
export function normaliseText(text: string): string {
  const lf = text.includes('\r\n') ? text.replace(/\r\n/g, '\n') : text;
  return lf.normalize('NFC');
}

/** True when the first bytes already prove a file binary, so a large file need not be read whole. */
export function looksBinaryPrefix(prefix: Uint8Array): boolean {
  const bom16 = prefix.length >= 2 ? (prefix[0]! << 8) | prefix[1]! : -1;
  if (bom16 === 0xfffe || bom16 === 0xfeff) return false;
  return prefix.includes(0);
}
