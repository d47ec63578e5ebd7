/** `dr backup [--dry-run] [--mode hot|cold] [--json]` */
import type { Context } from '../../core/context.ts';
import { runBackup } from '../../backup/run.ts';
import type { BackupPlan } from '../../backup/plan.ts';
import { findLeftovers, type Leftover } from '../../stack/discover.ts';
import { formatBytes } from '../table.ts';
import { ExitCode, DrError } from '../../core/errors.ts';

function renderPlan(p: BackupPlan): string {
  return [
    `Backup plan ${p.id} (${p.mode} mode) → local ${p.destination}`,
    `  dumps:            ${p.dumps.map((d) => `${d.container} (${d.engine}: ${d.databases.join(', ') || 'all'})`).join('; ') || '(none)'}`,
    `  archived live:    ${p.hotVolumes.join(', ') || '(none)'}`,
    `  ${p.quiesce === 'pause' ? 'paused' : 'stopped'}, by wave: ${p.waves.map((w) => w.join(' + ')).join(', then ') || '(none)'}`,
    `  archived stopped: ${p.quiescedVolumes.join(', ') || '(none)'}`,
    `  covered by dumps: ${p.dumpedVolumes.map((d) => `${d.volume} (${d.container})`).join(', ') || '(none)'}`,
    `  parts: tar → ${p.compression} → age to ${p.recipients.length} recipient(s) → SHA-256 → destination`,
  ].join('\n');
}

function renderLeftOut(leftOut: readonly Leftover[]): string {
  if (!leftOut.length) return '';
  return `  left out:         ${leftOut.map((l) => `${l.name} (${l.kind === 'drill' ? 'drill scratch' : l.kind === 'pre-restore' ? 'pre-restore' : 'restored'} copy of ${l.of})`).join(', ')}\n`
    + '                    copies made by restores and drills, not the stack (dr status lists them; DR_INCLUDE_RESTORED=true backs up --suffix copies)\n';
}

export async function backupCommand(ctx: Context, opts: { dryRun?: boolean; mode?: string; json?: boolean }): Promise<number> {
  if (opts.mode && opts.mode !== 'hot' && opts.mode !== 'cold') throw new DrError(`--mode ${opts.mode}: use hot or cold`, ExitCode.usage);
  const r = await runBackup(ctx, { dryRun: opts.dryRun, mode: opts.mode as 'hot' | 'cold' | undefined });
  // copies made by restores and drills (dr status: leftovers) are not the stack: say which were left out
  const leftOut: Leftover[] = opts.dryRun || !opts.json ? (await findLeftovers(await ctx.docker(), ctx.config)).filter((l) => !l.backedUp) : [];
  if (opts.json) {
    process.stdout.write(JSON.stringify(opts.dryRun ? { plan: r.plan, leftOut, warnings: r.warnings } : { ...r.manifest, copies: r.copies }, null, 2) + '\n');
  } else if (opts.dryRun) {
    process.stdout.write(renderPlan(r.plan) + '\n' + renderLeftOut(leftOut) + (r.warnings.length ? `Problems that would stop the backup:\n${r.warnings.map((w) => `  - ${w}`).join('\n')}\n` : '') + 'Dry run: nothing was touched.\n');
  } else {
    const m = r.manifest!;
    const size = m.parts.reduce((n, p) => n + p.stored.size, 0);
    process.stdout.write(`backup ${m.id}: ${m.parts.length} parts, ${formatBytes(size)}, ${(m.durationMs / 1000).toFixed(1)} s, writers down ${(m.downtime.ms / 1000).toFixed(1)} s\n`
      + r.copies.map((c) => `  ${c.committed ? 'committed' : 'NOT committed'} on ${c.kind} ${c.location}${c.error ? `: ${c.error}` : ''}\n`).join('')
      + m.warnings.map((w) => `warning: ${w}\n`).join('') + renderLeftOut(leftOut));
  }
  if (!opts.dryRun && r.copies.some((c) => !c.committed)) return ExitCode.partial;
  return opts.dryRun && r.warnings.length ? ExitCode.failed : ExitCode.ok;
}
