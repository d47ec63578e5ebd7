import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import {
  runDr, stackUp, docker, sh, backupEnv, startedAt, sampleArgv, testSecrets, waitHealthy, WRITERS, DATABASES, TEST_PROJECT_LABEL,
} from '../helpers.ts';
import type { Manifest } from '../../src/repo/manifest.ts';

let env: Awaited<ReturnType<typeof backupEnv>>;
let manifest: Manifest;
let dir: string;
let stdout = '';
let stderr = '';
let argv: string[] = [];
const before_: Record<string, string | undefined> = {};
let events: { Type: string; Action: string; timeNano: number; Actor: { Attributes: Record<string, string> } }[] = [];

before(async () => {
  stackUp();
  env = await backupEnv('main');
  for (const c of [...WRITERS, ...DATABASES]) before_[c] = startedAt(c);
  // Docker's own event stream, recorded for the whole backup (the daemon keeps only a short history)
  const ev = spawn('docker', ['events', '--format', '{{json .}}', '--filter', 'type=container'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let evText = '';
  ev.stdout.on('data', (d) => (evText += d));
  await new Promise((r) => setTimeout(r, 300));
  const ps = sampleArgv();
  // through the Docker archive API (the sidecar's path), so Docker's events show when each volume was read;
  // the direct tar path is used by the other suites
  const r = await runDr(['backup', '--json'], { ...env, DR_LOG_LEVEL: 'info', DR_NO_DIRECT_VOLUME_ACCESS: '1' });
  argv = ps.stop();
  await new Promise((r) => setTimeout(r, 300));
  ev.kill();
  events = evText.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(r.code, 0, r.stderr);
  stdout = r.stdout;
  stderr = r.stderr;
  manifest = JSON.parse(r.stdout) as Manifest;
  dir = join(env.DR_LOCAL_DIR, manifest.id);
});

test('the manifest covers all 8 v2_ volumes: app volumes archived, DB volumes covered by their dumps', () => {
  const vols = Object.fromEntries(manifest.volumes.map((v) => [v.name, v.part ? 'archived' : v.coveredBy]));
  assert.deepEqual(vols, {
    v2_chatwoot_db_data: 'dump:v2_chatwoot_db', v2_chatwoot_redis_data: 'dump:v2_chatwoot_redis', v2_chatwoot_storage: 'archived',
    v2_glpi_config: 'archived', v2_glpi_db_data: 'dump:v2_glpi_db', v2_glpi_files: 'archived', v2_glpi_marketplace: 'archived',
    v2_glpi_plugins: 'archived',
  });
  assert.equal(manifest.format, 'helpdesk-dr/1');
  assert.equal(manifest.mode, 'hot');
  assert.ok(manifest.signature?.value, 'signed');
});

test('every volume part opens with stock tools (age -d | zstd -d | tar -t) and lists the seeded files', () => {
  const listing = (vol: string) => sh(`age -d -i '${env.identity}' '${dir}/volumes/${vol}.tar.zst.age' | zstd -d | tar -t`).toString('utf8').split('\n');
  const files = listing('v2_glpi_files');
  for (const f of ['./_documents/PDF/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c4.PDF', './_documents/Заявка №42 — отчёт.pdf',
    './_documents/вложение 📎 (копия).txt', './_tmp/zero-bytes.txt', './_cache/empty_dir/', './_pictures/pdf-link', './_documents/hardlink.PDF']) {
    assert.ok(files.includes(f), `${f} in v2_glpi_files`);
  }
  assert.ok(files.some((f) => Buffer.byteLength(f) > 100 && f.endsWith('.txt') && f.includes('очень_длинное')), 'long name');
  assert.ok(files.some((f) => f.endsWith('level-12-directory-name/file.txt')), 'deep path');
  assert.ok(listing('v2_glpi_config').includes('./config_db.php'));
  assert.ok(listing('v2_glpi_marketplace').includes('./current'));
  assert.ok(listing('v2_glpi_plugins').includes('./fields/empty/'));
  assert.ok(listing('v2_chatwoot_storage').includes('./readme-кириллица.txt'));
  // the tar keeps owners and modes (verbose listing)
  const verbose = sh(`age -d -i '${env.identity}' '${dir}/volumes/v2_glpi_config.tar.zst.age' | zstd -d | tar -tv --numeric-owner`).toString();
  assert.match(verbose, /-rw------- 33\/33 .* \.\/config_db\.php/);
  // the manifest's plaintext size (and, for a dump, SHA-256) are those of the stock tools' output; a volume's
  // plaintext has no SHA-256 of its own (its index holds every file's)
  for (const p of manifest.parts.filter((x) => x.kind === 'volume' || x.kind === 'dump')) {
    const plain = (tool: string) => sh(`age -d -i '${env.identity}' '${dir}/${p.key}' | zstd -d | ${tool}`).toString().trim().split(' ')[0]!;
    assert.deepEqual({ size: Number(plain('wc -c')), sha256: p.kind === 'volume' ? null : plain('sha256sum') }, p.plain, p.key);
  }
});

test('sha256sum -c SHA256SUMS passes in the backup folder, without any key', () => {
  const out = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  const ok = out.trim().split('\n');
  assert.equal(ok.length, manifest.parts.length);
  assert.ok(ok.every((l) => l.endsWith(': OK')));
  for (const p of manifest.parts) assert.equal(readFileSync(join(dir, p.key)).length, p.stored.size);
});

test('the per-file index records path, type, mode, owner, size and SHA-256, matching the tar', () => {
  const index = sh(`age -d -i '${env.identity}' '${dir}/index/v2_glpi_files.jsonl.zst.age' | zstd -d`).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  const pdf = index.find((e) => e.path === '_documents/PDF/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c4.PDF');
  const real = sh(`age -d -i '${env.identity}' '${dir}/volumes/v2_glpi_files.tar.zst.age' | zstd -d | tar -xO ./_documents/PDF/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c4.PDF | sha256sum`).toString().split(' ')[0];
  assert.deepEqual({ type: pdf.type, mode: pdf.mode, uid: pdf.uid, gid: pdf.gid, size: pdf.size, sha256: pdf.sha256 },
    { type: 'file', mode: 0o640, uid: 33, gid: 33, size: 300000, sha256: real });
  assert.equal(index.find((e) => e.path === '_pictures/pdf-link').type, 'symlink');
  assert.equal(index.find((e) => e.path === '_pictures/pdf-link').linkname, '../_documents/PDF');
  assert.equal(index.find((e) => e.path === '_documents/hardlink.PDF').type, 'hardlink');
  assert.deepEqual(index.find((e) => e.path === '_cache/empty_dir'), { ...index.find((e) => e.path === '_cache/empty_dir'), type: 'dir', uid: 1234, gid: 5678 });
  const part = manifest.parts.find((p) => p.key === 'volumes/v2_glpi_files.tar.zst.age')!;
  assert.equal(part.files, index.length);
});

test('MariaDB and PostgreSQL dumps, decrypted with stock tools, load into fresh DB containers with the manifest\'s row counts', async () => {
  const suffix = Math.random().toString(16).slice(2, 8);
  const maria = `dr-test-fresh-mariadb-${suffix}`;
  const pg = `dr-test-fresh-postgres-${suffix}`;
  // passwords reach the containers through the docker CLI's environment (-e NAME), never its argv
  const secretEnv = { ...process.env, MARIADB_ROOT_PASSWORD: 'fresh-maria-Pw-1', POSTGRES_PASSWORD: 'fresh-pg-Pw-1' };
  execFileSync('docker', ['run', '-d', '--name', maria, '--label', TEST_PROJECT_LABEL, '-e', 'MARIADB_ROOT_PASSWORD', 'helpdesk-dr-test/mariadb:10.11'], { env: secretEnv, stdio: 'ignore' });
  execFileSync('docker', ['run', '-d', '--name', pg, '--label', TEST_PROJECT_LABEL, '-e', 'POSTGRES_PASSWORD', '-e', 'POSTGRES_USER=chatwoot', '-e', 'POSTGRES_DB=chatwoot', 'helpdesk-dr-test/postgres:15'], { env: secretEnv, stdio: 'ignore' });
  try {
    const until = async (cmd: string[]) => {
      for (let i = 0; i < 120; i++) {
        try { execFileSync('docker', cmd, { stdio: 'ignore' }); return; } catch { await new Promise((r) => setTimeout(r, 500)); }
      }
      throw new Error(`timeout: ${cmd.join(' ')}`);
    };
    await until(['exec', maria, 'healthcheck.sh', '--connect', '--innodb_initialized']);
    await until(['exec', pg, 'pg_isready', '-h', '127.0.0.1', '-U', 'chatwoot']);
    const dec = (key: string) => `age -d -i '${env.identity}' '${join(dir, key)}' | zstd -d`;
    const db = (c: string) => manifest.databases.find((d) => d.container === c)!;

    sh(`${dec(db('v2_glpi_db').databases[0]!.part)} | docker exec -i ${maria} sh -c 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot'`);
    for (const [table, stats] of Object.entries(db('v2_glpi_db').databases[0]!.tables)) {
      const n = execFileSync('docker', ['exec', maria, 'sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B glpi -e 'SELECT COUNT(*) FROM \`${table}\`'`], { encoding: 'utf8' }).trim();
      assert.equal(Number(n), stats.rows, `glpi.${table}`);
    }
    // the seed's 2000 tickets (GLPI's stand-in adds its own while it runs)
    const seeded = execFileSync('docker', ['exec', maria, 'sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B glpi -e "SELECT COUNT(*) FROM glpi_tickets WHERE id <= 2000 AND name LIKE 'Заявка №%'"`], { encoding: 'utf8' }).trim();
    assert.equal(seeded, '2000');
    assert.ok(db('v2_glpi_db').databases[0]!.tables.glpi_tickets!.rows >= 2000);
    const routines = execFileSync('docker', ['exec', maria, 'sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot --default-character-set=utf8mb4 -N -B glpi -e "SELECT glpi_ticket_label(7); SHOW TRIGGERS; SHOW EVENTS"`], { encoding: 'utf8' });
    assert.match(routines, /#7 Заявка №7 — не работает принтер 🖨/);
    assert.match(routines, /glpi_tickets_after_insert/);
    assert.match(routines, /glpi_purge_logs/);

    const chat = db('v2_chatwoot_db');
    sh(`${dec(chat.extraParts.find((p) => p.name === 'globals')!.part)} | docker exec -i ${pg} psql -q -U chatwoot -d postgres >/dev/null 2>&1 || true`);
    sh(`${dec(chat.databases.find((d) => d.name === 'chatwoot')!.part)} | docker exec -i ${pg} psql -q -v ON_ERROR_STOP=1 -U chatwoot -d chatwoot >/dev/null`);
    const tables = chat.databases.find((d) => d.name === 'chatwoot')!.tables;
    assert.deepEqual(Object.keys(tables).sort(), ['public.accounts', 'public.active_storage_attachments', 'public.active_storage_blobs', 'public.ar_internal_metadata',
      'public.attachments', 'public.conversations', 'public.messages', 'reporting.daily_stats']);
    for (const [table, stats] of Object.entries(tables)) {
      const n = execFileSync('docker', ['exec', pg, 'psql', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c', `SELECT count(*) FROM ${table}`], { encoding: 'utf8' }).trim();
      assert.equal(Number(n), stats.rows, table);
    }
    const seq = execFileSync('docker', ['exec', pg, 'psql', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c', "SELECT last_value FROM reporting.invoice_seq"], { encoding: 'utf8' }).trim();
    assert.equal(seq, '1500');
  } finally {
    docker('rm', '-f', '-v', maria, pg);
  }
});

test('writers were stopped while their volumes were archived and run again; the databases never stopped (hot mode)', () => {
  for (const c of WRITERS) {
    assert.notEqual(startedAt(c), before_[c], `${c} was restarted`);
    assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true');
  }
  for (const c of DATABASES) assert.equal(startedAt(c), before_[c], `${c} kept running`);
  // Docker's own events: every archive read happened after the last writer died and before the first came back
  const t = (e: { timeNano: number }) => e.timeNano;
  const writerDies = events.filter((e) => e.Type === 'container' && e.Action === 'die' && WRITERS.includes(e.Actor.Attributes.name ?? ''));
  const writerStarts = events.filter((e) => e.Type === 'container' && e.Action === 'start' && WRITERS.includes(e.Actor.Attributes.name ?? ''));
  const archives = events.filter((e) => e.Type === 'container' && e.Action === 'archive-path' && e.Actor.Attributes['dr.helper']);
  assert.equal(writerDies.length, 3);
  assert.equal(writerStarts.length, 3);
  assert.equal(archives.length, 5, 'five app volumes read through the archive API');
  const lastDie = Math.max(...writerDies.map(t));
  const firstStart = Math.min(...writerStarts.map(t));
  for (const a of archives) assert.ok(t(a) > lastDie && t(a) < firstStart, 'archive read inside the stop window');
  assert.ok(!events.some((e) => e.Type === 'container' && ['die', 'stop', 'kill'].includes(e.Action) && DATABASES.includes(e.Actor.Attributes.name ?? '')));
  assert.ok(manifest.downtime.ms > 0 && manifest.downtime.ms < manifest.durationMs);
  assert.deepEqual(manifest.downtime.containers.map((c) => c.name), ['v2_glpi', 'v2_chatwoot_sidekiq', 'v2_chatwoot']);
  assert.equal(docker('ps', '-a', '-q', '--filter', 'label=dr.helper'), '', 'helper containers removed');
});

test('no secret appears in argv, logs, the manifest or the output', () => {
  const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
  for (const s of testSecrets()) {
    assert.ok(!argv.some((l) => l.includes(s)), `secret in ps: ${argv.find((l) => l.includes(s))}`);
    assert.ok(!stderr.includes(s) && !stdout.includes(s) && !manifestText.includes(s));
  }
  assert.match(stderr, /backup committed/, 'logs were captured');
});

test('dr list shows the committed backup with size, parts, duration and downtime', async () => {
  const r = await runDr(['list', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const { backups } = JSON.parse(r.stdout);
  assert.equal(backups[0].id, manifest.id);
  assert.equal(backups[0].parts, manifest.parts.length);
  assert.equal(backups[0].sizeBytes, manifest.parts.reduce((n, p) => n + p.stored.size, 0));
  assert.equal(backups[0].downtimeMs, manifest.downtime.ms);
  const st = JSON.parse((await runDr(['status', '--json'], env)).stdout);
  assert.equal(st.lastBackups[0].id, manifest.id, 'dr status shows the last backup');
  assert.ok(st.lastBackups[0].ageSeconds >= 0 && st.lastBackups[0].ageSeconds < 600);
  const text = await runDr(['list'], env);
  assert.match(text.stdout, new RegExp(`${manifest.id}\\s+\\S+\\s+\\S+\\s+hot\\s+[\\d.]+ (KiB|MiB)\\s+${manifest.parts.length}\\s`));
});

test('a forced dump failure commits nothing, leaves no temp files and every writer running', async () => {
  const e2 = await backupEnv('dumpfail');
  const tools = '/usr/bin/mariadb-dump /usr/bin/mysqldump';
  execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c', `chmod 000 $(readlink -f ${tools})`]);
  try {
    const r = await runDr(['backup'], e2);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /v2_glpi_db: mariadb-dump of glpi failed \(exit 126\)/);
    assert.match(r.stderr, /nothing was committed/);
  } finally {
    execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c', `chmod 755 $(readlink -f ${tools})`]);
  }
  const left = existsSync(e2.DR_LOCAL_DIR) ? readdirSync(e2.DR_LOCAL_DIR, { recursive: true }).map(String) : [];
  assert.deepEqual(left, [], 'no backup folder, part or temp file left');
  for (const c of WRITERS) assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true');
  const l = await runDr(['list', '--json'], e2);
  assert.deepEqual(JSON.parse(l.stdout).backups, []);
});

test('bad recipients or a missing signing key: refused before anything is stopped', async () => {
  const e3 = await backupEnv('badinput');
  const starts = WRITERS.map(startedAt);
  const r = await runDr(['backup'], { ...e3, DR_AGE_RECIPIENTS: 'age1notarecipient', DR_SIGNING_KEY_FILE: '/nonexistent/signing.key' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /DR_AGE_RECIPIENTS/);
  assert.match(r.stderr, /DR_SIGNING_KEY_FILE: cannot read \/nonexistent\/signing\.key/);
  assert.deepEqual(WRITERS.map(startedAt), starts);
  assert.ok(!existsSync(e3.DR_LOCAL_DIR));
  const missing = await runDr(['backup'], { DR_LOCAL_DIR: e3.DR_LOCAL_DIR });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /DR_AGE_RECIPIENTS \(or DR_AGE_RECIPIENTS_FILE\) is required/);
});

test('dr backup --dry-run prints the plan and touches nothing', async () => {
  const e4 = await backupEnv('dryrun');
  const starts = WRITERS.map(startedAt);
  const r = await runDr(['backup', '--dry-run'], e4);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /stopped, by wave: v2_glpi \+ v2_chatwoot_sidekiq \+ v2_chatwoot\n/);
  assert.match(r.stdout, /covered by dumps: v2_chatwoot_db_data/);
  assert.match(r.stdout, /Dry run: nothing was touched/);
  assert.deepEqual(WRITERS.map(startedAt), starts);
  assert.ok(!existsSync(e4.DR_LOCAL_DIR));
});

test('a second dr backup while one runs exits with the lock-held code and touches nothing', async () => {
  const e5 = await backupEnv('lock');
  const first = runDr(['backup'], e5);
  const lockFile = join(e5.DR_LOCAL_DIR, '.lock');
  for (let i = 0; i < 200 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(existsSync(lockFile), 'first backup holds the lock');
  const second = await runDr(['backup'], e5);
  assert.equal(second.code, 3);
  assert.match(second.stderr, /is locked by dr backup \(pid \d+/);
  const r1 = await first;
  assert.equal(r1.code, 0, r1.stderr);
  const l = JSON.parse((await runDr(['list', '--json'], e5)).stdout);
  assert.equal(l.backups.length, 1);
  for (const c of WRITERS) await waitHealthy(c);
});
