/**
 * A streaming reader of Redis RDB files (versions 1–12): key names, logical database and absolute expiry of
 * every key, in constant memory. Values are skipped as they stream past (never buffered); only a key name
 * (and an LZF block holding one) is held while it is hashed. Feed it chunks (`push`), then `end()`.
 *
 * From the key list, `createKeyspaceSummary` builds what the manifest records for a Redis backup
 * (docs/FORMAT.md "Redis keyspace summary"): per logical database the keys without a TTL as {count, digest},
 * and the keys with a TTL in buckets by absolute expiry. digest = XOR of SHA-1(key name), 160 bits in hex:
 * order-independent, and computable inside Redis with Lua (redis.sha1hex + bit.bxor), which is how a restore
 * checks the loaded keyspace (src/db/redis/keyspace.ts).
 */
import { hash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { DigestCount, RedisKeyspace } from '../../repo/manifest.ts';

export class RdbError extends Error {}

/** the newest RDB version this reader knows (Redis 7.4 / 8.0 write 12) */
export const RDB_MAX_VERSION = 12;

/** `key` is valid during the callback only (it may be a view into the chunk being read): copy it to keep it */
export interface RdbKey { db: number; key: Buffer; /** absolute expiry, ms since the epoch, or null */ expiresAt: number | null; type: number }
export interface RdbInfo { version: number; aux: Record<string, string>; keys: number; bytes: number; checksum: string | null }

type Need = Generator<void, void, Buffer | null>;
type Read<T> = Generator<void, T, Buffer | null>;

const EMPTY = Buffer.alloc(0);

/** Where the parser stands: the current buffer, what is left of the chunk a stitch took its head from. */
class Src {
  buf: Buffer = EMPTY;
  pos = 0;
  /** absolute offset of buf[0] in the file */
  base = 0;
  pending: Buffer | null = null;
  ended = false;
  at(): number { return this.base + this.pos; }
  truncated(what: string): RdbError {
    return new RdbError(`the RDB is truncated: it ends at byte ${this.at()} inside ${what}`);
  }
}

/** The next chunk: what a stitch left over, else one from the feeder (null: the input ended). */
function* nextChunk(s: Src, what: string): Read<Buffer> {
  for (;;) {
    let c: Buffer | null;
    if (s.pending) { c = s.pending; s.pending = null; } else if (s.ended) c = null; else c = yield;
    if (c === null) { s.ended = true; throw s.truncated(what); }
    if (c.length) return c;
  }
}

/** Makes buf[pos, pos+n) contiguous; copies only the n bytes that straddle chunks. */
function* need(s: Src, n: number, what: string): Need {
  const have0 = s.buf.length - s.pos;
  if (have0 >= n) return;
  const start = s.at();
  const parts: Buffer[] = [s.buf.subarray(s.pos)];
  let have = have0;
  while (have < n) {
    const c = yield* nextChunk(s, what);
    const take = Math.min(c.length, n - have);
    parts.push(take === c.length ? c : c.subarray(0, take));
    if (take < c.length) s.pending = c.subarray(take);
    have += take;
  }
  s.buf = Buffer.concat(parts, n);
  s.pos = 0;
  s.base = start;
}

function* skip(s: Src, n: number, what: string): Need {
  for (;;) {
    const a = s.buf.length - s.pos;
    if (a >= n) { s.pos += n; return; }
    n -= a;
    const next = yield* nextChunk(s, what);
    s.base += s.buf.length;
    s.buf = next;
    s.pos = 0;
  }
}

function* byte(s: Src, what: string): Read<number> {
  if (s.pos >= s.buf.length) yield* need(s, 1, what);
  return s.buf[s.pos++]!;
}

/** RDB length; an encoded string's special marker comes back as -1 - encoding (INT8 -1, INT16 -2, INT32 -3, LZF -4). */
function* readLen(s: Src, what: string): Read<number> {
  const b = s.pos < s.buf.length ? s.buf[s.pos++]! : yield* byte(s, what);
  switch (b >> 6) {
    case 0: return b & 0x3f;
    case 1: return ((b & 0x3f) << 8) | (yield* byte(s, what));
    case 2: {
      if (b === 0x80) {
        yield* need(s, 4, what);
        const v = s.buf.readUInt32BE(s.pos);
        s.pos += 4;
        return v;
      }
      if (b === 0x81) {
        yield* need(s, 8, what);
        const hi = s.buf.readUInt32BE(s.pos);
        const lo = s.buf.readUInt32BE(s.pos + 4);
        s.pos += 8;
        // beyond 2^53 only as a marker (a stream group's entries_read of -1 is 2^64 - 1); as a count it runs
        // into the end of the input, so a damaged length fails as truncated
        return hi * 0x100000000 + lo;
      }
      throw new RdbError(`invalid length byte 0x${b.toString(16)} at byte ${s.at() - 1} (${what})`);
    }
    default: {
      const enc = b & 0x3f;
      if (enc > 3) throw new RdbError(`invalid string encoding ${enc} at byte ${s.at() - 1} (${what})`);
      return -1 - enc;
    }
  }
}

function* plainLen(s: Src, what: string): Read<number> {
  const n = yield* readLen(s, what);
  if (n < 0) throw new RdbError(`expected a length at byte ${s.at() - 1} (${what}), found an encoded string`);
  return n;
}

/** LZF (liblzf's lzf_decompress): `out` must come out exactly `outLen` bytes long. */
export function lzfDecompress(input: Buffer, outLen: number): Buffer {
  const out = Buffer.allocUnsafe(outLen);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (op + len > outLen) throw new RdbError('LZF data expands beyond its recorded length');
      if (ip + len > input.length) throw new RdbError('LZF data ends inside a literal run');
      input.copy(out, op, ip, ip + len);
      ip += len;
      op += len;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= input.length) throw new RdbError('LZF data ends inside a back reference');
        len += input[ip++]!;
      }
      if (ip >= input.length) throw new RdbError('LZF data ends inside a back reference');
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]!;
      len += 2;
      if (ref < 0) throw new RdbError('LZF back reference points before the start');
      if (op + len > outLen) throw new RdbError('LZF data expands beyond its recorded length');
      for (let i = 0; i < len; i++) out[op + i] = out[ref + i]!; // may overlap: byte by byte
      op += len;
    }
  }
  if (op !== outLen) throw new RdbError(`LZF data expands to ${op} bytes, the RDB says ${outLen}`);
  return out;
}

const MORE = -100;
/** The length at pos when wholly in the buffer (consumed), else MORE (nothing consumed): the hot path, no generator. */
function fastLen(s: Src): number {
  const b = s.buf;
  const p = s.pos;
  if (p >= b.length) return MORE;
  const x = b[p]!;
  switch (x >> 6) {
    case 0: s.pos = p + 1; return x & 0x3f;
    case 1: if (p + 2 > b.length) return MORE; s.pos = p + 2; return ((x & 0x3f) << 8) | b[p + 1]!;
    case 2: if (x !== 0x80 || p + 5 > b.length) return MORE; s.pos = p + 5; return b.readUInt32BE(p + 1);
    default: return MORE;
  }
}
/** A raw string wholly in the buffer (a view; consumed), else null (nothing consumed). */
function fastString(s: Src): Buffer | null {
  const p = s.pos;
  const n = fastLen(s);
  if (n >= 0 && s.buf.length - s.pos >= n) { s.pos += n; return s.buf.subarray(s.pos - n, s.pos); }
  s.pos = p;
  return null;
}
/** Skips a raw string wholly in the buffer; false (nothing consumed) when it is not. */
function fastSkipString(s: Src): boolean {
  const p = s.pos;
  const n = fastLen(s);
  if (n >= 0 && s.buf.length - s.pos >= n) { s.pos += n; return true; }
  s.pos = p;
  return false;
}

/** Redis's own limit for a string (proto-max-bulk-len's default): a longer key name means a damaged length. */
const MAX_NAME = 512 << 20;
const nameTooLong = (s: Src, n: number, what: string) => new RdbError(`${what}: a length of ${n} bytes at byte ${s.at()} is beyond Redis's 512 MB: damaged`);

/** A string (key names, aux fields): bytes as Redis holds them (integers as their decimal text). */
function* readString(s: Src, what: string): Read<Buffer> {
  const n = yield* readLen(s, what);
  if (n > MAX_NAME) throw nameTooLong(s, n, what);
  if (n >= 0) {
    yield* need(s, n, what);
    const b = s.buf.subarray(s.pos, s.pos + n);
    s.pos += n;
    return b;
  }
  if (n === -4) {
    const clen = yield* plainLen(s, what);
    const ulen = yield* plainLen(s, what);
    if (clen > MAX_NAME || ulen > MAX_NAME) throw nameTooLong(s, Math.max(clen, ulen), what);
    yield* need(s, clen, what);
    const c = s.buf.subarray(s.pos, s.pos + clen);
    s.pos += clen;
    return lzfDecompress(c, ulen);
  }
  const size = n === -1 ? 1 : n === -2 ? 2 : 4;
  yield* need(s, size, what);
  const v = size === 1 ? s.buf.readInt8(s.pos) : size === 2 ? s.buf.readInt16LE(s.pos) : s.buf.readInt32LE(s.pos);
  s.pos += size;
  return Buffer.from(String(v));
}

function* skipString(s: Src, what: string): Need {
  const n = yield* readLen(s, what);
  if (n >= 0) return yield* skip(s, n, what);
  if (n === -4) {
    const clen = yield* plainLen(s, what);
    yield* plainLen(s, what);
    return yield* skip(s, clen, what);
  }
  yield* skip(s, n === -1 ? 1 : n === -2 ? 2 : 4, what);
}

function* repeatStrings(s: Src, times: number, what: string): Need {
  for (let i = 0; i < times; i++) yield* skipString(s, what);
}

const TYPE_NAMES: Record<number, string> = {
  0: 'string', 1: 'list', 2: 'set', 3: 'zset', 4: 'hash', 5: 'zset2', 6: 'module (pre-GA)', 7: 'module', 9: 'hash zipmap',
  10: 'list ziplist', 11: 'set intset', 12: 'zset ziplist', 13: 'hash ziplist', 14: 'list quicklist', 15: 'stream',
  16: 'hash listpack', 17: 'zset listpack', 18: 'list quicklist2', 19: 'stream v2', 20: 'set listpack', 21: 'stream v3',
  22: 'hash with field TTLs (pre-GA)', 23: 'hash listpack with field TTLs (pre-GA)', 24: 'hash with field TTLs', 25: 'hash listpack with field TTLs',
};
export const rdbTypeName = (t: number): string => TYPE_NAMES[t] ?? `unknown type ${t}`;
const WHAT = new Map<number, string>();
const valueWhat = (t: number): string => WHAT.get(t) ?? (WHAT.set(t, `a value of type ${rdbTypeName(t)}`), WHAT.get(t)!);

/** Skips one value of RDB type `t`. */
function* skipValue(s: Src, t: number, what: string): Need {
  switch (t) {
    case 0: case 9: case 10: case 11: case 12: case 13: case 16: case 17: case 20: case 23:
      return yield* skipString(s, what);
    case 1: case 2: case 14:
      return yield* repeatStrings(s, yield* plainLen(s, what), what);
    case 4:
      return yield* repeatStrings(s, 2 * (yield* plainLen(s, what)), what);
    case 3: {
      const n = yield* plainLen(s, what);
      for (let i = 0; i < n; i++) {
        yield* skipString(s, what);
        const d = yield* byte(s, what); // old text double: 253 nan, 254 +inf, 255 -inf, else its length
        if (d < 253) yield* skip(s, d, what);
      }
      return;
    }
    case 5: {
      const n = yield* plainLen(s, what);
      for (let i = 0; i < n; i++) { yield* skipString(s, what); yield* skip(s, 8, what); }
      return;
    }
    case 18: {
      const n = yield* plainLen(s, what);
      for (let i = 0; i < n; i++) { yield* plainLen(s, what); yield* skipString(s, what); } // container kind, node
      return;
    }
    case 15: case 19: case 21: {
      const nodes = yield* plainLen(s, what);
      yield* repeatStrings(s, 2 * nodes, what); // master ID, listpack
      const fields = t >= 19 ? 8 : 3; // length, last id (ms, seq) [, first id, max deleted id, entries added]
      for (let i = 0; i < fields; i++) yield* plainLen(s, what);
      const groups = yield* plainLen(s, what);
      for (let g = 0; g < groups; g++) {
        yield* skipString(s, what); // group name
        yield* plainLen(s, what); yield* plainLen(s, what); // last delivered id
        if (t >= 19) yield* plainLen(s, what); // entries read
        const pel = yield* plainLen(s, what);
        for (let i = 0; i < pel; i++) { yield* skip(s, 16 + 8, what); yield* plainLen(s, what); } // id, delivery time, count
        const consumers = yield* plainLen(s, what);
        for (let c = 0; c < consumers; c++) {
          yield* skipString(s, what); // name
          yield* skip(s, t >= 21 ? 16 : 8, what); // seen time [, active time]
          const cpel = yield* plainLen(s, what);
          yield* skip(s, 16 * cpel, what);
        }
      }
      return;
    }
    case 22: case 24: {
      if (t === 24) yield* skip(s, 8, what); // minimum field expiry
      const n = yield* plainLen(s, what);
      for (let i = 0; i < n; i++) { yield* plainLen(s, what); yield* skipString(s, what); yield* skipString(s, what); }
      return;
    }
    case 25:
      yield* skip(s, 8, what);
      return yield* skipString(s, what);
    case 6: case 7:
      throw new RdbError(`a module value (RDB type ${t}): module type, cannot summarise this RDB`);
    default:
      throw new RdbError(`unknown value type ${t}: not an RDB this reader knows (versions up to ${RDB_MAX_VERSION}) or damaged`);
  }
}

function* parse(s: Src, onKey: (k: RdbKey) => void, info: RdbInfo): Need {
  yield* need(s, 9, 'the header');
  const magic = s.buf.toString('latin1', s.pos, s.pos + 9);
  s.pos += 9;
  const m = /^REDIS(\d{4})$/.exec(magic);
  if (!m) throw new RdbError(`not an RDB file (it starts with ${JSON.stringify(magic)}, not REDIS and a 4-digit version)`);
  info.version = Number(m[1]);
  if (info.version < 1 || info.version > RDB_MAX_VERSION) throw new RdbError(`RDB version ${info.version}: this reader knows versions 1 to ${RDB_MAX_VERSION}`);
  let db = 0;
  let expiresAt: number | null = null;
  for (;;) {
    const op = s.pos < s.buf.length ? s.buf[s.pos++]! : yield* byte(s, 'an opcode');
    switch (op) {
      case 0xff: { // EOF, then the CRC64 (v5+)
        if (info.version >= 5) {
          yield* need(s, 8, 'the checksum');
          info.checksum = s.buf.toString('hex', s.pos, s.pos + 8);
          s.pos += 8;
        }
        return;
      }
      case 0xfe: db = yield* plainLen(s, 'SELECTDB'); continue;
      case 0xfd: {
        yield* need(s, 4, 'EXPIRETIME');
        expiresAt = s.buf.readUInt32LE(s.pos) * 1000;
        s.pos += 4;
        continue;
      }
      case 0xfc: {
        if (s.buf.length - s.pos < 8) yield* need(s, 8, 'EXPIRETIME_MS');
        expiresAt = Number(s.buf.readBigInt64LE(s.pos));
        s.pos += 8;
        continue;
      }
      case 0xfb: yield* plainLen(s, 'RESIZEDB'); yield* plainLen(s, 'RESIZEDB'); continue;
      case 0xfa: {
        const k = (yield* readString(s, 'an AUX field')).toString('utf8');
        info.aux[k] = (yield* readString(s, `AUX ${k}`)).toString('utf8');
        continue;
      }
      case 0xf9: yield* skip(s, 1, 'FREQ'); continue;
      case 0xf8: yield* plainLen(s, 'IDLE'); continue;
      case 0xf7: throw new RdbError('the RDB holds module auxiliary data (MODULE_AUX): module type, cannot summarise this RDB');
      case 0xf6: throw new RdbError('the RDB holds functions in the Redis 7.0 release-candidate format (FUNCTION_PRE_GA): cannot summarise this RDB');
      case 0xf5: yield* skipString(s, 'FUNCTION2'); continue;
      case 0xf4: for (let i = 0; i < 3; i++) yield* plainLen(s, 'SLOT_INFO'); continue;
      default: {
        const at = s.at() - 1;
        const key = fastString(s) ?? (yield* readString(s, `the name of a key in db${db}`));
        // the key is reported before its value is skipped (the name may be a view into the current chunk);
        // a value that then fails to read fails the whole RDB
        info.keys++;
        onKey({ db, key, expiresAt, type: op });
        expiresAt = null;
        if (op !== 0 || !fastSkipString(s)) {
          const label = Buffer.from(key.subarray(0, 80)); // for an error message
          try {
            yield* skipValue(s, op, valueWhat(op));
          } catch (err) {
            if (err instanceof RdbError) err.message = `key ${JSON.stringify(label.toString('utf8'))} (db${db}, ${rdbTypeName(op)}, at byte ${at}): ${err.message}`;
            throw err;
          }
        }
      }
    }
  }
}

/** The push parser: `push` each chunk in order, then `end()`; throws RdbError on anything it cannot read. */
export function createRdbParser(onKey: (k: RdbKey) => void): { push(chunk: Buffer): void; end(): RdbInfo; info: RdbInfo } {
  const s = new Src();
  const info: RdbInfo = { version: 0, aux: {}, keys: 0, bytes: 0, checksum: null };
  const gen = parse(s, onKey, info);
  let done = false;
  let failed: unknown = null;
  const step = (c: Buffer | null) => {
    if (failed) throw failed;
    try { done = !!gen.next(c).done; } catch (err) { failed = err; throw err; }
  };
  step(null); // runs to its first need (the first next() value is not seen by the generator)
  return {
    info,
    push(chunk) {
      if (failed) throw failed;
      info.bytes += chunk.length;
      if (done || !chunk.length) return; // bytes after EOF are ignored (Redis writes none)
      step(chunk);
    },
    end() {
      if (failed) throw failed;
      if (!done) {
        s.ended = true;
        step(null); // throws: the input ended inside something
        throw s.truncated('the file (no EOF opcode)');
      }
      return info;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the keyspace summary

/** at the SAVE, +1 min, +2, +5, +15 min, +1 h, +6 h, +1 d, +7 d, +30 d, +1 y; after the last: one more bucket */
export const BUCKET_OFFSETS_MS = [0, 60e3, 120e3, 300e3, 900e3, 3600e3, 6 * 3600e3, 86400e3, 7 * 86400e3, 30 * 86400e3, 365 * 86400e3];
export const bucketBounds = (savedAt: number): number[] => BUCKET_OFFSETS_MS.map((o) => savedAt + o);

/** Index of the bucket for `expiresAt` among `bounds` (bounds.length: beyond the last bound). */
export function bucketOf(bounds: readonly number[], expiresAt: number): number {
  let i = 0;
  while (i < bounds.length && expiresAt > bounds[i]!) i++;
  return i;
}

const W = new Int32Array(80);
const H = new Int32Array(5);
/**
 * SHA-1 of `data` into the module's H (five words): in JS, because a key name is short and node:crypto's
 * per-call cost (~3 µs here) was most of the reader's time; checked against node:crypto in the tests.
 */
export function sha1Words(data: Uint8Array): Int32Array {
  let h0 = 0x67452301, h1 = 0xefcdab89 | 0, h2 = 0x98badcfe | 0, h3 = 0x10325476, h4 = 0xc3d2e1f0 | 0;
  const n = data.length;
  const blocks = ((n + 8) >>> 6) + 1;
  for (let blk = 0; blk < blocks; blk++) {
    const off = blk << 6;
    for (let i = 0; i < 16; i++) {
      const p = off + 4 * i;
      if (p + 3 < n) W[i] = (data[p]! << 24) | (data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!;
      else {
        let w = 0;
        for (let j = 0; j < 4; j++) w = (w << 8) | (p + j < n ? data[p + j]! : p + j === n ? 0x80 : 0);
        W[i] = w;
      }
    }
    if (blk === blocks - 1) { W[14] = Math.floor((n * 8) / 0x100000000); W[15] = (n * 8) | 0; }
    for (let i = 16; i < 80; i++) { const x = W[i - 3]! ^ W[i - 8]! ^ W[i - 14]! ^ W[i - 16]!; W[i] = (x << 1) | (x >>> 31); }
    let a = h0, b = h1, c = h2, d = h3, e = h4, t = 0;
    for (let i = 0; i < 20; i++) { t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + W[i]! + 0x5a827999) | 0; e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; }
    for (let i = 20; i < 40; i++) { t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + W[i]! + 0x6ed9eba1) | 0; e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; }
    for (let i = 40; i < 60; i++) { t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + W[i]! - 0x70e44324) | 0; e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; }
    for (let i = 60; i < 80; i++) { t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + W[i]! - 0x359d3e2a) | 0; e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0; h4 = (h4 + e) | 0;
  }
  H[0] = h0; H[1] = h1; H[2] = h2; H[3] = h3; H[4] = h4;
  return H;
}

/** XOR accumulator of 160-bit digests, as five 32-bit words. */
export class XorDigest {
  readonly w = new Int32Array(5);
  count = 0;
  add(name: Uint8Array): void {
    const h = name.length > 4096 ? bufferWords(hash('sha1', name, 'buffer')) : sha1Words(name);
    for (let i = 0; i < 5; i++) this.w[i] = this.w[i]! ^ h[i]!;
    this.count++;
  }
  hex(): string { return [...this.w].map((x) => (x >>> 0).toString(16).padStart(8, '0')).join(''); }
  result(): DigestCount { return { count: this.count, digest: this.hex() }; }
}

function bufferWords(d: Buffer): Int32Array {
  for (let i = 0; i < 5; i++) H[i] = d.readInt32BE(4 * i);
  return H;
}

export const ZERO_DIGEST = '0'.repeat(40);

/** Collects keys into the summary. */
export function createKeyspaceSummary(savedAt: number): { add(k: RdbKey): void; result(): RedisKeyspace } {
  const bounds = bucketBounds(savedAt);
  const dbs = new Map<number, { p: XorDigest; v: XorDigest[] }>();
  return {
    add(k) {
      let d = dbs.get(k.db);
      if (!d) dbs.set(k.db, d = { p: new XorDigest(), v: bounds.concat(0).map(() => new XorDigest()) });
      if (k.expiresAt === null) d.p.add(k.key);
      else d.v[bucketOf(bounds, k.expiresAt)]!.add(k.key);
    },
    result() {
      const out: RedisKeyspace = { savedAt, bounds, dbs: {} };
      for (const [db, d] of [...dbs].sort((a, b) => a[0] - b[0])) {
        out.dbs[`db${db}`] = {
          persistent: d.p.result(),
          volatile: d.v.map((x, i) => ({ until: bounds[i] ?? null, ...x.result() })).filter((b) => b.count > 0),
        };
      }
      return out;
    },
  };
}

/**
 * A Writable for a copy of the RDB stream (storePart's `side`): it never fails the stream it watches; a
 * problem reading the RDB is kept in `error` and the rest of the stream is let through unread.
 */
export class KeyspaceTap extends Writable {
  error: RdbError | null = null;
  info: RdbInfo | null = null;
  private readonly summary: ReturnType<typeof createKeyspaceSummary>;
  private readonly parser: ReturnType<typeof createRdbParser>;
  constructor(savedAt: number) {
    super({ highWaterMark: 1 << 20 });
    this.summary = createKeyspaceSummary(savedAt);
    this.parser = createRdbParser((k) => this.summary.add(k));
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.error) {
      try { this.parser.push(chunk); } catch (err) { this.error = asRdbError(err); }
    }
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.error) {
      try { this.info = this.parser.end(); } catch (err) { this.error = asRdbError(err); }
    }
    cb();
  }
  /** the summary, or null when the RDB could not be read (see `error`) */
  result(): RedisKeyspace | null {
    return this.error || !this.info ? null : this.summary.result();
  }
}

const asRdbError = (err: unknown): RdbError => (err instanceof RdbError ? err : new RdbError(err instanceof Error ? err.message : String(err)));

/** Reads a whole RDB stream (tests, tools): every key, or an RdbError. */
export async function readRdb(stream: AsyncIterable<Buffer>, onKey: (k: RdbKey) => void): Promise<RdbInfo> {
  const p = createRdbParser(onKey);
  for await (const chunk of stream) p.push(chunk);
  return p.end();
}
