// The S3 destination against s3rver (its own process, 127.0.0.1) behind the fault proxy: per-key DeleteObjects
// errors, paginated listings, stale multipart uploads over several pages, and prune on top of it. No Docker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { scratchDir, startS3 } from '../helpers.ts';
import { startFaultProxy, type FaultProxy } from '../env/faultproxy.ts';
import { S3Storage, S3DeleteError } from '../../src/storage/s3.ts';
import { RetryingStorage } from '../../src/storage/retry.ts';
import { pruneDestinations } from '../../src/repo/prune.ts';
import { renderPrune } from '../../src/cli/commands/prune.ts';
import { cleanupIncomplete } from '../../src/repo/catalog.ts';
import type { Logger } from '../../src/core/log.ts';
import { type S3Settings } from '../../src/core/config.ts';

let s3: Awaited<ReturnType<typeof startS3>>;
let proxy: FaultProxy;
const logged: { level: string; obj: unknown; msg: string }[] = [];
const log = new Proxy({}, { get: (_t, level: string) => (obj: unknown, msg: string) => { logged.push({ level, obj, msg }); } }) as unknown as Logger;

before(async () => {
  s3 = await startS3(join(scratchDir(), 's3storage-data'));
  proxy = await startFaultProxy(s3.port);
});
after(async () => { await proxy?.close(); await s3?.stop(); });

function storage(prefix: string, extra: Partial<S3Settings> = {}): S3Storage {
  return new S3Storage({
    endpoint: `http://127.0.0.1:${proxy.port}`, region: 'us-east-1', bucket: 'dr-test-bucket', prefix, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER',
    forcePathStyle: true, partSizeMB: 5, maxAttempts: 2, timeoutSec: 10, ...extra,
  });
}
const retrying = (s: S3Storage) => new RetryingStorage(s, { attempts: 3, baseMs: 1, maxMs: 5 });
const put = (s: S3Storage, key: string, body = 'x') => s.put(key, Readable.from([Buffer.from(body)]));
const keys = async (s: S3Storage, p = '') => (await s.list(p)).map((o) => o.key);

test('DeleteObjects per-key errors fail the deletion with the key and the S3 code; only that key stays; no retry for AccessDenied', async () => {
  const s = storage('del-test');
  for (const k of ['b1/manifest.json', 'b1/volumes/a.age', 'b1/volumes/b.age', 'b1/dumps/c.age', 'b2/x']) await put(s, k);
  proxy.plan([{ fault: 'deleteError', times: Infinity, key: /b1\/volumes\/b\.age$/ }]);
  const before = proxy.injected.deleteError;
  try {
    const err = await retrying(s).deletePrefix('b1').then(() => null, (e: unknown) => e);
    assert.ok(err instanceof S3DeleteError, `a per-key error must fail the deletion (got ${String(err)})`);
    assert.match(err.message, /deletion under b1 failed for 1 of 4 objects: b1\/volumes\/b\.age: AccessDenied/);
    assert.deepEqual(err.left.map((e) => [e.key, e.code]), [['b1/volumes/b.age', 'AccessDenied']]);
    assert.equal(err.retryable, false);
    assert.equal(proxy.injected.deleteError - before, 1, 'a permanent per-key error is not retried');
  } finally { proxy.plan([]); }
  assert.deepEqual(await keys(s), ['b1/volumes/b.age', 'b2/x'], 'the other objects are gone, the failed one is really still there');
  // a transient per-key error (InternalError) is retried by the wrapper, and the retry finishes the job
  proxy.plan([{ fault: 'deleteError', times: 1, key: /b1\//, code: 'InternalError' }]);
  try { await retrying(s).deletePrefix('b1'); } finally { proxy.plan([]); }
  assert.deepEqual(await keys(s), ['b2/x']);
});

test('listings read every page: ListObjectsV2 with small pages', async () => {
  const s = storage('page-test', { pageSize: 2 });
  const want = Array.from({ length: 7 }, (_, i) => `20260101T00000${i}Z-abcdef/volumes/v${i}.age`);
  for (const k of want) await put(s, k);
  const n = proxy.requests;
  assert.deepEqual(await keys(s), want);
  assert.ok(proxy.requests - n >= 4, `7 objects in pages of 2 take 4 requests (took ${proxy.requests - n})`);
  // deletePrefix lists page by page too
  await s.deletePrefix('20260101T000003Z-abcdef');
  assert.equal((await keys(s)).length, 6);
});

test('stale multipart uploads are aborted across every page of ListMultipartUploads (KeyMarker / UploadIdMarker)', async () => {
  const old = new Date(Date.now() - 3600_000);
  const fresh = new Date();
  const list = [
    ...Array.from({ length: 5 }, (_, i) => ({ key: `mpu-test/20260101T000000Z-aaaaaa/volumes/v${i}.age`, uploadId: `old-${i}`, initiated: old })),
    // two uploads of one key, the page boundary between them: UploadIdMarker matters
    { key: 'mpu-test/20260101T000000Z-aaaaaa/volumes/v2.age', uploadId: 'old-2b', initiated: old },
    { key: 'mpu-test/20260102T000000Z-bbbbbb/volumes/v9.age', uploadId: 'fresh-1', initiated: fresh },
    { key: 'other-prefix/x.age', uploadId: 'old-other', initiated: old },
  ];
  proxy.fakeUploads(list, 2); // the server answers at most 2 uploads a page
  try {
    const s = storage('mpu-test');
    const n = proxy.uploadListings;
    assert.equal(await s.abortStaleUploads(60), 6, 'every stale upload under the prefix, not only the first page');
    assert.ok(proxy.uploadListings - n >= 4, `7 uploads in pages of 2 take 4 listings (took ${proxy.uploadListings - n})`);
    assert.deepEqual(proxy.uploadsLeft().map((u) => u.uploadId).sort(), ['fresh-1', 'old-other']);
    // with a page size of our own as well
    proxy.fakeUploads(list, 1000);
    assert.equal(await storage('mpu-test', { pageSize: 1 }).abortStaleUploads(60), 6);
  } finally { proxy.fakeUploads(null); }
  // s3rver itself does not implement the listing: nothing to abort, no error
  assert.equal(await storage('mpu-test').abortStaleUploads(60), 0);
});

function manifest(id: string, at: string): string {
  return JSON.stringify({ id, mode: 'hot', startedAt: at, finishedAt: at, durationMs: 1, downtime: { ms: 0 }, parts: [], volumes: [], databases: [] });
}

test('prune on S3: a per-key error fails the prune of that backup only, manifest first, and names backup, key and code; the clean-up finishes it', async () => {
  const s = storage('prune-unit');
  const ids = ['20260101T100000Z-00000a', '20260102T100000Z-00000b', '20260103T100000Z-00000c', '20260104T100000Z-00000d'];
  for (const [i, id] of ids.entries()) {
    await put(s, `${id}/manifest.json`, manifest(id, `2026-01-0${i + 1}T10:00:00Z`));
    for (const p of ['volumes/v.tar.zst.age', 'dumps/db/x.sql.zst.age', 'SHA256SUMS']) await put(s, `${id}/${p}`);
  }
  // the oldest backup: one part cannot be deleted; the second oldest: its manifest cannot be deleted
  proxy.plan([
    { fault: 'deleteError', times: Infinity, key: new RegExp(`${ids[0]}/dumps/db/x\\.sql\\.zst\\.age$`) },
    { fault: 'deleteError', times: Infinity, key: new RegExp(`${ids[1]}/manifest\\.json$`) },
  ]);
  let r;
  try {
    [r] = await pruneDestinations([retrying(s)], { last: 1 }, 'UTC', false, log);
  } finally { proxy.plan([]); }
  assert.ok(r);
  assert.deepEqual(r.removed, [ids[2]], 'only the backup that really went is reported removed');
  assert.deepEqual(r.failed.map((f) => [f.id, f.committed]), [[ids[1], true], [ids[0], false]]);
  assert.match(r.failed[0]!.error, new RegExp(`backup ${ids[1]} was not removed \\(it is still whole\\): .*${ids[1]}/manifest\\.json: AccessDenied`));
  assert.match(r.failed[1]!.error, new RegExp(`backup ${ids[0]}: its manifest was removed but not all its parts .*${ids[0]}/dumps/db/x\\.sql\\.zst\\.age: AccessDenied`));
  assert.ok(r.error && r.error.includes(ids[0]!) && r.error.includes(ids[1]!));
  const left = await keys(s);
  assert.ok(!left.includes(`${ids[0]}/manifest.json`), 'the manifest went first: the backup no longer half-exists as a committed one');
  assert.deepEqual(left.filter((k) => k.startsWith(ids[0]!)), [`${ids[0]}/dumps/db/x.sql.zst.age`]);
  assert.deepEqual(left.filter((k) => k.startsWith(ids[1]!)).length, 4, 'a backup whose manifest could not go is left whole');
  assert.deepEqual(left.filter((k) => k.startsWith(ids[2]!)), []);
  const text = renderPrune([r], 'last 1', false);
  assert.match(text, new RegExp(`${ids[0]}\\s+\\S+\\s+remove FAILED \\(manifest removed, parts left\\)`));
  assert.match(text, new RegExp(`${ids[1]}\\s+\\S+\\s+remove FAILED `));
  assert.match(text, new RegExp(`${ids[2]}\\s+\\S+\\s+removed`));
  assert.match(text, /FAILED: backup .*AccessDenied/);
  // the leftover is an uncommitted backup: the existing clean-up removes it once the server lets it
  assert.deepEqual(await cleanupIncomplete(retrying(s), 0, log), [ids[0]]);
  assert.deepEqual((await keys(s)).filter((k) => k.startsWith(ids[0]!)), []);
  // while the server refuses a deletion, the clean-up leaves that leftover (warning with key and code), removes
  // the others and does not fail: the destination still takes new backups
  await put(s, `${ids[0]}/volumes/again.age`);
  await put(s, `${ids[3]}/volumes/other-leftover.age`);
  await s.deletePrefix(`${ids[3]}/manifest.json`);
  proxy.plan([{ fault: 'deleteError', times: Infinity, key: /again\.age$/ }]);
  logged.length = 0;
  try {
    assert.deepEqual(await cleanupIncomplete(retrying(s), 0, log), [ids[3]]);
  } finally { proxy.plan([]); }
  assert.ok(logged.some((l) => l.level === 'warn' && /again\.age: AccessDenied/.test(JSON.stringify(l.obj))), JSON.stringify(logged));
  assert.deepEqual((await keys(s)).filter((k) => k.startsWith(ids[0]!)), [`${ids[0]}/volumes/again.age`]);
  assert.deepEqual(await cleanupIncomplete(retrying(s), 0, log), [ids[0]]);
});
