/**
 * Reading a part back: stored bytes → SHA-256 of what is stored → age → decompress → SHA-256 of the
 * plaintext → a consumer. Both hashes and sizes are compared with the manifest. For volume parts the
 * consumer is a tar checker: every entry is sanitised (src/tar/sanitize.ts) and compared with the per-file index.
 * Used before a restore writes anything, by the restore's post-write check, and by `dr verify --level read`.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { PassThrough, Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream } from './age/index.ts';
import { HashTap, decompressor, coalesce } from './write.ts';
import { tarEntries, type IndexEntry } from '../tar/file-index.ts';
import type { TarHeader } from '../tar/scan.ts';
import { entryProblem } from '../tar/sanitize.ts';
import { entryDiff, resolveHardlink } from '../tar/entry-diff.ts';
import type { Manifest, PartRecord } from '../repo/manifest.ts';
import type { Storage } from '../storage/types.ts';
import { CheckError, DrError, errorMessage } from '../core/errors.ts';

export function nullSink(): Writable {
  return new Writable({ highWaterMark: 1 << 20, write(_c, _e, cb) { cb(); } });
}

/** The stored bytes read (`got`) against the manifest's record: a CheckError naming the part when they differ. */
function checkStored(got: { size: number; sha256: string }, part: PartRecord): void {
  if (got.size !== part.stored.size || got.sha256 !== part.stored.sha256) {
    throw new CheckError(`part ${part.key} is corrupted: stored SHA-256 ${got.sha256.slice(0, 16)}… (${got.size} bytes) differs from the manifest's ${part.stored.sha256.slice(0, 16)}… (${part.stored.size} bytes)`);
  }
}

/** A part whose read or decryption failed after `read` stored bytes. */
function unreadablePart(part: PartRecord, read: number, err: unknown): CheckError {
  return new CheckError(`part ${part.key} is corrupted or unreadable (${read} of ${part.stored.size} stored bytes read): ${errorMessage(err)}`);
}

/** The plaintext of a part as a stream (no hash checks: see readPart for the checked form). */
export async function openPart(storage: Storage, m: Manifest, part: PartRecord, identities: string[]): Promise<{ stream: Readable; stored: HashTap; plain: HashTap; done: Promise<void> }> {
  const raw = await storage.get(`${m.id}/${part.key}`);
  const stored = new HashTap();
  const plain = new HashTap(undefined, part.plain.sha256 !== null); // a volume part: its files' hashes are in the index
  const dec = createDecryptStream(identities);
  const unz = decompressor(part.compression);
  const done = pipeline(raw, stored, dec, coalesce(), unz, plain);
  done.catch(() => {});
  return { stream: plain, stored, plain, done };
}

/**
 * The plaintext of a part for the restore's write pass, read once: the stored bytes are hashed on their way
 * to the decryptor, and `checked` settles once they are all read — rejecting with a CheckError naming the
 * part when their size or SHA-256 differs from the signed manifest, or when the part cannot be read or
 * decrypted (a flipped bit fails age's authentication of its chunk, a truncation its final chunk). The
 * restore awaits `checked` before it counts the volume written, and treats a failure of the stream that
 * is not its own (DrError) as the part's. The plaintext is not hashed: a volume's index holds every file's
 * SHA-256, and what gets written is re-read and compared with it.
 */
export async function openPlain(storage: Storage, m: Manifest, part: PartRecord, identities: string[]): Promise<{ stream: Readable; checked: Promise<void> }> {
  // a part that vanished since the check before writing is a failure while writing (exit 1), not a bad backup
  const raw = await storage.get(`${m.id}/${part.key}`).catch((err: unknown) => {
    throw new DrError(`part ${part.key} is missing or unreadable on ${storage.kind} ${storage.location}: ${errorMessage(err)}`);
  });
  const stored = new HashTap();
  const unz = decompressor(part.compression);
  const checked = pipeline(raw, stored, createDecryptStream(identities), coalesce(), unz).then(() => checkStored(stored.digest(), part), (err: unknown) => {
    // torn down from downstream (the consumer failed or was interrupted): not the part's failure
    if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error).name === 'AbortError') throw err;
    throw unreadablePart(part, stored.size, err);
  });
  checked.catch(() => {}); // awaited by the restore
  return { stream: unz as unknown as Readable, checked };
}

/** The restore's single-read check before writing: the part is present with the stored size the signed manifest records (no byte is read). */
export async function statPart(storage: Storage, m: Manifest, part: PartRecord): Promise<void> {
  const st = await storage.stat(`${m.id}/${part.key}`).catch((err: unknown) => {
    throw new CheckError(`part ${part.key} is missing or unreadable on ${storage.kind} ${storage.location}: ${errorMessage(err)}`);
  });
  if (!st) throw new CheckError(`part ${part.key} is missing from ${storage.kind} ${storage.location}`);
  if (st.size !== part.stored.size) throw new CheckError(`part ${part.key} is corrupted: ${st.size} bytes stored, the manifest says ${part.stored.size}`);
}

/**
 * The restore's check before anything is written: the part is present, its stored bytes have the size and
 * SHA-256 the signed manifest records (so every byte is the one the backup wrote: a flipped bit or a
 * truncation is caught here), and one of the identities opens its age header. The payload is not decrypted.
 */
export async function precheckPart(storage: Storage, m: Manifest, part: PartRecord, identities: string[], cancelled: () => boolean = () => false): Promise<void> {
  const key = `${m.id}/${part.key}`;
  const unreadable = (err: unknown) => new CheckError(`part ${part.key} is missing or unreadable on ${storage.kind} ${storage.location}: ${errorMessage(err)}`);
  /** one of the identities opens the age header at the start of `source` (read through `tap`) */
  const openHeader = (source: Readable, tap: Transform = new PassThrough()) => pipeline(source, tap, createDecryptStream(identities, { headerOnly: true }), nullSink())
    .catch((err: unknown) => { throw new CheckError(`part ${part.key}: ${errorMessage(err)}`); });
  let got: { size: number; sha256: string };
  const path = await (async () => storage.localPath?.(key) ?? null)().catch((err: unknown) => { throw unreadable(err); });
  if (path) {
    const file = await hashLocalFile(path, cancelled).catch((err: unknown) => { throw unreadable(err); });
    await openHeader(Readable.from([file.head]));
    got = file;
  } else {
    const raw = await storage.get(key).catch((err: unknown) => { throw unreadable(err); });
    const stored = new HashTap();
    await openHeader(raw, stored);
    got = stored.digest();
  }
  checkStored(got, part);
}

/**
 * Size and SHA-256 of a local file, and its first MiB (where the age header is); it stops when
 * `cancelled()`. Double-buffered: the next MiB is read on the thread pool while this one is hashed on the
 * main thread, into two buffers reused throughout (no garbage to collect: restore mode runs a minor GC every
 * few MiB). The 630 MB benchmark part: the read (a copy from the page cache, ~0.4 s) and the hash (~0.45 s)
 * had run one after the other; now the read hides behind the hash. (src/tar/file-hash.ts hashes synchronously:
 * the re-read worker's many small files, where a thread-pool round trip per read costs more than the read.)
 */
async function hashLocalFile(path: string, cancelled: () => boolean): Promise<{ size: number; sha256: string; head: Buffer }> {
  const fh = await open(path, 'r');
  try {
    const bufs = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)] as const;
    const h = createHash('sha256');
    let size = 0;
    let head = Buffer.alloc(0);
    let next = fh.read(bufs[0], 0, bufs[0].length, 0);
    for (let i = 0; ; i++) {
      const { bytesRead: n } = await next;
      if (!n) return { size, sha256: h.digest('hex'), head };
      if (cancelled()) throw new Error('check cancelled');
      const cur = bufs[i % 2]!;
      size += n;
      next = fh.read(bufs[(i + 1) % 2]!, 0, cur.length, size);
      if (i === 0) head = Buffer.from(cur.subarray(0, n));
      h.update(cur.subarray(0, n));
    }
  } finally {
    await fh.close();
  }
}

const SANITIZE_TYPES: Record<IndexEntry['type'], string> = {
  file: 'file', dir: 'directory', symlink: 'symlink', hardlink: 'link', chardev: 'character-device', blockdev: 'block-device', fifo: 'fifo',
};

/** The first entry of an index that a restore must refuse (src/tar/sanitize.ts), as a CheckError, or null. */
export function indexProblem(volume: string, index: ReadonlyMap<string, IndexEntry>): CheckError | null {
  for (const e of index.values()) {
    const problem = entryProblem({ name: e.path === '.' ? './' : e.path.startsWith('/') ? e.path : `./${e.path}`, type: SANITIZE_TYPES[e.type] ?? e.type, linkname: e.linkname ?? null });
    if (problem) return new CheckError(`volume ${volume}: refusing the archive: ${problem}`);
  }
  return null;
}

/** Reads the whole part into `consumer`, checking stored and plaintext size and SHA-256 against the manifest. */
export async function readPart(storage: Storage, m: Manifest, part: PartRecord, identities: string[], consumer: Writable = nullSink()): Promise<void> {
  const p = await openPart(storage, m, part, identities).catch((err: unknown) => {
    throw new CheckError(`part ${part.key} is missing or unreadable on ${storage.kind} ${storage.location}: ${errorMessage(err)}`);
  });
  try {
    await Promise.all([p.done, pipeline(p.stream, consumer)]);
  } catch (err) {
    const s = p.stored.size;
    const got = p.stored.digest();
    if (s !== part.stored.size || got.sha256 !== part.stored.sha256) {
      throw new CheckError(`part ${part.key} is corrupted: stored ${s} bytes, SHA-256 ${got.sha256.slice(0, 16)}…, the manifest says ${part.stored.size} bytes, ${part.stored.sha256.slice(0, 16)}… (${errorMessage(err)})`);
    }
    throw new CheckError(`part ${part.key}: ${errorMessage(err)}`);
  }
  compareDigests(p, part);
}

/**
 * The single read of a part a consumer has just taken in full (openPart): awaits its end and checks its
 * stored and plaintext size and SHA-256 against the manifest; a CheckError naming the part otherwise.
 * A restore's database replay reads each dump part once this way.
 */
export async function checkOpened(p: { stored: HashTap; plain: HashTap; done: Promise<void> }, part: PartRecord): Promise<void> {
  try {
    await p.done;
  } catch (err) {
    throw unreadablePart(part, p.stored.size, err);
  }
  compareDigests(p, part);
}

function compareDigests(p: { stored: HashTap; plain: HashTap }, part: PartRecord): void {
  checkStored(p.stored.digest(), part);
  const plain = p.plain.digest();
  if (plain.size !== part.plain.size) throw new CheckError(`part ${part.key}: its content differs from the manifest (${plain.size} bytes of plaintext, expected ${part.plain.size})`);
  if (part.plain.sha256 !== null && plain.sha256 !== part.plain.sha256) {
    throw new CheckError(`part ${part.key}: its content differs from the manifest (plaintext SHA-256 ${plain.sha256.slice(0, 16)}…, expected ${part.plain.sha256.slice(0, 16)}…)`);
  }
}

/** Quick check: every part present with the recorded stored size (and, with `hash`, SHA-256). */
export async function checkStoredPart(storage: Storage, m: Manifest, part: PartRecord, hash: boolean): Promise<void> {
  const st = await storage.stat(`${m.id}/${part.key}`);
  if (!st) throw new CheckError(`part ${part.key} is missing from ${storage.kind} ${storage.location}`);
  if (st.size !== part.stored.size) throw new CheckError(`part ${part.key} has ${st.size} bytes, the manifest says ${part.stored.size}`);
  if (!hash) return;
  const h = createHash('sha256');
  for await (const c of await storage.get(`${m.id}/${part.key}`)) h.update(c as Buffer);
  const got = h.digest('hex');
  if (got !== part.stored.sha256) throw new CheckError(`part ${part.key} is corrupted: SHA-256 ${got.slice(0, 16)}… differs from the manifest's ${part.stored.sha256.slice(0, 16)}…`);
}

/** Reads an index part into a map path → entry. */
export async function loadIndex(storage: Storage, m: Manifest, part: PartRecord, identities: string[]): Promise<Map<string, IndexEntry>> {
  const map = new Map<string, IndexEntry>();
  // line by line out of the buffers: no string of a whole chunk (an 80,000-entry index would otherwise grow
  // the heap by tens of MB for strings that live a moment)
  let rest: Buffer | null = null;
  const add = (b: Buffer, from: number, to: number) => {
    if (to > from) { const e = JSON.parse(b.toString('utf8', from, to)) as IndexEntry; map.set(e.path, e); }
  };
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      try {
        let from = 0;
        for (let nl = c.indexOf(10); nl !== -1; nl = c.indexOf(10, from)) {
          if (rest) { const line = Buffer.concat([rest, c.subarray(0, nl)]); rest = null; add(line, 0, line.length); } else add(c, from, nl);
          from = nl + 1;
        }
        if (from < c.length) rest = rest ? Buffer.concat([rest, c.subarray(from)]) : Buffer.from(c.subarray(from));
        cb();
      } catch (err) { cb(err as Error); }
    },
    final(cb) { try { if (rest) add(rest, 0, rest.length); cb(); } catch (err) { cb(err as Error); } },
  });
  await readPart(storage, m, part, identities, sink);
  return map;
}


/**
 * A writable tar checker: sanitises every entry (first problem → error naming the entry) and compares
 * it with `index`. Differences are collected in `diffs` (capped); entries missing from either side too.
 * Hard links are compared through their target's content.
 */
export function tarChecker(volume: string, index: Map<string, IndexEntry> | null, sanitize = true): { sink: Writable; diffs: string[]; entries(): number } {
  const diffs: string[] = [];
  const seen = new Set<string>();
  const files = new Map<string, { size: number; sha256: string }>();
  let n = 0;
  const note = (d: string) => { if (diffs.length < 50) diffs.push(d); };
  const check = (h: TarHeader) => {
    if (!sanitize) return;
    const problem = h.type ? entryProblem({ name: h.name, type: h.type, linkname: h.linkname }) : `entry ${JSON.stringify(h.name)} has unsupported type ${JSON.stringify(h.flag)}`;
    if (problem) throw new CheckError(`volume ${volume}: refusing the archive: ${problem}`);
  };
  const scanner = tarEntries(`volume ${volume}`, (e) => {
    n++;
    let got = { ...e, mtime: 0 };
    if (got.type === 'hardlink' && got.linkname && files.has(got.linkname)) got = { ...got, type: 'file', ...files.get(got.linkname)! };
    if (e.type === 'file') files.set(e.path, { size: e.size, sha256: e.sha256! });
    seen.add(e.path);
    if (index) {
      const want = index.get(e.path);
      if (!want) note(`${volume}:${e.path}: not in the index`);
      else {
        const d = entryDiff(resolveHardlink(want, index), got);
        if (d) note(`${volume}:${e.path}: ${d}`);
      }
    }
  }, check);
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb) {
      try { scanner.scan(chunk); cb(); } catch (err) { cb(err as Error); }
    },
    final(cb) {
      try { scanner.finish(); } catch (err) { return cb(err as Error); }
      if (index) for (const p of index.keys()) if (!seen.has(p)) note(`${volume}:${p}: missing`);
      cb();
    },
  });
  return { sink, diffs, entries: () => n };
}
