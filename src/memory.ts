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
 * 443 MB with minor GCs alone, 332 MB with the full GCs, 234–250 MB with both. Backups do neither: no memory
 * gained there (scale 4: 159–164 MB either way), and the full GCs cost a 1 GB backup ~4 s of CPU.
 * When the runtime does not allow this, both are no-ops and V8's defaults apply (DR_DEFAULT_GC=1 forces that).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const FLOW_GC_BYTES = 16 << 20;
/** a full GC after this much: buffers held across two minor GCs (a slow consumer such as tar -x writing
 *  20,000 small files) are promoted to the old generation, and only a full GC frees them */
const FLOW_FULL_GC_BYTES = 256 << 20;

let gc: ((o: { type: 'minor' | 'major' }) => void) | null = null;
let since = 0;
let sinceFull = 0;
let fullGcs = false;

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
  if (since < FLOW_GC_BYTES) return;
  sinceFull += since;
  since = 0;
  if (fullGcs && sinceFull >= FLOW_FULL_GC_BYTES) {
    sinceFull = 0;
    gc({ type: 'major' });
  } else gc({ type: 'minor' });
}

/** For restores: the young generation stays at its initial size (V8 reads the flag at every GC), and full GCs run. */
export function restoreGcMode(): void {
  if (!gc) return;
  fullGcs = true;
  try { v8.setFlagsFromString('--semi-space-growth-factor=1'); } catch { /* V8's default */ }
}
