/**
 * Garbage collection tuned for streaming gigabytes through a small heap.
 *
 * Every chunk that flows (pipe reads, zstd output, age chunks) is a Buffer whose memory lives outside V8's
 * heap. By default V8 answers each ~50 MB of such allocation with a full mark-compact of the whole heap
 * (~20 MB here: dockerode, commander, pino, our code): 80–90 of them per GB archived, measured at ~3 s of
 * CPU and ~1.5 s of wall time on a 1 GB backup (2 cores). Those buffers die young, so a minor GC (a
 * scavenge of the young generation, well under a millisecond) frees them just as well.
 *
 * So: external memory is accounted in V8's global limit (no more mark-compact per 50 MB), and the data
 * path calls `flowed(bytes)`, which runs a minor GC after every FLOW_GC_BYTES of data. That bounds the
 * garbage held at any time, whatever the size of the backup (flat memory at any scale).
 * A restore (restoreGcMode) also keeps the young generation from growing — loading an 80,000-entry index
 * made V8 grow it to ~100 MB of heap it then kept for the whole restore — and runs a full GC after every
 * FLOW_FULL_GC_BYTES: tar -x writing 80,000 small files is a slow consumer, buffers waiting for it outlive
 * two scavenges and are promoted, and only a full GC frees them. Scale-4 benchmark, restore peak RSS:
 * 443 MB with minor GCs alone, 332 MB with the full GCs, 234–250 MB with both.
 * A restore holds ~40 MB of buffers in flight (zstd turns a 1 MiB chunk of SQL into several), and V8 set
 * its next limit only ~8 MB above that: it started a mark-compact every ~80 ms, 100–120 per GB restored,
 * ~3.4 s of CPU on its marking threads (--trace-incremental-marking: "Start (task)" with 7 MB of slack).
 * So restores also let the heap grow by half before the next full GC (--heap-growing-percent=50) and run
 * the minor GC every RESTORE_FLOW_GC_BYTES, which frees dead buffers long before that limit: 1 GB
 * restore, 24 mark-compacts instead of ~110, marking threads 1.2 s of CPU instead of 3.4 s, peak RSS
 * 187 MB instead of 208 MB.
 * Backups do neither: no memory gained there (scale 4: 159–164 MB either way), and the full GCs cost a
 * 1 GB backup ~4 s of CPU.
 * When the runtime does not allow this, both are no-ops and V8's defaults apply (DR_DEFAULT_GC=1 forces that).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const FLOW_GC_BYTES = 16 << 20;
const RESTORE_FLOW_GC_BYTES = 4 << 20;
/** a full GC after this much: buffers held across two minor GCs (a slow consumer such as tar -x writing
 *  20,000 small files) are promoted to the old generation, and only a full GC frees them */
const FLOW_FULL_GC_BYTES = 256 << 20;

let gc: ((o: { type: 'minor' | 'major' }) => void) | null = null;
let since = 0;
let sinceFull = 0;
let fullGcs = false;
let flowGcBytes = FLOW_GC_BYTES;

/** Called once, at start-up, before data flows. */
export function tuneGcForStreaming(): void {
  if (gc || process.env.DR_DEFAULT_GC) return;
  try {
    v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as ((o: { type: 'minor' | 'major' }) => void) | undefined;
    v8.setFlagsFromString('--no-expose-gc');
    if (typeof fn === 'function') gc = fn;
  } catch {
    gc = null;
  }
}

/** `n` bytes went through the data path. */
export function flowed(n: number): void {
  if (!gc) return;
  since += n;
  if (since < flowGcBytes) return;
  sinceFull += since;
  since = 0;
  if (fullGcs && sinceFull >= FLOW_FULL_GC_BYTES) {
    sinceFull = 0;
    gc({ type: 'major' });
  } else gc({ type: 'minor' });
}

/**
 * For restores: the young generation stays at its initial size, the heap may grow by half before the next
 * full GC (V8 reads both flags at every GC), minor GCs run every RESTORE_FLOW_GC_BYTES and full GCs run.
 * Returns the function that puts the backup settings back (a daemon runs drills and backups in one process).
 */
export function restoreGcMode(): () => void {
  if (!gc) return () => {};
  const set = (restore: boolean) => {
    fullGcs = restore;
    flowGcBytes = restore ? RESTORE_FLOW_GC_BYTES : FLOW_GC_BYTES;
    try {
      v8.setFlagsFromString(restore ? '--semi-space-growth-factor=1' : '--semi-space-growth-factor=2');
      v8.setFlagsFromString(`--heap-growing-percent=${restore ? 50 : 0}`);
    } catch { /* V8's default */ }
  };
  set(true);
  return () => set(false);
}

/** The data path's current GC settings (for tests and diagnostics). */
export function gcSettings(): { active: boolean; minorGcEveryBytes: number; fullGcs: boolean } {
  return { active: gc !== null, minorGcEveryBytes: flowGcBytes, fullGcs };
}
