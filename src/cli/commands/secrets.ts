import type { Command } from 'commander';
import type { SecretsReport } from '../../core/secrets/scope.js';
import { secretsReport } from '../../core/secrets/report.js';
import { SOPS_CONFIG } from '../../core/secrets/sops-config.js';
import type { Fleet } from '../../core/fleet.js';
import { runSops } from '../../host/secrets.js';
import { DotfleetError } from '../../core/errors.js';
import { plural } from '../../core/report/common.js';
import { findingsExitCode, openFleet, write } from '../io.js';

export const fleetSecrets = (fleet: Fleet): SecretsReport => secretsReport(fleet);

/** The steps that bring one file back in line: recipients from .sops.yaml, then a new data key. */
export function rotationSteps(report: SecretsReport): { file: string; why: string[]; steps: string[][] }[] {
  const out = new Map<string, { file: string; why: string[]; steps: string[][] }>();
  for (const f of report.findings) {
    if (!['outside-scope', 'cannot-decrypt', 'stale-recipient', 'rule-mismatch'].includes(f.code)) continue;
    const plan = out.get(f.file) ?? { file: f.file, why: [], steps: [] };
    plan.why.push(f.message);
    out.set(f.file, plan);
  }
  for (const plan of out.values()) {
    // updatekeys re-encrypts the data key for .sops.yaml's recipients; a recipient that lost access
    // still knows the old data key, so rotate replaces it.
    plan.steps = [
      ['sops', 'updatekeys', '--yes', plan.file],
      ['sops', 'rotate', '--in-place', plan.file],
    ];
  }
  return [...out.values()];
}

export function secretsCommand(program: Command): void {
  const secrets = program.command('secrets').description('SOPS secrets: who can read what (the bot never decrypts)');
  secrets
    .command('check')
    .description("check every SOPS file's recipients against the fleet: scope, missing hosts, stale recipients, plain values, MAC")
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .option('--json', 'print JSON')
    .action(async (opts: { repo: string; ref?: string; json?: boolean }) => {
      const { fleet } = await openFleet(opts.repo, opts.ref);
      const report = fleetSecrets(fleet);
      if (opts.json) {
        write(JSON.stringify({ files: report.files.map((f) => ({ path: f.path, format: f.format, recipients: f.recipients, mac: f.mac, keys: [...f.values.keys()], scope: report.scopes.get(f.path) })), findings: report.findings }, null, 2));
      } else {
        for (const f of report.files) write(`${f.path}: ${f.values.size} keys, ${f.recipients.length} recipients, for ${report.scopes.get(f.path)!.join(', ') || '(no host)'}`);
        for (const f of report.findings) write(`${f.file}: ${f.severity}: ${f.message}${f.hint ? `\n  hint: ${f.hint}` : ''}`);
        const errors = report.findings.filter((f) => f.severity === 'error').length;
        write(`${plural(report.files.length, 'SOPS file')}, ${plural(errors, 'error')}, ${plural(report.findings.length - errors, 'warning')}`);
      }
      process.exitCode = findingsExitCode(report.findings);
    });
  secrets
    .command('rotate')
    .description(`print (or --run) the sops steps that bring each file's recipients in line with ${SOPS_CONFIG} and the fleet`)
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--run', 'run the steps (needs sops and a key that can decrypt each file)')
    .action(async (opts: { repo: string; run?: boolean }) => {
      const { fleet, root } = await openFleet(opts.repo);
      const plans = rotationSteps(fleetSecrets(fleet));
      if (plans.length === 0) {
        write('every SOPS file is in line with the fleet: nothing to rotate');
        return;
      }
      write(`Edit ${SOPS_CONFIG} first if a rule lists a recipient that should go (or lacks one that should be there).`);
      for (const p of plans) {
        write(`\n${p.file}\n${p.why.map((w) => `  - ${w}`).join('\n')}`);
        for (const step of p.steps) {
          write(`  $ ${step.join(' ')}`);
          if (!opts.run) continue;
          const r = runSops(step.slice(1), root);
          if (r.missing) throw new DotfleetError('usage', 'sops is not installed', { hint: 'install sops, or run the printed steps where sops and your key are' });
          if (r.code !== 0) throw new DotfleetError('usage', `${step.join(' ')} failed: ${r.stderr.trim().split('\n')[0]}`, { file: p.file });
        }
      }
      if (!opts.run) write('\n(printed only; --run runs them)');
    });
}
