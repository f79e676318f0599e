/** A fleet.json host record for tests: a clean SUCCESS on `commit`, with `over` applied. */
import { attestationPath, type HostRecord } from '../../src/core/state/fleet-state.js';

export function hostRecordOf(host: string, commit: string, over: Partial<HostRecord> & { sequence?: number } = {}): HostRecord {
  const sequence = over.sequence ?? 1;
  const issuedAt = over.issuedAt ?? '2026-11-22T10:00:00Z';
  return {
    path: attestationPath(host, issuedAt, sequence),
    digest: 'sha256:' + String(sequence).padStart(64, '0'),
    sequence,
    issuedAt,
    receivedAt: '2026-11-22T10:00:05.000Z',
    status: 'SUCCESS',
    appliedCommit: commit,
    rolloutTarget: commit,
    renderHash: 'sha256:' + '1'.repeat(64),
    render: 'match',
    policyHash: 'sha256:' + '2'.repeat(64),
    toolsOk: true,
    toolsFailing: [],
    drift: [],
    testsFailed: 0,
    key: 'SHA256:x',
    ...over,
  };
}
