/** `dr verify [<id>|--latest] --level quick|read|full [--from local|s3] [--subset n/t] [--trust-signer KEY] [--json] [--report FILE]` */
import { writeFile } from 'node:fs/promises';
import type { Context } from '../../core/context.ts';
import { runVerify, markdownReport, signerLine, type Level, type VerifyReport } from '../../verify/run.ts';
import { table } from '../table.ts';
import { ExitCode } from '../../core/errors.ts';

export interface VerifyCliOptions { latest?: boolean; level?: string; from?: string; subset?: string; json?: boolean; report?: string; trustSigner?: string }

export function renderVerify(r: VerifyReport): string {
  return [
    `dr verify: backup ${r.id} from ${r.from}, level ${r.level}${r.subset ? `, subset ${r.subset}` : ''}`,
    `Signer: ${signerLine(r.signer)}`,
    table(['LEVEL', 'SUBJECT', 'CHECK', 'RESULT', 'DETAIL'], r.checks.map((c) => [c.level, c.subject, c.check, c.ok ? 'ok' : 'FAIL', c.detail.length > 160 ? `${c.detail.slice(0, 157)}…` : c.detail])),
    `RPO (age of the backup): ${(r.rpoSeconds / 3600).toFixed(1)} h; RTO (restore time): ${r.rtoSeconds === null ? 'n/a (level full measures it)' : `${r.rtoSeconds.toFixed(1)} s`}`,
    `Result: ${r.passed ? 'PASS' : `FAIL (${r.differences.length} difference${r.differences.length === 1 ? '' : 's'})`}`,
    ...r.differences.map((d) => `  - ${d}`),
  ].join('\n');
}

export async function verifyCommand(ctx: Context, id: string | undefined, opts: VerifyCliOptions): Promise<number> {
  const r = await runVerify(ctx, { id, latest: opts.latest, level: (opts.level ?? 'quick') as Level, from: opts.from, subset: opts.subset, trustSigner: opts.trustSigner });
  if (opts.report) await writeFile(opts.report, markdownReport(r));
  process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : renderVerify(r)) + '\n');
  return r.passed ? ExitCode.ok : ExitCode.verifyFailed;
}
