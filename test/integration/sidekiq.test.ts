/**
 * Issue 17's acceptance: with a real Sidekiq running against the stack's Redis (heartbeat keys that expire
 * ~60 s after each beat), a full drill and an in-place `dr restore --latest` of the whole stack, both started
 * more than two minutes after the backup, pass; the restored Redis holds Sidekiq's lasting keys and the
 * heartbeats that expired are reported as expired, not as a difference.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, runDr, stackUp, backupEnv, tempDir, waitHealthy, WRITERS, DATABASES, type BackupEnv } from '../helpers.ts';
import type { Manifest } from '../../src/manifest.ts';

let env: BackupEnv;
let manifest: Manifest;
let finishedAt = 0;
/** the live keyspace just before the backup */
let before0: string[] = [];

const redisIn = (container: string) => (...args: string[]) => execFileSync('docker', ['exec', container, 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', 'redis-cli', ...args], { encoding: 'utf8' }).trim();
const redis = redisIn('v2_chatwoot_redis');
const TTL_CLASS = "local r = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do local t = redis.call('PTTL', k) r[#r + 1] = k .. (t == -1 and ' persistent' or ' volatile') end return r";
/** keys matching `pattern`, with their TTL class: "name persistent" / "name volatile" */
const keysWithTtl = (pattern: string, cli = redis) => cli('EVAL', TTL_CLASS, '0', pattern).split('\n').filter(Boolean).sort();

/**
 * The keys in the backup's RDB with their TTL class, read independently of dr: the part decrypted and decompressed by
 * the stock `age` and `zstd`, loaded by a throwaway Redis without network.
 */
function keysOfBackup(): string[] {
  const rdb = manifest.databases.find((d) => d.engine === 'redis')!.extraParts.find((p) => p.name === 'rdb')!.part;
  const dir = tempDir('dr-sidekiq-rdb-');
  execFileSync('bash', ['-o', 'pipefail', '-c', `age -d -i "$1" "$2" | zstd -d -q > "$3/dump.rdb" && chmod -R a+rwX "$3"`, 'sh', env.DR_AGE_IDENTITY_FILE, join(env.DR_LOCAL_DIR, manifest.id, rdb), dir]);
  const name = `dr-test-rdb-${process.pid}`;
  execFileSync('docker', ['run', '-d', '--name', name, '--network', 'none', '-v', `${dir}:/data`, '--entrypoint', 'redis-server', 'helpdesk-dr-test/redis:7', '--dir', '/data', '--appendonly', 'no', '--save', '']);
  try {
    const cli = (...args: string[]) => execFileSync('docker', ['exec', name, 'redis-cli', ...args], { encoding: 'utf8' }).trim();
    const end = Date.now() + 30_000;
    while (Date.now() < end) { try { if (cli('PING') === 'PONG') break; } catch { /* starting */ } }
    return keysWithTtl('*', cli);
  } finally {
    execFileSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  }
}

before(async () => {
  stackUp();
  env = await backupEnv('sidekiq');
  // a real Sidekiq beats every few seconds: its process hash carries a ~60 s TTL, the processes set none
  const end = Date.now() + 60_000;
  while (!(before0 = keysWithTtl('*')).includes('processes persistent') && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
  finishedAt = Date.parse(manifest.finishedAt);
});

test('the stack runs a real Sidekiq: live heartbeats (volatile), queues and stats (lasting) in the keyspace that is backed up', () => {
  assert.ok(before0.includes('processes persistent'), `no Sidekiq processes set: ${before0.slice(0, 20).join(', ')}`);
  const beats = before0.filter((k) => /^[^:]+:\d+:[0-9a-f]+ volatile$/.test(k));
  assert.ok(beats.length >= 1, `no Sidekiq heartbeat hash with a TTL: ${before0.slice(0, 20).join(', ')}`);
  assert.ok(before0.some((k) => /^stat:processed/.test(k)), 'Sidekiq counted no processed jobs');
  // the writers (Sidekiq among them) are stopped while the dump's snapshot is taken: a stopping Sidekiq
  // leaves the processes set but its heartbeat hash stays, with its TTL — the keys that expire after a backup
  const inBackup = keysOfBackup();
  assert.ok(inBackup.some((k) => /^[^:]+:\d+:[0-9a-f]+ volatile$/.test(k)), `the backup's RDB has no heartbeat with a TTL: ${inBackup.filter((k) => k.endsWith('volatile')).join(', ')}`);
  assert.ok(inBackup.some((k) => /^stat:processed.* persistent$/.test(k)), 'the backup\'s RDB has no Sidekiq stats');
  assert.ok(manifest.databases.some((d) => d.engine === 'redis'), 'the backup has a Redis dump');
});

test('two minutes after the backup, the full drill passes and reports the expired heartbeats', async () => {
  const wait = finishedAt + 125_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const report = join(env.DR_LOCAL_DIR, 'drill.md');
  const r = await runDr(['verify', '--latest', '--level', 'full', '--json', '--report', report], env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const rep = JSON.parse(r.stdout) as { passed: boolean; differences: string[]; rpoSeconds: number; checks: { subject: string; detail: string }[] };
  assert.equal(rep.passed, true, rep.differences.join('; '));
  assert.ok(rep.rpoSeconds >= 120, `RPO ${rep.rpoSeconds} s: the drill ran too early to prove anything`);
  const redisCheck = rep.checks.find((c) => c.subject === 'v2_chatwoot_redis');
  assert.ok(redisCheck, 'the drill checked the Redis keyspace');
  assert.match(JSON.stringify(rep), /expired/, 'the drill says volatile keys expired since the backup');
});

test('two minutes after the backup, an in-place dr restore --latest of the whole stack passes; Sidekiq\'s lasting keys are back', async () => {
  const wait = finishedAt + 125_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  // the incident: the stack and its volumes are gone; the definition comes back empty (RESTORE.md)
  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'down'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'create'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const t0 = Date.now();
  const r = await runDr(['restore', '--latest'], env);
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /RTO \(this restore\): [\d.]+ s/);
  for (const c of [...WRITERS, ...DATABASES]) await waitHealthy(c, 120_000);
  // every key without a TTL in the backup is back — except those Sidekiq itself has changed since it was
  // started on the restored Redis: queues it drained, processes it pruned, retries and scheduled jobs it ran
  const sidekiqOwned = /^(queue:|processes$|retry$|schedule$|dead$|queues$)/;
  const now = new Set(keysWithTtl('*').map((k) => k.replace(/ (persistent|volatile)$/, '')));
  const lasting = keysOfBackup().filter((k) => k.endsWith(' persistent')).map((k) => k.slice(0, -' persistent'.length));
  assert.ok(lasting.length > 10, `only ${lasting.length} lasting keys in the backup`);
  const missing = lasting.filter((k) => !sidekiqOwned.test(k) && !now.has(k));
  assert.deepEqual(missing, [], 'lasting keys missing after the restore');
  // and Sidekiq works on the restored Redis: it beats again
  const end = Date.now() + 60_000;
  while (!redis('SMEMBERS', 'processes').trim() && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  assert.ok(redis('SMEMBERS', 'processes').trim(), 'Sidekiq does not beat on the restored Redis');
  console.log(`in-place restore of the Sidekiq stack, ${Math.round((t0 - finishedAt) / 1000)} s after the backup: ${seconds.toFixed(1)} s`);
});
