import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, cpSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';
import {
  ROOT, runDr, stackUp, docker, backupEnv, startedAt, scratchDir, volumeSnapshot, dbFingerprint, waitHealthy,
  WRITERS, APP_VOLUMES, type BackupEnv,
} from '../helpers.ts';
import { signManifest, serializeManifest, type Manifest } from '../../src/manifest.ts';
import { loadSigningKey } from '../../src/keys.ts';
import { createEncryptStream } from '../../src/age.ts';
import { compressor } from '../../src/pipeline.ts';

let env: BackupEnv;
let manifest: Manifest;
const snap: Record<string, string[]> = {};
let dbs: Record<string, string> = {};

before(async () => {
  stackUp();
  env = await backupEnv('restore');
  // freeze the writers so the volumes hold still, take an independent picture, then back up
  docker('stop', '-t', '5', ...WRITERS);
  for (const v of APP_VOLUMES) snap[v] = volumeSnapshot(v);
  dbs = dbFingerprint();
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
  docker('start', ...WRITERS);
  for (const w of WRITERS) await waitHealthy(w);
});

test('side-by-side --suffix restore of one volume while the stack keeps running', async () => {
  const starts = [...WRITERS, 'v2_glpi_db'].map(startedAt);
  const r = await runDr(['restore', '--latest', '--volume', 'v2_glpi_files', '--suffix', '_side'], env);
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /v2_glpi_files\s+v2_glpi_files_side\s+create\s+\d+/);
    assert.deepEqual([...WRITERS, 'v2_glpi_db'].map(startedAt), starts, 'nothing was stopped');
    assert.deepEqual(volumeSnapshot('v2_glpi_files_side'), snap.v2_glpi_files);
    const labels = JSON.parse(docker('volume', 'inspect', '-f', '{{json .Labels}}', 'v2_glpi_files_side'));
    assert.equal(labels['dr.restored-from'], `${manifest.id}:v2_glpi_files`);
    assert.equal(labels['com.docker.compose.project'], undefined, 'not adopted by compose');
    // a second run refuses: the target is no longer empty
    const again = await runDr(['restore', '--latest', '--volume', 'v2_glpi_files', '--suffix', '_side'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /volume v2_glpi_files_side is not empty/);
  } finally {
    docker('volume', 'rm', 'v2_glpi_files_side');
  }
});

/** A copy of the backup in its own local dir, with `mutate` applied to the copied folder. */
function damagedCopy(name: string, mutate: (dir: string) => void | Promise<void>): Promise<BackupEnv> {
  const local = join(scratchDir(), `damaged-${name}`);
  mkdirSync(local, { recursive: true });
  cpSync(join(env.DR_LOCAL_DIR, manifest.id), join(local, manifest.id), { recursive: true });
  return Promise.resolve(mutate(join(local, manifest.id))).then(() => ({ ...env, DR_LOCAL_DIR: local }));
}
function flipByte(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0x01;
  writeFileSync(file, b);
}
function volumesWithSuffix(s: string): string[] {
  return docker('volume', 'ls', '-q').split('\n').filter((v) => v.endsWith(s));
}

test('a flipped byte in a volume part or a dump part, or a tampered manifest: refused before any write, naming it', async () => {
  const vol = manifest.parts.find((p) => p.key === 'volumes/v2_glpi_files.tar.zst.age')!;
  const dump = manifest.parts.find((p) => p.key === 'dumps/v2_chatwoot_db/chatwoot.sql.zst.age')!;
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['volume', (d) => flipByte(join(d, vol.key), Math.floor(vol.stored.size / 2)), /part volumes\/v2_glpi_files\.tar\.zst\.age is corrupted/],
    ['dump', (d) => flipByte(join(d, dump.key), dump.stored.size - 100), /part dumps\/v2_chatwoot_db\/chatwoot\.sql\.zst\.age is corrupted/],
    ['manifest', (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      m.databases[0].databases[0].tables[Object.keys(m.databases[0].databases[0].tables)[0]!].rows += 1;
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(m, null, 2));
    }, /manifest signature does not match its content/],
  ];
  for (const [name, mutate, expected] of cases) {
    const e = await damagedCopy(name, mutate);
    const r = await runDr(['restore', '--latest', '--suffix', `_dmg${name}`], e);
    assert.equal(r.code, 4, `${name}: ${r.stderr}`);
    assert.match(r.stderr, expected, name);
    assert.deepEqual(volumesWithSuffix(`_dmg${name}`), [], `${name}: nothing written`);
  }
});

/** Replaces the v2_glpi_config part with a tar holding `entries`, encrypted and signed like a real one. */
async function hostileCopy(name: string, entries: (p: tar.Pack) => void): Promise<BackupEnv> {
  return damagedCopy(`hostile-${name}`, async (dir) => {
    const key = 'volumes/v2_glpi_config.tar.zst.age';
    const pack = tar.pack();
    pack.entry({ name: './', type: 'directory', mode: 0o755 });
    entries(pack);
    pack.finalize();
    const plain = createHash('sha256');
    let plainSize = 0;
    const stored = createHash('sha256');
    let storedSize = 0;
    const tap = (h: ReturnType<typeof createHash>, add: (n: number) => void) => async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) { h.update(c); add(c.length); yield c; }
    };
    await pipeline(pack as unknown as Readable, tap(plain, (n) => { plainSize += n; }), compressor('zstd', 3),
      createEncryptStream(manifest.encryption.recipients), tap(stored, (n) => { storedSize += n; }), createWriteStream(join(dir, key)));
    const m: Manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const p = m.parts.find((x) => x.key === key)!;
    p.plain = { size: plainSize, sha256: plain.digest('hex') };
    p.stored = { size: storedSize, sha256: stored.digest('hex') };
    writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, loadSigningKey(env.DR_SIGNING_KEY_FILE))));
  });
}

test('hostile archive entries are refused at the gate before the extractor sees them, naming the entry; nothing stays written', async () => {
  const cases: [string, (p: tar.Pack) => void, RegExp][] = [
    ['dotdot', (p) => p.entry({ name: './../evil.php' }, 'x'), /refusing the archive: path "\.\/\.\.\/evil\.php" contains "\.\."/],
    ['absolute', (p) => p.entry({ name: '/etc/cron.d/evil' }, 'x'), /absolute path "\/etc\/cron\.d\/evil"/],
    ['symlink', (p) => p.entry({ name: './sub/link', type: 'symlink', linkname: '../../../../etc' }), /symlink "\.\/sub\/link" -> "\.\.\/\.\.\/\.\.\/\.\.\/etc" leaves the volume/],
    ['abs-symlink', (p) => p.entry({ name: './root', type: 'symlink', linkname: '/root' }), /symlink "\.\/root" points to the absolute path "\/root"/],
    ['hardlink', (p) => p.entry({ name: './shadow', type: 'link', linkname: '../../etc/shadow' }), /hard link "\.\/shadow" -> "\.\.\/\.\.\/etc\/shadow" leaves the volume/],
    ['device', (p) => p.entry({ name: './sda', type: 'block-device', devmajor: 8, devminor: 0 }), /device node "\.\/sda"/],
  ];
  for (const [name, entries, expected] of cases) {
    const e = await hostileCopy(name, entries);
    const r = await runDr(['restore', '--latest', '--suffix', `_host${name}`], e);
    assert.equal(r.code, 4, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /volume v2_glpi_config: refusing the archive/, name);
    assert.match(r.stderr, expected, name);
    assert.deepEqual(volumesWithSuffix(`_host${name}`), [], `${name}: nothing written`);
    assert.ok(!existsSync('/etc/cron.d/evil') && !existsSync(join(ROOT, '..', 'evil.php')), `${name}: nothing outside`);
  }
});

test('full cycle as RESTORE.md says: stack gone → definition back → dr restore --latest → healthy and identical', async () => {
  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'down'], { stdio: 'ignore' });
  assert.equal(docker('ps', '-a', '-q', '--filter', 'name=^/v2_'), '', 'every container gone');
  assert.equal(docker('volume', 'ls', '-q', '--filter', 'name=^v2_'), '', 'every volume gone');
  if (!existsSync('/nonexistent')) docker('network', 'create', '--label', 'dr.test.created=true', 'npm_default');

  // run every `sh` block of RESTORE.md, in order, against the test stack
  const blocks = [...readFileSync(join(ROOT, 'RESTORE.md'), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const commands = blocks.flatMap((b) => b.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  assert.ok(commands.includes('./bin/dr restore --latest'), 'the runbook restores');
  const composeEnv = {
    COMPOSE_FILE: 'docker-compose.yml:test/env/docker-compose.test.yml', COMPOSE_PROJECT_NAME: 'helpdesk-dr-test',
    COMPOSE_ENV_FILES: 'test/env/test.env', DR_LOG_LEVEL: 'warn',
  };
  const outputs: Record<string, string> = {};
  for (const cmd of commands) {
    try {
      outputs[cmd] = execFileSync('bash', ['-eo', 'pipefail', '-c', cmd], { cwd: ROOT, env: { ...process.env, ...env, ...composeEnv }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { status: number; stderr: string; stdout: string };
      assert.fail(`RESTORE.md command failed: ${cmd} (exit ${e.status})\n${e.stdout}\n${e.stderr}`);
    }
  }
  assert.match(outputs['./bin/dr list']!, new RegExp(manifest.id));
  assert.match(outputs['./bin/dr restore --latest --dry-run']!, /Dry run: every part was checked; nothing was written/);
  const restored = outputs['./bin/dr restore --latest']!;
  assert.match(restored, /RTO \(this restore\): [\d.]+ s; RPO/);
  for (const c of [...WRITERS, 'v2_glpi_db', 'v2_chatwoot_db', 'v2_chatwoot_redis']) {
    assert.match(restored, new RegExp(`${c}\\s+running\\s+healthy`));
    assert.equal(docker('inspect', '-f', '{{.State.Health.Status}}', c), 'healthy');
  }
  assert.match(outputs['./bin/dr status']!, /Problems: none/);

  // identical: every file (content, mode, owner, link target), every table, the Redis keys
  docker('stop', '-t', '5', ...WRITERS);
  try {
    // the stand-ins' heartbeat logs are live writes made after the restore started them again
    const live = (lines: string[]) => lines.filter((l) => !/standin(\.log)?\/?[^|]*\|f\|/.test(l) && !/\/standin\/(web|sidekiq)\.log\|/.test(l));
    for (const v of APP_VOLUMES) assert.deepEqual(live(volumeSnapshot(v)), live(snap[v]!), v);
    assert.deepEqual(dbFingerprint(), dbs);
  } finally {
    docker('start', ...WRITERS);
    for (const w of WRITERS) await waitHealthy(w);
  }
});
