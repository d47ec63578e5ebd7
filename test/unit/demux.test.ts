import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable, PassThrough } from 'node:stream';
import { demux } from '../../src/docker/exec.ts';

function frame(type: 1 | 2, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}
function collector(): Writable & { data(): Buffer } {
  const parts: Buffer[] = [];
  const w = new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }) as Writable & { data(): Buffer };
  w.data = () => Buffer.concat(parts);
  return w;
}

test('demux splits stdout and stderr frames whatever the chunk boundaries', async () => {
  const out1 = Buffer.from('hello, мир 👋\n'.repeat(100));
  const err1 = Buffer.from('warning: something\n');
  const out2 = Buffer.alloc(70_000, 7);
  const raw = Buffer.concat([frame(1, out1), frame(2, err1), frame(1, Buffer.alloc(0)), frame(1, out2)]);
  for (const size of [1, 3, 8, 9, 4096, raw.length]) {
    async function* chunks() { for (let i = 0; i < raw.length; i += size) yield raw.subarray(i, i + size); }
    const out = collector();
    const err = collector();
    await demux(chunks(), out, err);
    assert.deepEqual(out.data(), Buffer.concat([out1, out2]), `chunk size ${size}`);
    assert.deepEqual(err.data(), err1);
  }
});

test('demux respects backpressure: it does not read ahead of a slow consumer', async () => {
  const chunk = 16 * 1024;
  const total = 64;
  let pulled = 0;
  let written = 0;
  let maxAhead = 0;
  async function* chunks() {
    for (let i = 0; i < total; i++) {
      pulled += chunk;
      maxAhead = Math.max(maxAhead, pulled - written);
      yield frame(1, Buffer.alloc(chunk, i));
    }
  }
  const slow = new Writable({
    highWaterMark: chunk,
    write(c: Buffer, _e, cb) { setTimeout(() => { written += c.length; cb(); }, 1); },
  });
  await demux(chunks(), slow, new PassThrough());
  await new Promise((r) => slow.end(r));
  assert.equal(written, chunk * total);
  assert.ok(maxAhead <= 3 * chunk, `read ${maxAhead} bytes ahead of the consumer`);
});

test('demux rejects a stream that ends inside a frame', async () => {
  const raw = frame(1, Buffer.from('abcdef')).subarray(0, 10);
  async function* chunks() { yield raw; }
  await assert.rejects(demux(chunks(), collector(), collector()), /middle of a frame/);
});
