import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  ROOT, runDr, stackUp, docker, backupEnv, scratchDir, startS3, volumeSnapshot, dbFingerprint, waitHealthy,
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

before(async () => {
  stackUp();
  s3 = await startS3(s3dir);
  env = { ...(await backupEnv('s3')), ...s3.env };
});
after(async () => { await s3?.stop(); });

test('backup to local + S3, the local copy deleted, dr restore --latest --from s3 brings the stack back verified', async () => {
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
  const r = await runDr(['restore', '--latest', '--from', 's3'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Restored backup ${id} .* from s3 s3://dr-test-bucket/helpdesk/`));
  for (const c of WRITERS) assert.match(r.stdout, new RegExp(`${c}\\s+running\\s+healthy`));
  docker('stop', '-t', '5', ...WRITERS);
  try {
    const live = (lines: string[]) => lines.filter((x) => !/\/standin\/(web|sidekiq)\.log\|/.test(x) && !/_log\/standin\.log\|/.test(x));
    for (const v of APP_VOLUMES) assert.deepEqual(live(volumeSnapshot(v)), live(snap[v]!), v);
    assert.deepEqual(dbFingerprint(), dbs);
  } finally {
    docker('start', ...WRITERS);
    for (const w of WRITERS) await waitHealthy(w);
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
