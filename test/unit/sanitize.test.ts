import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryProblem, insideVolume } from '../../src/tar/sanitize.ts';
import { entryDiff } from '../../src/tar/entry-diff.ts';
import { normalizeEntryName } from '../../src/tar/file-index.ts';

test('safe entries pass: files, dirs, relative links inside the volume, long and non-ASCII names', () => {
  for (const e of [
    { name: './', type: 'directory' }, { name: './a/b.txt' }, { name: './Заявка №42 — отчёт.pdf' }, { name: `./${'x'.repeat(200)}` },
    { name: './_pictures/pdf-link', type: 'symlink', linkname: '../_documents/PDF' },
    { name: './marketplace/current', type: 'symlink', linkname: 'formcreator' },
    { name: './a/b/c', type: 'symlink', linkname: '../../x' },
    { name: './_documents/hardlink.PDF', type: 'link', linkname: './_documents/PDF/a.PDF' },
    { name: './fifo', type: 'fifo' },
  ]) assert.equal(entryProblem(e), null, JSON.stringify(e));
});

test('hostile entries are refused with the entry named', () => {
  assert.match(entryProblem({ name: '/etc/passwd' })!, /absolute path "\/etc\/passwd"/);
  assert.match(entryProblem({ name: './a/../../x' })!, /contains "\.\."/);
  assert.match(entryProblem({ name: '../x' })!, /contains "\.\."/);
  assert.match(entryProblem({ name: './l', type: 'symlink', linkname: '../x' })!, /leaves the volume/);
  assert.match(entryProblem({ name: './a/l', type: 'symlink', linkname: '../../x' })!, /leaves the volume/);
  assert.match(entryProblem({ name: './l', type: 'symlink', linkname: '/etc' })!, /absolute path "\/etc"/);
  assert.match(entryProblem({ name: './h', type: 'link', linkname: '../x' })!, /hard link/);
  assert.match(entryProblem({ name: './h', type: 'link', linkname: '/etc/shadow' })!, /hard link/);
  assert.match(entryProblem({ name: './dev', type: 'character-device' })!, /device node/);
  assert.match(entryProblem({ name: './dev', type: 'block-device' })!, /device node/);
  assert.match(entryProblem({ name: './x', type: 'gnu-sparse-weird' })!, /unsupported type/);
  assert.match(entryProblem({ name: './a\0b' })!, /NUL/);
});

test('insideVolume resolves relative to a base and rejects escapes', () => {
  assert.equal(insideVolume('a/b/../c'), 'a/c');
  assert.equal(insideVolume('./'), '.');
  assert.equal(insideVolume('../x', 'a'), 'x');
  assert.equal(insideVolume('../../x', 'a'), null);
  assert.equal(insideVolume('/x'), null);
  assert.equal(normalizeEntryName('./a/b/'), 'a/b');
  assert.equal(normalizeEntryName('./'), '.');
});

test('entryDiff names each field that differs', () => {
  const base = { path: 'a', type: 'file' as const, mode: 0o640, uid: 33, gid: 33, size: 3, mtime: 0, sha256: 'aa' };
  assert.equal(entryDiff(base, { ...base }), null);
  assert.match(entryDiff(base, { ...base, mode: 0o644 })!, /mode 644 ≠ 640/);
  assert.match(entryDiff(base, { ...base, uid: 0, gid: 0 })!, /owner 0:0 ≠ 33:33/);
  assert.match(entryDiff(base, { ...base, sha256: 'bb' })!, /content/);
  assert.match(entryDiff(base, { ...base, size: 4 })!, /size 4 ≠ 3/);
  const link = { path: 'l', type: 'symlink' as const, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'x' };
  assert.match(entryDiff(link, { ...link, linkname: 'y' })!, /link target "y" ≠ "x"/);
});
