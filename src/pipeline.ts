/**
 * One part's journey: source → [plaintext SHA-256 + size, optional side tap] → compress → age → [stored
 * SHA-256 + size] → destination. Streams all the way: memory stays constant whatever the part's size.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable, type Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { constants as zc, createGzip, createZstdCompress, createGunzip, createZstdDecompress } from 'node:zlib';
import { createEncryptStream } from './age.ts';
import type { Compression, PartKind, PartRecord } from './manifest.ts';
import type { Storage } from './storage/types.ts';

/** Counts and hashes what passes through; optionally copies it to `side` (awaiting its backpressure). */
export class HashTap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  private readonly side: Writable | undefined;
  constructor(side?: Writable) {
    super({ highWaterMark: 1 << 20 });
    this.side = side;
    side?.on('error', (e) => this.destroy(e));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.side && !this.side.write(chunk)) {
      once(this.side, 'drain').then(() => cb(null, chunk), cb);
    } else cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.side) return cb();
    this.side.end();
    // the side consumer (e.g. the index builder) must finish before this part counts as done
    if (this.side.writableFinished) return cb();
    once(this.side, 'finish').then(() => cb(), cb);
  }
  digest(): { size: number; sha256: string } {
    return { size: this.size, sha256: this.hash.digest('hex') };
  }
}

export const EXT: Record<Compression, string> = { zstd: '.zst', gzip: '.gz', none: '' };

export function compressor(c: Compression, zstdLevel: number): Transform {
  if (c === 'zstd') return createZstdCompress({ params: { [zc.ZSTD_c_compressionLevel]: zstdLevel, [zc.ZSTD_c_checksumFlag]: 1 } });
  if (c === 'gzip') return createGzip({ level: 1 });
  return new PassThrough();
}

export function decompressor(c: Compression): Transform {
  if (c === 'zstd') return createZstdDecompress();
  if (c === 'gzip') return createGunzip();
  return new PassThrough();
}

export interface PartOptions {
  compression: Compression;
  zstdLevel: number;
  recipients: string[];
  signal?: AbortSignal;
}

/** Streams `source` into `storage` under `prefix/key` and returns the part's record. */
export async function storePart(
  storage: Storage, prefix: string, key: string, kind: PartKind, sourceName: string,
  source: Readable, opts: PartOptions, side?: Writable,
): Promise<PartRecord> {
  const plain = new HashTap(side);
  const stored = new HashTap();
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  const encode = pipeline(source, plain, compressor(opts.compression, opts.zstdLevel), createEncryptStream(opts.recipients), stored, body,
    ...(opts.signal ? [{ signal: opts.signal }] as const : []));
  const put = storage.put(`${prefix}/${key}`, body);
  try {
    await Promise.all([encode, put]);
  } catch (err) {
    source.destroy();
    body.destroy();
    await Promise.allSettled([encode, put]);
    throw err;
  }
  return { key, kind, source: sourceName, compression: opts.compression, stored: stored.digest(), plain: plain.digest() };
}
