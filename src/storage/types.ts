/**
 * One interface for every destination (local disk, S3). Keys are '/'-separated paths relative to the
 * destination's root, e.g. "20261126T010000Z-1a2b3c/volumes/v2_glpi_files.tar.zst.age".
 * Cross-cutting concerns are wrappers implementing the same interface: retries (src/storage/retry.ts) and, in
 * the tests, fault injection (test/support/faulty-storage.ts). Dry-run is not a wrapper: each lifecycle stops
 * before its first change (docs/ARCHITECTURE.md).
 * What only some destinations can do is an optional member, asked of the destination (never by its class);
 * a wrapper forwards each one, so it stays transparent.
 */
import type { Readable } from 'node:stream';
import { DrError } from '../core/errors.ts';

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
  /**
   * Removes `prefix` and everything under it; no error when absent. Rejects with DeleteRefusedError when the
   * destination refused some objects (the others are gone).
   */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * Optional: makes the destination ready to receive objects under `prefix`, so the first put there does
   * not pay for it (a local destination creates its directories, fsynced). Wrappers forward it.
   */
  prepare?(prefix: string): Promise<void>;
  /** Optional (local disk): the file holding `key` on this machine, read faster than through get(); null: none. */
  localPath?(key: string): string | null;
  /**
   * Optional (local disk): the top-level folders, also those holding no object yet (a backup killed right
   * after creating its folders). An object store has no empty folder and does not implement it.
   */
  folders?(): Promise<{ name: string; modified: Date }[]>;
  /**
   * Optional (S3): aborts uploads started more than `graceSec` ago and never completed (their parts are
   * stored, and paid for, but list() does not show them); returns how many.
   */
  abortStaleUploads?(graceSec: number): Promise<number>;
}

/** deletePrefix refused for some objects (S3 per-key errors: AccessDenied, an object lock): `left` are still there. */
export class DeleteRefusedError extends DrError {
  readonly left: { key: string; code: string; message: string }[];
  /** false when no object's error is one a retry can cure (RetryingStorage does not retry then) */
  readonly retryable: boolean;

  constructor(message: string, left: { key: string; code: string; message: string }[], retryable: boolean, hint?: string) {
    super(message, undefined, hint);
    this.left = left;
    this.retryable = retryable;
  }
}

/** Rejects keys that could escape the destination's root (a manifest pointing outside the backup). */
export function checkKey(key: string): string {
  if (!key || key.startsWith('/') || key.includes('\\') || key.includes('\0') || key.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
  return key;
}
