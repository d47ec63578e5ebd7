/**
 * How a restored entry must come back, and how it differs: pure functions shared by the restore's checks
 * (src/codec/read.ts) and the re-read's worker thread (src/tar/reread-worker.ts), which loads nothing else.
 */
import type { IndexEntry } from './file-index.ts';

/** An index entry as it must come back: a hard link to a file is compared as that file's content. */
export function resolveHardlink(want: IndexEntry, index: ReadonlyMap<string, IndexEntry>): IndexEntry {
  const t = want.type === 'hardlink' && want.linkname ? index.get(want.linkname) : undefined;
  return t?.type === 'file' ? { ...want, type: 'file', size: t.size, sha256: t.sha256! } : want;
}

/** Describes how `got` differs from `want` (fields that must come back exactly), or null. */
export function entryDiff(want: IndexEntry, got: IndexEntry): string | null {
  const diffs: string[] = [];
  if (want.type !== got.type && !(want.type === 'hardlink' || got.type === 'hardlink')) diffs.push(`type ${got.type} ≠ ${want.type}`);
  if (want.mode !== got.mode) diffs.push(`mode ${got.mode.toString(8)} ≠ ${want.mode.toString(8)}`);
  if (want.uid !== got.uid || want.gid !== got.gid) diffs.push(`owner ${got.uid}:${got.gid} ≠ ${want.uid}:${want.gid}`);
  if (want.type === 'file' && got.type === 'file') {
    if (want.size !== got.size) diffs.push(`size ${got.size} ≠ ${want.size}`);
    else if (want.sha256 !== got.sha256) diffs.push('content (SHA-256) differs');
  }
  if (want.type === 'symlink' && want.linkname !== got.linkname) diffs.push(`link target ${JSON.stringify(got.linkname)} ≠ ${JSON.stringify(want.linkname)}`);
  return diffs.length ? diffs.join(', ') : null;
}
