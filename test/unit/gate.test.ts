import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { tarGate } from '../../src/tar/gate.ts';
import { indexBuilder, type IndexEntry } from '../../src/tar/file-index.ts';
import { indexProblem } from '../../src/codec/read.ts';
import { claimTarSize } from '../helpers.ts';

/** A real GNU tar archive (posix format, as dr writes it) of a tree with long, non-ASCII names and links. */
function gnuTar(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  try {
    const long = 'd'.repeat(120);
    mkdirSync(join(dir, long, 'Заявки'), { recursive: true });
    writeFileSync(join(dir, long, 'Заявки', `${'f'.repeat(150)}.txt`), 'x'.repeat(70_000));
    writeFileSync(join(dir, 'a.bin'), Buffer.alloc(513, 7));
    writeFileSync(join(dir, 'empty'), '');
    symlinkSync('a.bin', join(dir, 'link'));
    linkSync(join(dir, 'a.bin'), join(dir, 'hard'));
    return execFileSync('tar', ['-C', dir, '--format=posix', '--sort=name', '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function indexOf(archive: Buffer): Promise<Map<string, IndexEntry>> {
  const lines: string[] = [];
  const out = new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } });
  const b = indexBuilder(out);
  await pipeline(Readable.from([archive]), b.sink);
  const m = new Map<string, IndexEntry>();
  for (const l of lines.join('').split('\n').filter(Boolean)) { const e = JSON.parse(l) as IndexEntry; m.set(e.path, e); }
  return m;
}

/** Runs `archive` through the gate in chunks of `size` bytes; returns what came out, or the error. */
async function throughGate(archive: Buffer, index: Map<string, IndexEntry>, size: number): Promise<{ out: Buffer; entries: number } | Error> {
  const g = tarGate('v2_test', index);
  const chunks: Buffer[] = [];
  for (let i = 0; i < archive.length; i += size) chunks.push(archive.subarray(i, i + size));
  const got: Buffer[] = [];
  try {
    await pipeline(Readable.from(chunks), g.stream, new Writable({ write(c, _e, cb) { got.push(c as Buffer); cb(); } }));
    return { out: Buffer.concat(got), entries: g.entries() };
  } catch (err) {
    return err as Error;
  }
}

test('the gate passes a GNU tar archive (pax long names, non-ASCII, links) byte for byte, at any chunking', async () => {
  const archive = gnuTar();
  const index = await indexOf(archive);
  assert.ok(index.size >= 7, `index has ${index.size} entries`);
  for (const size of [1, 511, 512, 513, 4096, 1 << 20]) {
    const r = await throughGate(archive, index, size);
    assert.ok(!(r instanceof Error), `chunk ${size}: ${(r as Error).message}`);
    assert.equal(createHash('sha256').update(r.out).digest('hex'), createHash('sha256').update(archive).digest('hex'), `chunk ${size}`);
    assert.equal(r.entries, index.size, `chunk ${size}`);
  }
});

async function packed(entries: (p: tar.Pack) => void): Promise<Buffer> {
  const p = tar.pack();
  entries(p);
  p.finalize();
  const bufs: Buffer[] = [];
  for await (const c of p as unknown as AsyncIterable<Buffer>) bufs.push(c);
  return Buffer.concat(bufs);
}

test('the gate refuses, naming the entry, and forwards nothing of the refused entry', async () => {
  const base: IndexEntry[] = [
    { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 },
    { path: 'a.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0 },
  ];
  const index = new Map(base.map((e) => [e.path, e]));
  const cases: [string, (p: tar.Pack) => void, RegExp][] = [
    ['dotdot', (p) => p.entry({ name: './../evil.php' }, 'x'), /path "\.\/\.\.\/evil\.php" contains "\.\."/],
    ['absolute', (p) => p.entry({ name: '/etc/cron.d/evil' }, 'x'), /absolute path "\/etc\/cron\.d\/evil"/],
    ['symlink out', (p) => p.entry({ name: './l', type: 'symlink', linkname: '../../etc' }), /symlink "\.\/l" -> "\.\.\/\.\.\/etc" leaves the volume/],
    ['hard link out', (p) => p.entry({ name: './h', type: 'link', linkname: '../../etc/shadow' }), /hard link "\.\/h"/],
    ['device', (p) => p.entry({ name: './sda', type: 'block-device', devmajor: 8, devminor: 0 }), /device node "\.\/sda"/],
    ['not in index', (p) => p.entry({ name: './b.txt' }, 'abc'), /entry "\.\/b\.txt" is not in the volume's index/],
    ['type swap', (p) => p.entry({ name: './a.txt', type: 'symlink', linkname: 'x' }), /is a symlink, the index says file/],
    ['pax path', (p) => p.entry({ name: './a.txt', pax: { path: '../../root/.ssh/authorized_keys' } }, 'abc'), /contains "\.\."/],
  ];
  for (const [name, add, expected] of cases) {
    const archive = await packed((p) => { p.entry({ name: './', type: 'directory' }); add(p); });
    const r = await throughGate(archive, index, 1 << 20);
    assert.ok(r instanceof Error, `${name}: refused`);
    assert.match(r.message, /^volume v2_test: refusing the archive: /, name);
    assert.match(r.message, expected, name);
  }
  // a 10 GB sparse-style size claim (base-256 size field) for a file the index says has 3 bytes
  const claim = await packed((p) => { p.entry({ name: './', type: 'directory' }); p.entry({ name: './a.txt' }, 'abc'); });
  claimTarSize(claim.subarray(512, 1024), 10 * 1024 ** 3);
  assert.match(((await throughGate(claim, index, 4096)) as Error).message, /entry "\.\/a\.txt" claims 10737418240 bytes, the index says 3/);
  // a refused entry's header is never forwarded: with 512-byte chunks exactly the directory header came out
  const archive = await packed((p) => { p.entry({ name: './', type: 'directory' }); p.entry({ name: '/etc/passwd' }, 'x'); });
  const g = tarGate('v2_test', index);
  const out: Buffer[] = [];
  await assert.rejects(pipeline(Readable.from([archive.subarray(0, 512), archive.subarray(512)]), g.stream,
    new Writable({ write(c, _e, cb) { out.push(c as Buffer); cb(); } })), /absolute path/);
  assert.equal(Buffer.concat(out).length, 512);
  // truncation inside an entry, and bytes that are not a tar header
  const good = await packed((p) => { p.entry({ name: './', type: 'directory' }); p.entry({ name: './a.txt' }, 'abc'); });
  assert.match(((await throughGate(good.subarray(0, 1024 + 100), index, 4096)) as Error).message, /ends in the middle of an entry/);
  const garbage = Buffer.concat([good.subarray(0, 512), Buffer.alloc(512, 0x41)]);
  assert.match(((await throughGate(garbage, index, 4096)) as Error).message, /not a valid tar header/);
});

test('indexProblem finds a hostile entry in an index', () => {
  const e = (path: string, type: IndexEntry['type'], linkname?: string): IndexEntry => ({ path, type, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, ...(linkname ? { linkname } : {}) });
  assert.equal(indexProblem('v', new Map([['.', e('.', 'dir')], ['a', e('a', 'file')], ['l', e('l', 'symlink', 'a')]])), null);
  assert.match(indexProblem('v', new Map([['../x', e('../x', 'file')]]))!.message, /volume v: refusing the archive: .*contains "\.\."/);
  assert.match(indexProblem('v', new Map([['/etc/x', e('/etc/x', 'file')]]))!.message, /absolute path "\/etc\/x"/);
  assert.match(indexProblem('v', new Map([['d', e('d', 'chardev')]]))!.message, /device node/);
  assert.match(indexProblem('v', new Map([['l', e('l', 'symlink', '../../etc')]]))!.message, /leaves the volume/);
});

test('the backup\'s index builder names the volume when its tar stream is malformed', async () => {
  const bad = gnuTar().subarray(0, 512 * 20 + 100); // cut inside the 70,000-byte file
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const destroyedWith: Error[] = [];
  sink.on('error', (e) => destroyedWith.push(e)); // the index part's stream fails with the same error
  const b = indexBuilder(sink, 'volume v2_glpi_files');
  await assert.rejects(pipeline(Readable.from([bad]), b.sink), (err: Error) => /^volume v2_glpi_files: the archive ends in the middle of an entry/.test(err.message));
  assert.match(destroyedWith[0]?.message ?? '', /^volume v2_glpi_files: /);
});
