/**
 * A tar stream scanner: reads every header as the bytes go by (ustar, pax `x`/`g` records, GNU long names
 * `L`/`K`), hands each entry's content to a callback as sub-arrays of the chunks it was given (no copies, no
 * per-entry streams), and never holds more than one header block and one metadata record. Zero blocks are
 * skipped, as `tar --ignore-zeros` does. Pure and synchronous: the backup's index builder, the restore's
 * gate and the tar checker are built on it. src/db keeps tar-stream for the one-file archives of Docker's
 * archive API, where it needs what this scanner does not do: an entry as a Readable, and writing a tar.
 */

const BLOCK = 512;
const META_MAX = 1 << 20;

/** tar typeflag → the names tar-stream and src/tar/sanitize.ts use; anything else is null */
const TYPEFLAGS: Record<string, string> = {
  '0': 'file', '\0': 'file', '7': 'contiguous-file', '1': 'link', '2': 'symlink', '3': 'character-device',
  '4': 'block-device', '5': 'directory', '6': 'fifo',
};

export interface TarHeader {
  /** the entry's name as stored (pax path, GNU long name, or ustar prefix/name) */
  name: string;
  /** the typeflag character */
  flag: string;
  /** tar-stream's name for the type ('file', 'directory', 'link', …), null for types this tool does not know */
  type: string | null;
  linkname: string;
  /** content bytes that follow (pax size when present) */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** seconds */
  mtime: number;
  /** offset of the header block in the stream */
  at: number;
}

export interface ScanHandlers {
  header(h: TarHeader): void;
  /** a piece of the current entry's content (a view into the scanned chunk: copy it to keep it) */
  content?(piece: Buffer): void;
  /** the current entry's content is complete */
  end?(): void;
}

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

function allZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
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

const POSIX_MAGIC = Buffer.from('ustar\0', 'latin1');

export class TarScanner {
  private readonly header = Buffer.alloc(BLOCK);
  private fill = 0; // bytes of the current header block collected
  private content = 0; // content bytes of the current entry still to come
  private pad = 0; // padding bytes after the content (or after a metadata record)
  private meta: { kind: string; parts: Buffer[] } | null = null;
  private pax = new Map<string, string>();
  private globalPax = new Map<string, string>();
  private longName: string | null = null;
  private longLink: string | null = null;
  private offset = 0;
  private readonly h: ScanHandlers;
  private readonly refuse: (what: string) => Error;

  /** `refuse(what)` makes the error thrown for malformed input ("bytes at offset 512 are not a valid tar header") */
  constructor(handlers: ScanHandlers, refuse: (what: string) => Error) {
    this.h = handlers;
    this.refuse = refuse;
  }

  /** Scans `chunk`; throws (from a handler, or `refuse`) and stays unusable after a throw. */
  scan(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.content > 0) {
        const k = Math.min(this.content, len - off);
        // a copy: the chunk's memory may be reused once scan() returns (the hash worker's ring, src/codec/hashers.ts)
        if (this.meta) this.meta.parts.push(Buffer.from(chunk.subarray(off, off + k)));
        else this.h.content?.(chunk.subarray(off, off + k));
        this.content -= k;
        off += k;
        if (this.content === 0) this.contentDone();
      } else if (this.pad > 0) {
        const k = Math.min(this.pad, len - off);
        this.pad -= k;
        off += k;
      } else {
        const k = Math.min(BLOCK - this.fill, len - off);
        chunk.copy(this.header, this.fill, off, off + k);
        this.fill += k;
        off += k;
        if (this.fill === BLOCK) {
          this.fill = 0;
          this.onHeader(this.offset + off - BLOCK);
        }
      }
    }
    this.offset += len;
  }

  /** The stream ended: throws when it ended inside an entry. */
  finish(): void {
    if (this.content > 0 || this.pad > 0 || this.meta || this.fill > 0) throw this.refuse(`the archive ends in the middle of an entry (after ${this.offset} bytes)`);
  }

  private contentDone(): void {
    if (this.meta) this.onMeta();
    else this.h.end?.();
  }

  private onHeader(at: number): void {
    const b = this.header;
    if (allZero(b)) return;
    if (!checksumOk(b)) throw this.refuse(`bytes at offset ${at} are not a valid tar header`);
    const flag = String.fromCharCode(b[156]!);
    const size = num(b, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_MAX) throw this.refuse(`a ${flag} metadata record of ${size} bytes`);
      this.meta = { kind: flag, parts: [] };
      this.content = size;
      this.pad = padded - size;
      if (size === 0) this.onMeta();
      return;
    }
    const pax = this.pax;
    const g = this.globalPax;
    const prefix = b.compare(POSIX_MAGIC, 0, 6, 257, 263) === 0 ? cstr(b, 345, 155) : '';
    const name = pax.get('path') ?? g.get('path') ?? this.longName ?? (prefix ? `${prefix}/${cstr(b, 0, 100)}` : cstr(b, 0, 100));
    const linkname = pax.get('linkpath') ?? this.longLink ?? cstr(b, 157, 100);
    const paxNum = (k: string, dflt: number) => { const v = pax.get(k) ?? g.get(k); return v !== undefined && /^\d+$/.test(v) ? Number(v) : dflt; };
    const realSize = paxNum('size', size);
    const h: TarHeader = {
      name, flag, type: TYPEFLAGS[flag] ?? null, linkname, size: realSize,
      mode: num(b, 100, 8), uid: paxNum('uid', num(b, 108, 8)), gid: paxNum('gid', num(b, 116, 8)), mtime: num(b, 136, 12), at,
    };
    if (pax.size) this.pax = new Map();
    this.longName = null;
    this.longLink = null;
    this.h.header(h);
    this.content = realSize;
    this.pad = Math.ceil(realSize / BLOCK) * BLOCK - realSize;
    if (realSize === 0) this.h.end?.();
  }

  private onMeta(): void {
    const m = this.meta!;
    this.meta = null;
    const buf = Buffer.concat(m.parts);
    if (m.kind === 'L') this.longName = cstr(buf, 0, buf.length);
    else if (m.kind === 'K') this.longLink = cstr(buf, 0, buf.length);
    else {
      let recs: Map<string, string>;
      try { recs = paxRecords(buf); } catch { throw this.refuse(`a malformed pax header at offset ${this.offset}`); }
      if (m.kind === 'x') this.pax = recs;
      else this.globalPax = recs;
    }
  }
}
