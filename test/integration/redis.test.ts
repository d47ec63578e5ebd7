/**
 * Redis: the streaming RDB reader against real Redis RDB files, and the restore's keyspace check (#17 item 2).
 *   - a throwaway Redis (helpdesk-dr-test/redis:7, no network) seeded with every value type in its small and
 *     large encodings, TTLs of seconds and of days, several databases: the reader's summary of its RDB equals
 *     what the restore's Lua script computes inside that Redis (with PEXPIRETIME, and without it)
 *   - the parse speed of a large RDB
 *   - the test stack: keys with a ~6 s TTL expire between `dr backup` and `dr restore --db v2_chatwoot_redis`:
 *     the restore passes and reports them as expired; truncated, damaged and foreign RDBs and an RDB missing
 *     one persistent key fail (each a re-signed copy of the backup, named in REDIS_FAULTS so they can become
 *     rows of the fault suite)
 * Docker commands go through the Docker socket (docker CLI); nothing talks to a container's IP.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, createReadStream, createWriteStream, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { runDr, stackUp, docker, backupEnv, scratchDir, tempDir, sh, type BackupEnv, type RunResult } from '../helpers.ts';
import { KeyspaceTap, readRdb, bucketBounds } from '../../src/db/redis/rdb.ts';
import { KEYSPACE_LUA, keyspaceArgs, parseKeyspaceReply, type LoadedKeyspace } from '../../src/db/redis/keyspace.ts';
import { signManifest, serializeManifest, type Manifest, type RedisKeyspace } from '../../src/repo/manifest.ts';
import { loadSigningKey } from '../../src/repo/trust.ts';
import { createEncryptStream } from '../../src/codec/age/index.ts';
import { compressor } from '../../src/codec/write.ts';

const IMAGE = 'helpdesk-dr-test/redis:7';
const containers: string[] = [];
const rmContainer = (c: string) => execFileSync('docker', ['rm', '-f', '-v', c], { stdio: 'ignore' });
after(() => {
  for (const c of containers) { try { rmContainer(c); } catch { /* already gone */ } }
});

function cli(c: string, ...args: string[]): string {
  return execFileSync('docker', ['exec', c, 'redis-cli', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim();
}
async function waitPing(c: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try { if (cli(c, 'PING') === 'PONG') return; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${c} did not answer PING`);
}
/** A throwaway Redis without network; with `rdb`, that file is its /data/dump.rdb when it starts. */
async function redis(name: string, args: string[] = [], rdb?: string): Promise<string> {
  const c = `dr-test-redis-${name}-${process.pid}`;
  try { rmContainer(c); } catch { /* none */ }
  docker('create', '--name', c, '--network', 'none', IMAGE, 'redis-server', '--save', '', '--appendonly', 'no', ...args);
  containers.push(c);
  if (rdb) docker('cp', rdb, `${c}:/data/dump.rdb`);
  docker('start', c);
  await waitPing(c);
  return c;
}
function rdbOut(c: string, file: string): string {
  assert.equal(cli(c, 'SAVE'), 'OK');
  docker('cp', `${c}:/data/dump.rdb`, file);
  return file;
}
async function summarise(file: string, savedAt: number): Promise<{ summary: RedisKeyspace; names: Map<number, string[]>; types: Set<number> }> {
  const tap = new KeyspaceTap(savedAt);
  await pipeline(createReadStream(file, { highWaterMark: 1 << 16 }), tap);
  if (tap.error) throw tap.error;
  const names = new Map<number, string[]>();
  const types = new Set<number>();
  await readRdb(createReadStream(file), (k) => {
    (names.get(k.db) ?? names.set(k.db, []).get(k.db)!).push(k.key.toString('latin1'));
    types.add(k.type);
  });
  return { summary: tap.result()!, names, types };
}
function lua(c: string, bounds: number[], dbs: number[]): LoadedKeyspace & { exact: boolean } {
  const reply = cli(c, 'EVAL', KEYSPACE_LUA, '0', ...keyspaceArgs(bounds, dbs));
  return { ...parseKeyspaceReply(reply), exact: (JSON.parse(reply) as { exact: boolean }).exact };
}
/** the summary as the Lua script shapes it: every bucket, empty ones too */
function asLoaded(ks: RedisKeyspace): LoadedKeyspace['dbs'] {
  return Object.fromEntries(Object.entries(ks.dbs).map(([db, d]) => [db, {
    persistent: d.persistent,
    buckets: [...ks.bounds, null].map((u) => { const b = d.volatile.find((x) => x.until === u); return { count: b?.count ?? 0, digest: b?.digest ?? '0'.repeat(40) }; }),
  }]));
}

/** every value type, small and large encodings, int-like and long LZF-compressible key names, TTLs, 3 databases */
function seed(c: string): void {
  const loop = (body: string, key: string, n: number) => cli(c, 'EVAL', `for i = 1, tonumber(ARGV[1]) do ${body} end`, '1', key, String(n));
  const cmds: string[][] = [
    ['SET', 'str:small', 'v'], ['SET', 'str:int', '123456'], ['SET', 'str:lzf', 'abcdefgh'.repeat(500)],
    ['SET', '7', 'int8 key'], ['SET', '-300', 'int16 key'], ['SET', '2000000000', 'int32 key'], ['SET', '3000000000', 'not an int32'],
    ['SET', `${'long-compressible-key-'.repeat(30)}end`, 'v'], ['SET', 'ключ:кириллица', 'значение'],
    ['RPUSH', 'list:small', 'a', 'b', '1'], ['SADD', 'set:intset', '1', '2', '300', '70000'], ['SADD', 'set:small', 'a', 'b'],
    ['ZADD', 'zset:small', '1', 'a', '2.5', 'b'], ['HSET', 'hash:small', 'f', 'v', 'n', '1'],
    ['XADD', 'stream:nogroup', '*', 'f', 'v'],
    ['SET', 'ttl:seconds', 'v', 'EX', '120'], ['SET', 'ttl:minutes', 'v', 'EX', '900'], ['SET', 'ttl:days', 'v', 'EX', String(3 * 86400)],
    ['SET', 'ttl:year', 'v', 'PX', String(400 * 86400_000)], ['HSET', 'hash:ttl', 'f', 'v'], ['EXPIRE', 'hash:ttl', String(2 * 86400)],
  ];
  for (const cmd of cmds) cli(c, ...cmd);
  loop("redis.call('RPUSH', KEYS[1], 'item' .. i)", 'list:big', 5000);
  loop("redis.call('RPUSH', KEYS[1], string.rep('x', 20000) .. i)", 'list:bignodes', 5);
  loop("redis.call('SADD', KEYS[1], i)", 'set:bigint', 1000);
  loop("redis.call('SADD', KEYS[1], 'member' .. i)", 'set:big', 1000);
  loop("redis.call('ZADD', KEYS[1], i, 'member' .. i)", 'zset:big', 500);
  loop("redis.call('HSET', KEYS[1], 'field' .. i, string.rep('v', 100))", 'hash:big', 500);
  loop("redis.call('XADD', KEYS[1], '*', 'n', i, 'payload', string.rep('p', 50))", 'stream:groups', 300);
  cli(c, 'XGROUP', 'CREATE', 'stream:groups', 'g1', '0');
  cli(c, 'XGROUP', 'CREATE', 'stream:groups', 'g-empty', '$');
  cli(c, 'XREADGROUP', 'GROUP', 'g1', 'consumer-a', 'COUNT', '5', 'STREAMS', 'stream:groups', '>');
  cli(c, 'XREADGROUP', 'GROUP', 'g1', 'consumer-b', 'COUNT', '3', 'STREAMS', 'stream:groups', '>');
  cli(c, 'XACK', 'stream:groups', 'g1', cli(c, 'XRANGE', 'stream:groups', '-', '+', 'COUNT', '1').split('\n')[0]!);
  loop("redis.call('SET', 'many:' .. i, i)", 'unused', 2000);
  loop("redis.call('SET', 'vol:' .. i, i, 'PX', 3600000 + i * 1000)", 'unused', 300);
  // other databases: int keys, a hash, volatile keys
  for (const db of ['3', '15']) {
    execFileSync('docker', ['exec', '-i', c, 'redis-cli', '-n', db], { input: `SET 1 one\nSET 42 v\nHSET h${db} a b\nSET t${db} v EX 86400\nRPUSH l${db} x y\n` });
  }
}

let seededRdb = '';
let seededAt = 0;
let seeded = '';

test('a real RDB (every type, both encodings, 3 databases): the reader\'s summary equals what the restore\'s Lua computes in the same Redis', async () => {
  const c = await redis('seed');
  seeded = c;
  seed(c);
  const dir = tempDir('dr-rdb-');
  seededRdb = rdbOut(c, join(dir, 'seed.rdb'));
  seededAt = Date.now();
  const { summary, names, types } = await summarise(seededRdb, seededAt);
  const got = lua(c, summary.bounds, [0, 3, 15]);
  assert.equal(got.exact, true, 'PEXPIRETIME was used');
  assert.deepEqual(got.dbs, asLoaded(summary));
  // and the names themselves, against SCAN
  for (const db of [0, 3, 15]) {
    const scan = cli(c, '-n', String(db), '--scan').split('\n').filter(Boolean).sort();
    assert.deepEqual([...(names.get(db) ?? [])].map((n) => Buffer.from(n, 'latin1').toString('utf8')).sort(), scan, `db${db}`);
  }
  // what the RDB of this Redis holds: the encodings we meant to cover (Redis 7.0: RDB 10; 7.2: 11)
  const ver = Number(readFileSync(seededRdb).toString('latin1', 5, 9));
  for (const t of [0, 2, 4, 5, 11, 16, 17, 18, ver >= 10 ? 19 : 15]) assert.ok(types.has(t), `RDB type ${t} present (seen ${[...types].sort((a, b) => a - b).join(',')})`);
  const d0 = summary.dbs.db0!;
  assert.equal(d0.persistent.count, names.get(0)!.length - 305);
  assert.equal(d0.volatile.reduce((n, b) => n + b.count, 0), 305);
  assert.equal(summary.dbs.db15!.volatile.length, 1);
});

test('the Lua without PEXPIRETIME (TIME + PTTL, as on Redis < 7) gives the same summary', async () => {
  assert.ok(seededRdb, 'the first test made the RDB');
  const c = await redis('nopexpiretime', ['--rename-command', 'PEXPIRETIME', '""'], seededRdb);
  const { summary } = await summarise(seededRdb, seededAt);
  const got = lua(c, summary.bounds, [0, 3, 15]);
  assert.equal(got.exact, false);
  assert.deepEqual(got.dbs, asLoaded(summary));
});

test('a large RDB (200,000 keys, uncompressed values, big collections): the reader and the restore\'s Lua agree (times printed; speed goals belong to bench/)', async () => {
  const c = await redis('big', ['--rdbcompression', 'no', '--enable-debug-command', 'yes']);
  cli(c, 'DEBUG', 'POPULATE', '200000', 'key', '100');
  cli(c, 'EVAL', "for i = 1, 50000 do redis.call('RPUSH', 'biglist', string.rep('x', 200) .. i) end", '0');
  cli(c, 'EVAL', "for i = 1, 20000 do redis.call('HSET', 'bighash', 'f' .. i, string.rep('y', 100)) end", '0');
  const file = rdbOut(c, join(tempDir('dr-rdb-big-'), 'big.rdb'));
  const size = statSync(file).size;
  const t0 = performance.now();
  const tap = new KeyspaceTap(Date.now());
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), tap);
  const ms = performance.now() - t0;
  assert.equal(tap.error, null);
  const s = tap.result()!;
  assert.equal(s.dbs.db0!.persistent.count, 200_002);
  const mbps = size / 1e6 / (ms / 1000);
  console.log(`RDB reader: ${(size / 1e6).toFixed(1)} MB, 200,002 keys in ${ms.toFixed(0)} ms: ${mbps.toFixed(0)} MB/s`);
  // the restore's side of it, on the same keys
  const l0 = performance.now();
  const got = lua(c, s.bounds, [0]);
  console.log(`restore's Lua keyspace check: 200,002 keys in ${(performance.now() - l0).toFixed(0)} ms`);
  assert.deepEqual(got.dbs, asLoaded(s));
  rmContainer(c);
});

// ---------------------------------------------------------------------------------------------------------------
// the restore, on the test stack

const REDIS = 'v2_chatwoot_redis';
const stackCli = (...args: string[]) => execFileSync('docker', ['exec', REDIS, 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', 'sh', ...args], { encoding: 'utf8' }).trim();

let env: BackupEnv;
let base: Manifest;
let ttlSetAt = 0;
async function backedUp(): Promise<void> {
  if (base) return;
  stackUp();
  env = await backupEnv('redis');
  for (let i = 1; i <= 5; i++) stackCli('SET', `dr-test:persist:${i}`, `v${i}`);
  stackCli('SET', 'dr-test:ttl6s', 'v', 'PX', '6000');
  ttlSetAt = Date.now();
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  base = JSON.parse(r.stdout) as Manifest;
}
const redisRecord = (m: Manifest) => m.databases.find((d) => d.container === REDIS)!;
const suffixVolumes = (s: string) => docker('volume', 'ls', '-q').split('\n').filter((v) => v.endsWith(s));
async function restoreInto(suffix: string, e: Record<string, string>, id = base.id): Promise<RunResult> {
  try {
    return await runDr(['restore', ...(id === 'latest' ? ['--latest'] : [id]), '--db', REDIS, '--suffix', suffix], e);
  } finally {
    for (const v of suffixVolumes(suffix)) docker('volume', 'rm', v);
  }
}

test('restore: volatile keys whose TTL ran out since the backup are reported as expired, not a difference', async () => {
  await backedUp();
  const rec = redisRecord(base);
  assert.ok(rec.keyspace, 'the manifest has the keyspace summary');
  const ks = rec.keyspace;
  assert.deepEqual(ks.bounds, bucketBounds(ks.savedAt));
  assert.ok(ks.dbs.db0!.persistent.count >= 5);
  const soon = ks.dbs.db0!.volatile.find((b) => b.until === ks.savedAt + 60_000);
  assert.ok(soon && soon.count >= 1, 'the 6 s key is in the backup, in the first minute\'s bucket');
  const wait = ttlSetAt + 6500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const r = await restoreInto('_rt', env, 'latest');
  assert.equal(r.code, 0, r.stderr);
  const m = /v2_chatwoot_redis: (\d+) volatile keys? expired since the backup/.exec(r.stdout);
  console.log(r.stdout);
  assert.ok(m && Number(m[1]) >= 1, r.stdout);
});

test('drill: dr verify --level full passes and its report counts the expired volatile keys', async () => {
  await backedUp();
  const wait = ttlSetAt + 6500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const r = await runDr(['verify', '--latest', '--level', 'full', '--json'], env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as { passed: boolean; checks: { level: string; subject: string; ok: boolean; detail: string }[] };
  assert.equal(report.passed, true);
  const check = report.checks.find((c) => c.level === 'full' && c.subject === REDIS)!;
  assert.ok(check.ok);
  assert.match(check.detail, /v2_chatwoot_redis: [1-9]\d* volatile keys? expired since the backup/);
});

/** The backup copied into its own local dir with the RDB part replaced by `rdb(plain)` (re-encrypted, hashes updated, re-signed). */
async function withRdb(name: string, rdb: (plain: Buffer, dir: string) => Buffer | Promise<Buffer>, edit: (m: Manifest) => void = () => {}): Promise<BackupEnv> {
  const local = join(scratchDir(), `redis-${name}`);
  rmSync(local, { recursive: true, force: true });
  mkdirSync(local, { recursive: true });
  const dir = join(local, base.id);
  cpSync(join(env.DR_LOCAL_DIR, base.id), dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const key = redisRecord(m).extraParts.find((p) => p.name === 'rdb')!.part;
  const part = m.parts.find((p) => p.key === key)!;
  const file = join(dir, key);
  const plain = sh(`age -d -i '${env.identity}' '${file}' | zstd -d -q`);
  assert.equal(createHash('sha256').update(plain).digest('hex'), part.plain.sha256);
  const raw = await rdb(plain, tempDir(`dr-rdb-${name}-`));
  await pipeline(Readable.from([raw]), compressor(part.compression, 3), createEncryptStream(m.encryption.recipients), createWriteStream(file));
  const stored = readFileSync(file);
  const storedSha = createHash('sha256').update(stored).digest('hex');
  part.plain = { size: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
  part.stored = { size: stored.length, sha256: storedSha };
  const sums = join(dir, 'SHA256SUMS');
  writeFileSync(sums, readFileSync(sums, 'utf8').split('\n').map((l) => (l.endsWith(`  ${key}`) ? `${storedSha}  ${key}` : l)).join('\n'));
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, loadSigningKey(env.DR_SIGNING_KEY_FILE))));
  return { ...env, DR_LOCAL_DIR: local };
}

/** Scenarios of the fault suite's shape (name, what is done to the backup, what the restore must say). */
export const REDIS_FAULTS: { scenario: string; rdb: (plain: Buffer, dir: string) => Buffer | Promise<Buffer>; exit: number; error: RegExp }[] = [
  { scenario: 'redis: truncated RDB (hashes updated, re-signed)', rdb: (p) => p.subarray(0, Math.floor(p.length * 0.6)), exit: 4, error: /Redis v2_chatwoot_redis: the restored RDB does not load/ },
  {
    scenario: 'redis: damaged RDB, one byte flipped (hashes updated, re-signed)', exit: 4, error: /Redis v2_chatwoot_redis: the restored RDB does not load/,
    rdb: (p) => { const b = Buffer.from(p); const at = Math.floor(b.length / 2); b[at] = b[at]! ^ 0x5a; return b; },
  },
  {
    scenario: 'redis: foreign RDB, another valid one (hashes updated, keyspace summary left)', exit: 4, error: /the restored RDB differs from the backup: .*without a TTL/,
    rdb: async (_p, dir) => {
      const c = await redis('foreign');
      for (let i = 0; i < 20; i++) cli(c, 'SET', `foreign:${i}`, 'x');
      const out = readFileSync(rdbOut(c, join(dir, 'foreign.rdb')));
      rmContainer(c);
      return out;
    },
  },
  {
    scenario: 'redis: RDB with one persistent key deleted (loaded, DEL, SAVE, re-encrypted)', exit: 4,
    error: /the restored RDB differs from the backup: 1 key without a TTL is missing or different in db0/,
    rdb: async (p, dir) => {
      const src = join(dir, 'in.rdb');
      writeFileSync(src, p);
      const c = await redis('del', [], src);
      assert.equal(cli(c, 'DEL', 'dr-test:persist:3'), '1');
      const out = readFileSync(rdbOut(c, join(dir, 'out.rdb')));
      rmContainer(c);
      return out;
    },
  },
];

for (const [i, f] of REDIS_FAULTS.entries()) {
  test(`restore fails: ${f.scenario}`, async () => {
    await backedUp();
    const e = await withRdb(`fault${i}`, f.rdb);
    const r = await restoreInto(`_rtf${i}`, e);
    console.log(`${f.scenario}: exit ${r.code}: ${r.stderr.split('\n').find((l) => l.startsWith('dr: ')) ?? r.stderr.trim()}`);
    assert.equal(r.code, f.exit, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, f.error);
  });
}

test('restore of a backup made before keyspace summaries: fewer keys are a warning, not a failure', async () => {
  await backedUp();
  const e = await withRdb('old', (p) => p, (m) => {
    const rec = redisRecord(m);
    delete rec.keyspace;
    rec.keys = { db0: (rec.keys?.db0 ?? 0) + 5 }; // as if five keys expired since
  });
  const r = await restoreInto('_rtold', e);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /warning: Redis v2_chatwoot_redis: db0: \d+ keys, the backup counted \d+ — this backup predates keyspace summaries/);
});

test('cleanup: the seeded Redis is removed', () => {
  if (seeded) rmContainer(seeded);
  assert.ok(true);
});
