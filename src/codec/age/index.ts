/**
 * The age v1 file format (https://age-encryption.org/v1), X25519 recipients only, on node:crypto alone; it
 * interoperates with the reference `age` / `age-keygen` tools (keys, files, recipient and identity files).
 * bech32.ts encodes keys, keys.ts parses and makes them, header.ts writes and opens the header, stream.ts
 * encrypts and decrypts the payload.
 */
export { AgeError } from './primitives.ts';
export { generateIdentity, recipientOf, parseRecipients, parseIdentities } from './keys.ts';
export { createEncryptStream, createDecryptStream } from './stream.ts';
