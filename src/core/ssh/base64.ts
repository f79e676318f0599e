/**
 * Base64 as OpenSSH decodes it (b64_pton, used for key blobs in allowed_signers and for the
 * armour of signatures): white space anywhere is skipped; `=` may only end a quantum of two or
 * three characters, followed by white space only; the bits a short final quantum leaves over must
 * be zero (else the same bytes would have several encodings); a missing `=` is an error.
 * Node's own decoder accepts all of these, so verdicts would differ from ssh-keygen's.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/** C's isspace in the C locale: space, \t, \n, \v, \f, \r. */
export const isCSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** The bytes, or null where OpenSSH refuses the text. `text` is one character per byte (latin1). */
export function opensshBase64(text: string): Buffer | null {
  const out: number[] = [];
  let state = 0;
  let acc = 0;
  let i = 0;
  let padded = false;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) break;
    if (isCSpace(c)) continue;
    if (c === 0x3d /* = */) {
      padded = true;
      break;
    }
    const v = c < 256 ? VALUE[c]! : -1;
    if (v < 0) return null;
    switch (state) {
      case 0:
        acc = v << 2;
        state = 1;
        break;
      case 1:
        out.push(acc | (v >> 4));
        acc = (v & 0x0f) << 4;
        state = 2;
        break;
      case 2:
        out.push(acc | (v >> 2));
        acc = (v & 0x03) << 6;
        state = 3;
        break;
      case 3:
        out.push(acc | v);
        acc = 0;
        state = 0;
        break;
    }
  }
  if (!padded) return state === 0 ? Buffer.from(out) : null;
  if (state === 0 || state === 1) return null;
  i++;
  const rest = (): boolean => {
    for (; i < text.length && text.charCodeAt(i) !== 0; i++) if (!isCSpace(text.charCodeAt(i))) return false;
    return true;
  };
  if (state === 2) {
    // A second `=` must follow, after any white space.
    while (i < text.length && text.charCodeAt(i) !== 0 && isCSpace(text.charCodeAt(i))) i++;
    if (text[i] !== '=') return null;
    i++;
  }
  if (!rest()) return null;
  // The left-over bits of the last quantum must be zero.
  if (acc !== 0) return null;
  return Buffer.from(out);
}
