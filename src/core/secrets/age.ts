/**
 * age X25519 recipients (`age1…`): Bech32 (BIP 173) with the human-readable part "age" and a
 * 32-byte key. The checksum catches a mistyped character, which the alphabet alone does not: a
 * typo in a recipient means a host that can never decrypt, or a key nobody holds.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i]!;
  }
  return chk >>> 0;
}

const hrpExpand = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];

/** Why `text` is not an age X25519 recipient, or undefined when it is one. */
export function ageRecipientProblem(text: string): string | undefined {
  if (!text.startsWith('age1')) return 'an age recipient starts with "age1"';
  if (text !== text.toLowerCase()) return 'an age recipient is written in lower case';
  if (text.length !== 62) return `an age recipient is 62 characters long, this one is ${text.length}`;
  const data: number[] = [];
  for (const c of text.slice(4)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) return `"${c}" is not a Bech32 character (they are ${CHARSET})`;
    data.push(v);
  }
  if (polymod([...hrpExpand('age'), ...data]) !== 1) return 'its checksum does not match: a character is mistyped or missing';
  // 52 groups of 5 bits hold the 32-byte key and 4 padding bits, which must be zero.
  if ((data[51]! & 0x0f) !== 0) return 'its key has padding bits set: it is not a 32-byte key';
  return undefined;
}

export const isAgeRecipient = (text: string) => ageRecipientProblem(text) === undefined;

/** A valid recipient for `key` (32 bytes): for tests and examples. */
export function ageRecipientOf(key: Uint8Array): string {
  const bits: number[] = [];
  let acc = 0;
  let n = 0;
  for (const b of key) {
    acc = (acc << 8) | b;
    n += 8;
    while (n >= 5) {
      n -= 5;
      bits.push((acc >> n) & 31);
    }
  }
  if (n > 0) bits.push((acc << (5 - n)) & 31);
  const mod = polymod([...hrpExpand('age'), ...bits, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >> (5 * (5 - i))) & 31);
  return 'age1' + [...bits, ...checksum].map((v) => CHARSET[v]).join('');
}
