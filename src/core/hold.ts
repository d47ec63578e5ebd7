/**
 * A test hook for the fault suite: with DR_TEST_HOLD=<stage prefix>, dr stops at the first stage whose name
 * starts with that prefix, prints "dr: holding at <stage>" on stderr and waits for SIGUSR2 (go on) or for
 * its abort signal (SIGTERM / SIGINT abort the run). The suite uses it to kill dr at an exact point, or to
 * change the world (remove a volume) under it. Unset (always, outside tests), it does nothing.
 * Stages: `part:<key>` (a part is being read: its first bytes are on their way to every destination, the
 * rest of its source not yet read),
 * `volume:<name>` (before a volume is read), `manifest` (every part stored, the manifest not yet written),
 * `locked` (the lock just taken, by any command).
 */
import { Transform, type TransformCallback } from 'node:stream';

const held = new Set<string>();

export function holding(stage: string): boolean {
  const want = process.env.DR_TEST_HOLD;
  return !!want && stage.startsWith(want) && !held.has(want);
}

export async function hold(stage: string, signal?: AbortSignal): Promise<void> {
  if (!holding(stage)) return;
  held.add(process.env.DR_TEST_HOLD!);
  process.stderr.write(`dr: holding at ${stage}\n`);
  const alive = setInterval(() => {}, 1 << 30); // a signal listener alone does not keep the process running
  await new Promise<void>((resolve, reject) => {
    const go = () => { clearInterval(alive); signal?.removeEventListener('abort', stop); resolve(); };
    const stop = () => { clearInterval(alive); process.off('SIGUSR2', go); reject(signal!.reason); };
    process.once('SIGUSR2', go);
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** Pass-through that holds on its second chunk (or at its end, for a one-chunk stream): mid-part. */
export function holdTap(stage: string, signal?: AbortSignal): Transform {
  let chunks = 0;
  let done = !holding(stage);
  return new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      if (done || ++chunks < 2) return cb(null, chunk);
      done = true;
      hold(stage, signal).then(() => cb(null, chunk), cb);
    },
    flush(cb: TransformCallback) {
      if (done) return cb();
      done = true;
      hold(stage, signal).then(() => cb(), cb);
    },
  });
}
