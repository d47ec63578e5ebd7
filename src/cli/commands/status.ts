/** `dr status`: discovery and plan — volumes, containers, databases, writers to quiesce, destinations. */
import type { Context } from '../../core/context.ts';
import { discover, type Discovery, type Problem, type Leftover } from '../../stack/discover.ts';
import { destinationStatus, type DestinationStatus, destinations } from '../../storage/destinations.ts';
import { table, formatBytes } from '../table.ts';
import { listAll, type BackupSummary } from '../../repo/catalog.ts';
import { formatAge } from './list.ts';
import { ExitCode } from '../../core/errors.ts';

export interface StatusReport extends Discovery {
  ok: boolean;
  destinations: DestinationStatus[];
  /** the newest committed backups (at most 3) */
  lastBackups: (BackupSummary & { ageSeconds: number })[];
}

export async function statusReport(ctx: Context): Promise<StatusReport> {
  const docker = await ctx.docker();
  const { report } = await discover(docker, ctx.config, ctx.dockerEndpoint);
  const dests = await destinationStatus(ctx.config);
  const problems: Problem[] = [...report.problems];
  for (const d of dests) {
    if (d.kind === 'local' && d.exists && !d.writable) problems.push({ subject: 'DR_LOCAL_DIR', message: `${d.location} is not writable`, hint: 'fix its permissions or point DR_LOCAL_DIR elsewhere' });
    if (d.kind === 's3' && d.error) problems.push({ subject: 'DR_S3_BUCKET', message: `S3 destination ${d.location} is unreachable: ${d.error}`, hint: 'check DR_S3_ENDPOINT, the bucket and the credentials' });
  }
  const { backups } = await listAll(destinations(ctx.config).filter((s, i) => (i === 0 ? dests[0]!.exists : !dests[i]!.error)));
  const lastBackups = backups.slice(0, 3).map((b) => ({ ...b, ageSeconds: Math.round((Date.now() - Date.parse(b.finishedAt)) / 1000) }));
  return { ok: problems.length === 0, ...report, problems, destinations: dests, lastBackups };
}

const copyWord = (k: Leftover['kind']) => (k === 'restored' ? 'restored copy' : k === 'drill' ? 'drill scratch copy' : 'pre-restore copy');

/** Copies made by restores and drills: what each is, and the command that removes them. */
export function renderLeftovers(leftovers: readonly Leftover[]): string[] {
  if (leftovers.length === 0) return ['Leftovers of restores and drills: none'];
  return [
    `Leftovers of restores and drills (${leftovers.length}): copies, not the stack${leftovers.some((l) => !l.backedUp) ? '; left out of backups' : ''}`,
    table(['NAME', 'COPY OF', 'KIND', 'BACKUP', 'AGE', 'BACKED UP'], leftovers.map((l) => [
      l.name, l.of, copyWord(l.kind), l.backupId ?? '-', l.ageSeconds === null ? '-' : formatAge(l.ageSeconds * 1000), l.backedUp ? 'yes' : 'no'])),
    `  remove them (once you no longer need them${leftovers.some((l) => l.kind === 'pre-restore') ? '; a pre-restore copy holds the old content from before a --force restore' : ''}):`,
    `    docker volume rm ${leftovers.map((l) => l.name).join(' ')}`,
  ];
}

export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push(`helpdesk-dr status: prefix ${r.prefix}, Docker ${r.docker.serverVersion} at ${r.docker.endpoint}`);
  out.push('', `Volumes (${r.volumes.length})`);
  out.push(table(['NAME', 'ROLE', 'MOUNTED BY'], r.volumes.map((v) => [
    v.name + (v.copy ? ` (${copyWord(v.copy.kind)} of ${v.copy.of}${v.excluded ? ', not backed up' : `, backed up: ${v.copy.includedBecause}`})` : v.excluded ? ' (excluded)' : ''),
    v.role,
    v.mountedBy.map((m) => `${m.container}:${m.path}`).join(', ') || '-',
  ])));
  out.push('', `Containers (${r.containers.length})`);
  out.push(table(['NAME', 'STATE', 'HEALTH', 'ROLE', 'IMAGE'], r.containers.map((c) => [
    c.name + (c.excluded ? ' (excluded)' : ''),
    c.state,
    c.health ?? '-',
    c.engine ? `database (${c.engine})` : c.writer ? 'writer' : 'other',
    c.image,
  ])));
  out.push('', 'Databases');
  out.push(table(['CONTAINER', 'ENGINE', 'VERSION', 'DATABASES'], r.databases.map((d) => [
    d.container,
    d.engine,
    d.version ?? '-',
    d.error ? `ERROR: ${d.error}` : d.keys ? d.databases.map((n) => `${n} (${d.keys![n]} keys)`).join(', ') || '(empty)' : d.databases.join(', '),
  ])));
  out.push('', `Writers stopped during backup, in this order: ${r.stopOrder.join(', ') || '(none)'}`);
  out.push('', 'Destinations');
  out.push(table(['KIND', 'LOCATION', 'STATE'], r.destinations.map((d) => [
    d.kind, d.location,
    d.kind === 's3' ? (d.error ? `UNREACHABLE: ${d.error}` : 'reachable') : !d.exists ? 'does not exist yet (created by the first backup)' : `${d.writable ? 'writable' : 'NOT WRITABLE'}, ${d.freeBytes === null ? '?' : formatBytes(d.freeBytes)} free`,
  ])));
  out.push('', ...renderLeftovers(r.leftovers));
  out.push('', 'Last backups');
  out.push(r.lastBackups.length === 0 ? '  (none yet)' : table(['ID', 'AGE', 'MODE', 'SIZE', 'PARTS', 'COPIES'], r.lastBackups.map((b) => [
    b.id, formatAge(b.ageSeconds * 1000), b.mode, formatBytes(b.sizeBytes), String(b.parts), b.copies.map((c) => c.kind).join('+')])));
  out.push('');
  if (r.problems.length === 0) out.push('Problems: none');
  else {
    out.push(`Problems (${r.problems.length})`);
    for (const p of r.problems) out.push(`  - ${p.subject}: ${p.message}${p.hint ? `\n    what to do: ${p.hint}` : ''}`);
  }
  return out.join('\n');
}

export async function statusCommand(ctx: Context, opts: { json?: boolean }): Promise<number> {
  const r = await statusReport(ctx);
  process.stdout.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : renderStatus(r) + '\n');
  return r.ok ? ExitCode.ok : ExitCode.failed;
}
