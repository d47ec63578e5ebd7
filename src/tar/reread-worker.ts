/**
 * The re-read's worker thread (src/tar/reread.ts): re-reads the entries it is sent, in order, and answers the
 * last batch with the differences (capped), or with the first error (which stops it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { IndexEntry } from './file-index.ts';
import { rereadEntry, type RereadReply } from './reread-entry.ts';

const { volume, root } = workerData as { volume: string; root: string };
const diffs: string[] = [];
let failed: RereadReply | null = null;

parentPort!.on('message', (m: { entries: IndexEntry[]; last: boolean }) => {
  if (!failed) {
    try {
      for (const want of m.entries) {
        const d = rereadEntry(root, want);
        if (d && diffs.length < 50) diffs.push(`${volume}:${want.path}: ${d}`);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      failed = { error: e.message, ...(e.code ? { code: e.code } : {}) };
    }
  }
  if (m.last) parentPort!.postMessage(failed ?? { diffs });
});
