/** `dr prune [--dry-run] [--from local|s3] [--json]`: apply the retention policy on every destination. */
import { mkdir } from 'node:fs/promises';
import type { Context } from '../../core/context.ts';
import { selectDestinations } from '../../storage/destinations.ts';
import { acquireLock } from '../../repo/lock.ts';
import { pruneDestinations, retentionPolicy, type PruneResult } from '../../repo/prune.ts';
import { describePolicy, isEmptyPolicy } from '../../repo/retention.ts';
import { table } from '../table.ts';
import { ExitCode } from '../../core/errors.ts';

export function renderPrune(results: PruneResult[], policyText: string, dryRun: boolean): string {
  const out = [`Retention policy: ${policyText}${dryRun ? ' (dry run: nothing removed)' : ''}`];
  for (const r of results) {
    // per-backup failures are listed under the table, one a line; a failure of the whole destination here
    out.push('', `${r.kind} ${r.location}${r.error && !r.failed.length ? `: FAILED: ${r.error}` : r.failed.length ? `: FAILED for ${r.failed.length} backup${r.failed.length === 1 ? '' : 's'}` : ''}`);
    if (r.decisions.length) {
      out.push(table(['ID', 'TIME', 'ACTION', 'KEPT BY'], r.decisions.map((d) => [
        d.id, d.time.replace(/\.\d+Z$/, 'Z'), d.keep ? 'keep' : dryRun ? 'would remove' : r.removed.includes(d.id) ? 'removed'
          : r.failed.some((f) => f.id === d.id && !f.committed) ? 'remove FAILED (manifest removed, parts left)' : 'remove FAILED', d.reasons.join(', ') || '-',
      ])));
    } else if (!r.error) out.push('  (no committed backups)');
    for (const f of r.failed) out.push(`  FAILED: ${f.error}`);
  }
  return out.join('\n');
}

export async function pruneCommand(ctx: Context, opts: { dryRun?: boolean; from?: string; json?: boolean }): Promise<number> {
  const { policy, timeZone } = retentionPolicy(ctx.config);
  const storages = selectDestinations(ctx.config, opts.from, ctx.log);
  await mkdir(ctx.config.localDir, { recursive: true, mode: 0o700 });
  const lock = opts.dryRun ? null : await acquireLock(ctx.config.localDir, 'dr prune', ctx.config.lockStaleSec, ctx.log);
  let results: PruneResult[];
  try {
    results = await pruneDestinations(storages, policy, timeZone, !!opts.dryRun, ctx.log);
  } finally {
    await lock?.release();
  }
  const text = isEmptyPolicy(policy) ? 'none set (DR_KEEP_*): nothing is removed' : `${describePolicy(policy)} (calendar: ${timeZone})`;
  process.stdout.write((opts.json ? JSON.stringify({ policy, timeZone, dryRun: !!opts.dryRun, destinations: results }, null, 2) : renderPrune(results, text, !!opts.dryRun)) + '\n');
  // some removals done and some failed (on one destination or across them): partial
  const failed = results.filter((r) => r.error).length;
  const removed = results.reduce((n, r) => n + r.removed.length, 0);
  return failed === 0 ? ExitCode.ok : failed === results.length && removed === 0 ? ExitCode.failed : ExitCode.partial;
}
