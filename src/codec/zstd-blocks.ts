/**
 * Block-parallel zstd: every block (≤ ~1 MiB, as coalesce() or the hash ring's slots cut it) becomes one
 * independent zstd frame, compressed with the async `zlib.zstdCompress` on the libuv thread pool, several
 * at once; the frames leave in input order. Concatenated frames are one valid zstd stream (`zstd -d`,
 * node's zstd decompressor), so stock tools still open every part (docs/FORMAT.md).
 *
 * Why not one stream: a zstd stream compresses on one thread (node's multithreaded zstd, ZSTD_c_nbWorkers,
 * crashed here: nodejs/node #59899), and it was the backup's slowest stage. Independent 1 MiB frames at
 * level 1 (whose window is 512 KiB anyway) cost well under 1 % of ratio on the benchmark's data.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { zstdCompress, constants as zc } from 'node:zlib';
import { flowed } from '../core/memory.ts';

/** frames compressing at once through the transform's own writes (the pool has 4 threads; fs needs some) */
export const ZSTD_DEPTH = 3;

interface Job { out: Buffer | null; err: Error | null; free: (() => void) | undefined }

export class ZstdBlocks extends Transform {
  private readonly opts: { chunkSize: number; params: Record<number, number> };
  private readonly jobs: Job[] = [];
  private pending: TransformCallback | null = null;
  private flushed: TransformCallback | null = null;
  private any = false;

  constructor(level: number) {
    super({ highWaterMark: 1 << 20 });
    // one output buffer per frame (the default 16 KiB would cost a thread-pool round trip per 16 KiB)
    this.opts = { chunkSize: (1 << 21) + (1 << 16), params: { [zc.ZSTD_c_compressionLevel]: level, [zc.ZSTD_c_checksumFlag]: 1 } };
  }

  /**
   * Compresses `buf` as one frame, queued behind the frames before it; `free` runs as soon as zstd is done
   * reading `buf` (the caller may reuse its memory from then on). Not bounded here: the caller bounds it
   * (the hash ring has a fixed number of slots).
   */
  block(buf: Buffer, free?: () => void): void {
    this.any = true;
    const job: Job = { out: null, err: null, free };
    this.jobs.push(job);
    zstdCompress(buf, this.opts, (err, out) => {
      if (err) job.err = err; else job.out = out;
      job.free?.();
      job.free = undefined;
      this.pump();
    });
  }

  private pump(): void {
    while (this.jobs.length && (this.jobs[0]!.out || this.jobs[0]!.err)) {
      const j = this.jobs.shift()!;
      if (j.err) { this.destroy(j.err); return; }
      this.push(j.out);
    }
    if (this.pending && this.jobs.length < ZSTD_DEPTH) { const cb = this.pending; this.pending = null; cb(); }
    if (this.flushed && !this.jobs.length) { const cb = this.flushed; this.flushed = null; cb(); }
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    flowed(chunk.length);
    this.block(chunk);
    if (this.jobs.length < ZSTD_DEPTH) cb(); else this.pending = cb;
  }

  override _flush(cb: TransformCallback): void {
    if (!this.any) this.block(Buffer.alloc(0)); // an empty source is still one (empty) frame: zstd -d opens it
    this.flushed = cb;
    this.pump();
  }
}
