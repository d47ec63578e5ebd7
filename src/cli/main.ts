/** The `dr` command line (commander). Only commands that work are registered. */
import { Command, CommanderError } from 'commander';
import { createContext } from './context.ts';
import { recoverIfIdle } from '../stack/quiesce.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { scrub } from '../core/redact.ts';
import { statusCommand } from './commands/status.ts';
import { backupCommand } from './commands/backup.ts';
import { listCommand } from './commands/list.ts';
import { keygenCommand } from './commands/keygen.ts';
import { restoreCommand, type RestoreCliOptions } from './commands/restore.ts';
import { pruneCommand } from './commands/prune.ts';
import { runDaemon } from '../daemon/run.ts';
import { verifyCommand, type VerifyCliOptions } from './commands/verify.ts';
import { tuneGcForStreaming } from '../core/memory.ts';
import { loadHooks } from '../core/hooks.ts';
import pkg from '../../package.json' with { type: 'json' };

function fail(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : ExitCode.usage);
  if (err instanceof DrError) {
    process.stderr.write(`dr: ${scrub(err.message)}\n${err.hint ? `dr: what to do: ${scrub(err.hint)}\n` : ''}`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`dr: unexpected error: ${scrub(errorMessage(err))}\n`);
  if (process.env.DR_DEBUG && err instanceof Error && err.stack) process.stderr.write(scrub(err.stack) + '\n');
  process.exit(ExitCode.failed);
}

/** Wraps a command action: builds the context, runs it, exits with its code. */
function action<A extends unknown[]>(fn: (ctx: ReturnType<typeof createContext>, ...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      const ctx = createContext();
      // writers a killed run left stopped come back with the next dr command (when nothing holds the lock)
      await recoverIfIdle(ctx.config.localDir, ctx.config.lockStaleSec, ctx.docker, ctx.log)
        .catch((err: unknown) => ctx.log.error({ err: errorMessage(err) }, 'could not restart containers left stopped by an interrupted run'));
      const code = await fn(ctx, ...args);
      process.exitCode = code;
    } catch (err) {
      fail(err);
    }
  };
}

export async function main(argv = process.argv): Promise<void> {
  tuneGcForStreaming();
  await loadHooks();
  const program = new Command()
    .name('dr')
    .description('Backup and disaster recovery for the helpdesk stack (GLPI + Chatwoot on Docker Compose)')
    .version(pkg.version)
    .exitOverride()
    .showHelpAfterError('(run dr --help for usage)');

  program
    .command('status')
    .description('discovery and plan: volumes, containers, databases, writers to quiesce, destinations, problems')
    .option('--json', 'machine-readable output')
    .action(action((ctx, opts: { json?: boolean }) => statusCommand(ctx, opts)));

  program
    .command('backup')
    .description('one backup now: dump the databases, stop the writers, archive the volumes, restart, commit')
    .option('--dry-run', 'print the plan and touch nothing')
    .option('--mode <mode>', 'hot (databases keep running, covered by dumps) or cold (databases stopped too, raw volumes archived)')
    .option('--json', 'print the manifest (or the plan) as JSON')
    .action(action((ctx, opts: { dryRun?: boolean; mode?: string; json?: boolean }) => backupCommand(ctx, opts)));

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command('restore [id]')
    .description('restore the whole stack (or --volume / --db) from a backup into fresh volumes, verified, and start it')
    .option('--latest', 'the newest committed backup')
    .option('--from <destination>', 'read from local or s3 (default: the first with a committed copy, local first)')
    .option('--volume <name>', 'restore only this volume (repeatable)', collect)
    .option('--db <name>', 'restore only this database container or database (repeatable)', collect)
    .option('--suffix <suffix>', 'restore side by side into NAME+SUFFIX, stopping nothing')
    .option('--force', 'write into non-empty volumes (their old content is kept as <volume>_pre-restore_<id>)')
    .option('--dry-run', 'check every part and print the plan; write nothing')
    .option('--trust-signer <key>', 'trust this manifest signer although no key is configured (only after confirming it out of band: RESTORE.md)')
    .option('--json', 'machine-readable summary')
    .action(action((ctx, id: string | undefined, opts: RestoreCliOptions) => restoreCommand(ctx, id, opts)));

  program
    .command('list')
    .description('committed backups on every destination, newest first')
    .option('--from <destination>', 'only local or only s3')
    .option('--json', 'machine-readable output')
    .action(action((ctx, opts: { json?: boolean; from?: string }) => listCommand(ctx, opts)));

  program
    .command('prune')
    .description('apply the retention policy (DR_KEEP_*) on every destination')
    .option('--dry-run', 'show each backup with keep/remove and the rules that keep it; remove nothing')
    .option('--from <destination>', 'only local or only s3')
    .option('--json', 'machine-readable output')
    .action(action((ctx, opts: { dryRun?: boolean; from?: string; json?: boolean }) => pruneCommand(ctx, opts)));

  program
    .command('verify [id]')
    .description('the drill: prove a backup restores (quick: signature + stored hashes; read: + decrypt and compare; full: + real side-by-side restore)')
    .option('--latest', 'the newest committed backup (the default when no id is given)')
    .option('--level <level>', 'quick, read or full', 'quick')
    .option('--from <destination>', 'read from local or s3')
    .option('--subset <n/t>', 'read level: only subset n of t (t runs cover every part once)')
    .option('--trust-signer <key>', 'trust this manifest signer although no key is configured (only after confirming it out of band: RESTORE.md)')
    .option('--json', 'machine-readable report')
    .option('--report <file>', 'also write the report as Markdown')
    .action(action((ctx, id: string | undefined, opts: VerifyCliOptions) => verifyCommand(ctx, id, opts)));

  program
    .command('daemon')
    .description('sidecar mode: scheduled backups (DR_SCHEDULE), lock, /metrics and /healthz, notifications')
    .action(action((ctx) => runDaemon(ctx)));

  program
    .command('keygen')
    .description('make an age identity (prints its recipient) and a manifest signing key, files mode 0600')
    .option('--out-dir <dir>', 'where to write age-identity.txt and signing.key', './dr-keys')
    .option('--force', 'overwrite existing key files')
    .action(async (opts: { outDir: string; force?: boolean }) => {
      try { process.exitCode = await keygenCommand(opts); } catch (err) { fail(err); }
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    fail(err);
  }
}
