import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { tempDir } from '../helpers.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { DestSet } from '../../src/storage/destset.ts';
import { storePart, type PartOptions } from '../../src/codec/write.ts';
import { Hashers } from '../../src/codec/hashers.ts';
import { generateIdentity } from '../../src/codec/age/index.ts';
import { openPlain } from '../../src/codec/read.ts';
import { CheckError } from '../../src/core/errors.ts';
import type { Manifest, PartRecord } from '../../src/repo/manifest.ts';

/** GNU tar of ~12 MB (twice the worker's 6 MiB ring): 400 files of random sizes, some long (pax) names */
function archive(): Buffer {
  const dir = tempDir('dr-hashers-');
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 400; i++) {
    const sub = join(dir, `d${i % 9}`, i % 5 === 0 ? 'п'.repeat(60) + i : '');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(Math.floor(rnd() ** 3 * 120_000)));
  }
  return execFileSync('tar', ['-C', dir, '--format=posix', '--sort=name', '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
}

/** `buf` in odd-sized chunks, so slots fill across chunk boundaries */
const chunks = (buf: Buffer) => Readable.from((function* () { for (let i = 0; i < buf.length; i += 100_003) yield buf.subarray(i, i + 100_003); })());

async function text(r: Readable): Promise<string> { let s = ''; for await (const c of r) s += c; return s; }

async function store(storage: LocalStorage, key: string, tar: Buffer, opts: PartOptions) {
  const out = new PassThrough();
  const lines = text(out);
  lines.catch(() => {}); // a failed part destroys the index stream too; its error is the part's
  let read = false;
  const part = await storePart(new DestSet([storage]), 'id', key, 'volume', 'v', chunks(tar), opts, { index: { out, what: 'volume v' }, onRead: () => { read = true; } });
  return { part, lines: await lines, read };
}

test('a part hashed on a worker has the plaintext size, index and stored bytes the main-thread path gives', async () => {
  const tar = archive();
  const storage = new LocalStorage(tempDir('dr-hashers-store-'));
  const { recipient, identity } = generateIdentity();
  const base: PartOptions = { compression: 'zstd', zstdLevel: 1, recipients: [recipient] };
  const hashers = new Hashers(1);
  try {
    const onWorker = await store(storage, 'w.tar.zst.age', tar, { ...base, hashers });
    assert.equal(hashers.served, 1, 'the part took the worker');
    const onMain = await store(storage, 'm.tar.zst.age', tar, base);
    // a volume's plaintext is counted, not hashed (its index hashes every file)
    assert.deepEqual(onWorker.part.plain, { size: tar.length, sha256: null });
    assert.deepEqual(onWorker.part.plain, onMain.part.plain);
    assert.equal(onWorker.part.files, onMain.part.files);
    assert.ok(onWorker.part.files! > 400, `${onWorker.part.files} entries`);
    assert.equal(onWorker.lines, onMain.lines, 'the same index, line for line');
    assert.ok(onWorker.read && onMain.read, 'onRead was called');
    // what was stored decrypts and decompresses to the archive, byte for byte
    const back: Buffer[] = [];
    const opened = await openPlain(storage, { id: 'id' } as Manifest, onWorker.part as PartRecord, [identity]);
    for await (const c of opened.stream) back.push(c as Buffer);
    assert.ok(Buffer.concat(back).equals(tar));
    await opened.checked; // the stored bytes' SHA-256 is the manifest's
    // the single read's check: a flipped bit in the stored bytes fails `checked` with a CheckError naming the part
    const file = join(storage.root, 'id', 'w.tar.zst.age');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length >> 1]! ^= 1;
    writeFileSync(file, bad);
    const broken = await openPlain(storage, { id: 'id' } as Manifest, onWorker.part as PartRecord, [identity]);
    broken.stream.resume();
    await assert.rejects(broken.checked, (e: Error) => e instanceof CheckError && /part w\.tar\.zst\.age is corrupted/.test(e.message));
    // … and a part whose bytes were replaced by others that decrypt fine (a different backup's) fails on its SHA-256
    writeFileSync(file, readFileSync(join(storage.root, 'id', 'm.tar.zst.age')));
    const other = await openPlain(storage, { id: 'id' } as Manifest, onWorker.part as PartRecord, [identity]);
    other.stream.resume();
    await assert.rejects(other.checked, (e: Error) => e instanceof CheckError && /corrupted: stored SHA-256/.test(e.message));
    writeFileSync(file, good);
    // the worker went back to the pool and serves the next part
    await store(storage, 'w2.tar.zst.age', tar, { ...base, hashers });
    assert.equal(hashers.served, 2);
    assert.equal(hashers.size, 1);
  } finally {
    await hashers.close();
  }
});

test('a malformed archive fails its part with an error naming the volume; its worker is not reused', async () => {
  const storage = new LocalStorage(tempDir('dr-hashers-bad-'));
  const { recipient } = generateIdentity();
  const hashers = new Hashers(1);
  try {
    const tar = archive();
    const at = tar.indexOf('f251.bin'); // a ustar header's name field, past the first MiB
    assert.ok(at > 1 << 20, `header at ${at}`);
    tar.fill(0x41, at - (at % 512), at - (at % 512) + 512);
    await assert.rejects(store(storage, 'bad.tar.zst.age', tar, { compression: 'zstd', zstdLevel: 1, recipients: [recipient], hashers }),
      /volume v: bytes at offset \d+ are not a valid tar header/);
    assert.equal(hashers.served, 1);
    assert.equal(hashers.size, 0, 'the failed part took its worker with it');
    assert.equal(hashers.take(), undefined);
    assert.deepEqual(await storage.list(''), [], 'no part left behind');
  } finally {
    await hashers.close();
  }
});

test('hash workers start one at a time: a part that finds none idle starts one for the next part', async () => {
  const hashers = new Hashers(2);
  try {
    assert.equal(hashers.size, 1, 'one started at once');
    const a = hashers.take();
    assert.ok(a);
    assert.equal(hashers.take(), undefined, 'none idle: this part hashes on the main thread …');
    assert.equal(hashers.size, 2, '… and the next finds a second worker');
    const b = hashers.take();
    assert.ok(b && b !== a);
    assert.equal(hashers.take(), undefined);
    assert.equal(hashers.size, 2, 'never more than the maximum');
    hashers.give(a, true);
    assert.equal(hashers.take(), a, 'a clean worker is reused');
    assert.equal(hashers.served, 3);
  } finally {
    await hashers.close();
  }
  assert.equal(hashers.take(), undefined, 'none after close()');
  assert.equal(hashers.size, 0);
});

test('a part without an index gets no entry count; closing the workers fails a part still using one, naming it', async () => {
  const storage = new LocalStorage(tempDir('dr-hashers-close-'));
  const { recipient } = generateIdentity();
  const hashers = new Hashers(1);
  const opts: PartOptions = { compression: 'zstd', zstdLevel: 1, recipients: [recipient], hashers };
  try {
    const dump = await storePart(new DestSet([storage]), 'id', 'dumps/x.sql.zst.age', 'dump', 'x', chunks(Buffer.alloc(3 << 20, 7)), opts);
    assert.equal(hashers.served, 1);
    assert.deepEqual(dump.plain, { size: 3 << 20, sha256: createHash('sha256').update(Buffer.alloc(3 << 20, 7)).digest('hex') }, 'a dump\'s plaintext is hashed on the worker');
    assert.equal('files' in dump, false, 'a dump has no entry count');
    // a source that never ends: the part waits on it with the worker taken …
    const endless = new PassThrough();
    endless.write(Buffer.alloc(1 << 16));
    const stuck = storePart(new DestSet([storage]), 'id', 'dumps/y.sql.zst.age', 'dump', 'y', endless, opts);
    await new Promise((r) => setTimeout(r, 100));
    // (the rejection is awaited from before close(): it may come while close() is still running)
    const failed = assert.rejects(stuck, /part dumps\/y\.sql\.zst\.age: the hash worker was stopped/);
    await hashers.close(); // … and fails, instead of waiting forever, when the workers go
    await failed;
    assert.deepEqual((await storage.list('id')).map((o) => o.key), ['id/dumps/x.sql.zst.age'], 'the failed part left nothing');
  } finally {
    await hashers.close();
  }
});
