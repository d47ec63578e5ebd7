import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, stackUp, docker, backupEnv, scratchDir, testSecrets, WRITERS, type BackupEnv } from '../helpers.ts';

let env: BackupEnv;
let hooks: Record<string, unknown>[] = [];
let receiver: Server;
let hookPort = 0;
let metricsPort = 0;
let backupDir = '';
let composeEnv: Record<string, string> = {};

const compose = (...args: string[]) => execFileSync('docker', ['compose', ...args], { cwd: ROOT, env: { ...process.env, ...composeEnv }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const committed = () => (existsSync(backupDir) ? readdirSync(backupDir).filter((d) => existsSync(join(backupDir, d, 'manifest.json'))).sort() : []);
const uncommitted = () => (existsSync(backupDir) ? readdirSync(backupDir).filter((d) => /^\d{8}T/.test(d) && !existsSync(join(backupDir, d, 'manifest.json'))) : []);
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const get = async (path: string) => { const r = await fetch(`http://127.0.0.1:${metricsPort}${path}`); return { status: r.status, text: await r.text() }; };

before(async () => {
  stackUp();
  execFileSync('bash', [join(ROOT, 'test/env/build-sidecar.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  env = await backupEnv('sidecar');
  backupDir = join(scratchDir(), 'sidecar-backups');
  mkdirSync(backupDir, { recursive: true });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => { hooks.push(JSON.parse(body)); res.end('ok'); });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookPort = (receiver.address() as { port: number }).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  metricsPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  composeEnv = {
    COMPOSE_FILE: 'docker-compose.yml:docker-compose.backup.yml:test/env/docker-compose.test.yml:test/env/docker-compose.backup.test.yml',
    COMPOSE_PROJECT_NAME: 'helpdesk-dr-test', COMPOSE_ENV_FILES: 'test/env/test.env',
    DR_BACKUP_DIR: backupDir, DR_SIGNING_KEY_PATH: env.DR_SIGNING_KEY_FILE, DR_AGE_RECIPIENTS: env.DR_AGE_RECIPIENTS,
    DR_SCHEDULE: '*/10 * * * * *', DR_VERIFY_SCHEDULE: '5,25,45 * * * * *', DR_IDENTITY_PATH: env.identity, DR_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/hook`, DR_METRICS_PORT: String(metricsPort),
  };
  compose('up', '-d', 'backup');
});

after(async () => {
  try { compose('rm', '-sf', 'backup'); } catch { /* already gone */ }
  receiver?.close();
});

test('the sidecar takes scheduled backups; /metrics shows them; /healthz healthy, then unhealthy after a failure, which is notified', async () => {
  const first = await until('a scheduled backup', () => committed()[0]);
  const m = await until('metrics with the success', async () => {
    const r = await get('/metrics').catch(() => null);
    return r && /dr_backup_last_success_timestamp_seconds\{destination="local"\} \d/.test(r.text) ? r.text : undefined;
  });
  assert.match(m, /dr_backup_runs_total\{result="success"\} [1-9]/);
  assert.match(m, /dr_backup_last_parts \d+/);
  assert.match(m, /dr_backup_last_downtime_seconds [\d.]+/);
  assert.match(m, /dr_healthy 1/);
  const ts = Number(/dr_backup_last_success_timestamp_seconds\{destination="local"\} ([\d.]+)/.exec(m)![1]);
  assert.ok(Math.abs(ts * 1000 - Date.now()) < 120_000);
  assert.ok(first.length > 0);
  // the scheduled drill (quick) ran and is exported
  await until('a drill result in /metrics', async () => (/dr_verify_last_success 1/.test((await get('/metrics')).text) ? true : undefined));
  let h = await get('/healthz');
  assert.equal(h.status, 200, h.text);
  assert.equal(JSON.parse(h.text).status, 'healthy');
  // each destination's own record (here the sidecar's only one, local)
  const [local] = JSON.parse(h.text).destinations;
  assert.equal(local.kind, 'local');
  assert.equal(local.healthy, true);
  assert.ok(Date.now() - Date.parse(local.lastSuccess) < 120_000);
  assert.match(m, /dr_destination_healthy\{destination="local"\} 1/);

  // induce a failure: the dump tool becomes unusable
  const tools = '/usr/bin/mariadb-dump /usr/bin/mysqldump';
  execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c', `chmod 000 $(readlink -f ${tools})`]);
  try {
    const hook = await until('a failure notification', () => hooks.find((x) => x.event === 'backup.failed'));
    assert.match(String(hook.message), /v2_glpi_db: mariadb-dump of glpi failed/);
    h = await until('unhealthy', async () => { const r = await get('/healthz'); return r.status === 503 ? r : undefined; });
    assert.match(JSON.parse(h.text).reason, /the last backup failed/);
    const failed = JSON.parse(h.text).destinations[0];
    assert.match(failed.lastError, /mariadb-dump of glpi failed/);
    assert.ok(failed.consecutiveFailures >= 1);
    const m2 = (await get('/metrics')).text;
    assert.match(m2, /dr_backup_runs_total\{result="failure"\} [1-9]/);
    assert.match(m2, /dr_healthy 0/);
    for (const s of testSecrets()) assert.ok(!JSON.stringify(hooks).includes(s) && !m2.includes(s), 'no secret in notifications or metrics');
  } finally {
    execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c', `chmod 755 $(readlink -f ${tools})`]);
  }
  for (const c of WRITERS) assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true');
  await until('healthy again', async () => ((await get('/healthz')).status === 200 ? true : undefined));
});

test('docker stop v2_backup while the writers are stopped: writers run again, no committed partial backup', async () => {
  // wait for a backup to be inside its stop window (a writer down), then stop the sidecar
  await until('a backup inside its stop window', () => (docker('inspect', '-f', '{{.State.Running}}', 'v2_glpi') === 'false' ? true : undefined), 60_000);
  const before = committed();
  const t0 = Date.now();
  docker('stop', '-t', '60', 'v2_backup');
  const stopSec = (Date.now() - t0) / 1000;
  assert.ok(stopSec < 60, `stopped within the grace period (${stopSec}s)`);
  assert.equal(docker('inspect', '-f', '{{.State.ExitCode}}', 'v2_backup') === '137', false, 'not killed: it exited on its own');
  for (const c of WRITERS) assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true', `${c} runs again`);
  assert.deepEqual(committed(), before, 'no new committed backup');
  assert.deepEqual(uncommitted(), [], 'no partial backup left behind');
  const logs = execFileSync('bash', ['-c', 'docker logs v2_backup 2>&1'], { encoding: 'utf8' });
  assert.match(logs, /interrupted/);
});
