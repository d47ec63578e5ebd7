import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { tarEntries, normalizeEntryName, INDEX_TYPE_OF, type IndexEntry } from '../../src/tar/file-index.ts';
import { TarScanner } from '../../src/tar/scan.ts';

/** GNU tar, posix format as dr writes it: long and non-ASCII names, links, an empty file, odd modes. */
function gnuTar(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'tarscan-'));
  try {
    mkdirSync(join(dir, 'd'.repeat(120), 'Заявки 📎'), { recursive: true });
    writeFileSync(join(dir, 'd'.repeat(120), 'Заявки 📎', `${'f'.repeat(150)}.txt`), 'x'.repeat(70_001));
    writeFileSync(join(dir, 'a.bin'), Buffer.alloc(1024, 7));
    writeFileSync(join(dir, 'empty'), '');
    chmodSync(join(dir, 'empty'), 0o4750);
    symlinkSync('a.bin', join(dir, 'link'));
    symlinkSync('x'.repeat(130), join(dir, 'longlink'));
    linkSync(join(dir, 'a.bin'), join(dir, 'hard'));
    return execFileSync('tar', ['-C', dir, '--format=posix', '--pax-option=delete=atime,delete=ctime', '--sort=name', '--numeric-owner', '--owner=33', '--group=33', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same archive read by tar-stream (the independent reference), as index entries. */
async function reference(archive: Buffer): Promise<IndexEntry[]> {
  const out: IndexEntry[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    const type = INDEX_TYPE_OF[h.type ?? 'file']!;
    const hash = createHash('sha256');
    let size = 0;
    stream.on('data', (c: unknown) => { hash.update(c as Buffer); size += (c as Buffer).length; });
    stream.on('end', () => {
      const e: IndexEntry = { path: normalizeEntryName(h.name), type, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, size: type === 'file' ? size : 0, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000) };
      if (type === 'file') e.sha256 = hash.digest('hex');
      if (h.linkname) e.linkname = type === 'hardlink' ? normalizeEntryName(h.linkname) : h.linkname;
      out.push(e);
      next();
    });
  });
  await new Promise<void>((resolve, reject) => { ex.on('finish', resolve); ex.on('error', reject); Readable.from([archive]).pipe(ex); });
  return out;
}

/** `reuse`: every chunk is passed in one buffer that is overwritten with garbage after scan() returns (as the
 *  hash worker's ring reuses its slots), so nothing may be kept from it */
function scan(archive: Buffer, chunk: number, reuse = false): IndexEntry[] {
  const out: IndexEntry[] = [];
  const s = tarEntries('test', (e) => out.push(e));
  const slot = Buffer.alloc(chunk);
  for (let i = 0; i < archive.length; i += chunk) {
    const piece = archive.subarray(i, i + chunk);
    if (!reuse) { s.scan(piece); continue; }
    piece.copy(slot);
    s.scan(slot.subarray(0, piece.length));
    slot.fill(0x5a);
  }
  s.finish();
  return out;
}

test('the scanner reads GNU tar (pax long names and link targets, non-ASCII, hard links) exactly as tar-stream does, at any chunking', async () => {
  const archive = gnuTar();
  const want = await reference(archive);
  assert.ok(want.length >= 9, `${want.length} entries`);
  assert.ok(want.some((e) => e.path.length > 250), 'a long path through pax');
  assert.ok(want.some((e) => e.type === 'symlink' && e.linkname!.length === 130), 'a long link target through pax');
  assert.ok(want.some((e) => e.type === 'hardlink'), 'a hard link');
  assert.ok(want.every((e) => e.uid === 33 && e.gid === 33), 'owners');
  for (const chunk of [1, 7, 511, 512, 513, 10_240, 1 << 20]) {
    assert.deepEqual(scan(archive, chunk), want, `chunk ${chunk}`);
    assert.deepEqual(scan(archive, chunk, true), want, `chunk ${chunk}, its buffer reused`);
  }
});

test('the scanner: pax uid/gid/size override the ustar fields; a truncated archive and a bad checksum are refused', async () => {
  const p = tar.pack();
  p.entry({ name: './big-owner', uid: 1, gid: 2, pax: { uid: '3000000', gid: '4000000' } }, 'abc');
  p.finalize();
  const bufs: Buffer[] = [];
  for await (const c of p as unknown as AsyncIterable<Buffer>) bufs.push(c);
  const archive = Buffer.concat(bufs);
  const [e] = scan(archive, 100);
  assert.equal(e!.uid, 3_000_000);
  assert.equal(e!.gid, 4_000_000);
  assert.equal(e!.sha256, createHash('sha256').update('abc').digest('hex'));
  // cut inside the content
  const cut = archive.subarray(0, archive.indexOf('abc') + 2);
  assert.throws(() => scan(cut, 4096), /test: the archive ends in the middle of an entry/);
  // a flipped byte in a header
  const bad = Buffer.from(archive);
  bad[1024 + 10]! ^= 0x20;
  const s = new TarScanner({ header: () => {} }, (w) => new Error(w));
  assert.throws(() => s.scan(bad), /not a valid tar header/);
});
