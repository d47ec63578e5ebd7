/**
 * s3rver (a fake S3 server) for the tests, on 127.0.0.1 only: `node test/env/s3rver.ts DIR [PORT]`.
 * Prints "listening PORT" when ready; stops on SIGTERM/SIGINT. Run as its own process so that a test can
 * kill it in the middle of an upload.
 */
import S3rver from 's3rver';

const [dir, port] = process.argv.slice(2);
if (!dir) { console.error('usage: s3rver.ts DIR [PORT]'); process.exit(64); }
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), silent: true, directory: dir, configureBuckets: [{ name: 'dr-test-bucket', configs: [] }] });
const { port: actual } = await server.run();
console.log(`listening ${actual}`);
const stop = () => { server.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
