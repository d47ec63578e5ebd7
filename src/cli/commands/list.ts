/** `dr list [--json]`: committed backups, newest first. */
import type { Context } from '../../core/context.ts';
import { selectDestinations } from '../../storage/destinations.ts';
import { listAll } from '../../repo/catalog.ts';
import { table, formatBytes } from '../table.ts';
import { ExitCode } from '../../core/errors.ts';

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export async function listCommand(ctx: Context, opts: { json?: boolean; from?: string }): Promise<number> {
  const storages = selectDestinations(ctx.config, opts.from, ctx.log);
  const { backups, problems } = await listAll(storages);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ backups, problems }, null, 2) + '\n');
  } else {
    if (backups.length === 0) process.stdout.write(`no committed backups in ${storages.map((s) => `${s.kind} ${s.location}`).join(', ')}\n`);
    else {
      process.stdout.write(table(['ID', 'FINISHED', 'AGE', 'MODE', 'SIZE', 'PARTS', 'DURATION', 'DOWNTIME', 'COPIES'], backups.map((b) => [
        b.id, b.finishedAt.replace(/\.\d+Z$/, 'Z'), formatAge(Date.now() - Date.parse(b.finishedAt)), b.mode, formatBytes(b.sizeBytes),
        String(b.parts), `${(b.durationMs / 1000).toFixed(1)}s`, `${(b.downtimeMs / 1000).toFixed(1)}s`, b.copies.map((c) => c.kind).join('+'),
      ]), '') + '\n');
    }
    for (const p of problems) process.stdout.write(`problem: ${p}\n`);
  }
  return problems.length ? ExitCode.failed : ExitCode.ok;
}
