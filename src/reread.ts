/**
 * The restore's re-read when the volume's directory is readable on this host: every restored entry is
 * lstat-ed (type, mode, owner, size, link target) and every file read back and hashed, then compared with
 * the index (entryDiff). It runs while GNU tar is still extracting: an entry is re-read as soon as tar has
 * moved on to the next one (tar -v prints each member when it starts it), so the re-read overlaps the
 * write instead of following it. Everything but regular files (directories, links, special files) is
 * re-read after tar exits: tar finishes those last.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { IndexEntry } from './archive.ts';
import { entryDiff, resolveHardlink } from './check.ts';

const CONCURRENCY = 4;

function typeOf(mode: number): IndexEntry['type'] | 'other' {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'chardev';
    case 0o060000: return 'blockdev';
    case 0o010000: return 'fifo';
    default: return 'other';
  }
}

/** SHA-256 of a file, read into a reused buffer (no allocation per file: 20,000 small files stay cheap). */
async function sha256Of(path: string, buf: Buffer): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const buffers: Buffer[] = [];
async function withBuffer<T>(fn: (b: Buffer) => Promise<T>): Promise<T> {
  const b = buffers.pop() ?? Buffer.allocUnsafe(1 << 20);
  try { return await fn(b); } finally { buffers.push(b); }
}

/** How the entry at `root/path` differs from the index, or null. */
export async function rereadEntry(root: string, entry: IndexEntry, index: ReadonlyMap<string, IndexEntry>): Promise<string | null> {
  const want = resolveHardlink(entry, index);
  const p = want.path === '.' ? root : join(root, want.path);
  const st = await lstat(p).catch(() => null);
  if (!st) return 'missing';
  const type = typeOf(st.mode);
  const got: IndexEntry = { path: want.path, type: type === 'other' ? 'file' : type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, mtime: 0 };
  if (type === 'other') return 'unknown file type';
  if (type === 'symlink') got.linkname = await readlink(p);
  if (type === 'file' && want.type === 'file' && st.size === want.size) got.sha256 = await withBuffer((b) => sha256Of(p, b));
  return entryDiff(want, got);
}

export interface Rereader {
  /** the extractor has started entry number `n` (0-based, in archive order): everything before it is done */
  started(n: number): void;
  /** the gate let `path` through, in archive order */
  entry(path: string): void;
  /** after the extractor exited: re-reads what is left (directories, the last entry, anything not seen) */
  finish(): Promise<{ diffs: string[]; entries: number }>;
}

export function rereader(volume: string, root: string, index: ReadonlyMap<string, IndexEntry>): Rereader {
  const order: string[] = [];
  const checked = new Set<string>();
  const diffs: string[] = [];
  let ready = 0; // entries order[0..ready) are complete on disk
  let next = 0; // next entry of order to re-read
  let active = 0;
  let failure: unknown = null;
  const idle: (() => void)[] = [];
  const note = (path: string, d: string | null) => { if (d && diffs.length < 50) diffs.push(`${volume}:${path}: ${d}`); };
  const check = (path: string) => {
    checked.add(path);
    const want = index.get(path);
    if (!want) return Promise.resolve(note(path, 'not in the index'));
    return rereadEntry(root, want, index).then((d) => note(path, d));
  };
  const pump = () => {
    while (active < CONCURRENCY && next < ready) {
      const path = order[next++]!;
      // only regular files while tar runs: it sets directory modes, and creates symlinks with ".." (as
      // placeholders first), at its end
      if (checked.has(path) || index.get(path)?.type !== 'file') continue;
      active++;
      check(path).catch((err: unknown) => { failure ??= err; }).finally(() => { active--; pump(); });
    }
    if (active === 0) for (const f of idle.splice(0)) f();
  };
  return {
    entry: (path) => { order.push(path); },
    started: (n) => { ready = Math.max(ready, Math.min(n, order.length)); pump(); },
    async finish() {
      ready = order.length;
      pump();
      await new Promise<void>((r) => { if (active === 0 && next >= ready) r(); else idle.push(r); });
      // directories (modes applied by tar at its end) and every index entry the archive did not bring
      const rest = [...index.keys()].filter((p) => !checked.has(p));
      for (let i = 0; i < rest.length; i += CONCURRENCY * 4) await Promise.all(rest.slice(i, i + CONCURRENCY * 4).map(check));
      if (failure) throw failure;
      return { diffs, entries: checked.size };
    },
  };
}
