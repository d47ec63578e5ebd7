/**
 * The restore's re-read when the volume's directory is readable on this host: every restored entry is
 * lstat-ed (type, mode, owner, size, link target) and every file read back and hashed, then compared with
 * the index (entryDiff). It runs while GNU tar is still extracting: an entry is re-read as soon as tar has
 * moved on to the next one (tar -v prints each member when it starts it), so the re-read overlaps the
 * write instead of following it. Everything but regular files (directories, links, special files) is
 * re-read after tar exits: tar finishes those last.
 *
 * The re-read runs on a worker thread (src/tar/reread-worker.ts), with synchronous reads into one reused buffer:
 * the files were just written and sit in the page cache, so a read costs a memory copy, and the async form
 * cost five thread-pool round trips per file. On the main thread the re-read (~1.9 s of CPU per GB and
 * 20,000 files: hashing, reads, lstat/open/close) competed with the data path to tar -x (decryption, the
 * gate, the writes), which then waited for it; on its own thread it runs beside them. The main thread sends
 * batches of finished entries (hard links already resolved to their file) and gets the differences back.
 */
import { startWorker } from '../core/workers.ts';
import type { IndexEntry } from './file-index.ts';
import { resolveHardlink } from './entry-diff.ts';
import type { RereadReply } from './reread-entry.ts';

/** a batch goes to the worker at this many entries or bytes of files (a message costs tens of µs: 20,000
 *  files one by one would cost ~1 s; a batch of large files must not hold the re-read back) */
const BATCH_ENTRIES = 64;
const BATCH_BYTES = 4 << 20;

export interface Rereader {
  /** the extractor has started entry number `n` (0-based, in archive order): everything before it is done */
  started(n: number): void;
  /** the gate let `path` through, in archive order */
  entry(path: string): void;
  /** after the extractor exited: re-reads what is left (directories, the last entry, anything not seen) */
  finish(): Promise<{ diffs: string[]; entries: number }>;
  /** stops the worker (after finish(), or instead of it when the extraction failed) */
  close(): Promise<void>;
}


export function rereader(volume: string, root: string, index: ReadonlyMap<string, IndexEntry>): Rereader {
  const worker = startWorker(new URL('./reread-worker.ts', import.meta.url), { volume, root });
  const reply = new Promise<RereadReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`volume ${volume}: the re-read's worker thread exited (code ${code}) before it answered`)));
  });
  reply.catch(() => {}); // read by finish(); a worker that dies early must not be an unhandled rejection
  const order: string[] = [];
  const sent = new Set<string>();
  const diffs: string[] = [];
  let next = 0; // next entry of order to look at
  let batch: IndexEntry[] = [];
  let bytes = 0;
  const send = (last: boolean) => {
    if (batch.length || last) worker.postMessage({ entries: batch, last });
    batch = [];
    bytes = 0;
  };
  const add = (path: string) => {
    sent.add(path);
    const want = index.get(path);
    if (want) {
      const w = resolveHardlink(want, index);
      batch.push(w);
      bytes += w.size;
    } else if (diffs.length < 50) diffs.push(`${volume}:${path}: not in the index`);
  };
  return {
    entry: (path) => { order.push(path); },
    started(n) {
      // only regular files while tar runs: it sets directory modes, and creates symlinks with ".." (as
      // placeholders first), at its end
      for (const ready = Math.min(n, order.length); next < ready; next++) {
        const path = order[next]!;
        if (!sent.has(path) && index.get(path)?.type === 'file') add(path);
      }
      if (batch.length >= BATCH_ENTRIES || bytes >= BATCH_BYTES) send(false);
    },
    async finish() {
      // directories (modes applied by tar at its end), the last entries, and every index entry the archive
      // did not bring
      for (const path of order) if (!sent.has(path)) add(path);
      for (const path of index.keys()) if (!sent.has(path)) add(path);
      send(true);
      const r = await reply;
      if ('error' in r) throw Object.assign(new Error(r.error), r.code ? { code: r.code } : {});
      return { diffs: [...diffs, ...r.diffs].slice(0, 50), entries: sent.size };
    },
    async close() {
      await worker.terminate();
    },
  };
}
