/** The restore's check of a loaded keyspace against the backup's summary (src/db/redis/rdb.ts, docs/FORMAT.md). */
import { ZERO_DIGEST } from './rdb.ts';
import type { DigestCount, RedisKeyspace } from '../../repo/manifest.ts';

/**
 * One EVAL: for each database in ARGV, every key (SCAN, each name counted once), its absolute expiry
 * (PEXPIRETIME, Redis ≥ 7; before that TIME + PTTL), SHA-1 of its name (redis.sha1hex) XOR-ed per bucket as
 * five 32-bit words (bit.bxor). ARGV: number of bounds, the bounds (ms), then the database numbers.
 * Returns JSON: {dbs: [{db, p: [count, digest], b: [[count, digest], …]}], time: [s, µs]} — time is Redis's
 * TIME after the scan.
 */
export const KEYSPACE_LUA = `
local nb = tonumber(ARGV[1])
local bounds = {}
for i = 1, nb do bounds[i] = tonumber(ARGV[1 + i]) end
local bxor, sub, num, sha1 = bit.bxor, string.sub, tonumber, redis.sha1hex
local function acc() return {0, 0, 0, 0, 0} end
local function add(a, k)
  local h = sha1(k)
  a[1] = bxor(a[1], num(sub(h, 1, 8), 16)); a[2] = bxor(a[2], num(sub(h, 9, 16), 16)); a[3] = bxor(a[3], num(sub(h, 17, 24), 16))
  a[4] = bxor(a[4], num(sub(h, 25, 32), 16)); a[5] = bxor(a[5], num(sub(h, 33, 40), 16))
end
local function tohex(a)
  local s = ''
  for w = 1, 5 do s = s .. bit.tohex(a[w], 8) end
  return s
end
local exact = true
local now = nil
local out = {}
for a = nb + 2, #ARGV do
  redis.call('SELECT', tonumber(ARGV[a]))
  local pc, pd = 0, acc()
  local bc, bd = {}, {}
  for i = 1, nb + 1 do bc[i] = 0; bd[i] = acc() end
  local seen = {}
  local cursor = '0'
  repeat
    local r = redis.call('SCAN', cursor, 'COUNT', 1000)
    cursor = r[1]
    for _, k in ipairs(r[2]) do
      if not seen[k] then
        seen[k] = true
        local e = nil
        if exact then
          local x = redis.pcall('PEXPIRETIME', k)
          if type(x) == 'table' then exact = false else e = x end
        end
        if not exact then
          local ttl = redis.call('PTTL', k)
          if ttl < 0 then e = ttl else
            if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
            e = now + ttl
          end
        end
        if e == -1 then
          pc = pc + 1; add(pd, k)
        elseif e >= 0 then
          local i = nb + 1
          for j = 1, nb do if e <= bounds[j] then i = j; break end end
          bc[i] = bc[i] + 1; add(bd[i], k)
        end
      end
    end
  until cursor == '0'
  local b = {}
  for i = 1, nb + 1 do b[i] = {bc[i], tohex(bd[i])} end
  out[#out + 1] = {db = ARGV[a], p = {pc, tohex(pd)}, b = b}
end
local t = redis.call('TIME')
return cjson.encode({dbs = out, time = {t[1], t[2]}, exact = exact})
`;

export interface LoadedKeyspace {
  /** per `dbN`: persistent, and one entry per bucket of `bounds` plus one beyond */
  dbs: Record<string, { persistent: DigestCount; buckets: DigestCount[] }>;
  /** Redis's TIME after the scan, ms */
  time: number;
}

export function keyspaceArgs(bounds: readonly number[], dbs: readonly number[]): string[] {
  return [String(bounds.length), ...bounds.map(String), ...dbs.map(String)];
}

export function parseKeyspaceReply(reply: string): LoadedKeyspace {
  const j = JSON.parse(reply.trim()) as { dbs: { db: string; p: [number, string]; b: [number, string][] }[] | Record<string, never>; time: [string, string] };
  const out: LoadedKeyspace = { dbs: {}, time: Number(j.time[0]) * 1000 + Math.floor(Number(j.time[1]) / 1000) };
  for (const d of Array.isArray(j.dbs) ? j.dbs : []) {
    out.dbs[`db${d.db}`] = { persistent: { count: d.p[0], digest: d.p[1] }, buckets: d.b.map(([count, digest]) => ({ count, digest })) };
  }
  return out;
}

/** Keys per database of an INFO (keyspace) reply, e.g. {db0: 12, db3: 1}. */
export function infoKeys(info: string): Record<string, number> {
  const keys: Record<string, number> = {};
  for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) keys[m[1]!] = Number(m[2]);
  return keys;
}

/** The databases of an INFO keyspace reply, e.g. [0, 3]. */
export function infoKeyspaceDbs(info: string): number[] {
  return [...info.matchAll(/^db(\d+):keys=/gm)].map((m) => Number(m[1]));
}

export interface KeyspaceComparison { failures: string[]; /** volatile keys whose TTL ran out since the backup */ expired: number }

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Compares a loaded keyspace with the backup's summary. t0: ms just before the Redis that loaded the RDB
 * started (a key expiring by then was dropped while loading); got.time: after the scan (a key expiring later
 * must be there). Keys without a TTL: count and digest equal. A bucket wholly after got.time: equal. A bucket
 * wholly at or before t0: empty, its keys expired. A bucket in between: at most the recorded keys (the
 * difference expired; equal counts must have equal digests). More keys than recorded: a failure.
 */
export function compareKeyspace(want: RedisKeyspace, got: LoadedKeyspace, t0: number): KeyspaceComparison {
  const failures: string[] = [];
  let expired = 0;
  const t1 = got.time;
  const nb = want.bounds.length;
  for (const db of [...new Set([...Object.keys(want.dbs), ...Object.keys(got.dbs)])].sort()) {
    const w = want.dbs[db] ?? { persistent: { count: 0, digest: ZERO_DIGEST }, volatile: [] };
    const g = got.dbs[db] ?? { persistent: { count: 0, digest: ZERO_DIGEST }, buckets: [] };
    const wp = w.persistent;
    const gp = g.persistent;
    if (gp.count < wp.count) failures.push(`${plural(wp.count - gp.count, 'key')} without a TTL ${wp.count - gp.count === 1 ? 'is' : 'are'} missing or different in ${db} (the backup has ${wp.count}, the restored RDB ${gp.count})`);
    else if (gp.count > wp.count) failures.push(`${plural(gp.count - wp.count, 'key')} without a TTL in ${db} that the backup does not have (the backup has ${wp.count}, the restored RDB ${gp.count})`);
    else if (gp.digest !== wp.digest) failures.push(`the keys without a TTL in ${db} differ from the backup's (the same ${wp.count}, other names)`);
    for (let i = 0; i <= nb; i++) {
      const until = i < nb ? want.bounds[i]! : null;
      const from = i > 0 ? want.bounds[i - 1]! : -Infinity; // the bucket holds expiries in (from, until]
      const wb = w.volatile.find((b) => b.until === until) ?? { count: 0, digest: ZERO_DIGEST };
      const gb = g.buckets[i] ?? { count: 0, digest: ZERO_DIGEST };
      const range = until === null ? `expiring after ${new Date(from).toISOString()}` : `expiring by ${new Date(until).toISOString()}`;
      if (gb.count > wb.count) {
        failures.push(`${plural(gb.count - wb.count, 'key')} with a TTL (${range}) in ${db} that the backup does not have (the backup has ${wb.count}, the restored RDB ${gb.count})`);
      } else if (from >= t1) { // wholly in the future: every key must be there
        if (gb.count < wb.count) failures.push(`${plural(wb.count - gb.count, 'key')} with a TTL not yet run out (${range}) ${wb.count - gb.count === 1 ? 'is' : 'are'} missing in ${db}`);
        else if (gb.digest !== wb.digest) failures.push(`the keys with a TTL ${range} in ${db} differ from the backup's (the same ${wb.count}, other names)`);
      } else if (until !== null && until <= t0) { // wholly in the past: dropped at load
        expired += wb.count; // gb.count is 0 here (more would have failed above only if the backup had fewer)
        if (gb.count > 0) failures.push(`${plural(gb.count, 'key')} in ${db} should have expired by ${new Date(until).toISOString()} and ${gb.count === 1 ? 'is' : 'are'} still there`);
      } else { // straddles now: some may have run out meanwhile
        expired += wb.count - gb.count;
        if (gb.count === wb.count && gb.digest !== wb.digest) failures.push(`the keys with a TTL ${range} in ${db} differ from the backup's (the same ${wb.count}, other names)`);
      }
    }
  }
  return { failures, expired };
}
