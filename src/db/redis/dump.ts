/**
 * Redis dump: SAVE (the snapshot, with the key counts of what it saved), then the RDB file through the archive
 * API, its keyspace summary read from the same bytes as they stream into the part (src/db/redis/rdb.ts).
 */
import { redisCli } from './client.ts';
import { infoKeys } from './keyspace.ts';
import { KeyspaceTap } from './rdb.ts';
import type { DumpContext, PreparedDump } from '../engine.ts';

export async function prepareRedisDump(ctx: DumpContext): Promise<PreparedDump> {
  const t = ctx.target;
  const rec = ctx.record;
  const cfg = async (key: string, dflt: string) => {
    try {
      const out = (await redisCli(t, `CONFIG GET ${key}`, ['CONFIG', 'GET', key])).split('\n').map((l) => l.trim());
      return out[1] || dflt;
    } catch { return dflt; }
  };
  const dir = await cfg('dir', '/data');
  const file = await cfg('dbfilename', 'dump.rdb');
  return {
    start() {
      let savedAt = 0; // the keyspace summary's expiry buckets start here
      const saved = (async () => {
        await redisCli(t, 'SAVE', ['SAVE']);
        savedAt = Date.now();
        rec.keys = infoKeys(await redisCli(t, 'INFO keyspace', ['INFO', 'keyspace']));
      })();
      saved.catch(() => {}); // reported by store()
      return {
        snapshot: saved.then(() => {}, () => {}),
        abandon: () => {},
        async store() {
          await saved;
          const keyspace = new KeyspaceTap(savedAt); // a side copy of the bytes, no second read
          const part = await ctx.storeFile(`${dir.replace(/\/$/, '')}/${file}`, 'dump', '.rdb', 'dump.rdb', keyspace);
          rec.extraParts.push({ name: 'rdb', part: part.key });
          const summary = keyspace.result();
          if (summary) rec.keyspace = summary;
          else {
            const w = `${t.name}: the RDB's keyspace could not be summarised (${keyspace.error?.message}): a restore of this backup compares key counts only`;
            ctx.log.warn(w);
            rec.warnings.push(w);
          }
          return { record: rec, parts: [part] };
        },
      };
    },
  };
}
