/**
 * A hash worker thread (src/codec/hashers.ts): for one part at a time, the plaintext's size and SHA-256 (not
 * for a volume: its index hashes every file) and, for a volume, its per-file index (src/tar/file-index.ts), from 1 MiB slots of a shared ring the main thread fills.
 * Every slot is acknowledged (with the index lines it completed) as soon as it is hashed, so the main thread
 * can reuse it. After an error the worker answers nothing more for that part.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';
import { indexLine, tarEntries } from '../tar/file-index.ts';
import type { TarScanner } from '../tar/scan.ts';

export type ToWorker = { t: 'begin'; index: string | null; plainHash: boolean } | { t: 'chunk'; slot: number; len: number } | { t: 'end' };
export type FromWorker =
  | { t: 'ack'; slot: number; lines: string }
  | { t: 'done'; size: number; sha256: string | null; files: number; lines: string }
  | { t: 'error'; message: string };

const { sab, slotSize } = workerData as { sab: SharedArrayBuffer; slotSize: number };
const port = parentPort!;
let job: { hash: Hash | null; size: number; scanner: TarScanner | null; lines: string; files: number } | null = null;

port.on('message', (m: ToWorker) => {
  try {
    if (m.t === 'begin') {
      const j = { hash: m.plainHash ? createHash('sha256') : null, size: 0, scanner: null as TarScanner | null, lines: '', files: 0 };
      // `index` names the volume in the scanner's errors ("volume v2_glpi_files: …")
      if (m.index !== null) j.scanner = tarEntries(m.index, (e) => { j.files++; j.lines += indexLine(e); });
      job = j;
      return;
    }
    if (!job) return; // the part failed: nothing more is answered for it
    if (m.t === 'chunk') {
      const piece = Buffer.from(sab, m.slot * slotSize, m.len);
      job.hash?.update(piece);
      job.size += m.len;
      job.scanner?.scan(piece);
      const lines = job.lines;
      job.lines = '';
      port.postMessage({ t: 'ack', slot: m.slot, lines } satisfies FromWorker);
    } else {
      job.scanner?.finish();
      const { hash, size, files, lines } = job;
      job = null;
      port.postMessage({ t: 'done', size, sha256: hash ? hash.digest('hex') : null, files, lines } satisfies FromWorker);
    }
  } catch (err) {
    job = null;
    port.postMessage({ t: 'error', message: err instanceof Error ? err.message : String(err) } satisfies FromWorker);
  }
});
