/**
 * The age v1 file format (https://age-encryption.org/v1), X25519 recipients only, on node:crypto alone.
 *
 * Encryption and decryption are Transform streams working in constant memory: the payload is processed in
 * 64 KiB STREAM chunks, each sealed with ChaCha20-Poly1305. The decryptor parses the header incrementally from
 * whatever chunk boundaries arrive and only ever emits plaintext of a chunk whose tag has verified. Interoperates
 * with the reference `age` / `age-keygen` tools (keys, files, recipient and identity files).
 *
 * Keys are Bech32 (BIP-173, not bech32m): recipients `age1…` (HRP "age", lower case), identities
 * `AGE-SECRET-KEY-1…` (HRP "AGE-SECRET-KEY-", upper case).
 */
import { Transform, type TransformCallback } from 'node:stream';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';

/** Every format, integrity and authentication failure of age data (and invalid keys given to the streams). */
export class AgeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgeError';
  }
}

const INTRO = 'age-encryption.org/v1';
const INTRO_BYTES = Buffer.from(INTRO, 'latin1');
const X25519_INFO = 'age-encryption.org/v1/X25519';
const FILE_KEY_SIZE = 16;
const PAYLOAD_NONCE_SIZE = 16;
const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
const COLUMNS = 64;
/** Headers are a few hundred bytes; the limit only bounds memory on garbage input. */
const MAX_HEADER_SIZE = 1024 * 1024;
/** The STREAM counter is 11 bytes; we write it as a 48-bit integer (2^48 chunks = 16 EiB), plenty. */
const MAX_CHUNKS = 2 ** 48;

const EMPTY = Buffer.alloc(0);
const ZERO_NONCE = Buffer.alloc(12);
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

// ---------------------------------------------------------------------------------------------------------------
// Bech32 (BIP-173)

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_REV = new Map<string, number>([...BECH32_CHARSET].map((c, i) => [c, i]));
const BECH32_GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function bech32Polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= BECH32_GEN[i]!;
  }
  return chk;
}

function bech32HrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits; without padding, leftover bits must be fewer than `from` and all zero (BIP-173). */
function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || acc !== 0) {
    return undefined;
  }
  return out;
}

/** Lower-case Bech32 encoding of `bytes` under `hrp` (callers upper-case the whole string where needed). */
function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const lower = hrp.toLowerCase();
  const data = convertBits([...bytes], 8, 5, true)!;
  const mod = bech32Polymod([...bech32HrpExpand(lower), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  let out = lower + '1';
  for (const d of data) out += BECH32_CHARSET[d];
  for (let i = 0; i < 6; i++) out += BECH32_CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return out;
}

/**
 * Decodes a Bech32 string (all lower or all upper case). Returns the lower-cased HRP and the data bytes; throws
 * a plain Error whose message is a reason that never quotes the input. No 90-character limit (as in age).
 */
function bech32Decode(s: string): { hrp: string; bytes: Buffer } {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 33 || c > 126) throw new Error('contains a character that is not allowed in Bech32');
  }
  const lower = s.toLowerCase();
  if (lower !== s && s.toUpperCase() !== s) throw new Error('mixes upper and lower case');
  const sep = lower.lastIndexOf('1');
  if (sep < 1) throw new Error('is not Bech32 (no "1" separator after a prefix)');
  if (sep + 7 > lower.length) throw new Error('is too short to hold a Bech32 checksum');
  const hrp = lower.slice(0, sep);
  const values: number[] = [];
  for (let i = sep + 1; i < lower.length; i++) {
    const v = BECH32_REV.get(lower[i]!);
    if (v === undefined) throw new Error('contains a character that is not in the Bech32 alphabet');
    values.push(v);
  }
  if (bech32Polymod([...bech32HrpExpand(hrp), ...values]) !== 1) throw new Error('has an invalid Bech32 checksum (typo or truncated?)');
  const bytes = convertBits(values.slice(0, -6), 5, 8, false);
  if (!bytes) throw new Error('has invalid Bech32 padding');
  return { hrp, bytes: Buffer.from(bytes) };
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';

/** 32-byte X25519 public key of an `age1…` recipient; throws a plain Error with a reason (no quoting). */
function decodeRecipient(s: string): Buffer {
  const upper = s.toUpperCase();
  if (upper.startsWith('AGE-SECRET-KEY-')) throw new Error('is a secret key (identity), not a recipient: use its public key (age-keygen -y)');
  if (upper.startsWith('AGE-PLUGIN-') || /^AGE1[A-Z0-9]+1/.test(upper)) throw new Error('is a plugin recipient, which is not supported (X25519 age1… only)');
  if (s.startsWith('ssh-') || s.startsWith('ecdsa-')) throw new Error('is an SSH key, which is not supported (X25519 age1… only)');
  const { hrp, bytes } = bech32Decode(s);
  if (hrp !== RECIPIENT_HRP) throw new Error('is not an age X25519 recipient (expected "age1…")');
  if (bytes.length !== 32) throw new Error(`holds ${bytes.length} bytes, an X25519 recipient holds 32`);
  return bytes;
}

/** 32-byte X25519 private key of an `AGE-SECRET-KEY-1…` identity; throws a plain Error with a reason (no quoting). */
function decodeIdentity(s: string): Buffer {
  if (s.toUpperCase().startsWith('AGE-PLUGIN-')) throw new Error('is a plugin identity, which is not supported (AGE-SECRET-KEY-1… only)');
  if (/^age1/i.test(s)) throw new Error('is a recipient (public key), not an identity');
  const { hrp, bytes } = bech32Decode(s);
  if (hrp !== IDENTITY_HRP) throw new Error('is not an age X25519 identity (expected "AGE-SECRET-KEY-1…")');
  if (bytes.length !== 32) throw new Error(`holds ${bytes.length} bytes, an X25519 identity holds 32`);
  return bytes;
}

function encodeRecipient(pub: Uint8Array): string {
  return bech32Encode(RECIPIENT_HRP, pub);
}
function encodeIdentity(priv: Uint8Array): string {
  return bech32Encode(IDENTITY_HRP, priv).toUpperCase();
}

function privateKeyFromRaw(raw: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}
function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' });
}
function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}
function rawPrivateKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return der.subarray(der.length - 32);
}

/** A fresh X25519 key pair as age strings. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { identity: encodeIdentity(rawPrivateKey(privateKey)), recipient: encodeRecipient(rawPublicKey(publicKey)) };
}

/** The `age1…` recipient of an `AGE-SECRET-KEY-1…` identity (what `age-keygen -y` prints). */
export function recipientOf(identity: string): string {
  let raw: Buffer;
  try {
    raw = decodeIdentity(identity.trim());
  } catch (err) {
    throw new AgeError(`age: invalid identity: it ${(err as Error).message}`);
  }
  return encodeRecipient(rawPublicKey(createPublicKey(privateKeyFromRaw(raw))));
}

/** At most a short prefix of a bad entry, for error messages: never a whole key. */
function preview(entry: string): string {
  return entry.length > 12 ? `"${entry.slice(0, 8)}…"` : `"${entry}"`;
}

/**
 * Recipients from a recipients file or option value: one per line, or separated by commas/whitespace; `#` starts
 * a comment; blank lines are ignored. Returns them normalised (lower case). Throws an Error naming `source` and the
 * 1-based position (and line) of the first bad entry, or if there are none.
 */
export function parseRecipients(text: string, source: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  let position = 0;
  for (let l = 0; l < lines.length; l++) {
    const hash = lines[l]!.indexOf('#');
    const content = hash === -1 ? lines[l]! : lines[l]!.slice(0, hash);
    for (const entry of content.split(/[\s,]+/)) {
      if (!entry) continue;
      position++;
      try {
        out.push(encodeRecipient(decodeRecipient(entry)));
      } catch (err) {
        const shown = entry.toUpperCase().startsWith('AGE-SECRET-KEY-') ? '' : ` ${preview(entry)}`;
        throw new Error(`${source}: recipient ${position} (line ${l + 1})${shown} ${(err as Error).message}`);
      }
    }
  }
  if (out.length === 0) throw new Error(`${source}: no recipients found (expected age1… public keys, one per line)`);
  return out;
}

/**
 * Identities from an identity file as written by `age-keygen` (`# created:` / `# public key:` comments, then one
 * `AGE-SECRET-KEY-1…` line). Comment and blank lines are ignored; every other line must be an X25519 identity.
 * Throws an Error naming `source` (and the line) if one is malformed or there are none; never quotes key material.
 */
export function parseIdentities(text: string, source: string): string[] {
  if (text.startsWith(INTRO) || text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) {
    throw new Error(`${source}: is an encrypted (passphrase-protected) identity file, which is not supported`);
  }
  const out: string[] = [];
  const lines = text.split('\n');
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(encodeIdentity(decodeIdentity(line)));
    } catch (err) {
      throw new Error(`${source}: line ${l + 1}: the identity ${(err as Error).message}`);
    }
  }
  if (out.length === 0) throw new Error(`${source}: no identities found (expected an AGE-SECRET-KEY-1… line, as written by age-keygen)`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Primitives

function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

function isAllZero(b: Buffer): boolean {
  return b.equals(Buffer.alloc(b.length));
}

/** Unpadded standard base64. */
function b64encode(b: Buffer): string {
  const s = b.toString('base64');
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  return pad ? s.slice(0, -pad) : s;
}

const B64_RE = /^[A-Za-z0-9+/]*$/;
/** Strict unpadded standard base64 (canonical: no padding, zero trailing bits), or undefined. */
function b64decode(s: string): Buffer | undefined {
  if (!B64_RE.test(s) || s.length % 4 === 1) return undefined;
  const b = Buffer.from(s, 'base64');
  return b64encode(b) === s ? b : undefined;
}

/** Seals with ChaCha20-Poly1305; returns ciphertext || tag. Only for small values (header). */
function aeadSeal(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Opens ciphertext || tag; the plaintext only if the tag verifies, else undefined. */
function aeadOpen(key: Buffer | KeyObject, nonce: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const plaintext = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    d.final();
  } catch {
    return undefined;
  }
  return plaintext;
}

/** Sets the STREAM nonce: 11-byte big-endian counter || last-chunk flag. */
function setChunkNonce(nonce: Buffer, counter: number, last: boolean): void {
  if (counter >= MAX_CHUNKS) throw new AgeError('age: payload too large (chunk counter overflow)');
  nonce.fill(0, 0, 5);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
}

function headerMac(fileKey: Buffer, macInput: Buffer): Buffer {
  return createHmac('sha256', hkdf(fileKey, EMPTY, 'header')).update(macInput).digest();
}

/** Base64 body lines of a stanza: 64 columns, the last line always shorter (possibly empty). */
function wrapBody(b64: string): string {
  let out = '';
  for (let i = 0; i + COLUMNS <= b64.length; i += COLUMNS) out += b64.slice(i, i + COLUMNS) + '\n';
  return out + b64.slice(b64.length - (b64.length % COLUMNS)) + '\n';
}

function x25519Stanza(fileKey: Buffer, recipientPub: Buffer, index: number): string {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const share = rawPublicKey(publicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: publicKeyFromRaw(recipientPub) });
  } catch (err) {
    throw new AgeError(`age: recipient ${index} is not a usable X25519 public key (low-order point)`, { cause: err });
  }
  if (isAllZero(shared)) throw new AgeError(`age: recipient ${index} is not a usable X25519 public key (low-order point)`);
  const wrapKey = hkdf(shared, Buffer.concat([share, recipientPub]), X25519_INFO);
  const body = aeadSeal(wrapKey, ZERO_NONCE, fileKey);
  return `-> X25519 ${b64encode(share)}\n${wrapBody(b64encode(body))}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Encryption

/** Pushes what one transform call produced as one buffer (not two small pushes per 64 KiB chunk); returns a fresh list. */
function pushJoined(stream: Transform, out: Buffer[]): Buffer[] {
  if (out.length) stream.push(out.length === 1 ? out[0] : Buffer.concat(out));
  return [];
}

/**
 * A Transform that encrypts its input to the given `age1…` recipients (at least one). Invalid recipients throw
 * (AgeError) here, before any data flows. Output: header, 16-byte nonce, then 64 KiB STREAM chunks.
 */
export function createEncryptStream(recipients: string[]): Transform {
  if (recipients.length === 0) throw new AgeError('age: no recipients to encrypt to');
  const pubs = recipients.map((r, i) => {
    try {
      return decodeRecipient(r.trim());
    } catch (err) {
      throw new AgeError(`age: recipient ${i + 1} ${(err as Error).message}`);
    }
  });

  const fileKey = randomBytes(FILE_KEY_SIZE);
  let header = INTRO + '\n';
  pubs.forEach((pub, i) => (header += x25519Stanza(fileKey, pub, i + 1)));
  header += '---';
  const mac = headerMac(fileKey, Buffer.from(header, 'latin1'));
  header += ' ' + b64encode(mac) + '\n';
  const payloadNonce = randomBytes(PAYLOAD_NONCE_SIZE);
  const key = createSecretKey(hkdf(fileKey, payloadNonce, 'payload'));
  fileKey.fill(0);
  let prelude: Buffer | undefined = Buffer.concat([Buffer.from(header, 'latin1'), payloadNonce]);

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
      try {
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
          const n = Math.min(CHUNK_SIZE - fill, chunk.length - off);
          chunk.copy(staging, fill, off, off + n);
          fill += n;
          off += n;
        }
        out = pushJoined(this, out);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback): void {
      try {
        start();
        // Final chunk: short (or full when the plaintext is an exact multiple), empty only for empty plaintext.
        seal(staging.subarray(0, fill), true);
        fill = 0;
        out = pushJoined(this, out);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Decryption: header parsing

interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
  line: number;
}
interface Header {
  stanzas: Stanza[];
  /** the header text up to and including "---" */
  macInput: Buffer;
  mac: Buffer;
}

const VCHAR_RE = /^[\x21-\x7e]+$/;
const PRINTABLE_RE = /^[\x20-\x7e]*$/;

/** Incremental, line-oriented header parser. `feed` returns the header and where it ended once complete. */
class HeaderParser {
  #parts: Buffer[] = [];
  #partLen = 0;
  #total = 0;
  #lineNo = 0;
  #text = '';
  #stanzas: Stanza[] = [];
  #open: { type: string; args: string[]; body: Buffer[]; line: number } | undefined;

  get started(): boolean {
    return this.#total > 0;
  }

  feed(chunk: Buffer): { header: Header; end: number } | undefined {
    let off = 0;
    while (off < chunk.length) {
      const nl = chunk.indexOf(10, off);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(off, end);
      this.#total += end - off + (nl === -1 ? 0 : 1);
      if (this.#total > MAX_HEADER_SIZE) throw new AgeError(`age: header too large (no end within ${MAX_HEADER_SIZE} bytes)`);
      if (this.#lineNo === 0) this.#checkIntro(piece);
      if (nl === -1) {
        this.#parts.push(piece);
        this.#partLen += piece.length;
        return undefined;
      }
      const bytes = this.#parts.length ? Buffer.concat([...this.#parts, piece]) : piece;
      this.#parts = [];
      this.#partLen = 0;
      off = nl + 1;
      const header = this.#line(bytes.toString('latin1'));
      if (header) return { header, end: off };
    }
    return undefined;
  }

  /** Fails fast on input that is not age v1 (the first line must be exactly the intro). */
  #checkIntro(piece: Buffer): void {
    const expected = INTRO_BYTES.subarray(this.#partLen, this.#partLen + piece.length);
    if (expected.length === piece.length && expected.equals(piece)) return;
    const seen = Buffer.concat([...this.#parts, piece]).toString('latin1');
    if (seen.startsWith(INTRO)) throw new AgeError(`age: malformed header line 1: expected exactly "${INTRO}" (CRLF line endings?)`);
    if (seen.startsWith('-')) throw new AgeError('age: not a binary age file (ASCII-armored/PEM input is not supported)');
    if (seen.startsWith('age-encryption.org/')) throw new AgeError(`age: unsupported age format version (expected "${INTRO}")`);
    throw new AgeError('age: not an age file (it does not start with "age-encryption.org/v1")');
  }

  #malformed(what: string): AgeError {
    return new AgeError(`age: malformed header line ${this.#lineNo + 1}: ${what}`);
  }

  #line(line: string): Header | undefined {
    if (!PRINTABLE_RE.test(line)) throw this.#malformed('contains non-printable characters');
    if (this.#lineNo === 0) {
      if (line !== INTRO) throw new AgeError('age: not an age file (it does not start with "age-encryption.org/v1")');
    } else if (this.#open) {
      if (line.length > COLUMNS) throw this.#malformed(`stanza body line longer than ${COLUMNS} columns`);
      const bytes = b64decode(line);
      if (!bytes) throw this.#malformed('stanza body is not canonical unpadded base64');
      this.#open.body.push(bytes);
      if (line.length < COLUMNS) {
        const { type, args, body, line: at } = this.#open;
        this.#stanzas.push({ type, args, body: Buffer.concat(body), line: at });
        this.#open = undefined;
      }
    } else if (line.startsWith('---')) {
      const mac = line.startsWith('--- ') ? b64decode(line.slice(4)) : undefined;
      if (!mac || mac.length !== 32) throw this.#malformed('bad MAC line (expected "--- " and a base64 HMAC-SHA-256)');
      if (this.#stanzas.length === 0) throw new AgeError('age: header has no recipient stanzas');
      return { stanzas: this.#stanzas, macInput: Buffer.from(this.#text + '---', 'latin1'), mac };
    } else if (line.startsWith('->')) {
      const [arrow, type, ...args] = line.split(' ');
      if (arrow !== '->' || type === undefined || !VCHAR_RE.test(type) || !args.every((a) => VCHAR_RE.test(a))) {
        throw this.#malformed('bad stanza line (expected "-> TYPE ARGS…" with single spaces)');
      }
      this.#open = { type, args, body: [], line: this.#lineNo + 1 };
    } else {
      throw this.#malformed('expected a "->" stanza or the "---" MAC line');
    }
    this.#text += line + '\n';
    this.#lineNo++;
    return undefined;
  }
}

interface Identity {
  priv: KeyObject;
  pub: Buffer;
}

/** The file key from the first X25519 stanza one of the identities opens; other stanza types are skipped. */
function unwrapFileKey(stanzas: Stanza[], identities: Identity[]): Buffer {
  const skipped = new Set<string>();
  for (const s of stanzas) {
    if (s.type !== 'X25519') {
      skipped.add(s.type);
      continue;
    }
    const where = `X25519 stanza at header line ${s.line}`;
    if (s.args.length !== 1) throw new AgeError(`age: malformed ${where}: expected exactly one argument`);
    const share = b64decode(s.args[0]!);
    if (!share || share.length !== 32) throw new AgeError(`age: malformed ${where}: the ephemeral share is not 32 bytes of base64`);
    if (s.body.length !== FILE_KEY_SIZE + TAG_SIZE) throw new AgeError(`age: malformed ${where}: the body is not ${FILE_KEY_SIZE + TAG_SIZE} bytes`);
    const sharePub = publicKeyFromRaw(share);
    for (const id of identities) {
      let shared: Buffer | undefined;
      try {
        shared = diffieHellman({ privateKey: id.priv, publicKey: sharePub });
      } catch {
        shared = undefined; // OpenSSL refuses an all-zero result (low-order point)
      }
      if (!shared || isAllZero(shared)) throw new AgeError(`age: invalid ${where}: low-order ephemeral share (all-zero shared secret)`);
      const wrapKey = hkdf(shared, Buffer.concat([share, id.pub]), X25519_INFO);
      const fileKey = aeadOpen(wrapKey, ZERO_NONCE, s.body);
      if (fileKey) return fileKey;
    }
  }
  const note = skipped.size ? ` (skipped unsupported stanza types: ${[...skipped].join(', ')})` : '';
  throw new AgeError(`age: no identity matches any recipient stanza${note}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Decryption: stream

/**
 * A Transform that decrypts age data with the given `AGE-SECRET-KEY-1…` identities (invalid ones throw AgeError
 * here). Plaintext of a chunk is emitted only after its tag verifies; the stream fails with an AgeError on any
 * format, integrity or authentication problem, so a consumer must treat output as valid only if the stream ends
 * without error (truncation is detected only at the end). With `headerOnly` it only proves that an identity
 * opens the header (file key unwrapped, header MAC verified) and emits nothing.
 */
export function createDecryptStream(identities: string[], opts: { headerOnly?: boolean } = {}): Transform {
  if (identities.length === 0) throw new AgeError('age: no identities to decrypt with');
  const ids: Identity[] = identities.map((s, i) => {
    let raw: Buffer;
    try {
      raw = decodeIdentity(s.trim());
    } catch (err) {
      throw new AgeError(`age: identity ${i + 1} ${(err as Error).message}`);
    }
    const priv = privateKeyFromRaw(raw);
    return { priv, pub: rawPublicKey(createPublicKey(priv)) };
  });

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
        const n = Math.min(PAYLOAD_NONCE_SIZE - nonceFill, chunk.length - off);
        chunk.copy(payloadNonce, nonceFill, off, off + n);
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
      const n = Math.min(SEALED_CHUNK_SIZE - fill, chunk.length - off);
      chunk.copy(staging, fill, off, off + n);
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
      try {
        let off = 0;
        if (phase === 'header') {
          const done = parser.feed(chunk);
          if (!done) return callback();
          fileKey = unwrapFileKey(done.header.stanzas, ids);
          if (!timingSafeEqual(headerMac(fileKey, done.header.macInput), done.header.mac)) {
            throw new AgeError('age: header MAC mismatch (header modified, or corrupted)');
          }
          phase = opts.headerOnly ? 'done' : 'nonce';
          off = done.end;
        }
        if (opts.headerOnly) return callback();
        payload(chunk, off);
        out = pushJoined(this, out);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback): void {
      try {
        switch (phase) {
          case 'header':
            throw new AgeError(parser.started ? 'age: truncated header' : 'age: empty input (not an age file)');
          case 'nonce':
            throw new AgeError('age: truncated file (payload nonce missing)');
          case 'done':
            return callback();
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
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
