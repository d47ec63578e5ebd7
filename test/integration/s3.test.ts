import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  ROOT, runDr, stackUp, docker, backupEnv, scratchDir, startS3, volumeSnapshot, dbFingerprint, waitHealthy, standinMaintenance,
  WRITERS, APP_VOLUMES, type BackupEnv,
} from '../helpers.ts';

let env: BackupEnv & Record<string, string>;
let s3: Awaited<ReturnType<typeof startS3>>;
const s3dir = join(scratchDir(), 's3rver-data');

function client(port: number): S3Client {
  return new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}
async function s3Keys(port: number): Promise<string[]> {
  const r = await client(port).send(new ListObjectsV2Command({ Bucket: 'dr-test-bucket', Prefix: 'helpdesk/' }));
  return (r.Contents ?? []).map((c) => c.Key!.slice('helpdesk/'.length)).sort();
}

/**
 * s3rver writes an object's metadata file (JSON) without a temp file and rename: a server killed mid-write
 * leaves a torn file, and every later listing fails with InternalError (seen in CI). Real S3 makes a PUT
 * atomic, so the objects whose metadata does not parse are removed before the server is started again.
 */
function dropTornObjects(dir: string): void {
  const walk = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) { walk(p); continue; }
      if (!ent.name.endsWith('._S3rver_metadata.json')) continue;
      try { JSON.parse(readFileSync(p, 'utf8')); } catch {
        const base = p.slice(0, -'metadata.json'.length);
        for (const f of [p, `${base}object`, `${base}object.md5`]) rmSync(f, { force: true });
      }
    }
  };
  walk(dir);
}

before(async () => {
  stackUp();
  s3 = await startS3(s3dir);
  env = { ...(await backupEnv('s3')), ...s3.env };
});
after(async () => {
  try { standinMaintenance(false); } catch { /* a test left the apps down: the next stackUp() brings them back */ }
  await s3?.stop();
});

test('backup to local + S3, the local copy deleted, dr restore --latest --from s3 brings the stack back verified', async () => {
  // in maintenance (kept by the backup, so the restored apps write nothing either), then frozen: see restore.test.ts
  standinMaintenance(true);
  docker('stop', '-t', '5', ...WRITERS);
  const snap = Object.fromEntries(APP_VOLUMES.map((v) => [v, volumeSnapshot(v)]));
  const dbs = dbFingerprint();
  const b = await runDr(['backup'], env);
  docker('start', ...WRITERS);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /committed on local /);
  assert.match(b.stdout, /committed on s3 s3:\/\/dr-test-bucket\/helpdesk\//);
  const id = /backup (\S+):/.exec(b.stdout)![1]!;
  const keys = await s3Keys(s3.port);
  assert.ok(keys.includes(`${id}/manifest.json`) && keys.includes(`${id}/SHA256SUMS`));
  assert.ok(keys.some((k) => k.startsWith(`${id}/volumes/`)) && keys.some((k) => k.startsWith(`${id}/dumps/`)));

  const l = JSON.parse((await runDr(['list', '--json'], env)).stdout);
  assert.deepEqual(l.backups[0].copies.map((c: { kind: string }) => c.kind), ['local', 's3']);

  rmSync(join(env.DR_LOCAL_DIR, id), { recursive: true });
  const lo = JSON.parse((await runDr(['list', '--json', '--from', 'local'], env)).stdout);
  assert.equal(lo.backups.length, 0, 'the local copy is gone');

  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'down'], { stdio: 'ignore' });
  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'create'], { stdio: 'ignore' });
  // through the fault proxy (no faults): it counts the downloads of every part
  const { startFaultProxy } = await import('../env/faultproxy.ts');
  const proxy = await startFaultProxy(s3.port);
  let r: Awaited<ReturnType<typeof runDr>>;
  try {
    r = await runDr(['restore', '--latest', '--from', 's3'], { ...env, DR_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` });
  } finally {
    await proxy.close();
  }
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Restored backup ${id} .* from s3 s3://dr-test-bucket/helpdesk/`));
  // no part downloaded twice (the check before writing looks at sizes only); every volume, index and database
  // dump it replays exactly once (MariaDB's _users part is only checked to be there: the replay does not use it)
  const parts = keys.filter((k) => k.startsWith(`${id}/`) && !/\/(manifest\.json|SHA256SUMS)$/.test(k));
  const gets = new Map<string, number>();
  for (const q of proxy.log) if (q.method === 'GET') gets.set(q.key, (gets.get(q.key) ?? 0) + 1);
  assert.ok(parts.length >= 8, `${parts.length} parts`);
  const once = (k: string) => !k.endsWith('/_users.sql.zst.age');
  assert.deepEqual(parts.map((k) => [k, gets.get(`helpdesk/${k}`) ?? 0]), parts.map((k) => [k, once(k) ? 1 : Math.min(1, gets.get(`helpdesk/${k}`) ?? 0)]), 'GETs per part');
  for (const c of WRITERS) assert.match(r.stdout, new RegExp(`${c}\\s+running\\s+healthy`));
  docker('stop', '-t', '5', ...WRITERS);
  try {
    const live = (lines: string[]) => lines.filter((x) => !/\/standin\/(web|sidekiq)\.log\|/.test(x) && !/_log\/standin\.log\|/.test(x));
    for (const v of APP_VOLUMES) assert.deepEqual(live(volumeSnapshot(v)), live(snap[v]!), v);
    assert.deepEqual(dbFingerprint(), dbs);
  } finally {
    docker('start', ...WRITERS);
    for (const w of WRITERS) await waitHealthy(w);
    standinMaintenance(false);
  }
});

test('S3 stopped mid-upload: retries, then a truthful per-destination status; nothing committed on S3; the next backup cleans the orphans', async () => {
  const e = { ...env, DR_INCOMPLETE_GRACE_SECONDS: '0' };
  const before = new Set(await s3Keys(s3.port));
  const run = runDr(['backup'], e);
  // kill the server as soon as the first new object of this backup has landed
  let killed = false;
  for (let i = 0; i < 400 && !killed; i++) {
    const keys = await s3Keys(s3.port).catch(() => []);
    if (keys.some((k) => !before.has(k))) { s3.kill(); killed = true; } else await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(killed, 'the backup started uploading');
  const r = await run;
  assert.equal(r.code, 5, `partial failure expected: ${r.stdout}\n${r.stderr}`);
  const id = /backup (\S+):/.exec(r.stdout)![1]!;
  assert.match(r.stdout, new RegExp(`committed on local ${env.DR_LOCAL_DIR.replace(/[/.]/g, '\\$&')}`));
  assert.match(r.stdout, /NOT committed on s3 s3:\/\/dr-test-bucket\/helpdesk\/: S3 .*failed/);
  for (const c of WRITERS) assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true');
  assert.ok(existsSync(join(env.DR_LOCAL_DIR, id, 'manifest.json')), 'the local copy is committed');

  dropTornObjects(s3dir); // what a real S3 guarantees and s3rver does not: a PUT cut short leaves no object
  s3 = await startS3(s3dir, s3.port); // the server is back, same data
  const orphans = (await s3Keys(s3.port)).filter((k) => k.startsWith(`${id}/`));
  assert.ok(orphans.length > 0, 'the interrupted upload left orphans');
  assert.ok(!orphans.includes(`${id}/manifest.json`), 'but no committed backup on S3');
  const lst = JSON.parse((await runDr(['list', '--json', '--from', 's3'], e)).stdout);
  assert.ok(!lst.backups.some((b: { id: string }) => b.id === id), 'dr list does not show it on S3');

  const next = await runDr(['backup'], e);
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stdout, /committed on s3/);
  assert.deepEqual((await s3Keys(s3.port)).filter((k) => k.startsWith(`${id}/`)), [], 'orphans removed');
});

test('dr prune removes exactly the expected backups on both destinations; --dry-run shows why', async () => {
  const { readFileSync, writeFileSync, cpSync, readdirSync, statSync } = await import('node:fs');
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { signManifest, serializeManifest } = await import('../../src/repo/manifest.ts');
  const { loadSigningKey } = await import('../../src/repo/trust.ts');
  const e = { ...(await backupEnv('prune')), ...s3.env, DR_S3_PREFIX: 'prune-test' };
  const first = await runDr(['backup'], e);
  assert.equal(first.code, 0, first.stderr);
  const realId = /backup (\S+):/.exec(first.stdout)![1]!;
  // five older backups, fabricated from the real one (re-signed with the test's key), on both destinations
  const times = ['2026-01-01T10:00:00Z', '2026-01-02T09:00:00Z', '2026-01-02T18:00:00Z', '2026-01-03T08:00:00Z', '2026-01-03T20:00:00Z'];
  const ids = times.map((t, i) => `${t.replace(/[-:]/g, '').replace('Z', 'Z')}-00000${i}`);
  const key = loadSigningKey(e.DR_SIGNING_KEY_FILE);
  const c = client(s3.port);
  for (const [i, id] of ids.entries()) {
    const dir = join(e.DR_LOCAL_DIR, id);
    cpSync(join(e.DR_LOCAL_DIR, realId), dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    Object.assign(m, { id, startedAt: times[i], finishedAt: times[i] });
    writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, key)));
    for (const f of readdirSync(dir, { recursive: true }).map(String)) {
      const full = join(dir, f);
      if (!statSync(full).isFile()) continue;
      await c.send(new PutObjectCommand({ Bucket: 'dr-test-bucket', Key: `prune-test/${id}/${f}`, Body: readFileSync(full) }));
    }
  }
  // an uncommitted backup (no manifest) is never counted
  await c.send(new PutObjectCommand({ Bucket: 'dr-test-bucket', Key: 'prune-test/20260104T000000Z-00000f/volumes/x.tar.zst.age', Body: 'x' }));
  const policy = { DR_KEEP_LAST: '1', DR_KEEP_DAILY: '2', TZ: 'UTC' };
  // keep: the real backup (last 1, daily today) and 2026-01-03T20:00 (daily); remove the other four
  const expectedRemoved = [ids[3]!, ids[2]!, ids[1]!, ids[0]!];
  const dry = await runDr(['prune', '--dry-run', '--json'], { ...e, ...policy });
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout);
  assert.equal(plan.destinations.length, 2);
  for (const d of plan.destinations) {
    assert.equal(d.error, null);
    assert.deepEqual(d.decisions.filter((x: { keep: boolean }) => !x.keep).map((x: { id: string }) => x.id), expectedRemoved, d.kind);
    const keptBy = Object.fromEntries(d.decisions.filter((x: { keep: boolean }) => x.keep).map((x: { id: string; reasons: string[] }) => [x.id, x.reasons]));
    assert.deepEqual(Object.keys(keptBy).sort(), [ids[4]!, realId].sort());
    assert.ok(keptBy[realId].some((r: string) => r.startsWith('last')) && keptBy[realId].some((r: string) => r.startsWith('daily')));
    assert.ok(keptBy[ids[4]!].some((r: string) => r.startsWith('daily')));
    assert.deepEqual(d.removed, [], 'dry run removes nothing');
  }
  const text = await runDr(['prune', '--dry-run'], { ...e, ...policy });
  assert.match(text.stdout, new RegExp(`${ids[0]}\\s+\\S+\\s+would remove`));
  assert.ok(existsSync(join(e.DR_LOCAL_DIR, ids[0]!, 'manifest.json')));

  const real = await runDr(['prune'], { ...e, ...policy });
  assert.equal(real.code, 0, real.stderr);
  const after = JSON.parse((await runDr(['list', '--json'], e)).stdout).backups;
  assert.deepEqual(after.map((b: { id: string; copies: { kind: string }[] }) => [b.id, b.copies.map((x) => x.kind).join('+')]),
    [[realId, 'local+s3'], [ids[4]!, 'local+s3']]);
  const keys = (await c.send(new ListObjectsV2Command({ Bucket: 'dr-test-bucket', Prefix: 'prune-test/' }))).Contents!.map((x) => x.Key!);
  for (const id of expectedRemoved) {
    assert.ok(!existsSync(join(e.DR_LOCAL_DIR, id)), `${id} removed locally`);
    assert.ok(!keys.some((k) => k.includes(id)), `${id} removed from S3`);
  }
  assert.ok(keys.some((k) => k.includes('20260104T000000Z-00000f')), 'an uncommitted backup is not touched by prune');
  // an empty policy removes nothing
  const none = await runDr(['prune'], e);
  assert.equal(none.code, 0);
  assert.match(none.stdout, /none set \(DR_KEEP_\*\): nothing is removed/);
  // DR_PRUNE_AFTER_BACKUP: the next backup applies the policy itself
  const auto = await runDr(['backup'], { ...e, DR_PRUNE_AFTER_BACKUP: 'true', DR_KEEP_LAST: '1' });
  assert.equal(auto.code, 0, auto.stderr);
  const newest = /backup (\S+):/.exec(auto.stdout)![1]!;
  assert.deepEqual(JSON.parse((await runDr(['list', '--json'], e)).stdout).backups.map((b: { id: string }) => b.id), [newest]);
  // a misspelt rule is refused
  const typo = await runDr(['prune'], { ...e, DR_KEEP_DAYLY: '3' });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /DR_KEEP_DAYLY/);
});

test('dr prune on S3 with a DeleteObjects per-key error: that backup\'s prune fails naming it, the key and the code; the manifest went first; the next backup cleans up, aborting stale uploads over several listing pages', async () => {
  const { startFaultProxy } = await import('../env/faultproxy.ts');
  const proxy = await startFaultProxy(s3.port);
  try {
    const e = { ...(await backupEnv('prune-err')), ...s3.env, DR_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, DR_S3_PREFIX: 'prune-err' };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await runDr(['backup'], e);
      assert.equal(b.code, 0, b.stderr);
      ids.push(/backup (\S+):/.exec(b.stdout)![1]!);
    }
    const [oldest, middle, newest] = ids as [string, string, string];
    const keysOf = async (id: string) => (await client(s3.port).send(new ListObjectsV2Command({ Bucket: 'dr-test-bucket', Prefix: `prune-err/${id}/` }))).Contents?.map((c) => c.Key!.slice('prune-err/'.length)).sort() ?? [];
    const stuck = (await keysOf(oldest)).find((k) => k.includes('/volumes/'))!;
    assert.ok(stuck, 'the backup has volume parts');
    // the server refuses to delete one part of the oldest backup
    proxy.plan([{ fault: 'deleteError', times: Infinity, key: new RegExp(`/${stuck.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }]);
    const r = await runDr(['prune', '--from', 's3'], { ...e, DR_KEEP_LAST: '1' });
    proxy.plan([]);
    assert.equal(r.code, 5, `partial: one backup removed, one failed\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`${oldest}\\s+\\S+\\s+remove FAILED \\(manifest removed, parts left\\)`));
    assert.match(r.stdout, new RegExp(`${middle}\\s+\\S+\\s+removed`));
    assert.match(r.stdout, new RegExp(`FAILED: backup ${oldest}: its manifest was removed but not all its parts .*${stuck.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: AccessDenied`));
    assert.deepEqual(await keysOf(oldest), [stuck], 'manifest gone first; only the refused part is left');
    assert.deepEqual(await keysOf(middle), []);
    const l = JSON.parse((await runDr(['list', '--json', '--from', 's3'], e)).stdout);
    assert.deepEqual(l.backups.map((b: { id: string }) => b.id), [newest], 'no half backup is listed');
    // the local copies are not touched by a prune --from s3
    assert.ok(existsSync(join(e.DR_LOCAL_DIR, oldest, 'manifest.json')));

    // stale multipart uploads (the proxy stands in for ListMultipartUploads, 2 uploads a page)
    const old = new Date(Date.now() - 7200_000);
    proxy.fakeUploads([
      ...Array.from({ length: 5 }, (_, i) => ({ key: `prune-err/20260101T00000${i}Z-abcdef/volumes/v.tar.zst.age`, uploadId: `stale-${i}`, initiated: old })),
      { key: 'prune-err/20260101T000009Z-abcdef/volumes/w.tar.zst.age', uploadId: 'running', initiated: new Date() },
    ], 2);
    try {
      const next = await runDr(['backup'], { ...e, DR_INCOMPLETE_GRACE_SECONDS: '60' });
      assert.equal(next.code, 0, next.stderr);
      assert.deepEqual(proxy.uploadsLeft().map((u) => u.uploadId), ['running'], 'every stale upload aborted, over 3 pages');
      assert.ok(proxy.uploadListings >= 3);
    } finally { proxy.fakeUploads(null); }
    // the leftover of the failed prune is an uncommitted backup: the clean-up removes it once it can
    const again = await runDr(['backup'], { ...e, DR_INCOMPLETE_GRACE_SECONDS: '0' });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await keysOf(oldest), [], 'the leftover is removed');
  } finally {
    await proxy.close();
  }
});
