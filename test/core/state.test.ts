import { hostRecordOf } from '../helpers/records.js';
import { attestationPath, EMPTY_STATE, nextState, parseFleetState, serialiseFleetState, standing, type HostRecord } from '../../src/core/state/fleet-state.js';
import { fleetStatus, statusTableText } from '../../src/core/state/status.js';
import { dashboardBody, parseDuration, quietHosts } from '../../src/core/state/dashboard.js';

const T = 'a'.repeat(40);
const rec = (host: string, sequence: number, over: Partial<HostRecord> = {}): HostRecord => hostRecordOf(host, T, { sequence, ...over });

describe('the state branch model', () => {
  it('names files by host, issued-at and sequence, without colons', () => {
    expect(attestationPath('kestrel', '2026-11-22T10:04:05Z', 42)).toBe('attestations/kestrel/2026-11-22T100405Z-000042.json');
    expect(attestationPath('kestrel', '2026-11-22T10:04:05.123Z', 7)).toBe('attestations/kestrel/2026-11-22T100405Z-000007.json');
  });

  it('keeps the highest sequence per host and serialises the same state to the same bytes', () => {
    const policy = { a: 'sha256:' + '2'.repeat(64), b: 'x' };
    const s1 = nextState(EMPTY_STATE, [rec('b', 3), rec('a', 5), rec('a', 4)], { branch: 'main', commit: T }, policy, '2026-11-22T10:00:06.000Z');
    expect(s1.hosts.a!.sequence).toBe(5);
    const s2 = nextState(EMPTY_STATE, [rec('a', 4), rec('a', 5), rec('b', 3)], { branch: 'main', commit: T }, { b: 'x', a: policy.a }, '2026-11-22T10:00:06.000Z');
    expect(serialiseFleetState(s1).equals(serialiseFleetState(s2))).toBe(true);
    expect(parseFleetState(serialiseFleetState(s1))).toEqual(s1);
    expect(standing(s1, rec('a', 5))).toBe('recorded');
    expect(standing(s1, rec('a', 4))).toBe('maybe-recorded');
    expect(standing(s1, rec('a', 6))).toBe('new');
    expect(standing(s1, rec('c', 1))).toBe('new');
  });

  it('refuses a fleet.json it cannot trust, naming the field', () => {
    expect(() => parseFleetState(Buffer.from('{'))).toThrow(/fleet\.json|not JSON/);
    expect(() => parseFleetState(Buffer.from(JSON.stringify({ ...EMPTY_STATE, version: 2 })))).toThrow(/version/);
  });

  it('counts aligned hosts and names drift', () => {
    const policy = { a: 'sha256:' + '2'.repeat(64), b: 'sha256:' + '2'.repeat(64), c: 'sha256:' + '2'.repeat(64), d: 'sha256:' + '3'.repeat(64) };
    const s = nextState(EMPTY_STATE, [rec('a', 1), rec('b', 1, { drift: ['modified .zshrc'] }), rec('d', 1), rec('old', 1)], { branch: 'main', commit: T }, policy, '2026-11-22T10:00:06.000Z');
    const st = fleetStatus(s, ['a', 'b', 'c', 'd']);
    expect(st.line).toBe('FLEET STATUS: 1/4 aligned; drift on b');
    expect(st.rows.map((r) => [r.host, r.reasons.join(',')])).toEqual([
      ['a', ''],
      ['b', 'drift'],
      ['c', 'never attested'],
      ['d', 'policy differs'],
      ['old', 'not in the inventory'],
    ]);
    expect(statusTableText(st).split('\n')[1]).toMatch(/^✓ a +aaaaaaa +matches +yes +none +yes +2026-11-22 10:00 UTC$/);
  });

  it('lists quiet hosts and builds a dashboard whose body depends only on the data', () => {
    const s = nextState(EMPTY_STATE, [rec('a', 1), rec('b', 1, { receivedAt: '2026-11-20T00:00:00.000Z' })], { branch: 'main', commit: T }, {}, '2026-11-22T10:00:06.000Z');
    const now = new Date('2026-11-22T12:00:00Z');
    expect(quietHosts(s, ['a', 'b', 'c'], now, parseDuration('24h')).map((q) => q.host)).toEqual(['b', 'c']);
    const input = { state: s, status: fleetStatus(s, ['a', 'b', 'c']), inventory: ['a', 'b', 'c'], now, quietAfterSeconds: 86400, repoUrl: 'https://github.com/o/r', stateBranch: 'dotfleet/state' };
    expect(dashboardBody(input)).toBe(dashboardBody({ ...input, now: new Date('2026-11-22T13:00:00Z') }));
    expect(dashboardBody(input)).toContain('- **b**: last seen 2026-11-20 00:00 UTC · [history](https://github.com/o/r/commits/dotfleet/state/attestations/b)');
    expect(dashboardBody(input)).toContain('- **c**: never attested');
  });

  it('reads durations and refuses others', () => {
    expect(parseDuration('45m')).toBe(2700);
    expect(parseDuration('7d')).toBe(604800);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });

  it('names at most ten drifted hosts in the status line and counts the rest', () => {
    const hosts = Array.from({ length: 14 }, (_, i) => `h${i}`);
    const state = nextState(EMPTY_STATE, hosts.map((h) => rec(h, 1, { drift: ['missing .zshrc'] })), { branch: 'main', commit: T }, {}, '2026-11-22T10:00:06.000Z');
    expect(fleetStatus(state, hosts).line).toBe('FLEET STATUS: 0/14 aligned; drift on h0, h1, h2, h3, h4, h5, h6, h7, h8, h9 and 4 more');
  });

  it('does not call a host aligned whose SUCCESS comes with a failing host test', () => {
    const policy = { a: 'sha256:' + '2'.repeat(64) };
    const state = nextState(EMPTY_STATE, [rec('a', 1, { testsFailed: 2 })], { branch: 'main', commit: T }, policy, '2026-11-22T10:00:06.000Z');
    const st = fleetStatus(state, ['a']);
    expect(st.aligned).toBe(0);
    expect(st.rows[0]!.reasons).toEqual(['2 tests failing']);
  });

  describe('the dashboard issue body fits GitHub (65,536 characters) for any fleet', () => {
    const policy = (hosts: string[]) => Object.fromEntries(hosts.map((h) => [h, 'sha256:' + '2'.repeat(64)]));
    const input = (hosts: string[], records: HostRecord[]) => {
      const state = nextState(EMPTY_STATE, records, { branch: 'main', commit: T }, policy(hosts), '2026-11-22T10:00:06.000Z');
      return { state, status: fleetStatus(state, hosts), inventory: hosts, now: new Date('2026-11-25T00:00:00Z'), quietAfterSeconds: 86400, repoUrl: 'https://github.com/robin/fleet', stateBranch: 'dotfleet/state' };
    };
    for (const [n, nameLength, share] of [
      [12, 8, 0.5],
      [812, 10, 0.5],
      [812, 63, 1],
      [5000, 63, 0.1],
      [5000, 63, 0],
      [5000, 63, 1],
    ] as const) {
      it(`${n} hosts, names of ${nameLength} characters, ${share * 100}% attested`, () => {
        const hosts = Array.from({ length: n }, (_, i) => `h${String(i).padStart(nameLength - 1, '0')}`);
        const records = hosts.filter((_, i) => i < n * share).map((h, i) => rec(h, 1, i % 3 === 0 ? { drift: ['modified .zshrc'], toolsOk: false, toolsFailing: ['git 2.20.1 (needs >=2.30)'] } : {}));
        const body = dashboardBody(input(hosts, records));
        expect(body.length).toBeLessThanOrEqual(65_536);
        expect(body).toContain('FLEET STATUS: ');
        // Balanced: no table cut in the middle of a row.
        for (const line of body.split('\n').filter((l) => l.startsWith('|'))) expect(line.endsWith('|')).toBe(true);
        if (n === 12) expect(body).not.toContain('too many for one issue');
        else {
          expect(body).toContain(`The fleet has ${n} hosts, too many for one issue: the full table is in [\`FLEET.md\`]`);
          // What is left out is counted, and the counts add up.
          const rows = body.split('\n').filter((l) => l.startsWith('| ⚠️')).length;
          const more = Number(/…and (\d+) more hosts that are not aligned/.exec(body)?.[1] ?? 0);
          expect(rows + more).toBe(fleetStatus(input(hosts, records).state, hosts).rows.filter((r) => !r.aligned).length);
        }
      });
    }
  });
});

