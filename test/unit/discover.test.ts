import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineFromImage, engineFromProcesses } from '../../src/db/engines.ts';
import { stopOrderOf, stopWavesOf, copyOf, includeCopyBecause, leftoversOf, type VolumeInfo } from '../../src/stack/discover.ts';

test('engine from the image repository name', () => {
  assert.equal(engineFromImage('mariadb:10.11'), 'mariadb');
  assert.equal(engineFromImage('docker.io/library/mariadb:10.11.10@sha256:abc'), 'mariadb');
  assert.equal(engineFromImage('mysql:8'), 'mariadb');
  assert.equal(engineFromImage('postgres:15'), 'postgres');
  assert.equal(engineFromImage('registry.local:5000/mirror/postgres:15.10'), 'postgres');
  assert.equal(engineFromImage('pgvector/pgvector:pg16'), 'postgres');
  assert.equal(engineFromImage('redis:7'), 'redis');
  assert.equal(engineFromImage('helpdesk-dr-test/redis:7'), 'redis');
  assert.equal(engineFromImage('chatwoot/chatwoot:v3.16.0'), undefined);
  assert.equal(engineFromImage('diouxx/glpi:10.0.16'), undefined);
  assert.equal(engineFromImage('registry.local:5000/glpi'), undefined, 'a registry port is not a tag');
});

test('engine from the container processes', () => {
  assert.equal(engineFromProcesses(['/bin/sh -c x', 'mariadbd --user=mysql']), 'mariadb');
  assert.equal(engineFromProcesses(['/usr/lib/postgresql/15/bin/postgres -D /data']), 'postgres');
  assert.equal(engineFromProcesses(['redis-server *:6379']), 'redis');
  assert.equal(engineFromProcesses(['puma 6.4 (tcp://0.0.0.0:3000) [app]', 'bundle exec sidekiq postgres']), undefined);
});

test('stop order: dependents before what they depend on, reverse of start order; ties by name', () => {
  assert.deepEqual(stopOrderOf([{ name: 'b', dependsOn: [] }, { name: 'a', dependsOn: [] }, { name: 'c', dependsOn: [] }]), ['c', 'b', 'a']);
  // web depends on api; api depends on db (outside the set: ignored)
  const order = stopOrderOf([{ name: 'api', dependsOn: ['db'] }, { name: 'web', dependsOn: ['api'] }, { name: 'worker', dependsOn: ['api'] }]);
  assert.ok(order.indexOf('web') < order.indexOf('api'));
  assert.ok(order.indexOf('worker') < order.indexOf('api'));
  assert.equal(order.length, 3);
  // a cycle still yields every item once
  assert.deepEqual(stopOrderOf([{ name: 'x', dependsOn: ['y'] }, { name: 'y', dependsOn: ['x'] }]).sort(), ['x', 'y']);
});

test('stop waves: independent containers stop together, a dependency only after its dependents', () => {
  assert.deepEqual(stopWavesOf([{ name: 'b', dependsOn: [] }, { name: 'a', dependsOn: [] }, { name: 'c', dependsOn: [] }]), [['c', 'b', 'a']]);
  const waves = stopWavesOf([{ name: 'api', dependsOn: ['db'] }, { name: 'web', dependsOn: ['api'] }, { name: 'worker', dependsOn: ['api'] }, { name: 'db', dependsOn: [] }, { name: 'glpi', dependsOn: [] }]);
  assert.deepEqual(waves.map((w) => [...w].sort()), [['glpi', 'web', 'worker'], ['api'], ['db']]);
  // a cycle: every item once, one per wave
  assert.deepEqual(stopWavesOf([{ name: 'x', dependsOn: ['y'] }, { name: 'y', dependsOn: ['x'] }]).flat().sort(), ['x', 'y']);
});

test('copies made by restores and drills are recognised from their labels', () => {
  assert.equal(copyOf({}), null);
  assert.equal(copyOf({ 'com.docker.compose.project': 'helpdesk', 'dr.exclude': 'true' }), null);
  assert.deepEqual(copyOf({ 'dr.restored-from': '20261126T010203Z-9f3a1c:v2_glpi_files' }),
    { kind: 'restored', of: 'v2_glpi_files', backupId: '20261126T010203Z-9f3a1c', inUseBy: [], includedBecause: null });
  assert.deepEqual(copyOf({ 'dr.restored-from': '20261126T010203Z-9f3a1c:v2_glpi_db_data', 'dr.drill': '20261126t010203-abcdef' }),
    { kind: 'drill', of: 'v2_glpi_db_data', backupId: '20261126T010203Z-9f3a1c', inUseBy: [], includedBecause: null });
  assert.deepEqual(copyOf({ 'dr.exclude': 'true', 'dr.pre-restore-of': 'v2_glpi_files' }),
    { kind: 'pre-restore', of: 'v2_glpi_files', backupId: null, inUseBy: [], includedBecause: null });
});

test('a copy is left out of backups unless asked for; a drill volume always; one in use by the stack is backed up', () => {
  const restored = (inUseBy: string[] = []) => ({ ...copyOf({ 'dr.restored-from': 'b:v2_glpi_files' })!, inUseBy });
  const none = { includeRestored: false, expected: ['v2_glpi_files'] };
  assert.equal(includeCopyBecause('v2_glpi_files_check', restored(), none), null);
  assert.equal(includeCopyBecause('v2_glpi_files_check', restored(), { ...none, includeRestored: true }), 'DR_INCLUDE_RESTORED=true');
  assert.equal(includeCopyBecause('v2_glpi_files_check', restored(), { ...none, expected: ['v2_glpi_files', 'v2_glpi_files_check'] }), 'listed in DR_EXPECTED_VOLUMES');
  assert.equal(includeCopyBecause('v2_glpi_files_check', restored(['v2_glpi']), none), 'mounted by v2_glpi');
  const drill = copyOf({ 'dr.restored-from': 'b:v2_glpi_files', 'dr.drill': 't' })!;
  assert.equal(includeCopyBecause('v2_glpi_files_drill_t', drill, { includeRestored: true, expected: ['v2_glpi_files_drill_t'] }), null);
  const pre = copyOf({ 'dr.pre-restore-of': 'v2_glpi_files' })!;
  assert.equal(includeCopyBecause('v2_glpi_files_pre-restore_x', pre, { includeRestored: true, expected: [] }), null);
});

test('leftovers: copies nothing of the stack uses, oldest first, each with its removal command and age', () => {
  const vol = (name: string, labels: Record<string, string>, inUseBy: string[] = [], excluded = true): VolumeInfo => ({
    name, expected: false, excluded, role: 'unused', mountedBy: [], driver: 'local', labels, copy: copyOf(labels) && { ...copyOf(labels)!, inUseBy },
  });
  const volumes = [
    vol('v2_glpi_files', {}, [], false),
    vol('v2_glpi_files_check', { 'dr.restored-from': '20261126T010203Z-9f3a1c:v2_glpi_files' }),
    vol('v2_glpi_files_old', { 'dr.exclude': 'true', 'dr.pre-restore-of': 'v2_glpi_files' }),
    vol('v2_glpi_files_live', { 'dr.restored-from': 'b:v2_glpi_files' }, ['v2_glpi'], false),
    vol('v2_glpi_files_kept', { 'dr.restored-from': 'b:v2_glpi_files' }, [], false),
  ];
  const created = new Map([['v2_glpi_files_check', '2026-11-26T02:00:00Z'], ['v2_glpi_files_old', '2026-11-26T01:00:00Z']]);
  const l = leftoversOf(volumes, created, Date.parse('2026-11-26T03:00:00Z'));
  assert.deepEqual(l.map((x) => x.name), ['v2_glpi_files_kept', 'v2_glpi_files_old', 'v2_glpi_files_check']);
  assert.deepEqual(l[2], {
    name: 'v2_glpi_files_check', kind: 'restored', of: 'v2_glpi_files', backupId: '20261126T010203Z-9f3a1c', createdAt: '2026-11-26T02:00:00Z',
    ageSeconds: 3600, backedUp: false, remove: 'docker volume rm v2_glpi_files_check',
  });
  assert.equal(l[1]!.ageSeconds, 7200);
  assert.equal(l[0]!.backedUp, true, 'included (DR_INCLUDE_RESTORED) but still a copy');
  assert.equal(l[0]!.ageSeconds, null);
});
