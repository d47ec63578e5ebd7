/**
 * The age payload as Transform streams in constant memory: a 16-byte nonce, then 64 KiB STREAM chunks each sealed
 * with ChaCha20-Poly1305. The decryptor emits plaintext of a chunk only once its tag has verified.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createCipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { AgeError, FILE_KEY_SIZE, TAG_SIZE, aeadOpen, hkdf } from './primitives.ts';
import { identityKeys, recipientKeys } from './keys.ts';
import { HeaderParser, encodeHeader, openHeader } from './header.ts';

const PAYLOAD_NONCE_SIZE = 16;
const CHUNK_SIZE = 64 * 1024;
const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** The STREAM counter is 11 bytes; we write it as a 48-bit integer (2^48 chunks = 16 EiB), plenty. */
const MAX_CHUNKS = 2 ** 48;

/** Sets the STREAM nonce: 11-byte big-endian counter || last-chunk flag. */
function setChunkNonce(nonce: Buffer, counter: number, last: boolean): void {
  if (counter >= MAX_CHUNKS) throw new AgeError('age: payload too large (chunk counter overflow)');
  nonce.fill(0, 0, 5);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
}

/** Runs one step of a Transform, then its callback; a throw fails the stream instead. */
function guarded(callback: TransformCallback, step: () => void): void {
  try {
    step();
    callback();
  } catch (err) {
    callback(err as Error);
  }
}

/**
 * Pushes what one transform call produced as one buffer (not two small pushes per 64 KiB chunk); returns a fresh
 * list. Not codec/write.ts's coalesce(): nothing coalesces after the encryptor, and age stands alone.
 */
function pushJoined(stream: Transform, out: Buffer[]): Buffer[] {
  if (out.length) stream.push(out.length === 1 ? out[0] : Buffer.concat(out));
  return [];
}

/**
 * A Transform that encrypts its input to the given `age1…` recipients (at least one). Invalid recipients throw
 * (AgeError) here, before any data flows. Output: header, 16-byte nonce, then 64 KiB STREAM chunks.
 */
export function createEncryptStream(recipients: string[]): Transform {
  const pubs = recipientKeys(recipients);

  const fileKey = randomBytes(FILE_KEY_SIZE);
  const header = encodeHeader(fileKey, pubs);
  const payloadNonce = randomBytes(PAYLOAD_NONCE_SIZE);
  const key = createSecretKey(hkdf(fileKey, payloadNonce, 'payload'));
  fileKey.fill(0);
  let prelude: Buffer | undefined = Buffer.concat([header, payloadNonce]);

  // Plaintext of the chunk being assembled; it is sealed only once we know whether it is the last one.
  const staging = Buffer.allocUnsafe(CHUNK_SIZE);
  let fill = 0;
  let counter = 0;
  const nonce = Buffer.alloc(12);

  let out: Buffer[] = []; // what one transform call produces (pushJoined)
  function seal(plaintext: Buffer, last: boolean): void {
    setChunkNonce(nonce, counter++, last);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
    const ct = c.update(plaintext);
    c.final();
    if (ct.length) out.push(ct);
    out.push(c.getAuthTag());
  }
  function start(): void {
    if (prelude) {
      out.push(prelude);
      prelude = undefined;
    }
  }

  return new Transform({
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      guarded(callback, () => {
        start();
        let off = 0;
        while (off < chunk.length) {
          // More data exists, so a full staged chunk is not the last one.
          if (fill === CHUNK_SIZE) {
            seal(staging, false);
            fill = 0;
          }
          // Zero-copy path: a whole chunk of the input that is known not to be the last one.
          if (fill === 0 && chunk.length - off > CHUNK_SIZE) {
            seal(chunk.subarray(off, off + CHUNK_SIZE), false);
            off += CHUNK_SIZE;
            continue;
          }
          const n = chunk.copy(staging, fill, off); // as much as fits
          fill += n;
          off += n;
        }
        out = pushJoined(this, out);
      });
    },
    flush(this: Transform, callback: TransformCallback): void {
      guarded(callback, () => {
        start();
        // Final chunk: short (or full when the plaintext is an exact multiple), empty only for empty plaintext.
        seal(staging.subarray(0, fill), true);
        fill = 0;
        out = pushJoined(this, out);
      });
    },
  });
}

/**
 * A Transform that decrypts age data with the given `AGE-SECRET-KEY-1…` identities (invalid ones throw AgeError
 * here). Plaintext of a chunk is emitted only after its tag verifies; the stream fails with an AgeError on any
 * format, integrity or authentication problem, so a consumer must treat output as valid only if the stream ends
 * without error (truncation is detected only at the end). With `headerOnly` it only proves that an identity
 * opens the header (file key unwrapped, header MAC verified) and emits nothing.
 */
export function createDecryptStream(identities: string[], opts: { headerOnly?: boolean } = {}): Transform {
  const ids = identityKeys(identities);

  const parser = new HeaderParser();
  let phase: 'header' | 'nonce' | 'payload' | 'done' = 'header';
  let fileKey: Buffer | undefined;
  const payloadNonce = Buffer.alloc(PAYLOAD_NONCE_SIZE);
  let nonceFill = 0;
  let key: KeyObject | undefined;
  const staging = Buffer.allocUnsafe(SEALED_CHUNK_SIZE);
  let fill = 0;
  let counter = 0;
  const nonce = Buffer.alloc(12);

  function open(sealed: Buffer, last: boolean): Buffer | undefined {
    setChunkNonce(nonce, counter, last);
    return aeadOpen(key!, nonce, sealed);
  }

  let out: Buffer[] = []; // what one transform call produces (pushJoined)
  /** A full sealed chunk: normally not the last one; a full-size last chunk ends a multiple-of-64-KiB plaintext. */
  function openFull(sealed: Buffer): void {
    let plaintext = open(sealed, false);
    if (!plaintext) {
      plaintext = open(sealed, true);
      if (!plaintext) throw new AgeError(`age: payload chunk ${counter + 1} failed authentication`);
      phase = 'done';
    }
    counter++;
    out.push(plaintext);
  }

  function payload(chunk: Buffer, from: number): void {
    let off = from;
    while (off < chunk.length) {
      if (phase === 'done') {
        throw new AgeError(`age: trailing data after the final payload chunk (${chunk.length - off}+ bytes)`);
      }
      if (phase === 'nonce') {
        const n = chunk.copy(payloadNonce, nonceFill, off);
        nonceFill += n;
        off += n;
        if (nonceFill === PAYLOAD_NONCE_SIZE) {
          key = createSecretKey(hkdf(fileKey!, payloadNonce, 'payload'));
          fileKey!.fill(0);
          fileKey = undefined;
          phase = 'payload';
        }
        continue;
      }
      if (fill === 0 && chunk.length - off >= SEALED_CHUNK_SIZE) {
        openFull(chunk.subarray(off, off + SEALED_CHUNK_SIZE));
        off += SEALED_CHUNK_SIZE;
        continue;
      }
      const n = chunk.copy(staging, fill, off);
      fill += n;
      off += n;
      if (fill === SEALED_CHUNK_SIZE) {
        fill = 0;
        openFull(staging);
      }
    }
  }

  return new Transform({
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      guarded(callback, () => {
        let off = 0;
        if (phase === 'header') {
          const done = parser.feed(chunk);
          if (!done) return;
          fileKey = openHeader(done.header, ids);
          phase = opts.headerOnly ? 'done' : 'nonce';
          off = done.end;
        }
        if (opts.headerOnly) return;
        payload(chunk, off);
        out = pushJoined(this, out);
      });
    },
    flush(this: Transform, callback: TransformCallback): void {
      guarded(callback, () => {
        switch (phase) {
          case 'header':
            throw new AgeError(parser.started ? 'age: truncated header' : 'age: empty input (not an age file)');
          case 'nonce':
            throw new AgeError('age: truncated file (payload nonce missing)');
          case 'done':
            return;
          case 'payload':
            break;
        }
        const n = counter + 1;
        if (fill === 0) throw new AgeError(`age: truncated payload (no final chunk after ${counter} full chunks)`);
        if (fill < TAG_SIZE) throw new AgeError(`age: truncated payload (chunk ${n} is shorter than its authentication tag)`);
        const sealed = staging.subarray(0, fill);
        const plaintext = open(sealed, true);
        if (!plaintext) {
          if (open(sealed, false)) throw new AgeError(`age: truncated payload (chunk ${n} is short but not marked final)`);
          throw new AgeError(`age: payload chunk ${n} failed authentication (final chunk corrupted, truncated mid-chunk, or followed by extra data)`);
        }
        if (plaintext.length === 0 && counter > 0) {
          throw new AgeError(`age: invalid payload (empty final chunk ${n} after ${counter} full chunks)`);
        }
        counter++;
        phase = 'done';
        if (plaintext.length) this.push(plaintext);
      });
    },
  });
}
