import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runDr, stackUp, docker, testSecrets, sampleArgv, waitHealthy, scratchDir } from '../helpers.ts';
import type { StatusReport } from '../../src/cli/commands/status.ts';

const env = () => ({ DR_LOCAL_DIR: scratchDir() + '/backups' });

before(() => stackUp());

test('dr status --json reports the 8 volumes, MariaDB 10.11, PostgreSQL 15, Redis and the 3 writers', async () => {
  const ps = sampleArgv();
  const r = await runDr(['status', '--json'], env());
  const argv = ps.stop();
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as StatusReport;
  assert.equal(s.ok, true);
  assert.deepEqual(s.problems, []);

  const vols = Object.fromEntries(s.volumes.map((v) => [v.name, v.role]));
  assert.deepEqual(vols, {
    v2_chatwoot_db_data: 'database', v2_chatwoot_redis_data: 'database', v2_chatwoot_storage: 'app',
    v2_glpi_config: 'app', v2_glpi_db_data: 'database', v2_glpi_files: 'app', v2_glpi_marketplace: 'app', v2_glpi_plugins: 'app',
  });
  assert.ok(s.volumes.every((v) => v.expected));
  const storage = s.volumes.find((v) => v.name === 'v2_chatwoot_storage')!;
  assert.deepEqual(storage.mountedBy.map((m) => m.container).sort(), ['v2_chatwoot', 'v2_chatwoot_sidekiq']);

  const db = (name: string) => s.databases.find((d) => d.container === name)!;
  assert.equal(db('v2_glpi_db').engine, 'mariadb');
  assert.match(db('v2_glpi_db').version!, /^10\.11\.\d+$/);
  assert.match(db('v2_glpi_db').serverVersion!, /MariaDB/);
  assert.deepEqual(db('v2_glpi_db').databases, ['glpi']);
  assert.deepEqual(db('v2_glpi_db').dataVolumes, ['v2_glpi_db_data']);
  assert.equal(db('v2_chatwoot_db').engine, 'postgres');
  assert.match(db('v2_chatwoot_db').version!, /^15\.\d+$/);
  assert.deepEqual(db('v2_chatwoot_db').databases, ['chatwoot', 'postgres']);
  assert.equal(db('v2_chatwoot_redis').engine, 'redis');
  assert.match(db('v2_chatwoot_redis').version!, /^7\.\d+\.\d+$/);
  assert.ok(db('v2_chatwoot_redis').keys!.db0! >= 300, 'seeded Redis keys are counted');

  assert.deepEqual([...s.stopOrder].sort(), ['v2_chatwoot', 'v2_chatwoot_sidekiq', 'v2_glpi']);
  assert.deepEqual(s.containers.filter((c) => c.writer).map((c) => c.name).sort(), [...s.stopOrder].sort());
  assert.ok(s.containers.every((c) => c.running && c.health === 'healthy'));

  // secrets: read from the containers, used through the exec environment — never in output or any argv
  for (const secret of testSecrets()) {
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'secret in output');
    assert.ok(!argv.some((line) => line.includes(secret)), `secret visible in ps: ${argv.find((l) => l.includes(secret))}`);
  }
});

test('dr status (text) shows each section', async () => {
  const r = await runDr(['status'], env());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /v2_glpi_db\s+mariadb\s+10\.11\.\d+\s+glpi/);
  assert.match(r.stdout, /v2_chatwoot_db\s+postgres\s+15\.\d+\s+chatwoot, postgres/);
  assert.match(r.stdout, /Writers stopped during backup, in this order: .*v2_glpi/);
  assert.match(r.stdout, /Problems: none/);
});

test('volumes and containers without the prefix are ignored; dr.exclude is honoured', async () => {
  const label = ['--label', 'com.docker.compose.project=helpdesk-dr-test'];
  docker('volume', 'create', ...label, 'glpi_files_v1_decoy');
  docker('volume', 'create', ...label, '--label', 'dr.exclude=true', 'v2_scratch_excluded');
  try {
    const r = await runDr(['status', '--json'], env());
    const s = JSON.parse(r.stdout) as StatusReport;
    assert.ok(!s.volumes.some((v) => v.name === 'glpi_files_v1_decoy'));
    const ex = s.volumes.find((v) => v.name === 'v2_scratch_excluded');
    assert.equal(ex?.excluded, true);
    assert.equal(ex?.role, 'unused');
  } finally {
    docker('volume', 'rm', 'glpi_files_v1_decoy', 'v2_scratch_excluded');
  }
});

test('problems: a missing expected volume and a stopped database are named, exit code 1', async () => {
  docker('stop', '-t', '5', 'v2_chatwoot_redis');
  try {
    const r = await runDr(['status', '--json'], { ...env(), DR_EXPECTED_VOLUMES: 'v2_glpi_files,v2_gone_volume' });
    assert.equal(r.code, 1);
    const s = JSON.parse(r.stdout) as StatusReport;
    assert.equal(s.ok, false);
    const subjects = s.problems.map((p) => p.subject).sort();
    assert.deepEqual(subjects, ['v2_chatwoot_redis', 'v2_gone_volume']);
    assert.match(s.problems.find((p) => p.subject === 'v2_gone_volume')!.message, /expected volume v2_gone_volume is missing/);
    assert.match(s.problems.find((p) => p.subject === 'v2_chatwoot_redis')!.message, /not running/);
  } finally {
    docker('start', 'v2_chatwoot_redis');
    await waitHealthy('v2_chatwoot_redis');
  }
});

test('Docker unreachable: one clear line naming the socket, exit code 6', async () => {
  const r = await runDr(['status'], { ...env(), DR_DOCKER_SOCKET: '/nonexistent/docker.sock' });
  assert.equal(r.code, 6);
  assert.match(r.stderr, /cannot reach the Docker engine at unix:\/\/\/nonexistent\/docker\.sock/);
  assert.match(r.stderr, /DR_DOCKER_SOCKET/);
  assert.equal(r.stdout, '');
});

test('bad configuration: every problem listed at once, exit code 2, nothing contacted', async () => {
  const r = await runDr(['status'], { DR_LOG_LEVEL: 'loud', DR_VOLUME_PREFIX: 'bad prefix', DOCKER_HOST: 'ssh://x' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /3 problems/);
  for (const v of ['DR_LOG_LEVEL', 'DR_VOLUME_PREFIX', 'DOCKER_HOST']) assert.match(r.stderr, new RegExp(v));
});

after(() => { /* the stack stays up for the other integration tests; npm run stack:down removes it */ });
