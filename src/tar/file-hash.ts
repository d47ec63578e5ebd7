/**
 * Synchronous reads of local files into one reused 1 MiB buffer: no buffer per read, no garbage to collect.
 * For the restore's re-read (on its worker thread): the files sit in the page cache, and a thread-pool
 * round trip per read costs more than the read.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';

const buf = Buffer.allocUnsafe(1 << 20);

/** The next bytes of `fd` (empty at its end): a view of the shared buffer, valid until the next read. */
function readChunk(fd: number): Buffer {
  return buf.subarray(0, readSync(fd, buf, 0, buf.length, null));
}

/** SHA-256 of a file, read in one go (20,000 small files stay cheap). */
export function sha256OfFile(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    for (let c = readChunk(fd); c.length; c = readChunk(fd)) h.update(c);
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
