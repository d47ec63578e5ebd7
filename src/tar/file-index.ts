/**
 * The per-file index of a volume, read from its tar stream: every entry's path, type, mode, owner, size and
 * SHA-256 (src/tar/scan.ts reads the headers). Used by the backup (built as the tar streams into its part,
 * on the hash worker: src/codec/hash-worker.ts), the restore's checks and gate, and `dr verify`. Loads nothing but
 * node builtins and the tar scanner, so a worker thread can run it.
 */
import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { TarScanner, type TarHeader } from './scan.ts';
import { DrError } from '../core/errors.ts';

export interface IndexEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  sha256?: string;
  linkname?: string;
}

/** tar-stream's entry types → index types (also used by the restore's checks and gate) */
export const INDEX_TYPE_OF: Readonly<Record<string, IndexEntry['type']>> = {
  file: 'file', 'contiguous-file': 'file', directory: 'dir', symlink: 'symlink', link: 'hardlink',
  'character-device': 'chardev', 'block-device': 'blockdev', fifo: 'fifo',
};

/** Tar entry name → index path: "./a/b" → "a/b", "./" → ".". */
export function normalizeEntryName(name: string): string {
  const n = name.replace(/^\.\//, '').replace(/\/+$/, '');
  return n === '' || n === '.' ? '.' : n;
}

/**
 * A tar scanner that turns every entry into its index entry (content hashed as it goes by) and calls
 * `onEntry(entry)` once the entry is complete (`onHeader` sees each header first, and may throw to refuse
 * it). Malformed input throws a DrError naming `what`.
 */
export function tarEntries(what: string, onEntry: (e: IndexEntry) => void, onHeader?: (h: TarHeader) => void): TarScanner {
  let cur: { h: TarHeader; type: IndexEntry['type']; hash: Hash | null; got: number } | null = null;
  return new TarScanner({
    header(h) {
      onHeader?.(h);
      const type = INDEX_TYPE_OF[h.type ?? 'file'] ?? 'file';
      cur = { h, type, hash: type === 'file' ? createHash('sha256') : null, got: 0 };
    },
    content(piece) {
      cur!.hash?.update(piece);
      cur!.got += piece.length;
    },
    end() {
      const { h, type, hash, got } = cur!;
      cur = null;
      const e: IndexEntry = {
        path: normalizeEntryName(h.name), type, mode: h.mode & 0o7777, uid: h.uid, gid: h.gid,
        size: type === 'file' ? got : 0, mtime: h.mtime,
      };
      if (hash) e.sha256 = hash.digest('hex');
      if (h.linkname) e.linkname = type === 'hardlink' ? normalizeEntryName(h.linkname) : h.linkname;
      onEntry(e);
    },
  }, (why) => new DrError(`${what}: ${why}`));
}

/** An index entry as its line in the index part (docs/FORMAT.md): one JSON object per line. */
export function indexLine(e: IndexEntry): string {
  return JSON.stringify(e) + '\n';
}

/**
 * A writable that scans a tar stream and writes one JSON line per entry to `out` (then ends it), gathered
 * into ~64 KiB writes, awaiting `out`'s backpressure so the index never piles up in memory.
 * `what` names the source in errors (e.g. "volume v2_glpi_files").
 */
export function indexBuilder(out: Writable, what = 'tar stream'): { sink: Writable; count(): number } {
  let n = 0;
  let lines = '';
  const scanner = tarEntries(what, (e) => { n++; lines += indexLine(e); });
  const flush = (cb: (err?: Error | null) => void) => {
    const text = lines;
    lines = '';
    if (!text || out.write(text)) return cb();
    once(out, 'drain').then(() => cb(), cb);
  };
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb) {
      try { scanner.scan(chunk); } catch (err) { return cb(err as Error); }
      if (lines.length >= 1 << 16) flush(cb); else cb();
    },
    final(cb) {
      try { scanner.finish(); } catch (err) { return cb(err as Error); }
      flush((err) => { if (err) return cb(err); out.end(); cb(); });
    },
  });
  sink.on('error', (e) => out.destroy(e));
  return { sink, count: () => n };
}
