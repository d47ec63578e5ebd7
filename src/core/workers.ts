/**
 * Worker threads of dr (the backup's hash workers, the restore's re-read). They use the compile cache that
 * bin/dr enables for the main thread: a worker does not inherit it, and without it each one strips and
 * compiles its TypeScript modules again, loading the type stripper into its isolate (~0.1 s of CPU and
 * ~25 MB more memory per worker, measured here).
 *
 * A worker's young generation is kept small: its garbage (a hash object per file, with its native context,
 * and the index lines) dies young and is then collected often. With V8's default sizing, peak RSS of a
 * scale-4 benchmark backup (80,000 files) varied from 184 to 232 MB; with 4 MB, 182–185 MB.
 */
import module from 'node:module';
import { Worker } from 'node:worker_threads';

const YOUNG_MB = 4;

export function startWorker(url: URL, workerData: unknown): Worker {
  const cache = module.getCompileCacheDir?.();
  return new Worker(url, { workerData, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB }, ...(cache ? { env: { ...process.env, NODE_COMPILE_CACHE: cache } } : {}) });
}
