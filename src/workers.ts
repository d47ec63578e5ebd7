/**
 * Worker threads of dr (the backup's hash workers, the restore's re-read). They use the compile cache that
 * bin/dr enables for the main thread: a worker does not inherit it, and without it each one strips and
 * compiles its TypeScript modules again, loading the type stripper into its isolate (~0.1 s of CPU and
 * ~25 MB more memory per worker, measured here).
 */
import module from 'node:module';
import { Worker } from 'node:worker_threads';

export function startWorker(url: URL, workerData: unknown): Worker {
  const cache = module.getCompileCacheDir?.();
  return new Worker(url, { workerData, ...(cache ? { env: { ...process.env, NODE_COMPILE_CACHE: cache } } : {}) });
}
