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

/** C's isspace for one character. */
const space = (c: string | undefined) => c !== undefined && /^[ \t\n\v\f\r]$/.test(c);

/**
 * glibc's strptime for the formats OpenSSH builds ("%Y-%m-%d", "…T%H:%M", "…:%S"): each number
 * after optional white space, at most as many digits as the field has and no more than its
 * largest value allows (so "13" is no month, and "2" then "0" is month 2 then a stray "0"), each
 * literal character exactly. The fields, or null.
 */
function strptime(buf: string, fmt: string): number[] | null {
  const ranges: Record<string, [number, number, number]> = { Y: [0, 9999, 4], m: [1, 12, 2], d: [1, 31, 2], H: [0, 23, 2], M: [0, 59, 2], S: [0, 61, 2] };
  const out: number[] = [];
  let i = 0;
  for (let f = 0; f < fmt.length; f++) {
    if (fmt[f] !== '%') {
      if (buf[i] !== fmt[f]) return null;
      i++;
      continue;
    }
    const [from, to, n] = ranges[fmt[++f]!]!;
    while (space(buf[i])) i++;
    if (!(buf[i]! >= '0' && buf[i]! <= '9')) return null;
    let val = 0;
    let left = n;
    do {
      val = val * 10 + (buf.charCodeAt(i++) - 48);
    } while (--left > 0 && val * 10 <= to && buf[i]! >= '0' && buf[i]! <= '9');
    if (val < from || val > to) return null;
    out.push(val);
  }
  return i === buf.length ? out : null;
}

/** The zone's standard (not summer) offset in minutes west of UTC, in the year of `ms`. */
function standardOffset(ms: number): number {
  const y = new Date(ms).getFullYear();
  return Math.max(new Date(y, 0, 1).getTimezoneOffset(), new Date(y, 6, 1).getTimezoneOffset());
}

/**
 * OpenSSH's parse_absolute_time, exactly: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, then `Z` or
 * `UTC` (any case) for UTC; read by glibc's strptime, so white space before a field is skipped and
 * seconds go to 61; a date past the month's end rolls over as timegm rolls it ("20250231" is
 * 3 March); a time before 1970 is refused. Without Z, the time is local *standard* time
 * (OpenSSH leaves tm_isdst at 0, so mktime ignores summer time): in summer it reads an hour
 * later than the clock on the wall. One character per byte (latin1).
 */
export function parseSshTime(text: string): SshTime | null {
  let l = text.indexOf('\0') >= 0 ? text.indexOf('\0') : text.length;
  let utc = false;
  if (l > 1 && /^z$/i.test(text.slice(l - 1, l))) {
    utc = true;
    l -= 1;
  } else if (l > 3 && /^utc$/i.test(text.slice(l - 3, l))) {
    utc = true;
    l -= 3;
  }
  const s = text.slice(0, l);
  const part = (from: number, n: number) => s.slice(from, from + n);
  let fields: number[] | null;
  if (l === 8) fields = strptime(`${part(0, 4)}-${part(4, 2)}-${part(6, 2)}`, '%Y-%m-%d');
  else if (l === 12) fields = strptime(`${part(0, 4)}-${part(4, 2)}-${part(6, 2)}T${part(8, 2)}:${part(10, 2)}`, '%Y-%m-%dT%H:%M');
  else if (l === 14) fields = strptime(`${part(0, 4)}-${part(4, 2)}-${part(6, 2)}T${part(8, 2)}:${part(10, 2)}:${part(12, 2)}`, '%Y-%m-%dT%H:%M:%S');
  else return null;
  if (!fields) return null;
  const [y, mo, d, h = 0, mi = 0, sec = 0] = fields as [number, number, number, number?, number?, number?];
  const wall = new Date(0);
  wall.setUTCFullYear(y, mo - 1, d);
  wall.setUTCHours(h, mi, sec, 0);
  let ms = wall.getTime();
  if (!utc) ms += standardOffset(ms) * 60_000;
  if (!Number.isFinite(ms) || ms < 0) return null;
  return { seconds: Math.floor(ms / 1000), utc };
}

/** `20261122103000Z` for a Date: the form dotfleet writes (always UTC). */
export function formatSshTime(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
}
