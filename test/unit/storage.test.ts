import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, utimesSync } from 'node:fs';
import { cleanupIncomplete } from '../../src/repo/catalog.ts';
import type { Logger } from '../../src/core/log.ts';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LocalStorage } from '../../src/storage/local.ts';
import { RetryingStorage } from '../../src/storage/retry.ts';
import { FaultyStorage } from '../support/faulty-storage.ts';
import { DestSet } from '../../src/storage/destset.ts';
import { storePart } from '../../src/codec/write.ts';
import { generateIdentity } from '../../src/codec/age/index.ts';

const tmp = () => tempDir('dr-storage-');
async function text(r: Readable): Promise<string> { let s = ''; for await (const c of r) s += c; return s; }

test('local storage: atomic put (no temp file left), get, stat, list, deletePrefix; keys cannot escape', async () => {
  const dir = tmp();
  const s = new LocalStorage(dir);
  await s.put('a/b/c.txt', Readable.from([Buffer.from('hello')]));
  assert.equal(await text(await s.get('a/b/c.txt')), 'hello');
  assert.equal((await s.stat('a/b/c.txt'))?.size, 5);
  assert.equal(await s.stat('a/none'), null);
  assert.deepEqual((await s.list('')).map((o) => o.key), ['a/b/c.txt']);
  // a failing body leaves nothing behind
  const bad = new Readable({ read() { this.destroy(new Error('source died')); } });
  await assert.rejects(s.put('a/b/d.txt', bad), /source died/);
  assert.deepEqual(readdirSync(join(dir, 'a/b')), ['c.txt']);
  await s.deletePrefix('a');
  assert.deepEqual(await s.list(''), []);
  await assert.rejects(s.put('../escape', Readable.from(['x'])), /invalid object key/);
  // prepare makes a part's folder ahead of its first put, through the destination set and its wrappers
  const set = new DestSet([new RetryingStorage(new FaultyStorage(s, {}), { attempts: 1, baseMs: 1, maxMs: 1 })]);
  await set.prepare(['id1/volumes', 'id1/index']);
  assert.deepEqual(readdirSync(join(dir, 'id1')).sort(), ['index', 'volumes']);
  assert.deepEqual(await s.list('id1'), [], 'folders alone are no objects');
});

test('local storage: a part larger than the in-flight flush step (64 MiB) arrives intact; a source failing after a flush leaves nothing', async () => {
  const dir = tmp();
  const s = new LocalStorage(dir);
  const MiB = 1 << 20;
  // 150 MiB of distinct 1 MiB chunks: two flushes while streaming, the rest at the end
  const chunks = function* (n: number, failAt = -1) {
    for (let i = 0; i < n; i++) {
      if (i === failAt) throw new Error('volume vanished mid-part');
      yield createHash('sha256').update(String(i)).digest().toString('hex').repeat(MiB / 64).slice(0, MiB);
    }
  };
  const want = createHash('sha256');
  for (const c of chunks(150)) want.update(c);
  const r = await s.put('v/big.bin', Readable.from(chunks(150)));
  assert.equal(r.size, 150 * MiB);
  const got = createHash('sha256');
  for await (const c of await s.get('v/big.bin')) got.update(c as Buffer);
  assert.equal(got.digest('hex'), want.digest('hex'));
  await assert.rejects(s.put('v/broken.bin', Readable.from(chunks(150, 100))), /volume vanished mid-part/);
  assert.deepEqual(readdirSync(join(dir, 'v')), ['big.bin']);
});

test('clean-up: an interrupted backup holding only empty folders is removed after the grace period; a committed one stays', async () => {
  const dir = tmp();
  const s = new LocalStorage(dir);
  const old = '20261126T010000Z-aaaaaa';
  const fresh = '20261126T020000Z-bbbbbb';
  const done = '20261126T000000Z-cccccc';
  await s.prepare(`${old}/volumes`);
  await s.prepare(`${fresh}/volumes`);
  await s.put(`${done}/manifest.json`, Readable.from(['{}']));
  const past = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, old), past, past);
  utimesSync(join(dir, done), past, past);
  const quiet = { warn() {}, info() {}, error() {}, debug() {} } as unknown as Logger;
  assert.deepEqual(await cleanupIncomplete(s, 600, quiet), [old]);
  assert.deepEqual(readdirSync(dir).sort(), [done, fresh].sort());
});

test('the retry wrapper retries idempotent operations with backoff, then gives up with the last error', async () => {
  const faulty = new FaultyStorage(new LocalStorage(tmp()), { failNext: { list: 2, stat: 5 } });
  const delays: number[] = [];
  const r = new RetryingStorage(faulty, { attempts: 4, baseMs: 100, maxMs: 1000, sleep: async (ms) => { delays.push(ms); } });
  assert.deepEqual(await r.list(''), []);
  assert.equal(faulty.calls.list, 3);
  assert.equal(delays.length, 2);
  assert.ok(delays[0]! <= 100 && delays[1]! <= 200, 'exponential backoff with jitter');
  await assert.rejects(r.stat('x'), /injected fault: stat failed/);
  assert.equal(faulty.calls.stat, 4);
});

test('fault injection: a bit flip and a reset on read', async () => {
  const inner = new LocalStorage(tmp());
  await inner.put('k', Readable.from([Buffer.from('abcdef')]));
  assert.equal(await text(await new FaultyStorage(inner, { flipBitAt: 2 }).get('k')), 'abbdef');
  await assert.rejects(text(await new FaultyStorage(inner, { resetAfterBytes: 3 }).get('k')), /connection reset/);
});

test('one read fans out to every destination; a failing destination is dropped and reported, the others commit', async () => {
  const good = new LocalStorage(tmp());
  const bad = new FaultyStorage(new LocalStorage(tmp()), { failNext: { put: 1 } });
  const dests = new DestSet([good, bad]);
  const { recipient } = generateIdentity();
  let reads = 0;
  const source = Readable.from((function* () { for (let i = 0; i < 50; i++) { reads++; yield Buffer.alloc(64 * 1024, i); } })());
  const part = await storePart(dests, 'id', 'volumes/x.tar.zst.age', 'volume', 'x', source, { compression: 'zstd', zstdLevel: 3, recipients: [recipient] });
  assert.equal(reads, 50, 'the source was read once');
  assert.equal(part.plain.size, 50 * 64 * 1024);
  assert.equal((await good.stat('id/volumes/x.tar.zst.age'))?.size, part.stored.size);
  assert.deepEqual(dests.live(), [good]);
  const st = dests.status(true);
  assert.equal(st[0]!.committed, true);
  assert.equal(st[1]!.committed, false);
  assert.match(st[1]!.error!, /injected fault: put failed/);
  await pipeline(await good.get('id/volumes/x.tar.zst.age'), new Writable({ write(_c, _e, cb) { cb(); } }));
});
