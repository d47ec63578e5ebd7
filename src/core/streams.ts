/** Small stream helpers shared by every stage that writes into a stream it does not own. */
import type { Writable } from 'node:stream';

/** Resolves on 'drain'; rejects if the stream closes or fails first (so a dropped consumer never hangs us). */
export function drained(w: Writable): Promise<void> {
  // already gone: its 'close' will not come again
  if (w.destroyed || w.closed) return Promise.reject(w.errored ?? new Error('output closed before the command finished'));
  if (!w.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      w.off('drain', onDrain); w.off('close', onClose); w.off('error', onError);
      if (err) reject(err); else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('output closed before the command finished'));
    const onError = (e: Error) => done(e);
    w.on('drain', onDrain); w.on('close', onClose); w.on('error', onError);
  });
}
