/**
 * The restore's gate: a pass-through Transform over a tar stream that reads every header as it goes by
 * (ustar, pax `x`/`g` records, GNU long names) and lets the bytes through only while each entry is safe
 * (src/sanitize.ts) and is exactly an entry of the volume's index (same path, type, size, link target).
 * A chunk holding a refused header is never forwarded, so the extractor behind the gate never sees that
 * entry. Content is not hashed here: the restore re-reads what was written and compares every file's
 * SHA-256 with the index afterwards. Zero blocks are skipped (as `tar --ignore-zeros` does).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { entryProblem } from './sanitize.ts';
import { normalizeEntryName, INDEX_TYPE_OF, type IndexEntry } from './archive.ts';
import { CheckError } from './check.ts';

const BLOCK = 512;
const META_MAX = 1 << 20;

/** tar typeflag → the names tar-stream (and src/sanitize.ts) use */
const TYPEFLAGS: Record<string, string> = {
  '0': 'file', '\0': 'file', '7': 'contiguous-file', '1': 'link', '2': 'symlink', '3': 'character-device',
  '4': 'block-device', '5': 'directory', '6': 'fifo',
};

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/** A numeric header field: octal text, or base-256 when the high bit of the first byte is set. */
function num(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(b: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === num(b, 148, 8);
}

/** pax records: "LEN key=value\n"… */
function paxRecords(buf: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp === -1) break;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!(len > 0) || off + len > buf.length) throw new Error('malformed pax record');
    const rec = buf.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

export interface Gate { stream: Transform; entries(): number }

export function tarGate(volume: string, index: ReadonlyMap<string, IndexEntry>, onEntry?: (path: string) => void): Gate {
  const header = Buffer.alloc(BLOCK);
  let fill = 0; // bytes of the current header block collected
  let skip = 0; // content bytes (incl. padding) still to pass
  let meta: { kind: string; size: number; parts: Buffer[]; got: number; pad: number } | null = null;
  let pax = new Map<string, string>();
  let globalPax = new Map<string, string>();
  let longName: string | null = null;
  let longLink: string | null = null;
  let offset = 0;
  let n = 0;
  const refuse = (what: string) => new CheckError(`volume ${volume}: refusing the archive: ${what}`);

  function onHeader(at: number): void {
    if (header.every((x) => x === 0)) return;
    if (!checksumOk(header)) throw refuse(`bytes at offset ${at} are not a valid tar header`);
    const flag = String.fromCharCode(header[156]!);
    const size = num(header, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_MAX) throw refuse(`a ${flag} metadata record of ${size} bytes`);
      meta = { kind: flag, size, parts: [], got: 0, pad: padded - size };
      if (size === 0) onMeta();
      return;
    }
    const type = TYPEFLAGS[flag];
    const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar') ? cstr(header, 345, 155) : '';
    const rawName = pax.get('path') ?? globalPax.get('path') ?? longName ?? (prefix ? `${prefix}/${cstr(header, 0, 100)}` : cstr(header, 0, 100));
    const linkname = pax.get('linkpath') ?? longLink ?? cstr(header, 157, 100);
    const realSize = pax.has('size') ? Number(pax.get('size')) : size;
    pax = new Map();
    longName = null;
    longLink = null;
    if (!type) throw refuse(`entry ${JSON.stringify(rawName)} has unsupported type ${JSON.stringify(flag)}`);
    const problem = entryProblem({ name: rawName, type, linkname });
    if (problem) throw refuse(problem);
    const path = normalizeEntryName(rawName);
    const want = index.get(path);
    if (!want) throw refuse(`entry ${JSON.stringify(rawName)} is not in the volume's index`);
    const itype = INDEX_TYPE_OF[type]!;
    if (want.type !== itype) throw refuse(`entry ${JSON.stringify(rawName)} is a ${itype}, the index says ${want.type}`);
    if (itype === 'file' && want.size !== realSize) throw refuse(`entry ${JSON.stringify(rawName)} claims ${realSize} bytes, the index says ${want.size}`);
    if (itype !== 'file' && realSize !== 0) throw refuse(`entry ${JSON.stringify(rawName)} (${itype}) carries ${realSize} bytes of data`);
    if (itype === 'symlink' && want.linkname !== linkname) throw refuse(`symlink ${JSON.stringify(rawName)} -> ${JSON.stringify(linkname)} differs from the index`);
    if (itype === 'hardlink' && want.linkname !== normalizeEntryName(linkname)) throw refuse(`hard link ${JSON.stringify(rawName)} -> ${JSON.stringify(linkname)} differs from the index`);
    n++;
    onEntry?.(path);
    skip = Math.ceil(realSize / BLOCK) * BLOCK;
  }

  function onMeta(): void {
    const m = meta!;
    meta = null;
    const buf = Buffer.concat(m.parts);
    if (m.kind === 'L') longName = cstr(buf, 0, buf.length);
    else if (m.kind === 'K') longLink = cstr(buf, 0, buf.length);
    else {
      let recs: Map<string, string>;
      try { recs = paxRecords(buf); } catch { throw refuse(`a malformed pax header at offset ${offset}`); }
      if (m.kind === 'x') pax = recs;
      else globalPax = recs;
    }
  }

  function scan(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (skip > 0) {
        const k = Math.min(skip, chunk.length - off);
        skip -= k;
        off += k;
      } else if (meta) {
        if (meta.got < meta.size) {
          const k = Math.min(meta.size - meta.got, chunk.length - off);
          meta.parts.push(chunk.subarray(off, off + k));
          meta.got += k;
          off += k;
        } else if (meta.pad > 0) {
          const k = Math.min(meta.pad, chunk.length - off);
          meta.pad -= k;
          off += k;
        }
        if (meta.got === meta.size && meta.pad === 0) onMeta();
      } else {
        const k = Math.min(BLOCK - fill, chunk.length - off);
        chunk.copy(header, fill, off, off + k);
        fill += k;
        off += k;
        if (fill === BLOCK) {
          fill = 0;
          onHeader(offset + off - BLOCK);
        }
      }
    }
    offset += chunk.length;
  }

  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      try {
        scan(chunk);
      } catch (err) {
        return cb(err as Error);
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (skip > 0 || meta || fill > 0) return cb(refuse(`the archive ends in the middle of an entry (after ${offset} bytes)`));
      cb();
    },
  });
  return { stream, entries: () => n };
}
