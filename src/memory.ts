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
 * garbage held at any time to about that much, whatever the size of the backup (flat memory at any scale).
 * When the runtime does not allow this, both are no-ops and V8's defaults apply.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const FLOW_GC_BYTES = 16 << 20;

let minorGc: (() => void) | null = null;
let since = 0;

/** Called once, at start-up, before data flows. */
export function tuneGcForStreaming(): void {
  if (minorGc || process.env.DR_DEFAULT_GC) return;
  try {
    v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as ((o: { type: 'minor' | 'major' }) => void) | undefined;
    v8.setFlagsFromString('--no-expose-gc');
    if (typeof gc === 'function') minorGc = () => gc({ type: 'minor' });
  } catch {
    minorGc = null;
  }
}

/** `n` bytes went through the data path. */
export function flowed(n: number): void {
  if (!minorGc) return;
  since += n;
  if (since >= FLOW_GC_BYTES) {
    since = 0;
    minorGc();
  }
}
