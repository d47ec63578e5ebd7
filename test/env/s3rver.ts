/**
 * s3rver (a fake S3 server) for the tests, on 127.0.0.1 only: `node test/env/s3rver.ts DIR [PORT]`.
 * Prints "listening PORT" when ready; stops on SIGTERM/SIGINT. Run as its own process so that a test can
 * kill it in the middle of an upload.
 */
import crypto from 'node:crypto';
import S3rver from 's3rver';

// s3rver's ListObjectsV2 continuation tokens use single DES ('des'), which OpenSSL 3 (Node 17+) no longer
// offers: every listing longer than one page failed with InternalError. Two-key triple DES with both keys
// equal (K, K) is the same cipher, and OpenSSL 3 still has it.
const { createCipheriv, createDecipheriv } = crypto;
const des = (name: string, key: crypto.CipherKey): [string, crypto.CipherKey] =>
  (name === 'des' && Buffer.isBuffer(key) && key.length === 8 ? ['des-ede-cbc', Buffer.concat([key, key])] : [name, key]);
Object.assign(crypto, {
  createCipheriv: (name: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, o?: never) => createCipheriv(...des(name, key), iv, o),
  createDecipheriv: (name: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, o?: never) => createDecipheriv(...des(name, key), iv, o),
});

const [dir, port] = process.argv.slice(2);
if (!dir) { console.error('usage: s3rver.ts DIR [PORT]'); process.exit(64); }
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), silent: true, directory: dir, configureBuckets: [{ name: 'dr-test-bucket', configs: [] }] });
const { port: actual } = await server.run();
console.log(`listening ${actual}`);
const stop = () => { server.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
