/** The streaming RDB reader (src/db/redis/rdb.ts) on hand-built RDB files: every value type and opcode, LZF, int keys, expiries, chunking, truncation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createRdbParser, readRdb, lzfDecompress, createKeyspaceSummary, bucketBounds, KeyspaceTap, RdbError, type RdbKey,
} from '../../src/db/redis/rdb.ts';

// --- a tiny RDB writer -----------------------------------------------------------------------------------------
const B = (...xs: (number | Buffer | string)[]): Buffer => Buffer.concat(xs.map((x) => (typeof x === 'number' ? Buffer.from([x]) : typeof x === 'string' ? Buffer.from(x) : x)));
function len(n: number): Buffer {
  if (n < 64) return B(n);
  if (n < 16384) return B(0x40 | (n >> 8), n & 0xff);
  if (n < 2 ** 32) { const b = Buffer.alloc(5); b[0] = 0x80; b.writeUInt32BE(n, 1); return b; }
  const b = Buffer.alloc(9); b[0] = 0x81; b.writeBigUInt64BE(BigInt(n), 1); return b;
}
const str = (s: string | Buffer): Buffer => { const b = Buffer.from(s); return B(len(b.length), b); };
function int(v: number): Buffer {
  if (v >= -128 && v <= 127) { const b = Buffer.alloc(2); b[0] = 0xc0; b.writeInt8(v, 1); return b; }
  if (v >= -32768 && v <= 32767) { const b = Buffer.alloc(3); b[0] = 0xc1; b.writeInt16LE(v, 1); return b; }
  const b = Buffer.alloc(5); b[0] = 0xc2; b.writeInt32LE(v, 1); return b;
}
const lzf = (compressed: Buffer, plainLen: number): Buffer => B(0xc3, len(compressed.length), len(plainLen), compressed);
const expMs = (ms: number): Buffer => { const b = Buffer.alloc(9); b[0] = 0xfc; b.writeBigInt64LE(BigInt(ms), 1); return b; };
const expSec = (s: number): Buffer => { const b = Buffer.alloc(5); b[0] = 0xfd; b.writeUInt32LE(s, 1); return b; };
const u64 = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const rdb = (version: number, ...body: Buffer[]): Buffer =>
  B(`REDIS${String(version).padStart(4, '0')}`, 0xfa, str('redis-ver'), str('7.2.4'), 0xfa, str('ctime'), int(1700000000), ...body, 0xff, Buffer.alloc(8, 0xab));

// LZF by hand: literal "abc", a short back reference (3 bytes, distance 3), a long one (9 bytes, distance 3)
const LZF_ABC = Buffer.from([0x02, 0x61, 0x62, 0x63, 0x20, 0x02, 0xe0, 0x00, 0x02]); // "abc" "abc" "abcabcabc"
const LZF_ABC_TEXT = 'abc'.repeat(5);

function stream(t: number, opts: { groups: boolean }): Buffer {
  const parts = [B(t), len(1), str(Buffer.alloc(16, 1)), str(Buffer.alloc(40, 2)), len(3), len(1700000000000), len(2)];
  if (t >= 19) parts.push(len(1700000000000), len(0), len(0), len(0), len(3));
  if (!opts.groups) { parts.push(len(0)); return Buffer.concat(parts); }
  parts.push(len(1), str('grp'), len(1700000000000), len(1));
  if (t >= 19) parts.push(len(2));
  parts.push(len(2), Buffer.alloc(16, 3), u64(1700000000001), len(1), Buffer.alloc(16, 4), u64(1700000000002), len(5));
  parts.push(len(1), str('consumer-1'), u64(1700000000003));
  if (t >= 21) parts.push(u64(1700000000004));
  parts.push(len(2), Buffer.alloc(16, 3), Buffer.alloc(16, 4));
  return Buffer.concat(parts);
}

/** one key of every type; returns [bytes, expected keys] */
function everyType(version = 11): [Buffer, { db: number; key: string; expiresAt: number | null; type: number }[]] {
  const T = 1_800_000_000_000;
  const body: Buffer[] = [];
  const want: { db: number; key: string; expiresAt: number | null; type: number }[] = [];
  const put = (type: number, key: Buffer | string, keyBytes: Buffer, value: Buffer, db: number, expiresAt: number | null = null, prefix: Buffer[] = []) => {
    body.push(...prefix, B(type), keyBytes, value);
    want.push({ db, key: typeof key === 'string' ? key : key.toString(), expiresAt, type });
  };
  body.push(B(0xfe), len(0), B(0xfb), len(40), len(3));
  put(0, 'plain', str('plain'), str('value'), 0);
  put(0, 'intval', str('intval'), int(123456), 0);
  put(0, 'lzfval', str('lzfval'), lzf(LZF_ABC, 15), 0);
  put(0, LZF_ABC_TEXT, lzf(LZF_ABC, 15), str('v'), 0); // an LZF-compressed key name
  put(0, '7', int(7), str('v'), 0); // int-encoded key names
  put(0, '-300', int(-300), str('v'), 0);
  put(0, '2000000000', int(2000000000), str('v'), 0);
  put(1, 'list', str('list'), B(len(2), str('a'), int(5)), 0, T, [expMs(T)]);
  put(2, 'set', str('set'), B(len(2), str('a'), str('b')), 0);
  put(3, 'zset-old', str('zset-old'), B(len(3), str('a'), B(3), '1.5', str('b'), B(253), str('c'), B(254)), 0);
  put(4, 'hash', str('hash'), B(len(2), str('f1'), str('v1'), str('f2'), lzf(LZF_ABC, 15)), 0);
  put(5, 'zset2', str('zset2'), B(len(2), str('a'), u64(1), str('b'), u64(2)), 0, T + 5, [expMs(T + 5)]);
  for (const t of [9, 10, 11, 12, 13, 16, 17, 20]) put(t, `blob${t}`, str(`blob${t}`), str(Buffer.alloc(300, t)), 0);
  put(14, 'quicklist', str('quicklist'), B(len(2), str(Buffer.alloc(30, 1)), lzf(LZF_ABC, 15)), 0);
  put(18, 'quicklist2', str('quicklist2'), B(len(2), len(2), str(Buffer.alloc(30, 1)), len(1), str('plain node')), 0);
  // streams: type byte is written by stream()
  for (const t of [15, 19, 21]) {
    for (const groups of [false, true]) {
      const k = `stream${t}${groups ? 'g' : ''}`;
      const s = stream(t, { groups });
      body.push(str(k).length ? Buffer.concat([s.subarray(0, 1), str(k), s.subarray(1)]) : s);
      want.push({ db: 0, key: k, expiresAt: null, type: t });
    }
  }
  put(24, 'hfe', str('hfe'), B(u64(T), len(2), len(0), str('f'), str('v'), len(10), str('g'), int(1)), 0);
  put(22, 'hfe-pre', str('hfe-pre'), B(len(1), len(T), str('f'), str('v')), 0);
  put(25, 'hfe-lp', str('hfe-lp'), B(u64(T), str(Buffer.alloc(20, 9))), 0);
  put(23, 'hfe-lp-pre', str('hfe-lp-pre'), str(Buffer.alloc(20, 9)), 0);
  // other opcodes before keys: IDLE, FREQ, FUNCTION2, SLOT_INFO; the old seconds expiry; another db
  body.push(B(0xf5), str('#!lua name=lib\nredis.register_function("f", function() return 1 end)'));
  body.push(B(0xf4), len(1), len(2), len(0));
  put(0, 'idle', str('idle'), str('v'), 0, null, [B(0xf8), len(1000)]);
  put(0, 'freq', str('freq'), str('v'), 0, null, [B(0xf9, 5)]);
  put(0, 'secs', str('secs'), str('v'), 0, 1_900_000_000_000, [expSec(1_900_000_000)]);
  body.push(B(0xfe), len(5));
  put(0, 'in-db5', str('in-db5'), str('v'), 5, T, [expMs(T)]);
  put(0, 'long-key', str('k'.repeat(20_000)), str('v'), 5);
  want[want.length - 1]!.key = 'k'.repeat(20_000);
  return [rdb(version, ...body), want];
}

const keysOf = (bytes: Buffer, chunk = bytes.length) => {
  const out: { db: number; key: string; expiresAt: number | null; type: number }[] = [];
  const p = createRdbParser((k) => out.push({ db: k.db, key: k.key.toString(), expiresAt: k.expiresAt, type: k.type }));
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  const info = p.end();
  return { out, info };
};

test('lzfDecompress: literal runs and short and long back references', () => {
  assert.equal(lzfDecompress(LZF_ABC, 15).toString(), LZF_ABC_TEXT);
  assert.throws(() => lzfDecompress(LZF_ABC, 14), /expands/);
  assert.throws(() => lzfDecompress(LZF_ABC, 16), /expands to 15 bytes/);
  assert.throws(() => lzfDecompress(Buffer.from([0x20, 0x05]), 3), /before the start/);
  assert.throws(() => lzfDecompress(Buffer.from([0x05, 0x61]), 6), /ends inside a literal/);
});

test('every value type and opcode: key names, db numbers, expiries', () => {
  const [bytes, want] = everyType();
  const { out, info } = keysOf(bytes);
  assert.deepEqual(out, want);
  assert.equal(info.version, 11);
  assert.equal(info.aux['redis-ver'], '7.2.4');
  assert.equal(info.aux.ctime, '1700000000'); // an int-encoded aux value
  assert.equal(info.checksum, 'ab'.repeat(8));
  assert.equal(info.keys, want.length);
});

test('any chunking gives the same keys (1-byte chunks, odd sizes)', () => {
  const [bytes, want] = everyType();
  for (const size of [1, 2, 3, 7, 64, 1000, 4096]) assert.deepEqual(keysOf(bytes, size).out, want, `chunks of ${size}`);
});

test('a truncated RDB fails clearly at any cut', () => {
  const [bytes] = everyType();
  for (let cut = 0; cut < bytes.length - 8; cut += cut < 200 ? 1 : 97) {
    assert.throws(() => keysOf(bytes.subarray(0, cut), 13), (e: unknown) => e instanceof RdbError && /truncated/.test(e.message), `cut at ${cut}`);
  }
  // the checksum itself cut
  assert.throws(() => keysOf(bytes.subarray(0, bytes.length - 3)), /truncated: it ends at byte \d+ inside the checksum/);
});

test('not an RDB, a newer version, module data, an unknown type: clear errors', () => {
  assert.throws(() => keysOf(Buffer.from('hello world, not redis')), /not an RDB file/);
  assert.throws(() => keysOf(rdb(13)), /RDB version 13: this reader knows versions 1 to 12/);
  assert.throws(() => keysOf(rdb(10, B(0xfe), len(0), B(7), str('mod'), len(12345))), /key "mod" \(db0, module.*module type, cannot summarise/);
  assert.throws(() => keysOf(rdb(10, B(0xf7), len(1))), /MODULE_AUX.*module type, cannot summarise/);
  assert.throws(() => keysOf(rdb(10, B(30), str('x'), str('y'))), /unknown value type 30/);
  assert.throws(() => keysOf(rdb(10, B(0xfe), B(0xc5))), /expected a length|invalid string encoding/);
  // an old version without the checksum after EOF
  assert.deepEqual(keysOf(B('REDIS0003', 0xfe, len(0), 0, str('k'), str('v'), 0xff)).out, [{ db: 0, key: 'k', expiresAt: null, type: 0 }]);
});

test('values are skipped without buffering them: a 64 MB string in 64 KiB chunks', async () => {
  const big = Buffer.alloc(64 << 20, 0x61);
  const head = B('REDIS0011', 0xfe, len(0), 0, str('big'), len(big.length));
  const tail = B(0, str('after'), str('v'), 0xff, Buffer.alloc(8));
  const keys: string[] = [];
  let maxBuf = 0;
  const p = createRdbParser((k) => keys.push(k.key.toString()));
  const t0 = performance.now();
  p.push(head);
  for (let i = 0; i < big.length; i += 1 << 16) p.push(big.subarray(i, i + (1 << 16)));
  p.push(tail);
  p.end();
  maxBuf = performance.now() - t0;
  assert.deepEqual(keys, ['big', 'after']);
  assert.ok(maxBuf < 5000, `${maxBuf} ms`);
});

test('the keyspace summary: persistent {count, XOR of SHA-1}, volatile in buckets by absolute expiry', () => {
  const savedAt = 1_800_000_000_000;
  const s = createKeyspaceSummary(savedAt);
  const k = (db: number, key: string, expiresAt: number | null): RdbKey => ({ db, key: Buffer.from(key), expiresAt, type: 0 });
  for (const x of [k(0, 'a', null), k(0, 'b', null), k(0, 'old', savedAt - 5), k(0, 'soon', savedAt + 5_000), k(0, 'min', savedAt + 60_000),
    k(0, 'day', savedAt + 86_400_000), k(0, 'far', savedAt + 400 * 86_400_000), k(2, 'c', null)]) s.add(x);
  const r = s.result();
  const xor = (...names: string[]) => {
    const acc = Buffer.alloc(20);
    for (const n of names) { const h = createHash('sha1').update(n).digest(); for (let i = 0; i < 20; i++) acc[i]! ^= h[i]!; }
    return acc.toString('hex');
  };
  assert.deepEqual(r.bounds, bucketBounds(savedAt));
  assert.equal(r.bounds.length, 11);
  assert.deepEqual(Object.keys(r.dbs), ['db0', 'db2']);
  assert.deepEqual(r.dbs.db0!.persistent, { count: 2, digest: xor('a', 'b') });
  assert.deepEqual(r.dbs.db0!.volatile, [
    { until: savedAt, count: 1, digest: xor('old') },
    { until: savedAt + 60_000, count: 2, digest: xor('soon', 'min') }, // the bound is inclusive
    { until: savedAt + 86_400_000, count: 1, digest: xor('day') },
    { until: null, count: 1, digest: xor('far') },
  ]);
  assert.deepEqual(r.dbs.db2, { persistent: { count: 1, digest: xor('c') }, volatile: [] });
  assert.equal(xor('a', 'a'), '0'.repeat(40)); // XOR: the same name twice cancels (Redis has each name once per db)
});

test('KeyspaceTap: a side consumer that never fails the stream it watches', async () => {
  const [bytes, want] = everyType();
  const tap = new KeyspaceTap(1_700_000_000_000);
  await pipeline(Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]), tap);
  const r = tap.result();
  assert.ok(r);
  assert.equal(Object.values(r.dbs).reduce((n, d) => n + d.persistent.count + d.volatile.reduce((a, b) => a + b.count, 0), 0), want.length);
  const bad = new KeyspaceTap(0);
  await pipeline(Readable.from([bytes.subarray(0, bytes.length - 20)]), bad); // resolves: the error is kept, not thrown
  assert.equal(bad.result(), null);
  assert.match(bad.error!.message, /truncated/);
  const keys: string[] = [];
  await readRdb(Readable.from([bytes]), (k) => keys.push(k.key.toString()));
  assert.equal(keys.length, want.length);
});

test('compareKeyspace: expired volatile keys are not a difference; missing persistent or extra keys are', async () => {
  const { compareKeyspace } = await import('../../src/db/redis/keyspace.ts');
  const savedAt = 1_800_000_000_000;
  const mk = (keys: [string, number | null][]) => { const s = createKeyspaceSummary(savedAt); for (const [k, e] of keys) s.add({ db: 0, key: Buffer.from(k), expiresAt: e, type: 0 }); return s.result(); };
  const want = mk([['a', null], ['b', null], ['hb1', savedAt + 30_000], ['hb2', savedAt + 50_000], ['day', savedAt + 86_400_000 - 1]]);
  const loaded = (ks: RedisKeyspaceLike, time: number) => ({
    time, dbs: Object.fromEntries(Object.entries(ks.dbs).map(([db, d]) => [db, { persistent: d.persistent,
      buckets: [...ks.bounds, null].map((u) => d.volatile.find((b) => b.until === u) ?? { count: 0, digest: '0'.repeat(40) }) }])),
  });
  // restored 10 minutes later: the heartbeats are gone, the day-long key is there
  const later = savedAt + 600_000;
  const after = mk([['a', null], ['b', null], ['day', savedAt + 86_400_000 - 1]]);
  assert.deepEqual(compareKeyspace(want, loaded(after, later + 50), later), { failures: [], expired: 2 });
  // restored at once: everything there
  assert.deepEqual(compareKeyspace(want, loaded(want, savedAt + 1000), savedAt + 900), { failures: [], expired: 0 });
  // restored 40 s later, straddling the heartbeats' bucket: one ran out
  const mid = mk([['a', null], ['b', null], ['hb2', savedAt + 50_000], ['day', savedAt + 86_400_000 - 1]]);
  assert.deepEqual(compareKeyspace(want, loaded(mid, savedAt + 40_100), savedAt + 40_000), { failures: [], expired: 1 });
  // a persistent key missing
  const lost = mk([['a', null], ['day', savedAt + 86_400_000 - 1]]);
  assert.match(compareKeyspace(want, loaded(lost, later + 50), later).failures.join(), /^1 key without a TTL is missing or different in db0 \(the backup has 2, the restored RDB 1\)$/);
  // a foreign RDB: same counts, other names
  const foreign = mk([['x', null], ['y', null], ['z', savedAt + 86_400_000 - 1]]);
  const f = compareKeyspace(want, loaded(foreign, later + 50), later).failures.join('; ');
  assert.match(f, /keys without a TTL in db0 differ/);
  assert.match(f, /keys with a TTL expiring by .* in db0 differ/);
  // a key the backup did not have, in another db
  const extra = loaded(want, savedAt + 1000);
  extra.dbs.db3 = { persistent: { count: 1, digest: 'ab'.repeat(20) }, buckets: [] };
  assert.match(compareKeyspace(want, extra, savedAt + 900).failures.join(), /1 key without a TTL in db3 that the backup does not have/);
  // a long-lived volatile key missing
  const noDay = mk([['a', null], ['b', null]]);
  assert.match(compareKeyspace(want, loaded(noDay, later + 50), later).failures.join(), /1 key with a TTL not yet run out .* is missing in db0/);
});
type RedisKeyspaceLike = import('../../src/repo/manifest.ts').RedisKeyspace;

test('the JS SHA-1 of key names equals node:crypto at every length around the block edges', async () => {
  const { sha1Words } = await import('../../src/db/redis/rdb.ts');
  for (const n of [...Array(200).keys(), 1000, 4095, 4096, 70000]) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
    const w = sha1Words(b);
    const hex = [...w].map((x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
    assert.equal(hex, createHash('sha1').update(b).digest('hex'), `length ${n}`);
  }
});

test('a damaged length of a key name fails at once instead of buffering the rest of the file', () => {
  const huge = Buffer.from([0x80, 0x7f, 0xff, 0xff, 0xff]); // 2 GiB
  assert.throws(() => keysOf(B('REDIS0011', 0xfe, len(0), 0, huge, Buffer.alloc(100))), /beyond Redis's 512 MB: damaged/);
  assert.throws(() => keysOf(B('REDIS0011', 0xfe, len(0), 0, 0xc3, len(10), huge, Buffer.alloc(100))), /beyond Redis's 512 MB: damaged/);
});
