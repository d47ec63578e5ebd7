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
 * path calls `flowed(bytes)`, which runs a minor GC after every FLOW_GC_BYTES of data and a full one after
 * every FLOW_FULL_GC_BYTES (~16 per 4 GB). That bounds the garbage held at any time, whatever the size of
 * the backup or restore (flat memory at any scale).
 * A restore also keeps the young generation from growing (limitYoungGeneration): loading an 80,000-entry
 * index made V8 grow it to ~100 MB of heap it then kept for the whole restore (scale-4 benchmark: peak RSS
 * 292 → 244 MB). Backups keep V8's default: the limit gave them no memory (scale 4: 159–164 MB either way)
 * and cost ~10 % more CPU.
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
  if (sinceFull >= FLOW_FULL_GC_BYTES) {
    sinceFull = 0;
    gc({ type: 'major' });
  } else gc({ type: 'minor' });
}

/** For restores: the young generation stays at its initial size (read by V8 at every GC, so it can be set now). */
export function limitYoungGeneration(): void {
  if (!gc) return;
  try { v8.setFlagsFromString('--semi-space-growth-factor=1'); } catch { /* V8's default */ }
}
