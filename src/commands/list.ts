/** `dr list [--json]`: committed backups, newest first. */
import type { Context } from '../context.ts';
import { LocalStorage } from '../storage/local.ts';
import { listBackups } from '../backups.ts';
import { table, formatBytes } from '../table.ts';
import { ExitCode } from '../errors.ts';

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export async function listCommand(ctx: Context, opts: { json?: boolean }): Promise<number> {
  const storage = new LocalStorage(ctx.config.localDir);
  const { backups, problems } = await listBackups(storage);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ backups, problems }, null, 2) + '\n');
  } else {
    if (backups.length === 0) process.stdout.write(`no committed backups in ${storage.location}\n`);
    else {
      process.stdout.write(table(['ID', 'FINISHED', 'AGE', 'MODE', 'SIZE', 'PARTS', 'DURATION', 'DOWNTIME', 'DESTINATION'], backups.map((b) => [
        b.id, b.finishedAt.replace(/\.\d+Z$/, 'Z'), formatAge(Date.now() - Date.parse(b.finishedAt)), b.mode, formatBytes(b.sizeBytes),
        String(b.parts), `${(b.durationMs / 1000).toFixed(1)}s`, `${(b.downtimeMs / 1000).toFixed(1)}s`, `${b.destination}:${b.location}`,
      ]), '') + '\n');
    }
    for (const p of problems) process.stdout.write(`problem: ${p}\n`);
  }
  return problems.length ? ExitCode.failed : ExitCode.ok;
}
