/**
 * The fault suite's hook module (src/core/hooks.ts; loaded with DR_TEST_HOOKS=<this file>): with
 * DR_TEST_HOLD=<stage prefix>, dr stops at the first stage whose name starts with that prefix, prints
 * "dr: holding at <stage>" on stderr and waits for SIGUSR2 (go on) or for its abort signal (SIGTERM / SIGINT
 * abort the run). The suite uses it to kill dr at an exact point, or to change the world (remove a volume)
 * under it. A `part:<key>` stage holds mid-part: its first bytes are on their way to every destination, the
 * rest of its source not yet read.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Hooks } from '../../src/core/hooks.ts';

const held = new Set<string>();

function holding(stage: string): boolean {
  const want = process.env.DR_TEST_HOLD;
  return !!want && stage.startsWith(want) && !held.has(want);
}

async function hold(stage: string, signal?: AbortSignal): Promise<void> {
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
function holdTap(stage: string, signal?: AbortSignal): Transform | null {
  if (!holding(stage)) return null;
  let chunks = 0;
  let done = false;
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

export default { stage: hold, stageTap: holdTap } satisfies Hooks;
