/**
 * Backups of a stack whose apps keep writing (issue 17): GLPI's stand-in creates tickets with a document file
 * and deletes documents; the Chatwoot stand-in's real Sidekiq runs jobs that write an attachment file and then
 * commit conversation + message + attachment + Active Storage rows in one transaction, and purge attachments
 * (rows, then the file). `dr backup` runs while they do; the backup is restored side by side (--suffix) and
 * the restored databases are opened in throwaway containers, so nothing the apps do afterwards blurs the look.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { parseEnv } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runDr, stackUp, docker, backupEnv, standinMaintenance, tempDir, waitHealthy, WRITERS, DATABASES, TEST_PROJECT_LABEL, type BackupEnv } from '../helpers.ts';
import type { Manifest } from '../../src/repo/manifest.ts';

const SUFFIX = '_consistency';
const tag = Math.random().toString(16).slice(2, 8);
const C = { maria: `dr-test-cons-mariadb-${tag}`, pg: `dr-test-cons-postgres-${tag}`, redis: `dr-test-cons-redis-${tag}` };
const secrets = parseEnv(readFileSync(join(ROOT, 'test/env/test.env'), 'utf8')) as Record<string, string>;
let env: BackupEnv;
let manifest: Manifest;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function out(args: string[], extraEnv: Record<string, string> = {}): string {
  return execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, ...extraEnv }, maxBuffer: 1 << 28 }).trim();
}
/** SQL in a MariaDB container as root (the password travels in the environment, never argv) */
function maria(container: string, sql: string): string {
  return out(['exec', container, 'sh', '-c', 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot -N -B --default-character-set=utf8mb4 glpi -e "$0"', sql]);
}
function psql(container: string, sql: string): string {
  return out(['exec', container, 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-U', 'chatwoot', '-d', 'chatwoot', '-c', sql]);
}
function redis(container: string, ...args: string[]): string {
  return out(['exec', container, 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', 'sh', ...args]);
}
/** the newest ids the apps have written (ids only grow; counts also shrink when a user deletes a document) */
function high(maria_: string, pg: string): { tickets: number; documents: number; conversations: number; blobs: number } {
  const [tickets, documents] = maria(maria_, 'SELECT MAX(id) FROM glpi_tickets; SELECT IFNULL(MAX(id), 0) FROM glpi_documents').split('\n').map(Number);
  const [conversations, blobs] = psql(pg, 'SELECT (SELECT max(id) FROM conversations), (SELECT coalesce(max(id), 0) FROM active_storage_blobs)').split('|').map(Number);
  return { tickets: tickets!, documents: documents!, conversations: conversations!, blobs: blobs! };
}
/** runs `script` (bash) in a throwaway container with `volume` mounted read-only at /v */
function inVolume(volume: string, script: string, input?: string): string {
  return execFileSync('docker', ['run', '--rm', '-i', '--network', 'none', '-v', `${volume}:/v:ro`, '--entrypoint', 'bash', 'helpdesk-dr-test/glpi:standin', '-c', script],
    { encoding: 'utf8', input, maxBuffer: 1 << 28 }).trim();
}

/** GLPI documents (filepath, sha1) and Chatwoot blobs (key, size, base64 MD5) of a database */
function fileRows(maria_: string, pg: string): { docs: [string, string][]; blobs: [string, string, string][] } {
  return {
    docs: maria(maria_, 'SELECT filepath, sha1sum FROM glpi_documents WHERE filepath IS NOT NULL ORDER BY id').split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]),
    blobs: psql(pg, 'SELECT key, byte_size, checksum FROM active_storage_blobs ORDER BY id').split('\n').filter(Boolean).map((l) => l.split('|') as [string, string, string]),
  };
}
/** the rows among `rows` whose file is missing or different in the two volumes */
function badRows(rows: ReturnType<typeof fileRows>, glpiFiles: string, storage: string): { glpi: string[]; chatwoot: string[] } {
  const seen = inVolume(glpiFiles, 'while IFS= read -r p; do if [ -f "/v/_documents/$p" ]; then echo "$p $(sha1sum <"/v/_documents/$p" | cut -c1-40)"; else echo "$p missing"; fi; done',
    rows.docs.map(([p]) => p).join('\n') + '\n').split('\n');
  const files = inVolume(storage, 'while IFS= read -r k; do f="/v/${k:0:2}/${k:2:2}/$k"; if [ -f "$f" ]; then echo "$(stat -c %s "$f") $(md5sum <"$f" | cut -c1-32)"; else echo missing; fi; done',
    rows.blobs.map(([k]) => k).join('\n') + '\n').split('\n');
  return {
    glpi: rows.docs.map(([p, sha], i) => (seen[i] === `${p} ${sha}` ? '' : `${p}: ${seen[i]}`)).filter(Boolean),
    chatwoot: rows.blobs.map(([k, size, md5], i) => (files[i] === `${size} ${Buffer.from(md5, 'base64').toString('hex')}` ? '' : `${k}: ${files[i]}`)).filter(Boolean),
  };
}
/**
 * Rows of the live stack that already lack their file (e.g. left by an earlier in-place restore of a backup
 * that was not consistent): no backup can bring those files back. A row counts when it is still there after
 * its file was found missing (a user deleting it meanwhile removes row and file).
 */
let broken = { glpi: new Set<string>(), chatwoot: new Set<string>() };
function brokenLive(): typeof broken {
  const bad = badRows(fileRows('v2_glpi_db', 'v2_chatwoot_db'), 'v2_glpi_files', 'v2_chatwoot_storage');
  const still = fileRows('v2_glpi_db', 'v2_chatwoot_db');
  const docs = new Set(still.docs.map(([p]) => p));
  const blobs = new Set(still.blobs.map(([k]) => k));
  return {
    glpi: new Set(bad.glpi.map((l) => l.split(':')[0]!).filter((p) => docs.has(p))),
    chatwoot: new Set(bad.chatwoot.map((l) => l.split(':')[0]!).filter((k) => blobs.has(k))),
  };
}

before(async () => {
  stackUp();
  standinMaintenance(false);
  env = await backupEnv('consistency');
  // a live Sidekiq: its process registry and heartbeat hash (expiring ~60 s after each beat) are in Redis
  let beat = '';
  for (let i = 0; i < 60 && !beat; i++) {
    const [identity] = redis('v2_chatwoot_redis', 'SMEMBERS', 'processes').split('\n').filter(Boolean);
    if (identity) beat = redis('v2_chatwoot_redis', 'TTL', identity);
    else await sleep(500);
  }
  assert.ok(Number(beat) > 0 && Number(beat) <= 60, `Sidekiq's heartbeat key expires within a minute (TTL ${beat})`);
  broken = brokenLive();
  if (broken.glpi.size + broken.chatwoot.size) console.log(`# the live stack already has ${broken.glpi.size} GLPI documents and ${broken.chatwoot.size} Chatwoot blobs without their file (left out below)`);
  // both apps are writing before the backup starts
  const h0 = high('v2_glpi_db', 'v2_chatwoot_db');
  for (let i = 0; i < 120; i++) {
    const h = high('v2_glpi_db', 'v2_chatwoot_db');
    if (h.tickets > h0.tickets && h.blobs > h0.blobs) break;
    await sleep(500);
  }
});

after(() => {
  try { docker('rm', '-f', '-v', C.maria, C.pg, C.redis); } catch { /* not all were created */ }
  const mine = docker('volume', 'ls', '-q', '--filter', `name=${SUFFIX}$`).split('\n').filter(Boolean);
  if (mine.length) docker('volume', 'rm', ...mine);
});

let during: { before: ReturnType<typeof high>; after: ReturnType<typeof high>; seconds: number };

test('dr backup while GLPI and Sidekiq keep writing: both wrote rows during the backup window', async () => {
  const b = high('v2_glpi_db', 'v2_chatwoot_db');
  const t0 = Date.now();
  const r = await runDr(['backup', '--json'], env);
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout) as Manifest;
  const a = high('v2_glpi_db', 'v2_chatwoot_db');
  during = { before: b, after: a, seconds };
  console.log(`# rows written during the ${seconds.toFixed(1)} s backup: ${a.tickets - b.tickets} GLPI tickets, ${a.conversations - b.conversations} Chatwoot conversations; downtime ${manifest.downtime.ms} ms`);
  assert.ok(a.tickets > b.tickets, `GLPI wrote tickets during the backup (${b.tickets} → ${a.tickets})`);
  assert.ok(a.conversations > b.conversations, `Sidekiq wrote conversations during the backup (${b.conversations} → ${a.conversations})`);
  const glpi = manifest.databases.find((d) => d.container === 'v2_glpi_db')!.databases[0]!.tables;
  assert.ok(glpi.glpi_documents_items && glpi.glpi_documents_items.rows > 0, 'the dump holds the apps\' links');
});

test('side-by-side restore of the whole backup (volumes and databases) succeeds', async () => {
  const t0 = Date.now();
  const r = await runDr(['restore', '--latest', '--suffix', SUFFIX], env);
  assert.equal(r.code, 0, r.stderr);
  console.log(`# side-by-side restore: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${Math.round((Date.now() - Date.parse(manifest.finishedAt)) / 1000)} s after the backup`);
  // the restored databases, opened like the stack opens them (on fresh containers, no network)
  const e = { MARIADB_ROOT_PASSWORD: secrets.GLPI_DB_ROOT_PASSWORD!, POSTGRES_PASSWORD: secrets.CHATWOOT_DB_PASSWORD!, REDIS_PASSWORD: secrets.REDIS_PASSWORD! };
  out(['run', '-d', '--name', C.maria, '--label', TEST_PROJECT_LABEL, '--network', 'none', '-e', 'MARIADB_ROOT_PASSWORD',
    '-v', `v2_glpi_db_data${SUFFIX}:/var/lib/mysql`, 'helpdesk-dr-test/mariadb:10.11'], e);
  out(['run', '-d', '--name', C.pg, '--label', TEST_PROJECT_LABEL, '--network', 'none', '-e', 'POSTGRES_PASSWORD', '-e', 'POSTGRES_USER=chatwoot', '-e', 'POSTGRES_DB=chatwoot',
    '-v', `v2_chatwoot_db_data${SUFFIX}:/var/lib/postgresql/data`, 'helpdesk-dr-test/postgres:15'], e);
  out(['run', '-d', '--name', C.redis, '--label', TEST_PROJECT_LABEL, '--network', 'none', '-e', 'REDIS_PASSWORD',
    '-v', `v2_chatwoot_redis_data${SUFFIX}:/data`, '--entrypoint', 'sh', 'helpdesk-dr-test/redis:7', '-c',
    'aof=no; [ -d /data/appendonlydir ] && aof=yes; exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly $aof --dir /data'], e);
  const until = async (f: () => unknown, what: string) => {
    for (let i = 0; i < 120; i++) {
      try { f(); return; } catch { await sleep(500); }
    }
    throw new Error(`timeout: ${what}`);
  };
  await until(() => maria(C.maria, 'SELECT 1'), 'restored MariaDB');
  await until(() => psql(C.pg, 'SELECT 1'), 'restored PostgreSQL');
  await until(() => assert.equal(redis(C.redis, 'PING'), 'PONG'), 'restored Redis');
  const h = high(C.maria, C.pg);
  console.log(`# restored: GLPI tickets up to #${h.tickets}, Chatwoot conversations up to #${h.conversations} (live before the backup: #${during.before.tickets}, #${during.before.conversations})`);
});

test('every restored document and attachment row has its file in the restored volume, with its size and checksum', () => {
  // GLPI: glpi_documents.filepath (relative to files/_documents) and its SHA-1; Chatwoot: active_storage_blobs.key
  // under xx/yy/key, byte_size and MD5 (base64)
  const rows = fileRows(C.maria, C.pg);
  assert.ok(rows.docs.length > 0 && rows.blobs.length > 0, 'the apps\' documents and attachments are in the restored databases');
  const bad = badRows(rows, `v2_glpi_files${SUFFIX}`, `v2_chatwoot_storage${SUFFIX}`);
  const fresh = { glpi: bad.glpi.filter((l) => !broken.glpi.has(l.split(':')[0]!)), chatwoot: bad.chatwoot.filter((l) => !broken.chatwoot.has(l.split(':')[0]!)) };
  console.log(`# checked ${rows.docs.length} GLPI documents and ${rows.blobs.length} Chatwoot attachments against their files`);
  assert.deepEqual(fresh, { glpi: [], chatwoot: [] }, 'rows whose file is missing or different in the restored volume');
});

test('the apps\' multi-table transactions are all or nothing in the restored databases', () => {
  const n = (s: string) => Number(s);
  // Chatwoot: conversation + message + attachment + blob + attachment link were committed together; a purge
  // removes attachment + link + blob together
  assert.ok(n(psql(C.pg, "SELECT count(*) FROM conversations WHERE additional_attributes->>'standin' = 'sidekiq'")) > 0);
  assert.deepEqual({
    'conversation without exactly one message': n(psql(C.pg, "SELECT count(*) FROM conversations c WHERE c.additional_attributes->>'standin' = 'sidekiq' AND (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) <> 1")),
    'message without conversation': n(psql(C.pg, 'SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id)')),
    'attachment without its storage link': n(psql(C.pg, "SELECT count(*) FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.content_attributes->>'standin' = 'true' AND NOT EXISTS (SELECT 1 FROM active_storage_attachments x WHERE x.record_type = 'Attachment' AND x.record_id = a.id)")),
    'storage link without attachment': n(psql(C.pg, 'SELECT count(*) FROM active_storage_attachments x WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = x.record_id)')),
    'blob without storage link': n(psql(C.pg, 'SELECT count(*) FROM active_storage_blobs b WHERE NOT EXISTS (SELECT 1 FROM active_storage_attachments x WHERE x.blob_id = b.id)')),
  }, {
    'conversation without exactly one message': 0, 'message without conversation': 0, 'attachment without its storage link': 0,
    'storage link without attachment': 0, 'blob without storage link': 0,
  });
  // GLPI: ticket + counter (trigger) + document + document_item committed together; a delete removes
  // document + link together
  const [tickets, counted, portal] = maria(C.maria, "SELECT COUNT(*) FROM glpi_tickets; SELECT SUM(ticket_count) FROM glpi_ticket_counters; SELECT COUNT(*) FROM glpi_tickets WHERE name = 'Заявка из портала'").split('\n').map(Number);
  assert.ok(portal! > 0, 'the stand-in\'s tickets are in the restored database');
  assert.equal(counted, tickets, 'the trigger\'s counter matches the tickets (one transaction)');
  assert.deepEqual({
    'document without its link': n(maria(C.maria, "SELECT COUNT(*) FROM glpi_documents d WHERE d.filepath IS NOT NULL AND NOT EXISTS (SELECT 1 FROM glpi_documents_items i WHERE i.documents_id = d.id AND i.items_id = d.tickets_id AND i.itemtype = 'Ticket')")),
    'link without document': n(maria(C.maria, 'SELECT COUNT(*) FROM glpi_documents_items i WHERE NOT EXISTS (SELECT 1 FROM glpi_documents d WHERE d.id = i.documents_id)')),
  }, { 'document without its link': 0, 'link without document': 0 });
});

test('the restored Redis holds Sidekiq\'s keys: queues, schedule and retry sets, stat counters', () => {
  const type = (k: string) => redis(C.redis, 'TYPE', k);
  // (the process registry is not among them: the RDB is saved while Sidekiq is stopped, and a Sidekiq that
  // stops takes itself out of `processes`; its heartbeat hash, if any, expires 60 s after its last beat)
  assert.deepEqual({ queues: type('queues'), schedule: type('schedule'), retry: type('retry'), 'stat:processed': type('stat:processed'), 'stat:failed': type('stat:failed') },
    { queues: 'set', schedule: 'zset', retry: 'zset', 'stat:processed': 'string', 'stat:failed': 'string' });
  assert.ok(Number(redis(C.redis, 'ZCARD', 'schedule')) > 0, 'jobs scheduled in the future');
  assert.ok(Number(redis(C.redis, 'ZCARD', 'retry')) > 0, 'failed jobs waiting for their retry');
  assert.ok(Number(redis(C.redis, 'GET', 'stat:processed')) > 0 && Number(redis(C.redis, 'GET', 'stat:failed')) > 0);
  const queues = redis(C.redis, 'SMEMBERS', 'queues').split('\n');
  assert.ok(queues.includes('medium') && queues.includes('active_storage_purge'), queues.join(','));
  const retried = JSON.parse(redis(C.redis, 'ZRANGE', 'retry', '0', '0')) as { class: string; error_message: string; retry_count: number };
  assert.equal(retried.class, 'CreateAttachmentJob');
  assert.match(retried.error_message, /mail server is not answering/);
  assert.equal(redis(C.redis, 'LLEN', 'queue:default'), '300', 'the seed\'s backlog');
});

// ---------------------------------------------------------------------------------------------------------------
// Issue 17's acceptance, on the same backup: Sidekiq's heartbeat hashes in it expire ~60 s after their last
// beat, so a full drill and an in-place `dr restore --latest`, both started more than two minutes after the
// backup, must pass and report the expired keys as expired, not as a difference.

const TTL_CLASS = "local r = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do local t = redis.call('PTTL', k) r[#r + 1] = k .. (t == -1 and ' persistent' or ' volatile') end return r";
/** keys matching `pattern`, with their TTL class: "name persistent" / "name volatile" */
const keysWithTtl = (pattern: string, cli: (...args: string[]) => string = (...a) => redis('v2_chatwoot_redis', ...a)) => cli('EVAL', TTL_CLASS, '0', pattern).split('\n').filter(Boolean).sort();

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

test('the backup\'s RDB, read with stock age and zstd, holds Sidekiq heartbeats with a TTL and its lasting keys', () => {
  const inBackup = keysOfBackup();
  assert.ok(inBackup.some((k) => /^[^:]+:\d+:[0-9a-f]+ volatile$/.test(k)), `no heartbeat with a TTL: ${inBackup.filter((k) => k.endsWith('volatile')).join(', ')}`);
  assert.ok(inBackup.some((k) => /^stat:processed.* persistent$/.test(k)), 'no Sidekiq stats');
});

test('two minutes after the backup, the full drill passes and reports the expired heartbeats', async () => {
  const wait = Date.parse(manifest.finishedAt) + 125_000 - Date.now();
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
  const wait = Date.parse(manifest.finishedAt) + 125_000 - Date.now();
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
  while (!redis('v2_chatwoot_redis', 'SMEMBERS', 'processes').trim() && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  assert.ok(redis('v2_chatwoot_redis', 'SMEMBERS', 'processes').trim(), 'Sidekiq does not beat on the restored Redis');
  console.log(`in-place restore of the Sidekiq stack, ${Math.round((t0 - Date.parse(manifest.finishedAt)) / 1000)} s after the backup: ${seconds.toFixed(1)} s`);
});
