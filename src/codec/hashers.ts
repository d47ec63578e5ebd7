/**
 * Hash workers: the plaintext SHA-256 and the per-file index of a part, off the main thread.
 *
 * A backup hashes every byte three times (the plaintext, every file, the stored bytes: SHA-256 at ~1.5 GB/s
 * with SHA-NI here). On the main thread those hashes were ~1.8 s of a 1 GB backup's ~4 s of main-thread
 * CPU, and the main thread was the stage everything else waited for. The plaintext and per-file hashes now
 * run on a worker thread, beside the main thread's encryption and the thread pool's zstd.
 *
 * No copies beyond the one coalescing already made: the source's chunks (64 KiB pipe reads) are gathered
 * into 1 MiB slots of a ring in a SharedArrayBuffer (instead of a fresh 1 MiB Buffer each), the worker
 * hashes a slot in place while zstd compresses the same memory, and the slot is reused once both are done
 * with it. The ring bounds what is in flight: the source waits when every slot is busy. The slots are
 * never garbage.
 *
 * One worker per part at a time (class Hashers: up to `parallelism` of them). A part that fails takes its
 * worker with it (terminated: no half-hashed state survives into the next part).
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../core/workers.ts';
import { Duplex, type Transform, type Writable } from 'node:stream';
import { DrError } from '../core/errors.ts';
import { drained } from '../core/streams.ts';
import { flowed } from '../core/memory.ts';
import type { FromWorker, ToWorker } from './hash-worker.ts';

const SLOT = 1 << 20;
const SLOTS = 6;

export interface PlainDigest { size: number; sha256: string | null; files?: number }

export class HashWorker {
  private readonly worker: Worker;
  private readonly views: Buffer[] = [];
  private readonly free: number[] = [];
  private waiting: (() => void)[] = [];
  private onMessage: ((m: FromWorker) => void) | null = null;
  private failure: Error | null = null;

  constructor() {
    const sab = new SharedArrayBuffer(SLOT * SLOTS);
    for (let i = 0; i < SLOTS; i++) {
      this.views.push(Buffer.from(sab, i * SLOT, SLOT));
      this.free.push(i);
    }
    this.worker = startWorker(new URL('./hash-worker.ts', import.meta.url), { sab, slotSize: SLOT });
    this.worker.on('message', (m: FromWorker) => this.onMessage?.(m));
    const die = (err: Error) => {
      this.failure ??= err;
      this.onMessage?.({ t: 'error', message: `the hash worker failed: ${err.message}` });
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`it exited (code ${code})`)));
  }

  get usable(): boolean { return this.failure === null; }

  /** a free slot's index, now or once one is released */
  slot(): number | Promise<number> {
    const s = this.free.pop();
    if (s !== undefined) return s;
    return new Promise<void>((r) => this.waiting.push(r)).then(() => this.slot());
  }
  view(slot: number): Buffer { return this.views[slot]!; }
  release(slot: number): void {
    this.free.push(slot);
    this.waiting.shift()?.();
  }
  send(m: ToWorker): void { this.worker.postMessage(m); }
  listen(fn: ((m: FromWorker) => void) | null): void { this.onMessage = fn; }
  async terminate(): Promise<void> {
    this.failure ??= new Error('terminated');
    // a part still waiting for this worker fails instead of waiting forever
    const waiting = this.onMessage;
    this.onMessage = null;
    waiting?.({ t: 'error', message: 'the hash worker was stopped' });
    await this.worker.terminate().catch(() => {});
  }
}

/**
 * The backup's hash workers: one started at once, more (up to `max`) as parts run side by side. A part that
 * finds none idle hashes on the main thread and starts one for the parts after it: an idle worker costs
 * ~15 MB and ~0.1 s of CPU to start, which a backup of one big volume would pay for nothing.
 */
export class Hashers {
  private readonly idle: HashWorker[] = [];
  private readonly all = new Set<HashWorker>();
  private readonly max: number;
  private closed = false;
  /** parts hashed on a worker so far (for the logs and tests) */
  served = 0;

  constructor(max: number) {
    this.max = max;
    if (max > 0) this.spawn();
  }

  private spawn(): void {
    const w = new HashWorker();
    this.idle.push(w);
    this.all.add(w);
  }

  /** an idle worker, or none (the part then hashes on the main thread) */
  take(): HashWorker | undefined {
    if (this.closed) return undefined;
    let w = this.idle.pop();
    while (w && !w.usable) { this.all.delete(w); void w.terminate(); w = this.idle.pop(); }
    if (w) this.served++;
    else if (this.all.size < this.max) this.spawn();
    return w;
  }

  /** workers alive (idle or busy) */
  get size(): number { return this.all.size; }

  /** back after a part: reused if it finished cleanly, else terminated */
  give(w: HashWorker, clean: boolean): void {
    if (clean && w.usable) this.idle.push(w);
    else { this.all.delete(w); void w.terminate(); }
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * A stage that takes the source's bytes and gives `compressor`'s output: the bytes go into `w`'s ring, each
 * full slot to the worker (plaintext hash, and the index when `index` is given: its lines go to
 * `index.out`, which is ended after the last) and to the compressor. `plain` resolves with the plaintext's
 * size and SHA-256 (and the index's entry count, with an index) once the source has ended and every slot is
 * hashed. `onRead` runs as soon as the last source byte is in the ring; `what` names the part in errors.
 * The compressor must be done with its input when its write callback runs (it copies it, as node:zlib's
 * zstd does into its window): a slot is reused from then on. A PassThrough would hand it on instead.
 */
export function hashedCompress(w: HashWorker, what: string, compressor: Transform | Duplex, index?: { out: Writable; what: string }, onRead?: () => void): { stage: Duplex; plain: Promise<PlainDigest> } {
  let cur = -1;
  let fill = 0;
  const busy = new Map<number, number>(); // slot → holders left (worker, compressor)
  const done = (slot: number) => {
    const n = busy.get(slot)! - 1;
    if (n) busy.set(slot, n);
    else { busy.delete(slot); w.release(slot); }
  };
  let finished!: (d: PlainDigest) => void;
  let failed!: (e: Error) => void;
  const plain = new Promise<PlainDigest>((res, rej) => { finished = res; failed = rej; });
  plain.catch(() => {}); // the stage's error is the one reported
  let stage!: Duplex;
  w.listen((m) => {
    if (m.t === 'ack') {
      if (m.lines && index && !index.out.write(m.lines)) drained(index.out).then(() => done(m.slot), () => done(m.slot));
      else done(m.slot);
    } else if (m.t === 'done') {
      w.listen(null);
      if (index) { if (m.lines) index.out.write(m.lines); index.out.end(); }
      finished({ size: m.size, sha256: m.sha256, ...(index ? { files: m.files } : {}) });
    } else {
      // the scanner's errors name the volume already; a worker's own failure gets the part's name
      const err = new DrError(m.message.startsWith(`${what}:`) ? m.message : `${what}: ${m.message}`);
      failed(err);
      stage.destroy(err);
    }
  });
  // a volume's plaintext is not hashed as a whole: its index holds every file's SHA-256 (docs/FORMAT.md)
  w.send({ t: 'begin', index: index ? index.what : null, plainHash: !index });
  const dispatch = () => {
    const slot = cur;
    const len = fill;
    cur = -1;
    fill = 0;
    busy.set(slot, 2);
    w.send({ t: 'chunk', slot, len });
    compressor.write(w.view(slot).subarray(0, len), () => done(slot));
  };
  /** copies `chunk` from `off` into slots; resolves (or returns) when all of it is in */
  const put = (chunk: Buffer, off: number): void | Promise<void> => {
    while (off < chunk.length) {
      if (cur < 0) {
        const s = w.slot();
        if (typeof s !== 'number') return s.then((n) => { cur = n; return put(chunk, off); });
        cur = s;
      }
      const n = chunk.copy(w.view(cur), fill, off);
      fill += n;
      off += n;
      if (fill === SLOT) dispatch();
    }
  };
  stage = new Duplex({
    writableHighWaterMark: SLOT,
    readableHighWaterMark: SLOT,
    write(chunk: Buffer, _e, cb) {
      flowed(chunk.length);
      const p = put(chunk, 0);
      if (p) p.then(() => cb(), cb); else cb();
    },
    final(cb) {
      onRead?.();
      if (cur >= 0) { if (fill) dispatch(); else { w.release(cur); cur = -1; } }
      w.send({ t: 'end' });
      // the compressor ends once the worker has hashed the last slot (a failure there fails the stage)
      plain.then(() => { compressor.end(); cb(); }, cb);
    },
    read() { compressor.resume(); },
    destroy(err, cb) {
      w.listen(null);
      if (err) {
        failed(err);
        index?.out.destroy(err);
      }
      compressor.destroy();
      cb(err);
    },
  });
  compressor.on('data', (c: Buffer) => { if (!stage.push(c)) compressor.pause(); });
  compressor.on('end', () => stage.push(null));
  compressor.on('error', (e) => stage.destroy(e));
  return { stage, plain };
}
