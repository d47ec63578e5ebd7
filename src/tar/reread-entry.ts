/**
 * One restored entry read back: lstat (type, mode, owner, size, link target) and, for a file, its SHA-256,
 * compared with the index. The re-read worker's unit of work (src/tar/reread-worker.ts); it loads nothing
 * the worker does not need.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { IndexEntry } from './file-index.ts';
import { entryDiff } from './entry-diff.ts';
import { sha256OfFile } from './file-hash.ts';

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

/** How the entry at `root/want.path` differs from `want` (a hard link already resolved: resolveHardlink), or null. */
export function rereadEntry(root: string, want: IndexEntry): string | null {
  const p = want.path === '.' ? root : join(root, want.path);
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return 'missing';
  const type = typeOf(st.mode);
  const got: IndexEntry = { path: want.path, type: type === 'other' ? 'file' : type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, mtime: 0 };
  if (type === 'other') return 'unknown file type';
  if (type === 'symlink') got.linkname = readlinkSync(p);
  if (type === 'file' && want.type === 'file' && st.size === want.size) got.sha256 = sha256OfFile(p);
  return entryDiff(want, got);
}

/** what the worker answers to the last batch */
export type RereadReply = { diffs: string[] } | { error: string; code?: string };
