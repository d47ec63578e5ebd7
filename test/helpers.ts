/** Shared helpers for the integration tests: run `dr`, bring the real test stack up, test secrets. */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DR = join(ROOT, 'bin', 'dr');

export interface RunResult { code: number; stdout: string; stderr: string }

/**
 * dr's environment in the tests: `env` over a minimal base. A stage hold (DR_TEST_HOLD) also names its hook
 * module (DR_TEST_HOOKS, src/core/hooks.ts), test/support/hold.ts.
 */
export function drEnv(env: Record<string, string>): Record<string, string> {
  const hooks: Record<string, string> = env.DR_TEST_HOLD ? { DR_TEST_HOOKS: join(ROOT, 'test/support/hold.ts') } : {};
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DR_LOG_LEVEL: 'warn', ...hooks, ...env };
}

/** Runs bin/dr in a scratch working directory (so no developer .env is picked up). */
export function runDr(args: string[], env: Record<string, string> = {}, opts: { onSpawn?: (pid: number) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DR, ...args], {
      cwd: scratchDir(),
      env: drEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    if (child.pid) opts.onSpawn?.(child.pid);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const temps: string[] = [];
process.on('exit', () => {
  for (const d of temps) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* e.g. still a mount point: left for the OS */ }
  }
});
/** A fresh directory under the system temp dir, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

let scratch: string | undefined;
export function scratchDir(): string {
  return (scratch ??= tempDir('dr-test-'));
}

/** `npm run stack:up`: idempotent; brings the real docker-compose.yml up with the local images and seeds it. */
export function stackUp(): void {
  execFileSync('bash', [join(ROOT, 'test/env/stack.sh'), 'up'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** Secret values of the test stack (test/env/test.env): they must never appear in output or argv. */
export function testSecrets(): string[] {
  const env = parseEnv(readFileSync(join(ROOT, 'test/env/test.env'), 'utf8')) as Record<string, string>;
  return Object.entries(env).filter(([k, v]) => /PASSWORD|SECRET/.test(k) && v.length > 0).map(([, v]) => v);
}

/** Samples every process's argv (as `ps` shows it) until stopped. */
export function sampleArgv(): { stop(): string[] } {
  const seen = new Set<string>();
  let running = true;
  const tick = () => {
    if (!running) return;
    try {
      for (const line of execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n')) seen.add(line);
    } catch { /* ps raced with an exiting process */ }
    setTimeout(tick, 20);
  };
  tick();
  return { stop: () => { running = false; return [...seen]; } };
}

export async function waitHealthy(container: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (docker('inspect', '-f', '{{.State.Health.Status}}', container) === 'healthy') return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${container} did not become healthy`);
}

/** Keys for tests (dr keygen) and the environment that `dr backup` needs, with a fresh local directory. */
export interface BackupEnv extends Record<string, string> {
  keyDir: string; identity: string; DR_LOCAL_DIR: string; DR_AGE_RECIPIENTS: string; DR_SIGNING_KEY_FILE: string; DR_AGE_IDENTITY_FILE: string;
}
export async function backupEnv(name: string): Promise<BackupEnv> {
  const keyDir = join(scratchDir(), `keys-${name}`);
  const r = await runDr(['keygen', '--out-dir', keyDir]);
  if (r.code !== 0) throw new Error(`keygen failed: ${r.stderr}`);
  const identity = join(keyDir, 'age-identity.txt');
  const recipient = /# public key: (age1\S+)/.exec(readFileSync(identity, 'utf8'))![1]!;
  return {
    keyDir, identity,
    DR_LOCAL_DIR: join(scratchDir(), `backups-${name}`),
    DR_AGE_RECIPIENTS: recipient,
    DR_SIGNING_KEY_FILE: join(keyDir, 'signing.key'),
    DR_AGE_IDENTITY_FILE: identity,
  };
}

/** Runs a bash pipeline (pipefail) and returns stdout as a Buffer. */
export function sh(script: string, input?: Buffer | string): Buffer {
  return execFileSync('bash', ['-o', 'pipefail', '-c', script], { input, maxBuffer: 1 << 30 });
}

export function startedAt(container: string): string {
  return docker('inspect', '-f', '{{.State.StartedAt}}', container);
}

export const WRITERS = ['v2_chatwoot', 'v2_chatwoot_sidekiq', 'v2_glpi'];
export const DATABASES = ['v2_chatwoot_db', 'v2_chatwoot_redis', 'v2_glpi_db'];
export const TEST_PROJECT_LABEL = 'com.docker.compose.project=helpdesk-dr-test';

/**
 * An independent picture of a volume (GNU find + sha256sum in a throwaway container, not our code):
 * one line per entry with type, mode, owner, size (files), link count (files), link target, content hash.
 */
export function volumeSnapshot(volume: string): string[] {
  const script = `cd /v && find . -printf '%p|%y|%m|%U|%G|%l|%n|%s\\n' | while IFS='|' read -r p y m u g l n s; do
    if [ "$y" = f ]; then h=$(sha256sum "$p" | cut -c1-64); echo "$p|$y|$m|$u|$g|$n|$s|$h"; else echo "$p|$y|$m|$u|$g|$l"; fi
  done | LC_ALL=C sort`;
  return execFileSync('docker', ['run', '--rm', '--network', 'none', '-v', `${volume}:/v:ro`, '--entrypoint', 'bash', 'helpdesk-dr-test/glpi:standin', '-c', script],
    { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n');
}

/** Independent per-table checksums: MariaDB CHECKSUM TABLE; PostgreSQL count + md5 of the sorted rows. */
export function dbFingerprint(): Record<string, string> {
  const out: Record<string, string> = {};
  const maria = execFileSync('docker', ['exec', 'v2_glpi_db', 'sh', '-c',
    `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B glpi -e "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'" | cut -f1 | while read t; do MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B glpi -e "CHECKSUM TABLE \\\`$t\\\` EXTENDED; SELECT COUNT(*) FROM \\\`$t\\\`"; done`], { encoding: 'utf8' });
  for (const l of maria.trim().split('\n')) out[`mariadb:${l.split('\t')[0]}`] = l;
  const tables = execFileSync('docker', ['exec', 'v2_chatwoot_db', 'psql', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c',
    "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"], { encoding: 'utf8' }).trim().split('\n');
  for (const t of tables) {
    out[`postgres:${t}`] = execFileSync('docker', ['exec', 'v2_chatwoot_db', 'psql', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c',
      `SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM ${t} x`], { encoding: 'utf8' }).trim();
  }
  out['postgres:sequence'] = execFileSync('docker', ['exec', 'v2_chatwoot_db', 'psql', '-At', '-U', 'chatwoot', '-d', 'chatwoot', '-c', 'SELECT last_value FROM reporting.invoice_seq'], { encoding: 'utf8' }).trim();
  // every key that outlives the test (no TTL, or more than an hour left): Sidekiq's process heartbeats expire
  // ~60 s after its last beat, so a backup holds keys that are rightly gone by the time it is restored (SPEC §6)
  const lasting = "local r = {} for _, k in ipairs(redis.call('KEYS', '*')) do local t = redis.call('PTTL', k) if t == -1 or t > 3600000 then r[#r + 1] = k end end return r";
  out['redis:keys'] = execFileSync('docker', ['exec', 'v2_chatwoot_redis', 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning EVAL "$0" 0 | LC_ALL=C sort | sha256sum', lasting], { encoding: 'utf8' }).trim();
  out['redis:sample'] = execFileSync('docker', ['exec', 'v2_chatwoot_redis', 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning GET "ключ:кириллица"; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning LLEN queue:default; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning HGETALL user:1'], { encoding: 'utf8' }).trim();
  return out;
}

/**
 * The stand-ins' maintenance switch (test/env/images): while on, GLPI creates and deletes no tickets or
 * documents and the Chatwoot stand-in's Sidekiq, once restarted, waits before it starts. The flags live in the
 * apps' volumes, so a backup taken in maintenance restores a stack that stays in maintenance: tests that compare
 * a restore with the picture taken before the backup use it, as an operator would. Needs v2_glpi and v2_chatwoot
 * running.
 */
export function standinMaintenance(on: boolean): void {
  for (const [c, f] of [['v2_glpi', '/var/www/html/glpi/config/.standin-maintenance'], ['v2_chatwoot', '/app/storage/.standin-maintenance']] as const) {
    docker('exec', c, 'sh', '-c', on ? `touch ${f}` : `rm -f ${f}`);
  }
}

export const APP_VOLUMES = ['v2_chatwoot_storage', 'v2_glpi_config', 'v2_glpi_files', 'v2_glpi_marketplace', 'v2_glpi_plugins'];

/** s3rver in its own process on 127.0.0.1 (test/env/s3rver.ts), storing into `dir`. */
export async function startS3(dir: string, port = 0): Promise<{ port: number; env: Record<string, string>; stop(): Promise<void>; kill(): void }> {
  const child = spawn(process.execPath, [join(ROOT, 'test/env/s3rver.ts'), dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const p = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /listening (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    port: p,
    env: {
      DR_S3_ENDPOINT: `http://127.0.0.1:${p}`, DR_S3_BUCKET: 'dr-test-bucket', DR_S3_PREFIX: 'helpdesk', DR_S3_REGION: 'us-east-1',
      DR_S3_ACCESS_KEY_ID: 'S3RVER', DR_S3_SECRET_ACCESS_KEY: 'S3RVER', DR_S3_FORCE_PATH_STYLE: 'true', DR_S3_MAX_ATTEMPTS: '3',
    },
    stop: async () => { child.kill('SIGTERM'); await exited; },
    kill: () => { child.kill('SIGKILL'); },
  };
}

/** Sets a tar header's size field (base-256, as for huge files) and fixes its checksum: a size claim. */
export function claimTarSize(header: Buffer, size: number): void {
  const h = header.subarray(0, 512);
  h.fill(0, 124, 136);
  h[124] = 0x80;
  for (let i = 135, v = size; i > 124; i--, v = Math.floor(v / 256)) h[i] = v % 256;
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}
