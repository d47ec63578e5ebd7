/** MariaDB restore: each database's dump replayed through the client (stop-on-error), then dumped again and its table statistics compared. */
import { execCollect } from '../../docker/exec.ts';
import { mariadbLogin, mariadbClient, mariadbDumpCmd } from './client.ts';
import { createMysqlDumpStats } from './stats.ts';
import { compareTables } from '../table-stats.ts';
import type { Compared, ReplayContext, Throwaway } from '../engine.ts';

export async function replayMariadb(t: Throwaway, ctx: ReplayContext): Promise<void> {
  const login = await mariadbLogin(t);
  await ctx.waitReady(t, async () => (await execCollect(t.container, { cmd: mariadbClient([`-u${login.user}`, '--protocol=tcp', '-h', '127.0.0.1', '-e', 'SELECT 1']), env: login.env })).exitCode === 0);
  for (const d of ctx.db.databases) {
    await ctx.replayPart(t, d.part, { cmd: mariadbClient([`-u${login.user}`, '--default-character-set=utf8mb4']), env: login.env });
  }
}

export async function compareMariadb(t: Throwaway, ctx: ReplayContext): Promise<Compared> {
  const login = await mariadbLogin(t);
  return compareTables(t, ctx, (db) => ({ cmd: mariadbDumpCmd(login.user, db), env: login.env }), createMysqlDumpStats);
}
