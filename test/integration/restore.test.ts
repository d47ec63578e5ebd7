import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  ROOT, runDr, stackUp, docker, backupEnv, startedAt, volumeSnapshot, dbFingerprint, waitHealthy, standinMaintenance,
  WRITERS, APP_VOLUMES, type BackupEnv,
} from '../helpers.ts';
import type { Manifest } from '../../src/repo/manifest.ts';

let env: BackupEnv;
let manifest: Manifest;
const snap: Record<string, string[]> = {};
let dbs: Record<string, string> = {};

before(async () => {
  stackUp();
  env = await backupEnv('restore');
  // freeze the writers so the volumes hold still, take an independent picture, then back up. The apps are put
  // in maintenance first: the backup keeps that switch, so the restored apps (which the restore starts) write
  // nothing either and the restored stack can be compared with the picture (test/integration/consistency.test.ts
  // covers backups of apps that keep writing)
  standinMaintenance(true);
  docker('stop', '-t', '5', ...WRITERS);
  for (const v of APP_VOLUMES) snap[v] = volumeSnapshot(v);
  dbs = dbFingerprint();
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
  docker('start', ...WRITERS);
  for (const w of WRITERS) await waitHealthy(w);
});

after(() => { standinMaintenance(false); });

test('read straight from the volumes\' directories, every volume tar is in 64 KiB records (docs/FORMAT.md)', () => {
  const volumes = manifest.parts.filter((p) => p.kind === 'volume');
  assert.equal(volumes.length, APP_VOLUMES.length);
  for (const p of volumes) assert.equal(p.plain.size % 65536, 0, `${p.key}: ${p.plain.size} bytes`);
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

// corruption and hostile archives: test/integration/faults.test.ts

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
