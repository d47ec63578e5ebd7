/**
 * The fault and security suite: crashes at every backup stage, storage faults (an S3 fault proxy, a full
 * disk), corruption, hostile archives, bad configuration, secrets, concurrency. Every scenario compares the
 * facts it observes with the facts expected, records a row (scenario, expected, observed) and fails on any
 * mismatch; the table is printed at the end and written to test/results/faults.md.
 * Run alone: npm run test:faults (it is also part of npm test).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import tar from 'tar-stream';
import {
  ROOT, DR, runDr, drEnv, stackUp, docker, backupEnv, scratchDir, startS3, testSecrets, sampleArgv, waitHealthy,
  WRITERS, claimTarSize, volumeSnapshot, type BackupEnv, type RunResult,
} from '../helpers.ts';
import { startFaultProxy, type FaultProxy } from '../env/faultproxy.ts';
import { signManifest, serializeManifest, type Manifest } from '../../src/repo/manifest.ts';
import { loadSigningKey } from '../../src/repo/trust.ts';
import { createEncryptStream } from '../../src/codec/age/index.ts';
import { compressor } from '../../src/codec/write.ts';

// ---------------------------------------------------------------------------------------------------------------
// the table

type Facts = Record<string, string | number | boolean>;
const rows: { section: string; scenario: string; expected: string; observed: string; ok: boolean }[] = [];
const show = (f: Facts) => Object.entries(f).map(([k, v]) => `${k}=${String(v).replaceAll('|', '/')}`).join(', ');
function row(section: string, scenario: string, expected: Facts, observed: Facts): void {
  const ok = JSON.stringify(expected) === JSON.stringify(observed);
  rows.push({ section, scenario, expected: show(expected), observed: show(observed), ok });
  assert.deepEqual(observed, expected, `${section}: ${scenario}`);
}

after(() => {
  const lines = ['| section | scenario | expected | observed | |', '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.section} | ${r.scenario} | ${r.expected} | ${r.observed} | ${r.ok ? 'ok' : '**MISMATCH**'} |`)];
  const text = `# Fault and security suite — ${new Date().toISOString()}\n\n${rows.filter((r) => r.ok).length}/${rows.length} scenarios as expected\n\n${lines.join('\n')}\n`;
  mkdirSync(join(ROOT, 'test/results'), { recursive: true });
  writeFileSync(join(ROOT, 'test/results/faults.md'), text);
  console.log(text);
});

// ---------------------------------------------------------------------------------------------------------------
// helpers

let env: BackupEnv;
let base: Manifest;
let s3: Awaited<ReturnType<typeof startS3>>;
let proxy: FaultProxy;
let s3env: Record<string, string>;

/** dr, with its stderr readable while it runs */
function spawnDr(args: string[], e: Record<string, string>) {
  const child = spawn(process.execPath, [DR, ...args], {
    cwd: scratchDir(), env: drEnv(e), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((r) => child.on('close', (code, sig) => r({ code: code ?? (sig === 'SIGKILL' ? 137 : 143), stdout, stderr })));
  return {
    child, done,
    stderr: () => stderr,
    stdout: () => stdout,
    async waitFor(re: RegExp, ms = 60_000): Promise<void> {
      const end = Date.now() + ms;
      while (!re.test(stderr)) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`dr never printed ${re}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** dr started with DR_TEST_HOLD=`stage`, once it holds there */
async function heldAt(stage: string, args: string[], e: Record<string, string>): Promise<ReturnType<typeof spawnDr>> {
  const run = spawnDr(args, { ...e, DR_TEST_HOLD: stage });
  await run.waitFor(/dr: holding at /);
  return run;
}
const running = (c: string) => docker('inspect', '-f', '{{.State.Running}}', c) === 'true';
const allWritersRunning = () => WRITERS.every(running);
const localIds = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => /^\d{8}T\d{6}Z-/.test(n)) : []);
async function listedIds(e: Record<string, string>, from?: string): Promise<string[]> {
  const r = await runDr(['list', '--json', ...(from ? ['--from', from] : [])], e);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout).backups as { id: string }[]).map((b) => b.id);
}
async function s3Keys(): Promise<string[]> {
  const r = await fetch(`http://127.0.0.1:${s3.port}/dr-test-bucket?list-type=2&prefix=helpdesk/`);
  return [...(await r.text()).matchAll(/<Key>helpdesk\/([^<]+)<\/Key>/g)].map((m) => m[1]!);
}
const suffixVolumes = (s: string) => docker('volume', 'ls', '-q').split('\n').filter((v) => v.endsWith(s));
const firstLine = (s: string) => s.split('\n').find((l) => l.startsWith('dr: ')) ?? s.split('\n')[0] ?? '';

/** A copy of the baseline backup in its own local dir, with `mutate` applied to the copied folder. */
async function damagedCopy(name: string, mutate: (dir: string) => void | Promise<void>): Promise<BackupEnv> {
  const local = join(scratchDir(), `faults-damaged-${name}`);
  rmSync(local, { recursive: true, force: true });
  mkdirSync(local, { recursive: true });
  cpSync(join(env.DR_LOCAL_DIR, base.id), join(local, base.id), { recursive: true });
  await mutate(join(local, base.id));
  return { ...env, DR_LOCAL_DIR: local };
}
function flipBit(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0x10;
  writeFileSync(file, b);
}
function truncate(file: string): void {
  const b = readFileSync(file);
  writeFileSync(file, b.subarray(0, Math.floor(b.length * 0.6)));
}
function resign(dir: string, edit: (m: Manifest) => void): void {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, loadSigningKey(env.DR_SIGNING_KEY_FILE))));
}

/** Replaces part `key` of the backup in `dir` with `raw`, compressed, encrypted and re-signed like a real one. */
async function replacePart(dir: string, key: string, raw: Buffer): Promise<void> {
  const stored = createHash('sha256');
  let size = 0;
  await pipeline(Readable.from([raw]), compressor('zstd', 3), createEncryptStream(base.encryption.recipients),
    async function* (src: AsyncIterable<Buffer>) { for await (const c of src) { stored.update(c); size += c.length; yield c; } }, createWriteStream(join(dir, key)));
  resign(dir, (m) => {
    const p = m.parts.find((x) => x.key === key)!;
    p.plain = { size: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
    p.stored = { size, sha256: stored.digest('hex') };
  });
}

before(async () => {
  stackUp();
  env = await backupEnv('faults');
  s3 = await startS3(join(scratchDir(), 's3-faults'));
  proxy = await startFaultProxy(s3.port);
  s3env = { ...s3.env, DR_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, DR_S3_PREFIX: 'helpdesk', DR_S3_MAX_ATTEMPTS: '4', DR_S3_TIMEOUT_SECONDS: '3' };
  clearMarkers(); // an earlier run's restore rows may have left the old content (with its markers) in place
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  base = JSON.parse(r.stdout);
});

after(async () => {
  await proxy?.close();
  await s3?.stop();
});

// ---------------------------------------------------------------------------------------------------------------
// 1. crash recovery

const stages: [string, string, boolean][] = [
  ['during a dump', 'part:dumps/', false],
  ['writers stopped, mid-volume (local)', 'part:volumes/v2_glpi_files', false],
  ['writers stopped, mid-volume, uploading to local + S3', 'part:volumes/v2_glpi_files', true],
  ['between the last part and the manifest', 'manifest', false],
];
for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  for (const [name, stage, withS3] of stages) {
    test(`crash: ${signal} ${name}`, async () => {
      const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), `crash-${signal}-${stage.replace(/\W/g, '')}-${withS3}`), DR_INCOMPLETE_GRACE_SECONDS: '0', ...(withS3 ? s3env : {}) };
      proxy.plan([]);
      const s3Before = withS3 ? new Set(await s3Keys()) : new Set<string>();
      const run = spawnDr(['backup'], { ...e, DR_TEST_HOLD: stage });
      await run.waitFor(/dr: holding at /);
      const id = localIds(e.DR_LOCAL_DIR).sort().at(-1) ?? '';
      run.child.kill(signal);
      const r = await run.done;
      const partialLeft = localIds(e.DR_LOCAL_DIR).includes(id);
      const lockLeft = existsSync(join(e.DR_LOCAL_DIR, '.lock'));
      const writersAfterCrash = allWritersRunning();
      // the next dr command (any: here dr list) restarts what a kill -9 left stopped
      const listed = (await listedIds(e)).includes(id);
      const writersAfterNext = allWritersRunning();
      const restorable = (await runDr(['restore', id, '--dry-run', '--suffix', '_crash'], e)).code === 0;
      const next = await runDr(['backup'], e);
      const s3Orphans = withS3 ? (await s3Keys()).filter((k) => !s3Before.has(k) && k.startsWith(`${id}/`)).length : 0;
      for (const w of WRITERS) await waitHealthy(w);
      const killed = signal === 'SIGKILL';
      row('crash', `${signal} ${name}`, {
        'partial id seen': true, exit: killed ? 137 : 1, 'partial listed': false, 'partial restorable': false,
        'partial files left': killed, 'lock left': killed,
        'writers running after crash': !(killed && stage === 'part:volumes/v2_glpi_files'), 'writers running after next command': true,
        'next backup exit': 0, 'leftovers after next backup': 0,
      }, {
        'partial id seen': id !== '', exit: r.code, 'partial listed': listed, 'partial restorable': restorable, 'partial files left': partialLeft, 'lock left': lockLeft,
        'writers running after crash': writersAfterCrash, 'writers running after next command': writersAfterNext,
        'next backup exit': next.code, 'leftovers after next backup': (localIds(e.DR_LOCAL_DIR).includes(id) ? 1 : 0) + s3Orphans,
      });
      if (!killed) assert.match(r.stderr, /interrupted by SIGTERM/);
    });
  }
}

test('crash: SIGTERM at the instant the writers are down, no hook (3 times): they run again, nothing committed', async () => {
  const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), 'crash-instant') };
  const outcomes: string[] = [];
  for (let i = 0; i < 3; i++) {
    const run = spawnDr(['backup'], e);
    const end = Date.now() + 60_000;
    while (running('v2_glpi') && run.child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    run.child.kill('SIGTERM');
    const r = await run.done;
    outcomes.push(`exit ${r.code}${allWritersRunning() ? '' : ', writers down'}${/Unhandled|uncaught/i.test(r.stderr) ? ', crashed' : ''}`);
    for (const w of WRITERS) await waitHealthy(w);
  }
  row('crash', 'SIGTERM the moment the writers are down (no hook), 3 runs', { outcomes: 'exit 1; exit 1; exit 1', 'backups listed': 0 },
    { outcomes: outcomes.join('; '), 'backups listed': (await listedIds(e)).length });
});

test('crash: DR_QUIESCE=pause: writers paused (never restarted) while archived; a kill -9 while paused is undone by the next command', async () => {
  const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), 'crash-pause'), DR_QUIESCE: 'pause' };
  const paused = (c: string) => docker('inspect', '-f', '{{.State.Paused}}', c) === 'true';
  const started = Object.fromEntries(WRITERS.map((w) => [w, docker('inspect', '-f', '{{.State.StartedAt}}', w)]));
  const sameProcess = () => WRITERS.every((w) => docker('inspect', '-f', '{{.State.StartedAt}}', w) === started[w]);
  const run = spawnDr(['backup'], { ...e, DR_TEST_HOLD: 'part:volumes/v2_glpi_files' });
  await run.waitFor(/dr: holding at /);
  const pausedWhileHeld = WRITERS.every(paused);
  run.child.kill('SIGKILL');
  await run.done;
  const pausedAfterCrash = WRITERS.every(paused);
  await runDr(['list'], e);
  const pausedAfterNext = WRITERS.some(paused);
  const ok = await runDr(['backup', '--json'], e);
  const m = ok.code === 0 ? JSON.parse(ok.stdout) as Manifest : null;
  row('crash', 'DR_QUIESCE=pause, SIGKILL mid-volume, then a full backup', {
    'writers paused while held': true, 'paused after crash': true, 'paused after next command': false, 'backup exit': 0,
    'manifest says how': 'pause,pause,pause', 'paused after backup': false, 'writer processes never restarted': true,
  }, {
    'writers paused while held': pausedWhileHeld, 'paused after crash': pausedAfterCrash, 'paused after next command': pausedAfterNext, 'backup exit': ok.code,
    'manifest says how': m?.downtime.containers.map((c) => c.how).join(',') ?? ok.stderr.slice(0, 200), 'paused after backup': WRITERS.some(paused),
    'writer processes never restarted': sameProcess(),
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1b. restores interrupted, failing, forced (issue 17: RESTORE.md "When a restore fails")

const restoreHelpers = (state?: 'running') => docker('ps', '-aq', '--filter', 'label=dr.helper=restore', ...(state ? ['--filter', 'status=running'] : [])).split('\n').filter(Boolean).length;
const journalLeft = (e: Record<string, string>) => existsSync(join(e.DR_LOCAL_DIR!, '.dr-restore.json'));
const keptCopies = (volume: string) => docker('volume', 'ls', '-q', '--filter', `label=dr.pre-restore-of=${volume}`).split('\n').filter(Boolean).sort();
/** a shell in a throwaway container with `volume` at /v (no network) */
const inVolume = (volume: string, script: string) => execFileSync('docker', ['run', '--rm', '--network', 'none', '-v', `${volume}:/v`, '--entrypoint', 'sh', 'helpdesk-dr-test/glpi:standin', '-c', script], { encoding: 'utf8' }).trim();
const MARK = 'dr-fault-old-content';
const setMarker = (volume: string) => inVolume(volume, `echo old > /v/${MARK}`);
const hasMarker = (volume: string) => inVolume(volume, `test -e /v/${MARK} && echo yes || echo no`) === 'yes';
/** a table that is not in the backup: present after a restore only if the old content came back */
const mariadb = (sql: string) => execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B glpi -e "${sql}"`], { encoding: 'utf8' }).trim();
const postgres = (sql: string) => execFileSync('docker', ['exec', 'v2_chatwoot_db', 'psql', '-X', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c', sql], { encoding: 'utf8' }).trim();
const markTables = () => { mariadb(`CREATE TABLE IF NOT EXISTS ${MARK.replace(/-/g, '_')} (v INT)`); postgres(`CREATE TABLE IF NOT EXISTS ${MARK.replace(/-/g, '_')} (v INT)`); };
const mariaMarked = () => mariadb(`SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '${MARK.replace(/-/g, '_')}'`) === '1';
const pgMarked = () => postgres(`SELECT COUNT(*) FROM pg_tables WHERE tablename = '${MARK.replace(/-/g, '_')}'`) === '1';
/** after each row: no kept copy (a v2_ volume outside the compose project stops stack.sh), no marker left */
const removeKeptCopies = () => {
  for (const v of docker('volume', 'ls', '-q', '--filter', 'label=dr.pre-restore-of').split('\n').filter(Boolean)) docker('volume', 'rm', '-f', v);
  clearMarkers();
};
function clearMarkers(): void {
  const t = MARK.replace(/-/g, '_');
  for (const v of ['v2_glpi_plugins', 'v2_glpi_config']) inVolume(v, `rm -f /v/${MARK} /v/dr-fault-second`);
  mariadb(`DROP TABLE IF EXISTS ${t}`);
  postgres(`DROP TABLE IF EXISTS ${t}`);
}
/** A copy of the baseline backup in a directory of its own (the journal and lock live there). */
const ownCopy = (name: string) => damagedCopy(`restore-${name}`, () => {});
const healthy = (c: string) => docker('inspect', '-f', '{{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{end}}', c);

test('restore: SIGTERM (then SIGINT while cleaning up) after a --force target was emptied: old content back and checked, app running, nothing left', async () => {
  const e = await ownCopy('sigterm-volume');
  setMarker('v2_glpi_plugins');
  const run = await heldAt('restore:volume:v2_glpi_plugins', ['restore', base.id, '--volume', 'v2_glpi_plugins', '--force'], e);
  const emptied = !hasMarker('v2_glpi_plugins');
  run.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 150));
  run.child.kill('SIGINT');
  const r = await run.done;
  await waitHealthy('v2_glpi');
  row('restore', 'SIGTERM + SIGINT after the --force wipe, before the volume is written', {
    'target emptied while held': true, exit: 1, 'says interrupted': true, 'temporary containers': 0, 'old content back': true, 'v2_glpi running': true, 'journal left': false, 'kept copies': 1,
  }, {
    'target emptied while held': emptied, exit: r.code, 'says interrupted': /interrupted by SIGTERM/.test(r.stderr), 'temporary containers': restoreHelpers(),
    'old content back': hasMarker('v2_glpi_plugins'), 'v2_glpi running': running('v2_glpi'), 'journal left': journalLeft(e), 'kept copies': keptCopies('v2_glpi_plugins').length,
  });
  removeKeptCopies();
});

test('restore: the part vanishes after a --force target was emptied (a failure after the wipe): old content back, app running', async () => {
  const e = await ownCopy('vanish');
  setMarker('v2_glpi_plugins');
  const run = await heldAt('restore:volume:v2_glpi_plugins', ['restore', base.id, '--volume', 'v2_glpi_plugins', '--force'], e);
  rmSync(join(e.DR_LOCAL_DIR, base.id, 'volumes', 'v2_glpi_plugins.tar.zst.age'));
  run.child.kill('SIGUSR2');
  const r = await run.done;
  await waitHealthy('v2_glpi');
  row('restore', '--force, the part vanishes after the wipe', {
    exit: 1, 'names the part': true, 'old content back': true, 'v2_glpi running': true, 'temporary containers': 0, 'journal left': false, 'table says old content': true,
  }, {
    exit: r.code, 'names the part': /v2_glpi_plugins/.test(r.stderr), 'old content back': hasMarker('v2_glpi_plugins'), 'v2_glpi running': running('v2_glpi'),
    'temporary containers': restoreHelpers(), 'journal left': journalLeft(e), 'table says old content': /old content put back/.test(r.stdout),
  });
  removeKeptCopies();
});

test('restore: --volume + --db --force whose replay fails: the verified volume is kept, the old datadir comes back (not an empty database), the stack runs', async () => {
  const e = await damagedCopy('restore-replay-fails', async (dir) => {
    const key = base.databases.find((d) => d.container === 'v2_glpi_db')!.databases[0]!.part;
    const raw = Buffer.from('CREATE TABLE dr_fault_partial (id INT);\nINSERT INTO dr_fault_no_such_table VALUES (1);\n');
    await replacePart(dir, key, raw);
  });
  markTables();
  setMarker('v2_glpi_plugins');
  const r = await runDr(['restore', base.id, '--volume', 'v2_glpi_plugins', '--db', 'v2_glpi_db', '--force'], e);
  await waitHealthy('v2_glpi_db');
  await waitHealthy('v2_glpi');
  row('restore', '--volume + --db --force, the replay fails after the datadir was emptied', {
    exit: 4, 'names the replay': true, 'old database back': true, 'v2_glpi_db healthy': 'true healthy', 'verified volume kept': true, 'table lists both': true,
    'v2_glpi running': true, 'temporary containers': 0, 'journal left': false,
  }, {
    exit: r.code, 'names the replay': /replaying .* failed/.test(r.stderr), 'old database back': mariaMarked(), 'v2_glpi_db healthy': healthy('v2_glpi_db'),
    'verified volume kept': !hasMarker('v2_glpi_plugins'),
    'table lists both': /v2_glpi_plugins .*restored and verified/.test(r.stdout) && /v2_glpi_db .*old content put back \(checked\)/.test(r.stdout),
    'v2_glpi running': running('v2_glpi'), 'temporary containers': restoreHelpers(), 'journal left': journalLeft(e),
  });
  removeKeptCopies();
});

test('restore: SIGTERM while the temporary PostgreSQL runs the replay: it is removed, the old datadir is back; the rerun works', async () => {
  const e = await ownCopy('sigterm-replay');
  markTables();
  const args = ['restore', base.id, '--db', 'v2_chatwoot_db', '--force'];
  const run = await heldAt('restore:replay:v2_chatwoot_db', args, e);
  const tempRunning = restoreHelpers('running');
  run.child.kill('SIGTERM');
  const r = await run.done;
  await waitHealthy('v2_chatwoot_db');
  const after = { 'temporary containers': restoreHelpers(), 'old database back': pgMarked(), 'v2_chatwoot_db running': running('v2_chatwoot_db'), 'journal left': journalLeft(e) };
  const again = await runDr(args, e);
  await waitHealthy('v2_chatwoot_db');
  row('restore', 'SIGTERM during the PostgreSQL replay (--force), then the same command', {
    'temporary DB running while held': 1, exit: 1, 'temporary containers': 0, 'old database back': true, 'v2_chatwoot_db running': true, 'journal left': false,
    'rerun exit': 0, 'backup content after rerun': true, 'temporary containers after rerun': 0,
  }, {
    'temporary DB running while held': tempRunning, exit: r.code, ...after,
    'rerun exit': again.code, 'backup content after rerun': !pgMarked(), 'temporary containers after rerun': restoreHelpers(),
  });
  removeKeptCopies();
});

test('restore: kill -9 between two volumes: the next commands start nothing on the unverified volume, a backup is refused, the rerun resumes', async () => {
  const e = await ownCopy('kill-volumes');
  const order = base.volumes.map((v) => v.name).filter((n) => n === 'v2_glpi_config' || n === 'v2_glpi_plugins');
  const [first, second] = order as [string, string];
  setMarker(first);
  setMarker(second);
  const args = ['restore', base.id, '--volume', first, '--volume', second, '--force'];
  const run = spawnDr(args, { ...e, DR_TEST_HOLD: `restore:volume:${second}` });
  await run.waitFor(/dr: holding at /);
  run.child.kill('SIGKILL');
  const r = await run.done;
  const journalAfterKill = journalLeft(e);
  const status = await runDr(['status'], e);
  const afterStatus = { 'v2_glpi running after dr status': running('v2_glpi'), 'status says why': /not restored and verified/.test(status.stderr) };
  const backup = await runDr(['backup'], e);
  const again = await runDr(args, e);
  await waitHealthy('v2_glpi');
  row('restore', 'kill -9 between two --force volumes, then dr status, dr backup, the same command', {
    exit: 137, 'journal left': true, 'v2_glpi running after dr status': false, 'status says why': true, 'backup exit': 1, 'backup names the restore': true,
    'rerun exit': 0, 'rerun skips the verified volume': true, 'restored content': true, 'v2_glpi running': true, 'journal after rerun': false, 'temporary containers': 0,
    'old content kept': 2,
  }, {
    exit: r.code, 'journal left': journalAfterKill, ...afterStatus, 'backup exit': backup.code, 'backup names the restore': /restore of backup .* did not finish/.test(backup.stderr),
    'rerun exit': again.code, 'rerun skips the verified volume': new RegExp(`${first}.*skip: restored and verified`).test(again.stdout),
    'restored content': !hasMarker(first) && !hasMarker(second), 'v2_glpi running': running('v2_glpi'), 'journal after rerun': journalLeft(e), 'temporary containers': restoreHelpers(),
    'old content kept': [...keptCopies(first), ...keptCopies(second)].filter((v) => hasMarker(v)).length,
  });
  removeKeptCopies();
});

test('restore: kill -9 while the temporary MariaDB replays: the running temporary container and the journal do not block the rerun', async () => {
  const e = await ownCopy('kill-replay');
  markTables();
  const args = ['restore', base.id, '--db', 'v2_glpi_db', '--force'];
  const run = await heldAt('restore:replay:v2_glpi_db', args, e);
  run.child.kill('SIGKILL');
  const r = await run.done;
  const leftRunning = restoreHelpers('running');
  await runDr(['status'], e);
  const dbAfterStatus = running('v2_glpi_db');
  const again = await runDr(args, e);
  await waitHealthy('v2_glpi_db');
  row('restore', 'kill -9 during the MariaDB replay (--force), then dr status and the same command', {
    exit: 137, 'temporary DB left running': 1, 'v2_glpi_db running after dr status': false, 'rerun exit': 0, 'temporary containers after rerun': 0,
    'backup content': true, 'v2_glpi_db healthy': 'true healthy', 'journal left': false,
  }, {
    exit: r.code, 'temporary DB left running': leftRunning, 'v2_glpi_db running after dr status': dbAfterStatus, 'rerun exit': again.code,
    'temporary containers after rerun': restoreHelpers(), 'backup content': !mariaMarked(), 'v2_glpi_db healthy': healthy('v2_glpi_db'), 'journal left': journalLeft(e),
  });
  removeKeptCopies();
});

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`restore: ${signal} while the stack starts: everything was verified, so the stack comes back`, async () => {
    const e = await ownCopy(`start-${signal}`);
    const run = await heldAt('restore:start', ['restore', base.id, '--volume', 'v2_glpi_plugins', '--force'], e);
    run.child.kill(signal);
    const r = await run.done;
    const upAfterSignal = running('v2_glpi');
    await runDr(['status'], e);
    await waitHealthy('v2_glpi');
    const killed = signal === 'SIGKILL';
    row('restore', `${signal} at start-up (every component verified), then dr status`,
      { exit: killed ? 137 : 1, 'v2_glpi running after the signal': !killed, 'journal left': false, 'v2_glpi running after dr status': true, 'temporary containers': 0 },
      { exit: r.code, 'v2_glpi running after the signal': upAfterSignal, 'journal left': journalLeft(e), 'v2_glpi running after dr status': running('v2_glpi'), 'temporary containers': restoreHelpers() });
    removeKeptCopies();
  });
}

test('restore: a second --force of the same backup keeps its own checked copy; the first copy is untouched', async () => {
  const e = await ownCopy('force-twice');
  setMarker('v2_glpi_plugins');
  const one = await runDr(['restore', base.id, '--volume', 'v2_glpi_plugins', '--force'], e);
  const firstCopy = keptCopies('v2_glpi_plugins');
  const before = firstCopy[0] ? volumeSnapshot(firstCopy[0]) : [];
  inVolume('v2_glpi_plugins', 'echo second > /v/dr-fault-second');
  const two = await runDr(['restore', base.id, '--volume', 'v2_glpi_plugins', '--force'], e);
  const copies = keptCopies('v2_glpi_plugins');
  const second = copies.find((c) => c !== firstCopy[0]);
  await waitHealthy('v2_glpi');
  row('restore', 'two --force restores of the same backup', {
    'exits': '0 0', 'copies': 2, 'first copy unchanged': true, 'second copy has the second content': true, 'restored content': true, 'says the copy was checked': true,
  }, {
    'exits': `${one.code} ${two.code}`, 'copies': copies.length, 'first copy unchanged': firstCopy.length === 1 && JSON.stringify(volumeSnapshot(firstCopy[0]!)) === JSON.stringify(before),
    'second copy has the second content': !!second && inVolume(second, 'test -e /v/dr-fault-second && echo yes') === 'yes', 'restored content': !hasMarker('v2_glpi_plugins'),
    'says the copy was checked': /old content checked and kept as/.test(two.stdout),
  });
  removeKeptCopies();
});

// ---------------------------------------------------------------------------------------------------------------
// 2. storage faults

const transient: [string, Parameters<FaultProxy['plan']>[0]][] = [
  ['S3 answers 503 twice', [{ fault: '503', times: 2, method: 'PUT' }]],
  ['S3 resets the connection twice', [{ fault: 'reset', times: 2, method: 'PUT' }]],
  ['S3 stalls one request (timeout 3 s)', [{ fault: 'stall', times: 1, method: 'PUT' }]],
];
for (const [name, rules] of transient) {
  test(`storage: ${name} during a backup: retried, committed on both`, async () => {
    const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), `s3fault-${name.replace(/\W/g, '')}`), ...s3env };
    proxy.plan(rules);
    const r = await runDr(['backup', '--json'], e);
    const injected = rules.reduce((n, x) => n + proxy.injected[x.fault], 0);
    proxy.plan([]);
    const id = r.code === 0 ? (JSON.parse(r.stdout) as Manifest).id : '';
    row('storage', `${name} during a backup`, { exit: 0, 'faults injected': true, 'on local': true, 'on s3': true },
      { exit: r.code, 'faults injected': injected > 0, 'on local': (await listedIds(e, 'local')).includes(id), 'on s3': (await listedIds(e, 's3')).includes(id) });
  });
}

test('storage: S3 cuts downloads short: resumed with a Range, the drill passes', async () => {
  const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), 's3fault-truncate'), ...s3env };
  const b = await runDr(['backup'], e);
  assert.equal(b.code, 0, b.stderr);
  proxy.plan([{ fault: 'truncate', times: 3, method: 'GET', path: /\.age(\?|$)/ }]);
  const r = await runDr(['verify', '--latest', '--level', 'read', '--from', 's3'], e);
  const injected = proxy.injected.truncate;
  proxy.plan([]);
  row('storage', 'S3 truncates 3 downloads during dr verify --level read', { exit: 0, 'truncations injected': true }, { exit: r.code, 'truncations injected': injected > 0 });
});

test('storage: S3 fails every request: local committed, S3 reported failed, nothing committed there', async () => {
  const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), 's3fault-down'), ...s3env, DR_S3_MAX_ATTEMPTS: '2' };
  proxy.plan([{ fault: '503', times: Infinity }]);
  const r = await runDr(['backup'], e);
  proxy.plan([]);
  const id = /backup (\S+):/.exec(r.stdout)?.[1] ?? '';
  row('storage', 'S3 answers 503 to everything', { exit: 5, 'local committed': true, 's3 says NOT committed': true, 'on s3': false, 'writers running': true },
    { exit: r.code, 'local committed': (await listedIds(e, 'local')).includes(id), 's3 says NOT committed': /NOT committed on s3 .*503|NOT committed on s3 .*SlowDown|NOT committed on s3/.test(r.stdout),
      'on s3': (await listedIds(e, 's3')).includes(id), 'writers running': allWritersRunning() });
});

test('storage: a tiny local filesystem fills up: a clean failure naming it; with S3 too, S3 is committed', async () => {
  const dir = join(scratchDir(), 'tiny');
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  try {
    const e = { ...env, DR_LOCAL_DIR: dir };
    const r = await runDr(['backup'], e);
    const left = readdirSync(dir).filter((n) => n !== '.lock');
    row('storage', 'local disk full (1 MiB tmpfs), local only', { exit: 1, 'names the problem': true, 'files left': 0, 'writers running': true },
      { exit: r.code, 'names the problem': /no space left|ENOSPC/i.test(r.stderr) && r.stderr.includes(dir), 'files left': left.length, 'writers running': allWritersRunning() });
    const r2 = await runDr(['backup'], { ...e, ...s3env });
    const id = /backup (\S+):/.exec(r2.stdout)?.[1] ?? '';
    row('storage', 'local disk full, S3 healthy', { exit: 5, 'local says NOT committed': true, 'on s3': true, 'files left on local': 0 },
      { exit: r2.code, 'local says NOT committed': /NOT committed on local .*(no space|ENOSPC)/i.test(r2.stdout), 'on s3': (await listedIds({ ...e, ...s3env }, 's3')).includes(id),
        'files left on local': readdirSync(dir).filter((n) => n !== '.lock').length });
  } finally {
    execFileSync('umount', [dir]);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 3. corruption: every part kind, the manifest, a wrong identity, a missing part

test('corruption: bit flips and truncation in every part kind and the manifest are refused, naming the part, and leave no volume written', async () => {
  const kinds = [...new Set(base.parts.map((p) => p.kind))].sort();
  assert.ok(kinds.length >= 3, `part kinds: ${kinds}`);
  for (const kind of kinds) {
    const part = base.parts.find((p) => p.kind === kind)!;
    for (const [how, damage] of [['bit flip', (f: string) => flipBit(f, Math.floor(part.stored.size / 2))], ['truncation', truncate]] as const) {
      const tag = `_c${kind}${how === 'bit flip' ? 'f' : 't'}`;
      const e = await damagedCopy(tag, (d) => damage(join(d, part.key)));
      const v = await runDr(['verify', '--latest', '--level', 'quick'], e);
      const r = await runDr(['restore', '--latest', '--suffix', tag], e);
      const created = suffixVolumes(tag);
      row('corruption', `${how} in a ${kind} part (${part.key})`, { 'verify exit': 4, 'restore exit': 4, 'names the part': true, 'volumes written': 0 },
        { 'verify exit': v.code, 'restore exit': r.code, 'names the part': r.stderr.includes(part.key) && v.stdout.concat(v.stderr).includes(part.key), 'volumes written': created.length });
    }
  }
  for (const [how, damage] of [['bit flip', (f: string) => flipBit(f, 200)], ['truncation', truncate]] as const) {
    const tag = `_cman${how === 'bit flip' ? 'f' : 't'}`;
    const e = await damagedCopy(tag, (d) => damage(join(d, 'manifest.json')));
    const v = await runDr(['verify', base.id, '--level', 'quick'], e);
    const r = await runDr(['restore', base.id, '--suffix', tag], e);
    row('corruption', `${how} in the manifest`, { 'verify fails': true, 'restore fails': true, 'names the manifest': true, 'volumes written': 0 },
      { 'verify fails': v.code !== 0, 'restore fails': r.code !== 0, 'names the manifest': /manifest/.test(r.stderr), 'volumes written': suffixVolumes(tag).length });
  }
});

test('corruption: a wrong identity and a missing part are refused before any write', async () => {
  const other = await backupEnv('faults-other');
  // the manifest's signer is still trusted (DR_SIGNING_PUBLIC_KEY): only the decryption key is wrong
  const signer = /# dr signing public key: (\S+)/.exec(readFileSync(env.DR_AGE_IDENTITY_FILE, 'utf8'))![1]!;
  const r = await runDr(['restore', '--latest', '--suffix', '_cwrongid'], { ...env, DR_AGE_IDENTITY_FILE: other.DR_AGE_IDENTITY_FILE, DR_SIGNING_PUBLIC_KEY: signer });
  row('corruption', 'restore with an identity that is not a recipient', { exit: 4, 'says no identity matches': true, 'volumes written': 0 },
    { exit: r.code, 'says no identity matches': /no identity matches/.test(r.stderr), 'volumes written': suffixVolumes('_cwrongid').length });
  const part = base.parts.find((p) => p.kind === 'volume')!;
  const e = await damagedCopy('missing', (d) => rmSync(join(d, part.key)));
  const m = await runDr(['restore', '--latest', '--suffix', '_cmissing'], e);
  const v = await runDr(['verify', '--latest', '--level', 'quick'], e);
  row('corruption', `a missing part (${part.key})`, { 'restore exit': 4, 'verify exit': 4, 'names the part': true, 'volumes written': 0 },
    { 'restore exit': m.code, 'verify exit': v.code, 'names the part': m.stderr.includes(part.key) && (v.stdout + v.stderr).includes(part.key), 'volumes written': suffixVolumes('_cmissing').length });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. hostile archives

/** Replaces the v2_glpi_config part with a tar holding `entries`, encrypted and signed like a real one. */
async function hostileCopy(name: string, entries: (p: tar.Pack) => void, patch?: (raw: Buffer) => void): Promise<BackupEnv> {
  return damagedCopy(`hostile-${name}`, async (dir) => {
    const key = 'volumes/v2_glpi_config.tar.zst.age';
    const pack = tar.pack();
    pack.entry({ name: './', type: 'directory', mode: 0o755 });
    entries(pack);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks);
    patch?.(raw);
    await replacePart(dir, key, raw);
  });
}

test('hostile archives: refused at the gate, naming the entry; nothing written outside (or inside) the target', async () => {
  const cases: [string, (p: tar.Pack) => void, RegExp, ((raw: Buffer) => void)?][] = [
    ['dotdot', (p) => p.entry({ name: './../evil.php' }, 'x'), /path "\.\/\.\.\/evil\.php" contains "\.\."/],
    ['absolute', (p) => p.entry({ name: '/etc/cron.d/evil' }, 'x'), /absolute path "\/etc\/cron\.d\/evil"/],
    ['symlink', (p) => p.entry({ name: './sub/link', type: 'symlink', linkname: '../../../../etc' }), /symlink "\.\/sub\/link" -> "\.\.\/\.\.\/\.\.\/\.\.\/etc" leaves the volume/],
    ['abs-symlink', (p) => p.entry({ name: './root', type: 'symlink', linkname: '/root' }), /symlink "\.\/root" points to the absolute path "\/root"/],
    ['hardlink', (p) => p.entry({ name: './shadow', type: 'link', linkname: '../../etc/shadow' }), /hard link "\.\/shadow" -> "\.\.\/\.\.\/etc\/shadow" leaves the volume/],
    ['device', (p) => p.entry({ name: './sda', type: 'block-device', devmajor: 8, devminor: 0 }), /device node "\.\/sda"/],
    ['sparse-claim', (p) => p.entry({ name: './config_db.php' }, 'x'), /claims 10737418240 bytes/, (raw) => claimTarSize(raw.subarray(512, 1024), 10 * 1024 ** 3)],
  ];
  for (const [name, entries, expected, patch] of cases) {
    const e = await hostileCopy(name, entries, patch);
    const r = await runDr(['restore', '--latest', '--suffix', `_h${name}`], e);
    row('hostile', `archive entry: ${name}`, { exit: 4, 'names the entry': true, 'volumes left': 0, 'written outside': false },
      { exit: r.code, 'names the entry': /volume v2_glpi_config: refusing the archive/.test(r.stderr) && expected.test(r.stderr), 'volumes left': suffixVolumes(`_h${name}`).length,
        'written outside': existsSync('/etc/cron.d/evil') || existsSync(join(scratchDir(), 'evil.php')) });
  }
  // a signed manifest whose part key points outside the backup folder
  for (const key of ['../../../etc/passwd', '/etc/passwd']) {
    const e = await damagedCopy(`escape${key.length}`, (dir) => resign(dir, (m) => { m.parts.find((p) => p.kind === 'volume')!.key = key; m.volumes.find((v) => v.part)!.part = key; }));
    const r = await runDr(['restore', '--latest', '--suffix', '_hescape'], e);
    const v = await runDr(['verify', '--latest', '--level', 'read'], e);
    row('hostile', `manifest part key ${key}`, { 'restore refused': true, 'verify refused': true, 'names the key': true, 'volumes left': 0 },
      { 'restore refused': r.code !== 0, 'verify refused': v.code !== 0, 'names the key': r.stderr.includes(key), 'volumes left': suffixVolumes('_hescape').length });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 5. bad configuration and input

test('bad configuration: each required variable missing or malformed gets one clear message naming it', async () => {
  const cases: [string, Record<string, string | undefined>, RegExp, number][] = [
    ['DR_AGE_RECIPIENTS missing', { DR_AGE_RECIPIENTS: undefined }, /DR_AGE_RECIPIENTS .*required/, 2],
    ['DR_AGE_RECIPIENTS malformed', { DR_AGE_RECIPIENTS: 'age1notakey' }, /DR_AGE_RECIPIENTS/, 2],
    ['DR_SIGNING_KEY_FILE missing', { DR_SIGNING_KEY_FILE: undefined }, /DR_SIGNING_KEY_FILE is required/, 2],
    ['DR_SIGNING_KEY_FILE unreadable', { DR_SIGNING_KEY_FILE: '/nonexistent/signing.key' }, /DR_SIGNING_KEY_FILE.*\/nonexistent\/signing\.key/, 2],
    ['DR_ZSTD_LEVEL malformed', { DR_ZSTD_LEVEL: 'fast' }, /DR_ZSTD_LEVEL/, 2],
    ['DR_S3_ENDPOINT malformed', { DR_S3_BUCKET: 'b', DR_S3_ENDPOINT: 'not a url' }, /DR_S3_ENDPOINT/, 2],
    ['DR_KEEP_DAILY malformed', { DR_KEEP_DAILY: '-3' }, /DR_KEEP_DAILY/, 2],
    ['Docker socket unreachable', { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, /\/nonexistent\/docker\.sock/, 6],
    ['dr restore: DR_AGE_IDENTITY_FILE missing', { DR_AGE_IDENTITY_FILE: undefined }, /DR_AGE_IDENTITY_FILE/, 2],
    ['dr restore: DR_AGE_IDENTITY_FILE unreadable', { DR_AGE_IDENTITY_FILE: '/nonexistent/age.txt' }, /DR_AGE_IDENTITY_FILE.*\/nonexistent\/age\.txt/, 2],
  ];
  for (const [name, patch, expected, code] of cases) {
    const e: Record<string, string> = { ...env, DR_LOCAL_DIR: join(scratchDir(), 'badcfg') };
    for (const [k, v] of Object.entries(patch)) { if (v === undefined) delete e[k]; else e[k] = v; }
    const r = await runDr(name.startsWith('dr restore') ? ['restore', '--latest', '--suffix', '_badcfg'] : ['backup'], e);
    const msgs = r.stderr.split('\n').filter((l) => l.startsWith('dr: ') && !l.startsWith('dr: what to do'));
    row('config', name, { exit: code, 'names it': true, 'writers running': true, 'backups written': 0 },
      { exit: r.code, 'names it': expected.test(r.stderr) && msgs.length >= 1, 'writers running': allWritersRunning(), 'backups written': localIds(e.DR_LOCAL_DIR!).length });
  }
});

test('bad input: a DB container whose credentials are wrong; a volume that vanishes mid-run', async () => {
  const rootPw = /GLPI_DB_ROOT_PASSWORD=(\S+)/.exec(readFileSync(join(ROOT, 'test/env/test.env'), 'utf8'))![1]!;
  const sql = (pw: string, q: string) => execFileSync('docker', ['exec', '-e', `MYSQL_PWD=${pw}`, 'v2_glpi_db', 'mariadb', '-uroot', '-e', q]);
  const changed = 'fault-suite-changed-Pw';
  sql(rootPw, `ALTER USER 'root'@'localhost' IDENTIFIED BY '${changed}'`);
  let r: RunResult;
  const e = { ...env, DR_LOCAL_DIR: join(scratchDir(), 'badcreds') };
  try {
    r = await runDr(['backup'], e);
  } finally {
    sql(changed, `ALTER USER 'root'@'localhost' IDENTIFIED BY '${rootPw}'`);
  }
  row('input', 'MariaDB rejects the credentials in its container environment', { exit: 1, 'names the container': true, 'says access denied': true, 'writers running': true, 'backups listed': 0 },
    { exit: r.code, 'names the container': /v2_glpi_db/.test(firstLine(r.stderr)), 'says access denied': /Access denied/i.test(r.stderr), 'writers running': allWritersRunning(),
      'backups listed': (await listedIds(e)).length });

  // an extra v2_ volume (nobody mounts it) removed while dr waits to read it
  docker('volume', 'create', '--label', 'dr.test.created=true', 'v2_fault_vanishing');
  execFileSync('docker', ['run', '--rm', '-v', 'v2_fault_vanishing:/d', '--network', 'none', '--entrypoint', 'sh', 'helpdesk-dr-test/glpi:standin', '-c', 'echo x > /d/f']);
  const e2 = { ...env, DR_LOCAL_DIR: join(scratchDir(), 'vanish') };
  const run = spawnDr(['backup'], { ...e2, DR_TEST_HOLD: 'volume:v2_fault_vanishing' });
  try {
    await run.waitFor(/dr: holding at /);
    docker('volume', 'rm', 'v2_fault_vanishing');
    run.child.kill('SIGUSR2');
  } finally {
    const v = await run.done;
    execFileSync('docker', ['volume', 'rm', '-f', 'v2_fault_vanishing']);
    row('input', 'a volume removed while dr is about to read it', { exit: 1, 'names the volume': true, 'writers running': true, 'backups listed': 0 },
      { exit: v.code, 'names the volume': /v2_fault_vanishing/.test(firstLine(v.stderr)), 'writers running': allWritersRunning(), 'backups listed': (await listedIds(e2)).length });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 6. secrets

test('secrets: none in argv (ps), logs, manifests, metrics or notification bodies, during a daemon backup and a restore', async () => {
  const telegramToken = '987654321:AAfault-suite-telegram-token-Zq';
  const webhookSecret = 'fault-suite-webhook-secret-77';
  const identity = readFileSync(env.DR_AGE_IDENTITY_FILE, 'utf8').match(/AGE-SECRET-KEY-1\S+/)![0];
  const signing = readFileSync(env.DR_SIGNING_KEY_FILE, 'utf8').trim().split('\n').filter((l) => !l.startsWith('#') && !l.startsWith('-----')).join('');
  const secrets = [...testSecrets(), telegramToken, webhookSecret, identity, 'S3RVER', ...(signing.length > 20 ? [signing] : [])];
  const bodies: string[] = [];
  const sink = createServer((req, res) => { let b = ''; req.on('data', (c) => (b += c)); req.on('end', () => { bodies.push(b); res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); }); });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkPort = (sink.address() as AddressInfo).port;
  const metricsPort = await new Promise<number>((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => r(p)); }); });
  const e = {
    ...env, ...s3env, DR_LOCAL_DIR: join(scratchDir(), 'secrets'), DR_LOG_LEVEL: 'debug',
    DR_SCHEDULE: '*/3 * * * * *', DR_METRICS_ADDRESS: '127.0.0.1', DR_METRICS_PORT: String(metricsPort), DR_NOTIFY_ON_SUCCESS: 'true',
    DR_TELEGRAM_BOT_TOKEN: telegramToken, DR_TELEGRAM_CHAT_ID: '42', DR_TELEGRAM_API_URL: `http://127.0.0.1:${sinkPort}`,
    DR_WEBHOOK_URL: `http://127.0.0.1:${sinkPort}/hook?token=${webhookSecret}`,
  };
  proxy.plan([]);
  const ps = sampleArgv();
  const daemon = spawnDr(['daemon'], e);
  let metrics = '';
  try {
    const end = Date.now() + 90_000;
    while (bodies.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.done;
    sink.close();
  }
  const restore = await runDr(['restore', '--latest', '--volume', 'v2_glpi_config', '--suffix', '_secrets'], { ...e, DR_LOG_LEVEL: 'debug' });
  const argv = ps.stop();
  if (suffixVolumes('_secrets').length) docker('volume', 'rm', 'v2_glpi_config_secrets');
  const manifests = localIds(e.DR_LOCAL_DIR).map((id) => readFileSync(join(e.DR_LOCAL_DIR, id, 'manifest.json'), 'utf8')).join('\n');
  const places: Record<string, string> = {
    argv: argv.join('\n'), 'daemon logs': daemon.stdout() + daemon.stderr(), 'restore output': restore.stdout + restore.stderr, manifests, metrics, 'notification bodies': bodies.join('\n'),
  };
  const leaks = Object.entries(places).flatMap(([where, text]) => secrets.filter((s) => text.includes(s)).map((s) => `${where}: ${s.slice(0, 6)}…`));
  row('secrets', `${secrets.length} known secrets across argv, logs, manifests, metrics, notifications`,
    { 'backup notified': true, 'metrics scraped': true, 'manifests scanned': true, 'restore exit': 0, leaks: 'none' },
    { 'backup notified': bodies.length > 0, 'metrics scraped': /dr_backup_runs_total/.test(metrics), 'manifests scanned': manifests.length > 0, 'restore exit': restore.code, leaks: leaks.join('; ') || 'none' });
});

// ---------------------------------------------------------------------------------------------------------------
// 7. concurrency

test('concurrency: two commands started together: exactly one proceeds, the other exits 3 (lock held)', async () => {
  const pairs: [string, string[], string[]][] = [
    ['two backups', ['backup'], ['backup']],
    ['a backup and a restore', ['backup'], ['restore', '--latest', '--volume', 'v2_glpi_config', '--suffix', '_conc']],
    ['a backup and a prune', ['backup'], ['prune']],
  ];
  for (const [name, a, b] of pairs) {
    const e = { ...env, DR_KEEP_LAST: '100' };
    // whichever takes the lock first holds right after taking it, so neither can finish before the other tried
    const ra = spawnDr(a, { ...e, DR_TEST_HOLD: 'locked' });
    const rb = spawnDr(b, { ...e, DR_TEST_HOLD: 'locked' });
    const holds = (x: typeof ra) => /dr: holding at locked/.test(x.stderr());
    const end = Date.now() + 60_000;
    while (!((holds(ra) && rb.child.exitCode !== null) || (holds(rb) && ra.child.exitCode !== null)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    for (const x of [ra, rb]) if (x.child.exitCode === null) x.child.kill('SIGUSR2');
    const [xa, xb] = await Promise.all([ra.done, rb.done]);
    const loser = xa.code === 3 ? xa : xb;
    if (suffixVolumes('_conc').length) docker('volume', 'rm', 'v2_glpi_config_conc');
    const codes = [xa.code, xb.code].sort();
    row('concurrency', name, { 'exit codes': '0,3', 'loser says locked': true },
      { 'exit codes': codes.join(','), 'loser says locked': /is locked by/.test(loser.stderr) });
  }
});
