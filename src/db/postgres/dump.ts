/**
 * PostgreSQL dump: pg_dump per database (plain SQL), with its table statistics, plus pg_dumpall --globals-only.
 * pg_dump's snapshot exists at its first byte of output (it reads the catalogs inside its snapshot before
 * writing).
 */
import { settledAll } from '../../core/concurrency.ts';
import { postgresLogin, pgDumpCmd } from './client.ts';
import { createPgDumpStats } from './stats.ts';
import type { DumpContext, PreparedDump } from '../engine.ts';
import type { PartRecord } from '../../repo/manifest.ts';

export async function preparePostgresDump(ctx: DumpContext): Promise<PreparedDump> {
  const login = await postgresLogin(ctx.target);
  const rec = ctx.record;
  return {
    start() {
      const dbs = ctx.info.databases.map((db) => ({ db, l: ctx.launch({ cmd: pgDumpCmd(login.user, db), env: login.env }, 'first-byte') }));
      return {
        snapshot: Promise.all(dbs.map((d) => d.l.snapshot)).then(() => {}),
        abandon: () => { for (const d of dbs) d.l.abandon(); },
        async store() {
          const parts: PartRecord[] = [];
          const stored = settledAll(dbs.map(async ({ db, l }) => {
            const stats = createPgDumpStats();
            const part = await ctx.storeLaunched(l, db, '.sql', `pg_dump of ${db}`, stats);
            return { db, part, tables: stats.result() };
          }));
          stored.catch(() => {}); // awaited below
          // roles and tablespaces: no snapshot of the apps' data
          let globals: PartRecord;
          try {
            globals = await ctx.storeExec('_globals', '.sql', { cmd: ['pg_dumpall', '-U', login.user, '--globals-only', '--no-password'], env: login.env }, 'pg_dumpall --globals-only');
          } catch (err) {
            for (const d of dbs) d.l.abandon();
            await Promise.allSettled([stored]);
            throw err;
          }
          parts.push(globals);
          rec.extraParts.push({ name: 'globals', part: globals.key });
          for (const d of await stored) {
            parts.push(d.part);
            rec.databases.push({ name: d.db, part: d.part.key, tables: d.tables });
          }
          return { record: rec, parts };
        },
      };
    },
  };
}
