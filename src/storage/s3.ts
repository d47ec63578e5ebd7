/**
 * S3-compatible destination (AWS, MinIO, Backblaze, Yandex, Selectel…). Objects are written with a streaming
 * multipart upload (@aws-sdk/lib-storage) of unknown length in constant memory (part size × queue size); an
 * object is visible only once its upload completed. Checksums are computed only when required, which
 * S3-compatible servers that do not speak the newer checksum headers need (s3rver corrupts streamed uploads
 * otherwise). Each part upload is retried by the SDK. The SDK is loaded on first use: a run without S3 does
 * not carry it (it is a third of the heap, and every garbage collection walks the heap).
 */
import { PassThrough, Readable } from 'node:stream';
import type { S3Client, ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import { checkKey, DeleteRefusedError, type ObjectInfo, type Storage } from './types.ts';
import { DrError, errorMessage } from '../core/errors.ts';
import type { S3Settings } from '../core/config.ts';

/** S3 per-key error codes that a retry can cure; any other (AccessDenied, …) is permanent. */
const TRANSIENT_CODES = new Set(['InternalError', 'SlowDown', 'ServiceUnavailable', 'RequestTimeout', 'OperationAborted']);

export class S3Storage implements Storage {
  readonly kind = 's3';
  readonly location: string;
  private client: Promise<{ s3: S3Client; sdk: typeof import('@aws-sdk/client-s3'); Upload: typeof import('@aws-sdk/lib-storage').Upload }> | null = null;
  private readonly cfg: S3Settings;
  private readonly prefix: string;

  constructor(cfg: S3Settings) {
    this.cfg = cfg;
    this.prefix = cfg.prefix ? cfg.prefix.replace(/^\/+/, '').replace(/\/*$/, '/') : '';
    this.location = `s3://${cfg.bucket}/${this.prefix}`;
  }

  private api() {
    this.client ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([sdk, lib]) => ({ sdk, Upload: lib.Upload, s3: this.newClient(sdk.S3Client) }));
    return this.client;
  }

  private newClient(C: typeof S3Client): S3Client {
    const cfg = this.cfg;
    return new C({
      region: cfg.region,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.forcePathStyle,
      ...(cfg.accessKeyId && cfg.secretAccessKey ? { credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: cfg.maxAttempts,
      // a stalled server must not hang a backup: a request idle this long (nothing sent or received) fails
      // and is retried; a slow but moving upload is never cut
      requestHandler: { socketTimeout: (cfg.timeoutSec ?? 60) * 1000, connectionTimeout: Math.min(10, cfg.timeoutSec ?? 60) * 1000 },
    });
  }

  private k(key: string): string {
    return this.prefix + checkKey(key);
  }

  private fail(op: string, key: string, err: unknown): DrError {
    return new DrError(`S3 ${this.location}: ${op} ${key} failed: ${errorMessage(err)}`, undefined,
      'check DR_S3_ENDPOINT, the bucket and the credentials; the server must be reachable', { cause: err });
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    let size = 0;
    const counted = new PassThrough({ highWaterMark: 1 << 20 });
    body.on('data', (c: Buffer) => { size += c.length; });
    body.on('error', (e) => counted.destroy(e));
    // a source destroyed without an error (the backup aborted) must fail the upload, not leave it waiting
    body.on('close', () => { if (!body.readableEnded) counted.destroy(new Error('the upload was aborted before its end')); });
    body.pipe(counted);
    const { s3, Upload } = await this.api();
    const upload = new Upload({
      client: s3,
      params: {
        Bucket: this.cfg.bucket, Key: this.k(key), Body: counted,
        ...(this.cfg.sse ? { ServerSideEncryption: this.cfg.sse as ServerSideEncryption } : {}),
        ...(this.cfg.storageClass ? { StorageClass: this.cfg.storageClass as StorageClass } : {}),
      },
      partSize: this.cfg.partSizeMB << 20,
      queueSize: 2,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { size };
    } catch (err) {
      body.destroy();
      counted.destroy();
      await upload.abort().catch(() => {});
      throw this.fail('upload of', key, err);
    }
  }

  /**
   * A download that survives a cut connection: when the body ends early or errors, the rest is requested
   * with a Range from the last byte received (same ETag), up to DR_S3_MAX_ATTEMPTS times in all.
   */
  async get(key: string): Promise<Readable> {
    let r;
    try {
      const { s3, sdk } = await this.api();
      r = await s3.send(new sdk.GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.k(key) }));
    } catch (err) {
      throw this.fail('download of', key, err);
    }
    const total = r.ContentLength ?? -1;
    const etag = r.ETag;
    const self = this;
    async function* resuming(first: Readable): AsyncGenerator<Buffer> {
      let got = 0;
      let body: Readable = first;
      for (let attempt = 1; ; attempt++) {
        try {
          for await (const c of body) { got += (c as Buffer).length; yield c as Buffer; }
          if (total < 0 || got >= total) return;
          throw new Error(`the connection closed after ${got} of ${total} bytes`);
        } catch (err) {
          body.destroy();
          if (attempt >= self.cfg.maxAttempts) throw self.fail('download of', key, err);
          await new Promise((res) => setTimeout(res, Math.random() * Math.min(5000, 200 * 2 ** attempt)));
          try {
            const { s3, sdk } = await self.api();
            const next = await s3.send(new sdk.GetObjectCommand({ Bucket: self.cfg.bucket, Key: self.k(key), Range: `bytes=${got}-`, ...(etag ? { IfMatch: etag } : {}) }));
            body = next.Body as Readable;
          } catch (e) {
            throw self.fail('download of', key, e);
          }
        }
      }
    }
    return Readable.from(resuming(r.Body as Readable), { objectMode: false });
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const { s3, sdk } = await this.api();
      const r = await s3.send(new sdk.HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.k(key) }));
      return { key, size: r.ContentLength ?? 0, modified: r.LastModified ?? new Date(0) };
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (err as Error).name === 'NotFound' || (err as Error).name === 'NoSuchKey') return null;
      throw this.fail('stat of', key, err);
    }
  }

  private page(): number | undefined {
    return this.cfg.pageSize ? Math.max(1, Math.min(1000, this.cfg.pageSize)) : undefined;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    const seen = new Set<string>();
    try {
      const { s3, sdk } = await this.api();
      do {
        const r = await s3.send(new sdk.ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: this.prefix + prefix, ContinuationToken: token, MaxKeys: this.page() }));
        for (const o of r.Contents ?? []) {
          if (!o.Key) continue;
          out.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
        }
        if (r.IsTruncated && !r.NextContinuationToken) throw new Error('the server said the listing is truncated but gave no continuation token');
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
        if (token !== undefined) {
          if (seen.has(token)) throw new Error('the server repeated a continuation token');
          seen.add(token);
        }
      } while (token);
    } catch (err) {
      throw this.fail('listing of', prefix || '/', err);
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  /**
   * Deletes every object under `prefix` in batches of 1000 (DeleteObjects, Quiet). The answer of a batch can
   * hold per-key errors (HTTP 200 all the same): each one fails the deletion, with the key and the S3 code.
   * All batches are tried; the error lists what is left.
   */
  async deletePrefix(prefix: string): Promise<void> {
    const base = prefix.replace(/\/$/, '');
    const keys = (await this.list(base)).map((o) => o.key).filter((k) => k === base || k.startsWith(`${base}/`));
    const left: { key: string; code: string; message: string }[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      let r;
      try {
        const { s3, sdk } = await this.api();
        r = await s3.send(new sdk.DeleteObjectsCommand({
          Bucket: this.cfg.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }));
      } catch (err) {
        throw this.fail('deletion under', prefix, err);
      }
      for (const e of r.Errors ?? []) {
        const key = e.Key?.startsWith(this.prefix) ? e.Key.slice(this.prefix.length) : (e.Key ?? '?');
        left.push({ key, code: e.Code ?? 'UnknownError', message: e.Message ?? '' });
      }
    }
    if (left.length) {
      const shown = left.slice(0, 5).map((e) => `${e.key}: ${e.code}${e.message ? ` (${e.message})` : ''}`).join('; ');
      throw new S3DeleteError(
        `S3 ${this.location}: deletion under ${prefix} failed for ${left.length} of ${keys.length} object${keys.length === 1 ? '' : 's'}: ${shown}${left.length > 5 ? `; and ${left.length - 5} more` : ''}`,
        left, left.some((e) => TRANSIENT_CODES.has(e.code)));
    }
  }

  /**
   * Aborts multipart uploads under the prefix started more than `graceSec` ago (crashed uploads). The listing
   * is read page by page (KeyMarker / UploadIdMarker) to its end before anything is aborted.
   */
  async abortStaleUploads(graceSec: number): Promise<number> {
    let n = 0;
    try {
      const { s3, sdk } = await this.api();
      const stale: { Key: string; UploadId: string }[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      const seen = new Set<string>();
      for (;;) {
        const r = await s3.send(new sdk.ListMultipartUploadsCommand({
          Bucket: this.cfg.bucket, Prefix: this.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker, MaxUploads: this.page(),
        }));
        for (const u of r.Uploads ?? []) {
          if (u.Key && u.UploadId && u.Initiated && Date.now() - u.Initiated.getTime() > graceSec * 1000) stale.push({ Key: u.Key, UploadId: u.UploadId });
        }
        if (!r.IsTruncated) break;
        if (!r.NextKeyMarker) throw new Error('the server said the multipart upload listing is truncated but gave no NextKeyMarker');
        const at = `${r.NextKeyMarker}\0${r.NextUploadIdMarker ?? ''}`;
        if (seen.has(at)) throw new Error('the server repeated a multipart upload listing marker');
        seen.add(at);
        keyMarker = r.NextKeyMarker;
        uploadIdMarker = r.NextUploadIdMarker;
      }
      for (const u of stale) {
        await s3.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: u.Key, UploadId: u.UploadId }));
        n++;
      }
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'NotImplemented' || /not implemented/i.test(errorMessage(err))) return n; // e.g. s3rver
      throw this.fail('cleanup of multipart uploads in', this.prefix || '/', err);
    }
    return n;
  }
}

/** DeleteObjects answered with per-key errors: `left` are the objects still there. */
export class S3DeleteError extends DeleteRefusedError {
  constructor(message: string, left: { key: string; code: string; message: string }[], retryable: boolean) {
    super(message, left, retryable, 'check that the credentials may delete objects (s3:DeleteObject) and that no object lock or retention holds them');
  }
}
