/**
 * One interface for every destination (local disk now; S3 next). Keys are '/'-separated paths relative to
 * the destination's root, e.g. "20261126T010000Z-1a2b3c/volumes/v2_glpi_files.tar.zst.age".
 * Cross-cutting concerns (retries, fault injection, dry-run) are wrappers implementing the same interface.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

export interface Storage {
  /** "local" or "s3" */
  readonly kind: string;
  /** where it is, for messages (a path or s3://bucket/prefix) */
  readonly location: string;
  /** Stores `body` under `key` atomically: the object is visible only once complete and durable. */
  put(key: string, body: Readable): Promise<{ size: number }>;
  get(key: string): Promise<Readable>;
  stat(key: string): Promise<ObjectInfo | null>;
  /** every object under `prefix` (recursive) */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** removes `prefix` and everything under it; no error when absent */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * Optional: makes the destination ready to receive objects under `prefix`, so the first put there does
   * not pay for it (a local destination creates its directories, fsynced). Wrappers forward it.
   */
  prepare?(prefix: string): Promise<void>;
}

/** Rejects keys that could escape the destination's root (a manifest pointing outside the backup). */
export function checkKey(key: string): string {
  if (!key || key.startsWith('/') || key.includes('\\') || key.includes('\0') || key.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
  return key;
}
