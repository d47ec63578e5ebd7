/**
 * Redis restore: dump.rdb is written into the fresh volume (its stored and plaintext SHA-256 checked as it
 * streams), then a throwaway Redis (no AOF, no network) loads it; its keyspace is checked against the backup's
 * summary (one EVAL, compareKeyspace: every key without a TTL back, keys whose TTL ran out since the backup
 * counted as expired, nothing the backup did not have); AOF is switched on so Redis writes an AOF from the
 * loaded data (a stack running with --appendonly yes would otherwise start from an empty AOF and ignore the
 * RDB), and SHUTDOWN SAVE leaves a consistent RDB + AOF behind.
 */
import { execCollect } from '../../docker/exec.ts';
import { KEYSPACE_LUA, keyspaceArgs, parseKeyspaceReply, compareKeyspace, infoKeyspaceDbs, infoKeys } from './keyspace.ts';
import type { Compared, ReplayContext, Throwaway } from '../engine.ts';
import { CheckError, errorMessage } from '../../core/errors.ts';

/** The throwaway Redis: no AOF, no saving until the check is done, the data volume at /data. */
export const THROWAWAY_CMD = ['redis-server', '--appendonly', 'no', '--save', '', '--dir', '/data'];

/** redis-cli in the throwaway Redis (no password); error replies are failures. */
async function cli(t: Throwaway, ...args: string[]): Promise<string> {
  const r = await execCollect(t.container, { cmd: ['redis-cli', ...args] });
  if (r.exitCode !== 0 || /^(ERR|LOADING|NOSCRIPT|BUSY)/.test(r.stdout)) throw new Error(r.stdout.trim() || r.stderr.trim());
  return r.stdout;
}

const who = (ctx: ReplayContext) => `Redis ${ctx.db.container}`;

export async function seedRedis(ctx: ReplayContext): Promise<void> {
  const rdb = ctx.db.extraParts.find((p) => p.name === 'rdb');
  if (!rdb) throw new CheckError(`${ctx.db.container}: the backup has no RDB part`);
  await ctx.writeFile(rdb.part, 'dump.rdb');
}

/** The replay is Redis loading the RDB at start. */
export async function replayRedis(t: Throwaway, ctx: ReplayContext): Promise<void> {
  try {
    await ctx.waitReady(t, async () => (await cli(t, 'PING')).trim() === 'PONG');
  } catch (err) { // a truncated or damaged RDB: Redis refuses to load it (its CRC64, its structure)
    throw new CheckError(`${who(ctx)}: the restored RDB does not load: ${errorMessage(err)}`);
  }
}

export async function compareRedis(t: Throwaway, ctx: ReplayContext): Promise<Compared> {
  const info = await cli(t, 'INFO', 'keyspace');
  const keys = infoKeys(info);
  let expired = 0;
  const want = ctx.db.keyspace;
  if (want) {
    const dbs = [...new Set([...Object.keys(want.dbs).map((d) => Number(d.slice(2))), ...infoKeyspaceDbs(info)])].sort((a, b) => a - b);
    let reply: string;
    try {
      reply = await cli(t, 'EVAL', KEYSPACE_LUA, '0', ...keyspaceArgs(want.bounds, dbs));
    } catch (err) {
      throw new CheckError(`${who(ctx)}: the keyspace check in the temporary Redis failed: ${errorMessage(err)}`);
    }
    // t0 on Redis's clock (the one the expiries are on): its TIME after the scan less the time elapsed
    // here since before the start — a little early, which only makes the check less strict
    const loaded = parseKeyspaceReply(reply);
    const t0 = loaded.time - Math.ceil(performance.now() - t.startedAt);
    const cmp = compareKeyspace(want, loaded, t0);
    if (cmp.failures.length) throw new CheckError(`${who(ctx)}: the restored RDB differs from the backup: ${cmp.failures.slice(0, 10).join('; ')}`);
    expired = cmp.expired;
  } else {
    // a backup made before keyspace summaries: only counts per database, taken beside the SAVE (not from the
    // RDB), so fewer keys may be TTLs that ran out; more keys than recorded is a difference
    const counts = ctx.db.keys ?? {};
    const dbs = [...new Set([...Object.keys(counts), ...Object.keys(keys)])];
    const more = dbs.filter((k) => (keys[k] ?? 0) > (counts[k] ?? 0)).map((k) => `${k}: ${keys[k] ?? 0} keys, the backup has ${counts[k] ?? 0}`);
    if (more.length) throw new CheckError(`${who(ctx)}: the restored RDB differs from the backup: ${more.join('; ')}`);
    const fewer = dbs.filter((k) => (keys[k] ?? 0) < (counts[k] ?? 0));
    if (fewer.length) {
      ctx.warn(`${who(ctx)}: ${fewer.map((k) => `${k}: ${keys[k] ?? 0} keys, the backup counted ${counts[k]}`).join('; ')} — this backup predates keyspace summaries, so dr cannot tell keys whose TTL ran out from missing ones (the RDB itself is the one recorded: SHA-256 checked)`);
    }
  }
  const notes = expired ? [`${ctx.db.container}: ${expired} volatile ${expired === 1 ? 'key' : 'keys'} expired since the backup (TTL ran out; not a difference)`] : [];
  return { databases: [{ name: 'keyspace', tables: Object.keys(keys).length, rows: Object.values(keys).reduce((a, b) => a + b, 0) }], expired, notes };
}

/** AOF on (written from the loaded data), then SHUTDOWN SAVE: the RDB and AOF the stack's Redis starts from. */
export async function stopRedis(t: Throwaway): Promise<void> {
  await cli(t, 'CONFIG', 'SET', 'appendonly', 'yes');
  for (let i = 0; i < 600; i++) {
    const p = await cli(t, 'INFO', 'persistence');
    if (/aof_enabled:1/.test(p) && /aof_rewrite_in_progress:0/.test(p) && /aof_rewrite_scheduled:0/.test(p)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await execCollect(t.container, { cmd: ['redis-cli', 'SHUTDOWN', 'SAVE'] });
  await t.container.wait();
}
