/**
 * SOPS files in sops' exact layout (metadata, age stanzas, ENC[AES256_GCM,…] values, MAC) with
 * random ciphertext, for scope cases: the bot reads only metadata and never decrypts, so these
 * exercise exactly what the real files do. The real files from getsops/sops are in
 * test/fixtures/sops/.
 */
import { randomBytes } from 'node:crypto';

const b64 = (n: number) => randomBytes(n).toString('base64');
export const enc = (len: number, type = 'str') => `ENC[AES256_GCM,data:${b64(len)},iv:${b64(32)},tag:${b64(16)},type:${type}]`;

function ageStanzas(recipients: string[], indent: string): string {
  return recipients
    .map((r) => `${indent}- recipient: ${r}\n${indent}  enc: |\n${indent}    -----BEGIN AGE ENCRYPTED FILE-----\n${indent}    ${b64(150)}\n${indent}    -----END AGE ENCRYPTED FILE-----`)
    .join('\n');
}

export function sopsYaml(opts: { recipients: string[]; values: Record<string, string | { plain: string }>; mac?: boolean }): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(opts.values)) lines.push(`${k}: ${typeof v === 'string' ? enc(v.length) : v.plain}`);
  lines.push('sops:', '    age:', ageStanzas(opts.recipients, '        '), '    lastmodified: "2026-11-20T09:14:02Z"');
  if (opts.mac !== false) lines.push(`    mac: ${enc(64)}`);
  lines.push('    unencrypted_suffix: _unencrypted', '    version: 3.9.4', '');
  return lines.join('\n');
}

export function sopsEnv(opts: { recipients: string[]; values: Record<string, string> }): string {
  const lines = Object.entries(opts.values).map(([k, v]) => `${k}=${enc(v.length)}`);
  opts.recipients.forEach((r, i) => {
    lines.push(`sops_age__list_${i}__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\\n${b64(150)}\\n-----END AGE ENCRYPTED FILE-----\\n`);
    lines.push(`sops_age__list_${i}__map_recipient=${r}`);
  });
  lines.push('sops_lastmodified=2026-11-20T09:15:40Z', `sops_mac=${enc(64)}`, 'sops_unencrypted_suffix=_unencrypted', 'sops_version=3.9.4', '');
  return lines.join('\n');
}
