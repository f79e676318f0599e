/**
 * The redacted marker a template's {{secret "FILE" "KEY"}} renders to. The bot never sees the
 * value; the marker names the secret and a digest of its ciphertext, so the fleet diff shows
 * "this secret changed" and nothing more. Hosts replace markers with `sops --decrypt` output at
 * apply time (src/host/secrets.ts).
 */

export const MARKER = /\[\[dotfleet-secret:([^#\]\s]+)#([^@\]\s]+)@([0-9a-f]{12})\]\]/g;

export function secretMarker(file: string, key: string, ciphertextDigest: string): string {
  return `[[dotfleet-secret:${file}#${key}@${ciphertextDigest.slice(0, 12)}]]`;
}

/** sops --extract syntax for a dotted key path: `db.password` → `["db"]["password"]`, `list.0` → `["list"][0]`. */
export function extractPath(key: string): string {
  return key
    .split('.')
    .map((k) => (/^\d+$/.test(k) ? `[${k}]` : `[${JSON.stringify(k)}]`))
    .join('');
}

/** A long recipient (age key, ARN) shortened for messages: `age1yz6vldm2…pt8r5e`. */
export function shortRecipient(id: string): string {
  return id.length > 24 ? `${id.slice(0, 12)}…${id.slice(-6)}` : id;
}
