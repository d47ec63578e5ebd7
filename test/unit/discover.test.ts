import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineFromImage, engineFromProcesses } from '../../src/engines/index.ts';
import { stopOrderOf, stopWavesOf } from '../../src/discover.ts';

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
