/**
 * OpenSSH's absolute times (allowed_signers valid-after/valid-before, -O verify-time):
 * YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a trailing Z for UTC. Without Z, OpenSSH reads
 * them in the local time zone of the machine that verifies, so the same file can give different
 * verdicts on two machines: dotfleet does the same (to agree with ssh-keygen) and warns.
 */

export interface SshTime {
  /** Seconds since the epoch. */
  seconds: number;
  utc: boolean;
}

export function parseSshTime(text: string): SshTime | null {
  let s = text;
  let utc = false;
  if (s.length > 1 && /[zZ]$/.test(s)) {
    utc = true;
    s = s.slice(0, -1);
  }
  if (!/^\d+$/.test(s) || ![8, 12, 14].includes(s.length)) return null;
  const n = (from: number, to: number) => Number(s.slice(from, to));
  const [y, mo, d] = [n(0, 4), n(4, 6), n(6, 8)];
  const [h, mi, sec] = s.length >= 12 ? [n(8, 10), n(10, 12), s.length === 14 ? n(12, 14) : 0] : [0, 0, 0];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return null;
  const ms = utc ? Date.UTC(y, mo - 1, d, h, mi, sec) : new Date(y, mo - 1, d, h, mi, sec).getTime();
  const check = utc ? new Date(ms) : new Date(ms);
  const dayOk = utc ? check.getUTCDate() === d : check.getDate() === d;
  if (!dayOk) return null;
  return { seconds: Math.floor(ms / 1000), utc };
}

/** `20261122103000Z` for a Date: the form dotfleet writes (always UTC). */
export function formatSshTime(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
}
