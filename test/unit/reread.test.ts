import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { indexBuilder, type IndexEntry } from '../../src/tar/file-index.ts';
import { rereader } from '../../src/tar/reread.ts';

async function indexOfDir(dir: string): Promise<Map<string, IndexEntry>> {
  const archive = execFileSync('tar', ['-C', dir, '--format=posix', '--sort=name', '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  let text = '';
  const b = indexBuilder(new Writable({ write(c, _e, cb) { text += String(c); cb(); } }));
  await pipeline(Readable.from([archive]), b.sink);
  return new Map(text.split('\n').filter(Boolean).map((l) => { const e = JSON.parse(l) as IndexEntry; return [e.path, e]; }));
}

function tree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'reread-'));
  mkdirSync(join(dir, 'docs', 'Заявки'), { recursive: true });
  writeFileSync(join(dir, 'docs', 'Заявки', 'a.txt'), 'hello');
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(3 << 20, 9));
  symlinkSync('../big.bin', join(dir, 'docs', 'link'));
  linkSync(join(dir, 'big.bin'), join(dir, 'hard.bin'));
  chmodSync(join(dir, 'docs'), 0o750);
  return dir;
}

async function reread(dir: string, index: Map<string, IndexEntry>) {
  const rr = rereader('v', dir, index);
  // as the restore drives it: entries in archive order, tar's progress in steps
  const paths = [...index.keys()].sort();
  paths.forEach((p, i) => { rr.entry(p); rr.started(i); });
  try {
    return await rr.finish();
  } finally {
    await rr.close();
  }
}

test('the re-read passes an identical tree and counts every entry', async () => {
  const dir = tree();
  try {
    const index = await indexOfDir(dir);
    const r = await reread(dir, index);
    assert.deepEqual(r.diffs, []);
    assert.equal(r.entries, index.size);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the re-read names every difference: content, mode, owner, link target, a missing file', async () => {
  const dir = tree();
  try {
    const index = await indexOfDir(dir);
    writeFileSync(join(dir, 'docs', 'Заявки', 'a.txt'), 'HELLO'); // same size, other bytes
    chmodSync(join(dir, 'docs'), 0o755);
    rmSync(join(dir, 'docs', 'link'));
    symlinkSync('../elsewhere', join(dir, 'docs', 'link'));
    rmSync(join(dir, 'hard.bin'));
    execFileSync('chown', ['1234:1234', join(dir, 'big.bin')]);
    const r = await reread(dir, index);
    const text = r.diffs.join('\n');
    assert.match(text, /v:docs\/Заявки\/a\.txt: content \(SHA-256\) differs/);
    assert.match(text, /v:docs: mode 755 ≠ 750/);
    assert.match(text, /v:docs\/link: link target "\.\.\/elsewhere" ≠ "\.\.\/big\.bin"/);
    assert.match(text, /v:hard\.bin: missing/);
    assert.match(text, /v:big\.bin: owner 1234:1234 ≠ 0:0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the re-read reports an error its worker met (with its code), and close() alone ends the worker', async () => {
  const dir = tree();
  try {
    const index = await indexOfDir(dir);
    // "docs" becomes a file: every entry below it fails with ENOTDIR, which is an error, not a difference
    rmSync(join(dir, 'docs'), { recursive: true });
    writeFileSync(join(dir, 'docs'), 'x');
    await assert.rejects(reread(dir, index), (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR');
    // a restore whose extraction failed closes the re-read without finishing it: nothing may keep running
    // (a live worker would keep this test file's process from exiting)
    const rr = rereader('v', dir, index);
    rr.entry('big.bin');
    rr.started(1);
    await rr.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
