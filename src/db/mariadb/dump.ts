/**
 * MariaDB dump: mariadb-dump --single-transaction --routines --triggers --events --hex-blob per database, with
 * its table statistics, plus the accounts (--system=users); warns about non-InnoDB tables. Its snapshot
 * exists at the first --verbose progress line after "-- Starting transaction..." (stderr is unbuffered:
 * START TRANSACTION WITH CONSISTENT SNAPSHOT has returned).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { execChecked, execCollect } from '../../docker/exec.ts';
import { settledAll } from '../../core/concurrency.ts';
import { mariadbLogin, mariadbClient, mariadbDumpCmd, SYSTEM_SCHEMAS } from './client.ts';
import { createMysqlDumpStats } from './stats.ts';
import type { DumpContext, PreparedDump } from '../engine.ts';
import type { PartRecord } from '../../repo/manifest.ts';

/** mariadb-dump's stderr without its --verbose progress lines; taken() once the snapshot exists. */
function verboseProgress(taken: () => void): Transform {
  let begun = false;
  let rest = '';
  const progress = (line: string): boolean => {
    if (!line.startsWith('-- ')) return false;
    if (begun) taken(); // a step after START TRANSACTION WITH CONSISTENT SNAPSHOT returned
    if (/^-- Starting transaction/.test(line)) begun = true;
    return true;
  };
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop()!;
      const keep = lines.filter((l) => !progress(l));
      cb(null, keep.length ? `${keep.join('\n')}\n` : undefined);
    },
    flush(cb: TransformCallback) { cb(null, rest && !progress(rest) ? rest : undefined); },
  });
}

export async function prepareMariadbDump(ctx: DumpContext): Promise<PreparedDump> {
  const t = ctx.target;
  const login = await mariadbLogin(t);
  const rec = ctx.record;
  const nonInnodb = await execChecked(t.container, t.name, 'listing table engines', {
    cmd: mariadbClient([`-u${login.user}`, '-N', '-B', '-e',
      `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, ' (', IFNULL(ENGINE, '?'), ')') FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ENGINE <> 'InnoDB' AND TABLE_SCHEMA NOT IN (${[...SYSTEM_SCHEMAS].map((s) => `'${s}'`).join(',')})`]),
    env: login.env,
  });
  for (const table of nonInnodb.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const w = `${t.name}: table ${table} is not InnoDB: --single-transaction cannot make its dump consistent`;
    ctx.log.warn(w);
    rec.warnings.push(w);
  }
  const hasMariadbDump = (await execCollect(t.container, { cmd: ['sh', '-c', 'command -v mariadb-dump'] })).exitCode === 0;
  return {
    start() {
      // every database at once: each one's snapshot is taken now, not after the previous dump
      const dbs = ctx.info.databases.map((db) => ({ db, l: ctx.launch({ cmd: mariadbDumpCmd(login.user, db, true), env: login.env }, verboseProgress) }));
      return {
        snapshot: Promise.all(dbs.map((d) => d.l.snapshot)).then(() => {}),
        abandon: () => { for (const d of dbs) d.l.abandon(); },
        async store() {
          const parts: PartRecord[] = [];
          const done = await settledAll(dbs.map(async ({ db, l }) => {
            const stats = createMysqlDumpStats();
            const part = await ctx.storeLaunched(l, db, '.sql', `mariadb-dump of ${db}`, stats);
            return { db, part, tables: stats.result() };
          }));
          for (const d of done) {
            parts.push(d.part);
            rec.databases.push({ name: d.db, part: d.part.key, tables: d.tables });
          }
          // accounts and grants (MariaDB's --system=users); skipped with a warning where the dump tool lacks it
          if (hasMariadbDump) {
            const part = await ctx.storeExec('_users', '.sql', { cmd: ['mariadb-dump', `-u${login.user}`, '--system=users', '--skip-dump-date'], env: login.env }, 'mariadb-dump --system=users');
            parts.push(part);
            rec.extraParts.push({ name: 'users', part: part.key });
          } else rec.warnings.push(`${t.name}: mariadb-dump not found: user accounts are not backed up (only the databases)`);
          return { record: rec, parts };
        },
      };
    },
  };
}
