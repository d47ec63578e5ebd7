// `dr daemon` on the real test stack with local + S3 (s3rver behind the fault proxy, 127.0.0.1): S3 keeps
// failing while local commits → /healthz turns unhealthy naming s3 and its last error, /metrics carry each
// destination's own last success and failure; S3 back → healthy again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { DR, stackUp, backupEnv, scratchDir, startS3, testSecrets, WRITERS, docker, type BackupEnv } from '../helpers.ts';
import { startFaultProxy, type FaultProxy } from '../env/faultproxy.ts';

let env: BackupEnv & Record<string, string>;
let s3: Awaited<ReturnType<typeof startS3>>;
let proxy: FaultProxy;
let daemon: ChildProcess | null = null;
let port = 0;
let logs = '';

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}; daemon log:\n${logs.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const get = async (path: string) => { const r = await fetch(`http://127.0.0.1:${port}${path}`); return { status: r.status, text: await r.text() }; };
const sample = (text: string, name: string, dest: string) => {
  const m = new RegExp(`^${name}\\{destination="${dest}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

before(async () => {
  stackUp();
  s3 = await startS3(join(scratchDir(), 'health-s3'));
  proxy = await startFaultProxy(s3.port);
  env = { ...(await backupEnv('health')), ...s3.env, DR_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, DR_S3_MAX_ATTEMPTS: '2', DR_S3_TIMEOUT_SECONDS: '3' };
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
  }
  await proxy?.close();
  await s3?.stop();
});

test('S3 keeps failing while local commits: /healthz unhealthy naming s3 and its last error, per-destination metrics; S3 back → healthy', async () => {
  proxy.plan([{ fault: '503', times: Infinity }]); // S3 answers nothing but 503 SlowDown
  daemon = spawn(process.execPath, [DR, 'daemon'], {
    cwd: scratchDir(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DR_LOG_LEVEL: 'warn', ...env,
      DR_SCHEDULE: '*/3 * * * * *', DR_HEALTH_MAX_AGE: '40s', DR_METRICS_PORT: String(port), DR_METRICS_ADDRESS: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout!.on('data', (d) => (logs += d));
  daemon.stderr!.on('data', (d) => (logs += d));
  const started = Date.now();

  // a partial run: committed locally, not on S3
  const m = await until('a run committed on local only', async () => {
    const t = (await get('/metrics')).text;
    return (sample(t, 'dr_backup_last_success_timestamp_seconds', 'local') ?? 0) > 0 && (sample(t, 'dr_backup_last_failure_timestamp_seconds', 's3') ?? 0) > 0 ? t : undefined;
  });
  assert.equal(sample(m, 'dr_backup_last_success_timestamp_seconds', 's3'), 0, 's3 never succeeded: 0, so an age alert on it fires');
  assert.equal(sample(m, 'dr_backup_last_failure_timestamp_seconds', 'local'), 0);
  assert.ok(sample(m, 'dr_backup_destination_consecutive_failures', 's3')! >= 1);
  assert.match(m, /^dr_backup_runs_total\{result="partial"\} [1-9]/m);
  assert.match(m, /^dr_backup_last_success 0$/m);
  // still within DR_HEALTH_MAX_AGE of the start: healthy, but the reason already names s3
  if (Date.now() - started < 30_000) {
    const early = await get('/healthz');
    if (early.status === 200) assert.match(JSON.parse(early.text).reason, /not committed on s3 s3:\/\/dr-test-bucket\/helpdesk\//);
  }

  // S3 keeps failing past DR_HEALTH_MAX_AGE while local keeps committing: unhealthy, naming s3
  const h = await until('/healthz unhealthy', async () => { const r = await get('/healthz'); return r.status === 503 ? r : undefined; }, 150_000);
  const body = JSON.parse(h.text);
  assert.equal(body.status, 'unhealthy');
  assert.match(body.reason, /^no backup committed on s3 s3:\/\/dr-test-bucket\/helpdesk\/ since the daemon started \d+ s ago \(DR_HEALTH_MAX_AGE is 40 s\); last error \(.*failed runs? in a row\): .*S3 s3:\/\/dr-test-bucket\/helpdesk\/: .*(SlowDown|503|injected by the fault proxy)/);
  assert.doesNotMatch(body.reason, /on local/, 'local is fine');
  const local = body.destinations.find((d: { kind: string }) => d.kind === 'local');
  const remote = body.destinations.find((d: { kind: string }) => d.kind === 's3');
  assert.equal(local.healthy, true);
  assert.ok(Date.now() - Date.parse(local.lastSuccess) < 40_000, 'local committed recently');
  assert.deepEqual([remote.healthy, remote.lastSuccess], [false, null]);
  assert.match(remote.lastError, /SlowDown|503|injected/);
  const m2 = (await get('/metrics')).text;
  assert.match(m2, /^dr_healthy 0$/m);
  assert.equal(sample(m2, 'dr_destination_healthy', 's3'), 0);
  assert.equal(sample(m2, 'dr_destination_healthy', 'local'), 1);
  for (const secret of [...testSecrets(), env.DR_S3_SECRET_ACCESS_KEY!]) {
    assert.ok(!h.text.includes(secret) && !m2.includes(secret), 'no secret in /healthz or /metrics');
  }
  // the daemon keeps backing up every few seconds, so a writer may be quiesced right now: none is left stopped
  await until('every writer running again', () => (WRITERS.every((c) => docker('inspect', '-f', '{{.State.Running}}', c) === 'true') ? true : undefined), 30_000);

  // S3 is back: the next run commits on both → healthy, s3's own last success set
  proxy.plan([]);
  const ok = await until('/healthz healthy again', async () => { const r = await get('/healthz'); return r.status === 200 ? r : undefined; }, 150_000);
  const okBody = JSON.parse(ok.text);
  const s3now = okBody.destinations.find((d: { kind: string }) => d.kind === 's3');
  assert.ok(s3now.lastSuccess && s3now.healthy && s3now.lastError === null, ok.text);
  const m3 = (await get('/metrics')).text;
  assert.ok(sample(m3, 'dr_backup_last_success_timestamp_seconds', 's3')! * 1000 > started);

  daemon.kill('SIGTERM');
  await new Promise((r) => daemon!.once('exit', r));
});
