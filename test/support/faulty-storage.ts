/**
 * Fault injection as a wrapper around any Storage, for tests: failing operations, connection resets in the
 * middle of a download, slow operations, and bit flips on read. The optional capabilities are forwarded;
 * localPath only while no read fault is set, so a read cannot go round the faults of get().
 */
import { Transform, type Readable } from 'node:stream';
import type { ObjectInfo, Storage } from '../../src/storage/types.ts';

export interface Faults {
  /** the next N calls of these operations fail */
  failNext?: Partial<Record<'put' | 'get' | 'stat' | 'list' | 'deletePrefix', number>>;
  /** downloads are cut (error) after this many bytes */
  resetAfterBytes?: number;
  /** flips one bit at this byte offset of every download */
  flipBitAt?: number;
  /** delay before every operation */
  slowMs?: number;
}

export class FaultyStorage implements Storage {
  readonly kind: string;
  readonly location: string;
  readonly inner: Storage;
  readonly faults: Faults;
  calls: Record<string, number> = {};

  constructor(inner: Storage, faults: Faults) {
    this.inner = inner;
    this.kind = inner.kind;
    this.location = inner.location;
    this.faults = faults;
  }

  private async enter(op: keyof NonNullable<Faults['failNext']>): Promise<void> {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    if (this.faults.slowMs) await new Promise((r) => setTimeout(r, this.faults.slowMs));
    const left = this.faults.failNext?.[op] ?? 0;
    if (left > 0) {
      this.faults.failNext![op] = left - 1;
      throw Object.assign(new Error(`injected fault: ${op} failed (ECONNRESET)`), { code: 'ECONNRESET' });
    }
  }

  async put(key: string, body: Readable): Promise<{ size: number }> { await this.enter('put'); return this.inner.put(key, body); }
  async stat(key: string): Promise<ObjectInfo | null> { await this.enter('stat'); return this.inner.stat(key); }
  async list(prefix: string): Promise<ObjectInfo[]> { await this.enter('list'); return this.inner.list(prefix); }
  async deletePrefix(prefix: string): Promise<void> { await this.enter('deletePrefix'); return this.inner.deletePrefix(prefix); }
  async prepare(prefix: string): Promise<void> { await this.inner.prepare?.(prefix); }
  async folders(): Promise<{ name: string; modified: Date }[]> { return (await this.inner.folders?.()) ?? []; }
  async abortStaleUploads(graceSec: number): Promise<number> { return (await this.inner.abortStaleUploads?.(graceSec)) ?? 0; }

  localPath(key: string): string | null {
    const f = this.faults;
    const readFaults = f.resetAfterBytes !== undefined || f.flipBitAt !== undefined || !!f.failNext?.get || !!f.slowMs;
    return readFaults ? null : this.inner.localPath?.(key) ?? null;
  }

  async get(key: string): Promise<Readable> {
    await this.enter('get');
    const src = await this.inner.get(key);
    const { resetAfterBytes, flipBitAt } = this.faults;
    if (resetAfterBytes === undefined && flipBitAt === undefined) return src;
    let pos = 0;
    const t = new Transform({
      transform(chunk: Buffer, _e, cb) {
        let c = chunk;
        if (flipBitAt !== undefined && flipBitAt >= pos && flipBitAt < pos + c.length) {
          c = Buffer.from(c);
          c[flipBitAt - pos] = c[flipBitAt - pos]! ^ 0x01;
        }
        if (resetAfterBytes !== undefined && pos + c.length > resetAfterBytes) {
          const keep = c.subarray(0, Math.max(0, resetAfterBytes - pos));
          pos += keep.length;
          if (keep.length) this.push(keep);
          return cb(Object.assign(new Error('injected fault: connection reset during download'), { code: 'ECONNRESET' }));
        }
        pos += c.length;
        cb(null, c);
      },
    });
    src.on('error', (e) => t.destroy(e));
    return src.pipe(t);
  }
}
