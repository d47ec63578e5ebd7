/**
 * The age v1 header: X25519 recipient stanzas wrapping the file key, and the HMAC that seals them. Writing it whole
 * for the encryptor; parsing it line by line from whatever chunk boundaries arrive for the decryptor, then opening
 * the file key with an identity and checking the MAC.
 */
import { createHmac, diffieHellman, generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { AgeError, FILE_KEY_SIZE, INTRO, TAG_SIZE, aeadOpen, aeadSeal, hkdf } from './primitives.ts';
import { publicKeyFromRaw, rawPublicKey, type Identity } from './keys.ts';

const INTRO_BYTES = Buffer.from(INTRO, 'latin1');
const X25519_INFO = 'age-encryption.org/v1/X25519';
const COLUMNS = 64;
/** Headers are a few hundred bytes; the limit only bounds memory on garbage input. */
const MAX_HEADER_SIZE = 1024 * 1024;

const EMPTY = Buffer.alloc(0);
const ZERO_NONCE = Buffer.alloc(12);

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

/** The whole header for `fileKey` wrapped to each recipient, MAC line and final newline included. */
export function encodeHeader(fileKey: Buffer, recipients: Buffer[]): Buffer {
  let header = INTRO + '\n';
  recipients.forEach((pub, i) => (header += x25519Stanza(fileKey, pub, i + 1)));
  header += '---';
  const mac = headerMac(fileKey, Buffer.from(header, 'latin1'));
  header += ' ' + b64encode(mac) + '\n';
  return Buffer.from(header, 'latin1');
}

interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
  line: number;
}
export interface Header {
  stanzas: Stanza[];
  /** the header text up to and including "---" */
  macInput: Buffer;
  mac: Buffer;
}

const VCHAR_RE = /^[\x21-\x7e]+$/;
const PRINTABLE_RE = /^[\x20-\x7e]*$/;

/** Incremental, line-oriented header parser. `feed` returns the header and where it ended once complete. */
export class HeaderParser {
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

/** The file key of a parsed header, once an identity has unwrapped it and the header MAC has verified. */
export function openHeader(header: Header, identities: Identity[]): Buffer {
  const fileKey = unwrapFileKey(header.stanzas, identities);
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
    throw new AgeError('age: header MAC mismatch (header modified, or corrupted)');
  }
  return fileKey;
}
