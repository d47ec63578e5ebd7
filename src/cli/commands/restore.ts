/** `dr restore <id>|--latest [--volume V]... [--db NAME]... [--suffix S] [--force] [--dry-run] [--trust-signer KEY] [--json]` */
import type { Context } from '../../core/context.ts';
import { runRestore, type RestoreSummary } from '../../restore/run.ts';
import { table } from '../table.ts';
import { formatAge } from './list.ts';
import { ExitCode } from '../../core/errors.ts';

export interface RestoreCliOptions { from?: string; latest?: boolean; volume?: string[]; db?: string[]; suffix?: string; force?: boolean; dryRun?: boolean; json?: boolean; trustSigner?: string }

const STATE = { pending: 'not written', writing: 'incomplete', verified: 'restored and verified', failed: 'FAILED (incomplete)', 'old-content': 'old content put back (checked)' } as const;

function action(t: { create: boolean; keepOldAs: string | null; rewrite: boolean; skip: boolean }): string {
  if (t.skip) return 'skip: restored and verified by the earlier run';
  if (t.keepOldAs) return `replace (old content checked and kept as ${t.keepOldAs})`;
  if (t.rewrite) return 'rewrite (an unfinished restore\'s output)';
  return t.create ? 'create' : 'fill empty volume';
}

export function renderRestore(s: RestoreSummary, dryRun: boolean): string {
  const out: string[] = [];
  out.push(`${dryRun ? 'Restore plan for' : 'Restored'} backup ${s.id} (age ${formatAge(s.rpoSeconds * 1000)}) from ${s.plan.from}`);
  if (s.plan.volumes.length) {
    out.push(table(['VOLUME', 'INTO', 'ACTION', dryRun ? '' : 'ENTRIES VERIFIED'], s.plan.volumes.map((v) => [
      v.name, v.target, action(v),
      dryRun ? '' : String(s.volumes.find((r) => r.target === v.target)?.entries ?? '-'),
    ])));
  }
  if (s.plan.databases.length) {
    out.push(table(['DATABASE CONTAINER', 'ENGINE', 'INTO VOLUME', 'ACTION', dryRun ? 'DATABASES' : 'TABLES / ROWS VERIFIED'], s.plan.databases.map((d) => {
      const r = s.databases.find((x) => x.container === d.container);
      return [d.container, d.engine, d.volume, action(d), dryRun ? d.databases.join(', ') : r?.databases.map((x) => `${x.name}: ${x.tables} tables, ${x.rows} rows`).join('; ') || '-'];
    })));
  }
  const failedRun = s.components.some((c) => c.state !== 'verified');
  if (failedRun) {
    out.push('The restore did not finish. Per component:');
    out.push(table(['COMPONENT', 'VOLUME', 'STATE', 'DETAIL'], s.components.map((c) => [c.name, c.target, STATE[c.state], c.error ?? (c.keptAs ? `old content kept in ${c.keptAs}` : '')])));
    if (s.resume) out.push(`Containers that use a volume not verified stay stopped. Resume (verified components are skipped): ${s.resume}`);
  }
  if (dryRun) {
    out.push(`Would stop: ${s.plan.stop.join(', ') || '(nothing)'}; would start: ${s.plan.start.join(', ') || '(nothing)'}`);
    out.push('Dry run: every part was checked; nothing was written.');
  } else {
    if (s.services.length) out.push(table(['SERVICE', 'STATE', 'HEALTH'], s.services.map((x) => [x.name, x.state, x.health ?? '-'])));
    out.push(`RTO (this restore): ${(s.rtoMs / 1000).toFixed(1)} s; RPO (age of the backup): ${formatAge(s.rpoSeconds * 1000)}`);
  }
  for (const n of s.databases.flatMap((d) => d.notes ?? [])) out.push(n);
  for (const w of s.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}

/** --trust-signer: the summary names the key trusted by the command line instead of the configuration. */
const overrideNote = (opts: RestoreCliOptions) => opts.trustSigner
  ? `\nWARNING: signer ${opts.trustSigner.trim()} was trusted because of --trust-signer, not by this host's configuration; once confirmed, set it as DR_SIGNING_PUBLIC_KEY`
  : '';
const withSigner = (s: RestoreSummary, opts: RestoreCliOptions) => (opts.trustSigner ? { ...s, trustedSigner: { key: opts.trustSigner.trim(), trustedBy: '--trust-signer' } } : s);

export async function restoreCommand(ctx: Context, id: string | undefined, opts: RestoreCliOptions): Promise<number> {
  let s: RestoreSummary;
  try {
    s = await runRestore(ctx, { id, latest: opts.latest, volumes: opts.volume, dbs: opts.db, suffix: opts.suffix, force: opts.force, dryRun: opts.dryRun, from: opts.from, trustSigner: opts.trustSigner });
  } catch (err) {
    const partial = (err as { summary?: RestoreSummary }).summary;
    if (partial) {
      process.stdout.write((opts.json ? JSON.stringify(withSigner(partial, opts), null, 2) : renderRestore(partial, false) + overrideNote(opts)) + '\n');
    }
    throw err;
  }
  process.stdout.write((opts.json ? JSON.stringify(withSigner(s, opts), null, 2) : renderRestore(s, !!opts.dryRun) + overrideNote(opts)) + '\n');
  return ExitCode.ok;
}
