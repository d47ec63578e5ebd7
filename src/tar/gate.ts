/**
 * The restore's gate: a pass-through Transform over a tar stream that reads every header as it goes by
 * (src/tar/scan.ts) and lets the bytes through only while each entry is safe (src/tar/sanitize.ts) and is exactly
 * an entry of the volume's index (same path, type, size, link target). A chunk holding a refused header is
 * never forwarded, so the extractor behind the gate never sees that entry. Content is not hashed here: the
 * restore re-reads what was written and compares every file's SHA-256 with the index afterwards.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { entryProblem } from './sanitize.ts';
import { normalizeEntryName, INDEX_TYPE_OF, type IndexEntry } from './file-index.ts';
import { CheckError } from '../core/errors.ts';
import { TarScanner, type TarHeader } from './scan.ts';

export interface Gate { stream: Transform; entries(): number }

export function tarGate(volume: string, index: ReadonlyMap<string, IndexEntry>, onEntry?: (path: string) => void): Gate {
  let n = 0;
  const refuse = (what: string) => new CheckError(`volume ${volume}: refusing the archive: ${what}`);
  const header = (h: TarHeader) => {
    const rawName = h.name;
    if (!h.type) throw refuse(`entry ${JSON.stringify(rawName)} has unsupported type ${JSON.stringify(h.flag)}`);
    const problem = entryProblem({ name: rawName, type: h.type, linkname: h.linkname });
    if (problem) throw refuse(problem);
    const path = normalizeEntryName(rawName);
    const want = index.get(path);
    if (!want) throw refuse(`entry ${JSON.stringify(rawName)} is not in the volume's index`);
    const itype = INDEX_TYPE_OF[h.type]!;
    if (want.type !== itype) throw refuse(`entry ${JSON.stringify(rawName)} is a ${itype}, the index says ${want.type}`);
    if (itype === 'file' && want.size !== h.size) throw refuse(`entry ${JSON.stringify(rawName)} claims ${h.size} bytes, the index says ${want.size}`);
    if (itype !== 'file' && h.size !== 0) throw refuse(`entry ${JSON.stringify(rawName)} (${itype}) carries ${h.size} bytes of data`);
    if (itype === 'symlink' && want.linkname !== h.linkname) throw refuse(`symlink ${JSON.stringify(rawName)} -> ${JSON.stringify(h.linkname)} differs from the index`);
    if (itype === 'hardlink' && want.linkname !== normalizeEntryName(h.linkname)) throw refuse(`hard link ${JSON.stringify(rawName)} -> ${JSON.stringify(h.linkname)} differs from the index`);
    n++;
    onEntry?.(path);
  };
  const scanner = new TarScanner({ header }, refuse);
  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      try {
        scanner.scan(chunk);
      } catch (err) {
        return cb(err as Error);
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      try { scanner.finish(); cb(); } catch (err) { cb(err as Error); }
    },
  });
  return { stream, entries: () => n };
}
