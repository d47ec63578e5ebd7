import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import { readConfig, loadEnv, parseVars, ConfigError, DEFAULT_VOLUME_SUFFIXES, type VarSpec } from '../../src/core/config.ts';
import { scrub } from '../../src/core/redact.ts';
import { ExitCode } from '../../src/core/errors.ts';

const tmp = () => tempDir('dr-unit-');
function problemsOf(fn: () => unknown): string[] {
  try { fn(); } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.exitCode, ExitCode.usage);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('defaults serve the seed stack without any variable', () => {
  const c = readConfig({});
  assert.equal(c.volumePrefix, 'v2_');
  assert.deepEqual(c.expectedVolumes, DEFAULT_VOLUME_SUFFIXES.map((s) => `v2_${s}`));
  assert.equal(c.expectedVolumes.length, 8);
  assert.equal(c.localDir, '/var/backups/helpdesk-dr');
  assert.deepEqual(c.docker, { socketPath: '/var/run/docker.sock' });
  assert.equal(c.logLevel, 'info');
  assert.equal(c.dockerTimeoutSec, 10);
});

test('the prefix drives the expected volumes; an explicit list must stay inside the prefix', () => {
  assert.deepEqual(readConfig({ DR_VOLUME_PREFIX: 'v3_' }).expectedVolumes[0], 'v3_glpi_files');
  assert.deepEqual(readConfig({ DR_EXPECTED_VOLUMES: ' v2_a, v2_b ,' }).expectedVolumes, ['v2_a', 'v2_b']);
  const p = problemsOf(() => readConfig({ DR_EXPECTED_VOLUMES: 'v2_a,glpi_files' }));
  assert.equal(p.length, 1);
  assert.match(p[0]!, /DR_EXPECTED_VOLUMES: glpi_files/);
});

test('every problem is reported at once, each naming its variable', () => {
  const p = problemsOf(() => readConfig({
    DR_LOG_LEVEL: 'loud', DR_DOCKER_TIMEOUT: 'ten', DR_VOLUME_PREFIX: 'v2 _', DR_LOCAL_DIR: 'relative/dir', DOCKER_HOST: 'ssh://host',
  }));
  assert.equal(p.length, 5);
  for (const [i, name] of ['DR_VOLUME_PREFIX', 'DR_LOCAL_DIR', 'DOCKER_HOST', 'DR_DOCKER_TIMEOUT', 'DR_LOG_LEVEL'].entries()) {
    assert.ok(p[i]!.startsWith(name), `${p[i]} should name ${name}`);
  }
  assert.match(p[4]!, /not one of: trace, debug/);
});

test('numbers are range-checked', () => {
  assert.match(problemsOf(() => readConfig({ DR_DOCKER_TIMEOUT: '0' }))[0]!, /DR_DOCKER_TIMEOUT="0" is out of range 1\.\.600/);
  assert.equal(readConfig({ DR_DOCKER_TIMEOUT: '30' }).dockerTimeoutSec, 30);
});

test('Docker endpoint: DR_DOCKER_SOCKET wins, then DOCKER_HOST (unix or tcp)', () => {
  assert.deepEqual(readConfig({ DOCKER_HOST: 'unix:///run/user/docker.sock' }).docker, { socketPath: '/run/user/docker.sock' });
  assert.deepEqual(readConfig({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }).docker, { host: '127.0.0.1', port: 2375 });
  assert.deepEqual(readConfig({ DOCKER_HOST: 'tcp://127.0.0.1:2375', DR_DOCKER_SOCKET: '/x.sock' }).docker, { socketPath: '/x.sock' });
});

test('.env is read beneath the process environment; a missing DR_ENV_FILE is an error', () => {
  const dir = tmp();
  writeFileSync(join(dir, '.env'), '# comment\nDR_VOLUME_PREFIX=v9_\nDR_LOG_LEVEL="debug"\nOTHER=1\n');
  const env = loadEnv({ DR_LOG_LEVEL: 'warn' }, dir);
  assert.equal(env.DR_VOLUME_PREFIX, 'v9_');
  assert.equal(env.DR_LOG_LEVEL, 'warn', 'process environment wins');
  assert.equal(readConfig(env).volumePrefix, 'v9_');
  assert.deepEqual(loadEnv({ A: '1' }, tmp()), { A: '1' }, 'no .env is fine');
  const p = problemsOf(() => loadEnv({ DR_ENV_FILE: join(dir, 'missing.env') }, dir));
  assert.match(p[0]!, /^DR_ENV_FILE: file .*missing\.env does not exist/);
  writeFileSync(join(dir, 'other.env'), 'DR_VOLUME_PREFIX=v7_\n');
  assert.equal(loadEnv({ DR_ENV_FILE: join(dir, 'other.env') }, dir).DR_VOLUME_PREFIX, 'v7_');
});

const SECRET_SCHEMA: VarSpec[] = [
  { name: 'T_TOKEN', kind: 'string', secret: true, required: true, help: 'a token' },
  { name: 'T_PORT', kind: 'int', secret: true, help: 'a secret number' },
];

test('secrets accept <NAME>_FILE; the value is registered and never quoted in errors', () => {
  const dir = tmp();
  const f = join(dir, 'token');
  writeFileSync(f, 'file-token-value-123\n');
  const v = parseVars({ T_TOKEN_FILE: f }, SECRET_SCHEMA);
  assert.equal(v.get('T_TOKEN'), 'file-token-value-123', 'trailing newline removed');
  assert.equal(scrub('auth failed for file-token-value-123'), 'auth failed for [REDACTED]');

  const p = problemsOf(() => parseVars({ T_TOKEN: 'abc', T_TOKEN_FILE: f, T_PORT: 'not-a-number-secret' }, SECRET_SCHEMA));
  assert.equal(p.length, 2);
  assert.match(p[0]!, /T_TOKEN and T_TOKEN_FILE are both set/);
  assert.match(p[1]!, /T_PORT=\(secret value\) is not a whole number/);
  assert.ok(!p.join().includes('not-a-number-secret'));

  assert.match(problemsOf(() => parseVars({ T_TOKEN_FILE: join(dir, 'nope') }, SECRET_SCHEMA))[0]!, /T_TOKEN_FILE: cannot read .*nope \(ENOENT\)/);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  assert.match(problemsOf(() => parseVars({ T_TOKEN_FILE: empty }, SECRET_SCHEMA))[0]!, /T_TOKEN_FILE: file .* is empty/);
  if (process.getuid?.() !== 0) {
    chmodSync(f, 0o000);
    assert.match(problemsOf(() => parseVars({ T_TOKEN_FILE: f }, SECRET_SCHEMA))[0]!, /EACCES/);
  }
  assert.match(problemsOf(() => parseVars({}, SECRET_SCHEMA))[0]!, /T_TOKEN is required but not set \(or set T_TOKEN_FILE\)/);
});
