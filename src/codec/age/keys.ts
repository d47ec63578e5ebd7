/**
 * age X25519 keys as strings: generating an identity, its recipient, and parsing recipient and identity files
 * (as `age-keygen` writes them) into raw keys for the header. Error messages never quote key material.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { AgeError, INTRO } from './primitives.ts';

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

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
export function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' });
}
export function rawPublicKey(key: KeyObject): Buffer {
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

/** An identity ready for the header: its private key and its raw public key (the HKDF salt needs it). */
export interface Identity {
  priv: KeyObject;
  pub: Buffer;
}

/** The raw public keys of `age1…` recipients given to the encryptor; AgeError naming the first invalid one. */
export function recipientKeys(recipients: string[]): Buffer[] {
  if (recipients.length === 0) throw new AgeError('age: no recipients to encrypt to');
  return recipients.map((r, i) => {
    try {
      return decodeRecipient(r.trim());
    } catch (err) {
      throw new AgeError(`age: recipient ${i + 1} ${(err as Error).message}`);
    }
  });
}

/** The keys of `AGE-SECRET-KEY-1…` identities given to the decryptor; AgeError naming the first invalid one. */
export function identityKeys(identities: string[]): Identity[] {
  if (identities.length === 0) throw new AgeError('age: no identities to decrypt with');
  return identities.map((s, i) => {
    let raw: Buffer;
    try {
      raw = decodeIdentity(s.trim());
    } catch (err) {
      throw new AgeError(`age: identity ${i + 1} ${(err as Error).message}`);
    }
    const priv = privateKeyFromRaw(raw);
    return { priv, pub: rawPublicKey(createPublicKey(priv)) };
  });
}
