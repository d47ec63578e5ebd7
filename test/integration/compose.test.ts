import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.ts';

function composeConfig(files: string[], extra: string[] = []): Record<string, any> {
  const dir = tempDir('dr-compose-');
  copyFileSync(join(ROOT, '.env.example'), join(dir, '.env'));
  const out = execFileSync('docker', ['compose', '--project-directory', dir, ...files.flatMap((f) => ['-f', join(ROOT, f)]), ...extra, 'config', '--format', 'json'],
    { encoding: 'utf8', cwd: dir });
  return JSON.parse(out);
}

test('docker compose config passes with .env.example as .env, and the stack has the required shape', () => {
  const c = composeConfig(['docker-compose.yml']);
  const s = c.services;
  assert.deepEqual(Object.values(s).map((x: any) => x.container_name).sort(),
    ['v2_chatwoot', 'v2_chatwoot_db', 'v2_chatwoot_redis', 'v2_chatwoot_sidekiq', 'v2_glpi', 'v2_glpi_db']);
  assert.deepEqual(Object.values(c.volumes).map((v: any) => v.name).sort(), [
    'v2_chatwoot_db_data', 'v2_chatwoot_redis_data', 'v2_chatwoot_storage', 'v2_glpi_config', 'v2_glpi_db_data',
    'v2_glpi_files', 'v2_glpi_marketplace', 'v2_glpi_plugins']);
  for (const [name, svc] of Object.entries<any>(s)) {
    assert.ok(svc.healthcheck?.test, `${name} has a healthcheck`);
    assert.equal(svc.restart, 'unless-stopped', name);
    assert.ok(svc.deploy?.resources?.limits?.memory, `${name} has a memory limit`);
    assert.ok(!/:latest$/.test(svc.image) && /:[^/]+$/.test(svc.image), `${name} image ${svc.image} is pinned`);
    for (const dep of Object.values<any>(svc.depends_on ?? {})) assert.equal(dep.condition, 'service_healthy', name);
  }
  const writers = Object.values<any>(s).filter((x) => x.labels?.['dr.stop-during-backup'] === 'true').map((x) => x.container_name).sort();
  assert.deepEqual(writers, ['v2_chatwoot', 'v2_chatwoot_sidekiq', 'v2_glpi']);
  assert.equal(s.chatwoot.environment.REDIS_URL, 'redis://:<redis-password>@chatwoot_redis:6379');
  assert.equal(s.chatwoot.environment.ENABLE_ACCOUNT_SIGNUP, 'false');
  assert.ok(s.glpi.volumes.some((v: any) => v.target === '/var/www/html/glpi/marketplace' && v.source === 'glpi_marketplace'));
  assert.equal(c.networks.npm_default.external, true);
});

test('docker-compose.backup.yml is valid together with the stack, and its sidecar is excluded from backups', () => {
  const c = composeConfig(['docker-compose.yml', 'docker-compose.backup.yml'], ['--profile', 'sidecar']);
  assert.ok(c.services.glpi, 'the stack is still there');
  const b = c.services.backup;
  assert.equal(b.container_name, 'v2_backup');
  assert.equal(b.labels['dr.exclude'], 'true');
  assert.ok(b.volumes.some((v: any) => v.target === '/var/run/docker.sock'));
  const dir = b.volumes.find((v: any) => v.target === '/backups');
  assert.equal(dir.type, 'bind', 'the backup directory is a host path, not a v2_ volume');
});
