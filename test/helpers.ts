/** Shared helpers for the integration tests: run `dr`, bring the real test stack up, test secrets. */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DR = join(ROOT, 'bin', 'dr');

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs bin/dr in a scratch working directory (so no developer .env is picked up). */
export function runDr(args: string[], env: Record<string, string> = {}, opts: { onSpawn?: (pid: number) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DR, ...args], {
      cwd: scratchDir(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DR_LOG_LEVEL: 'warn', ...env },
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

let scratch: string | undefined;
export function scratchDir(): string {
  return (scratch ??= mkdtempSync(join(tmpdir(), 'dr-test-')));
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
