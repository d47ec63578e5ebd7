/** What the age header and payload share: the error type, the intro line, key sizes, HKDF and ChaCha20-Poly1305. */
import { createCipheriv, createDecipheriv, hkdfSync, type KeyObject } from 'node:crypto';

/** Every format, integrity and authentication failure of age data (and invalid keys given to the streams). */
export class AgeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgeError';
  }
}

export const INTRO = 'age-encryption.org/v1';
export const FILE_KEY_SIZE = 16;
export const TAG_SIZE = 16;

export function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

/** Seals with ChaCha20-Poly1305; returns ciphertext || tag. Only for small values (header). */
export function aeadSeal(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Opens ciphertext || tag; the plaintext only if the tag verifies, else undefined. */
export function aeadOpen(key: Buffer | KeyObject, nonce: Buffer, sealed: Buffer): Buffer | undefined {
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
