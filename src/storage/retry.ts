/**
 * Retries as a wrapper around any Storage: idempotent operations (stat, list, deletePrefix, opening a
 * download) are retried with exponential backoff and full jitter, unless the error says it is permanent
 * (`retryable: false`). Uploads are streams that cannot be
 * replayed from here: the S3 destination retries each multipart part itself (DR_S3_MAX_ATTEMPTS), and a
 * failed upload fails that destination (reported per destination). The optional capabilities are forwarded
 * as they are.
 */
import type { Readable } from 'node:stream';
import type { ObjectInfo, Storage } from './types.ts';
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';

export interface RetryOptions { attempts: number; baseMs: number; maxMs: number; log?: Logger; sleep?: (ms: number) => Promise<void> }

export class RetryingStorage implements Storage {
  readonly kind: string;
  readonly location: string;
  readonly inner: Storage;
  private readonly o: RetryOptions;

  constructor(inner: Storage, o: RetryOptions) {
    this.inner = inner;
    this.kind = inner.kind;
    this.location = inner.location;
    this.o = o;
  }

  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const sleep = this.o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        // an error that says a retry cannot cure it (e.g. per-key AccessDenied of a deletion) goes up at once
        if (attempt >= this.o.attempts || (err as { retryable?: unknown }).retryable === false) throw err;
        const delay = Math.random() * Math.min(this.o.maxMs, this.o.baseMs * 2 ** (attempt - 1));
        this.o.log?.warn({ destination: this.location, what, attempt, err: errorMessage(err) }, 'storage operation failed, retrying');
        await sleep(delay);
      }
    }
  }

  put(key: string, body: Readable): Promise<{ size: number }> { return this.inner.put(key, body); }
  get(key: string): Promise<Readable> { return this.retry(`get ${key}`, () => this.inner.get(key)); }
  stat(key: string): Promise<ObjectInfo | null> { return this.retry(`stat ${key}`, () => this.inner.stat(key)); }
  list(prefix: string): Promise<ObjectInfo[]> { return this.retry(`list ${prefix}`, () => this.inner.list(prefix)); }
  deletePrefix(prefix: string): Promise<void> { return this.retry(`delete ${prefix}`, () => this.inner.deletePrefix(prefix)); }
  async prepare(prefix: string): Promise<void> { await this.inner.prepare?.(prefix); }
  localPath(key: string): string | null { return this.inner.localPath?.(key) ?? null; }
  async folders(): Promise<{ name: string; modified: Date }[]> { return (await this.inner.folders?.()) ?? []; }
  async abortStaleUploads(graceSec: number): Promise<number> { return (await this.inner.abortStaleUploads?.(graceSec)) ?? 0; }
}
