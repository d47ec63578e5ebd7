/**
 * PostgreSQL restore: the globals (roles) replayed first, then each database created where the initialisation
 * did not and its dump replayed through psql (stop-on-error); then dumped again and its table statistics
 * compared.
 */
import { execCollect } from '../../docker/exec.ts';
import { postgresLogin, pgDumpCmd } from './client.ts';
import { createPgDumpStats } from './stats.ts';
import { compareTables } from '../table-stats.ts';
import type { Compared, ReplayContext, Throwaway } from '../engine.ts';
import { DrError } from '../../core/errors.ts';
import { scrub } from '../../core/redact.ts';

export async function replayPostgres(t: Throwaway, ctx: ReplayContext): Promise<void> {
  const c = t.container;
  const login = await postgresLogin(t);
  await ctx.waitReady(t, async () => (await execCollect(c, { cmd: ['pg_isready', '-h', '127.0.0.1', '-U', login.user] })).exitCode === 0);
  const globals = ctx.db.extraParts.find((p) => p.name === 'globals');
  if (globals) {
    // roles that the initialisation already created (the superuser) report "already exists": not an error
    const r = await ctx.feed(t, globals.part, { cmd: ['psql', '-X', '-q', '-U', login.user, '-d', 'postgres'], env: login.env });
    const errs = r.stderr.split('\n').filter((l) => /ERROR/.test(l) && !/already exists/.test(l));
    if (errs.length) ctx.warn(`${ctx.db.container}: globals: ${scrub(errs.slice(0, 3).join(' | '))}`);
  }
  for (const d of ctx.db.databases) {
    const exists = (await execCollect(c, { cmd: ['psql', '-X', '-At', '-U', login.user, '-d', 'postgres', '-c', `SELECT 1 FROM pg_database WHERE datname = '${d.name.replace(/'/g, "''")}'`], env: login.env })).stdout.trim() === '1';
    if (!exists) {
      const r = await execCollect(c, { cmd: ['createdb', '-U', login.user, '--', d.name], env: login.env });
      if (r.exitCode !== 0) throw new DrError(`${ctx.db.container}: createdb ${d.name} failed: ${scrub(r.stderr.trim())}`);
    }
    await ctx.replayPart(t, d.part, { cmd: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', login.user, '-d', d.name], env: login.env });
  }
}

export async function comparePostgres(t: Throwaway, ctx: ReplayContext): Promise<Compared> {
  const login = await postgresLogin(t);
  return compareTables(t, ctx, (db) => ({ cmd: pgDumpCmd(login.user, db), env: login.env }), createPgDumpStats);
}
