/**
 * The job summary and step outputs, as a runner reads them: files named by GITHUB_STEP_SUMMARY and
 * GITHUB_OUTPUT. GitHub keeps at most 1 MiB of summary per step; past that it drops the whole
 * summary, so the Action cuts its own text to fit and says what it cut.
 */
import { appendFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** GitHub's limit for one step's summary. */
export const STEP_SUMMARY_LIMIT = 1024 * 1024;

/** `text` cut at a line boundary so that `already + result` fits `limit` bytes, with a note saying what was cut. */
export function capSummary(text: string, already: number, limit = STEP_SUMMARY_LIMIT): string {
  const room = limit - already;
  const size = Buffer.byteLength(text);
  if (size <= room) return text;
  const noteFor = (cut: number, lines: number) =>
    `\n\n> ✂️ The job summary is cut here: GitHub keeps at most 1 MiB per step, and ${cut.toLocaleString('en-US')} more bytes (${lines.toLocaleString('en-US')} lines) did not fit. \`dotfleet diff --format text\` on a checkout shows everything.\n`;
  const budget = room - Buffer.byteLength(noteFor(size, text.split('\n').length)) - 16;
  if (budget <= 0) return '';
  // The longest prefix within budget bytes, ending at a line break; an open code fence is closed.
  let kept = Buffer.from(text).subarray(0, budget).toString('utf8');
  if (kept.endsWith('\uFFFD')) kept = kept.slice(0, -1);
  const lastBreak = kept.lastIndexOf('\n');
  if (lastBreak > 0) kept = kept.slice(0, lastBreak + 1);
  const fences = kept.split('\n').filter((l) => /^(```|~~~)/.test(l)).length;
  if (fences % 2 === 1) kept += '```\n';
  const rest = text.slice(kept.length);
  return kept + noteFor(Buffer.byteLength(rest), rest.split('\n').length);
}

export class StepFiles {
  constructor(
    private readonly summaryFile: string | undefined,
    private readonly outputFile: string | undefined,
  ) {}

  /** Append to the job summary, within GitHub's limit (stdout when there is no summary file). */
  summary(text: string): void {
    if (!this.summaryFile) {
      process.stdout.write(text.endsWith('\n') ? text : text + '\n');
      return;
    }
    let already = 0;
    try {
      already = statSync(this.summaryFile).size;
    } catch {
      /* a new file */
    }
    const fitted = capSummary(text.endsWith('\n') ? text : text + '\n', already);
    if (fitted) appendFileSync(this.summaryFile, fitted);
  }

  /** A step output; a value with line breaks uses the heredoc form with a random delimiter. */
  output(name: string, value: string): void {
    if (!this.outputFile) return;
    if (!/[\r\n]/.test(value)) {
      appendFileSync(this.outputFile, `${name}=${value}\n`);
      return;
    }
    const delimiter = `dotfleet_${randomBytes(12).toString('hex')}`;
    appendFileSync(this.outputFile, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
  }
}

/** A line for the runner's log: workflow commands escaped, and nothing from a pull request can start a command. */
export function escapeCommand(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
