/** The configured destinations (local disk always; S3 when DR_S3_BUCKET is set), each wrapped with retries. */
import { access, constants, statfs, stat } from 'node:fs/promises';
import type { Config } from '../core/config.ts';
import { LocalStorage } from './local.ts';
import { S3Storage } from './s3.ts';
import { RetryingStorage } from './retry.ts';
import type { Storage } from './types.ts';
import type { Logger } from '../core/log.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';

export interface DestinationStatus {
  kind: 'local' | 's3';
  location: string;
  exists: boolean;
  writable: boolean;
  freeBytes: number | null;
  error?: string;
}

export function destinations(config: Config, log?: Logger): Storage[] {
  const out: Storage[] = [new LocalStorage(config.localDir)];
  if (config.s3) out.push(new RetryingStorage(new S3Storage(config.s3), { attempts: config.s3.maxAttempts, baseMs: 200, maxMs: 5000, ...(log ? { log } : {}) }));
  return out;
}

/** The destinations `--from` selects (all when absent). */
export function selectDestinations(config: Config, from: string | undefined, log?: Logger): Storage[] {
  const all = destinations(config, log);
  if (!from) return all;
  if (from !== 'local' && from !== 's3') throw new DrError(`--from ${from}: use local or s3`, ExitCode.usage);
  const picked = all.filter((s) => s.kind === from);
  if (!picked.length) throw new DrError(`--from s3: no S3 destination is configured`, ExitCode.usage, 'set DR_S3_BUCKET (and its companions) in .env');
  return picked;
}

export async function destinationStatus(config: Config): Promise<DestinationStatus[]> {
  const dir = config.localDir;
  const st = await stat(dir).catch(() => null);
  const exists = !!st?.isDirectory();
  const writable = exists && (await access(dir, constants.W_OK).then(() => true, () => false));
  const fs = exists ? await statfs(dir).catch(() => null) : null;
  const out: DestinationStatus[] = [{ kind: 'local', location: dir, exists, writable, freeBytes: fs ? fs.bavail * fs.bsize : null }];
  if (config.s3) {
    const s3 = new S3Storage({ ...config.s3, maxAttempts: 1 });
    try {
      await s3.list('.dr-probe/');
      out.push({ kind: 's3', location: s3.location, exists: true, writable: true, freeBytes: null });
    } catch (err) {
      out.push({ kind: 's3', location: s3.location, exists: false, writable: false, freeBytes: null, error: errorMessage(err) });
    }
  }
  return out;
}
