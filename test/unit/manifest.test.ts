import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { canonicalJson, signManifest, checkSignature, newBackupId, BACKUP_ID_RE, rawPublicKey, type Manifest } from '../../src/repo/manifest.ts';
import { compareStats } from '../../src/db/table-stats.ts';
import { checkKey } from '../../src/storage/types.ts';

test('canonical JSON sorts keys at every level and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }], e: undefined, f: null }), '{"a":[{"c":"x","d":2}],"b":1,"f":null}');
});

test('backup ids sort by time and match the documented shape', () => {
  const a = newBackupId(new Date('2026-11-26T01:02:03.456Z'), () => 0.5);
  assert.equal(a, '20261126T010203Z-800000');
  assert.match(a, BACKUP_ID_RE);
  assert.ok(newBackupId(new Date('2026-11-26T01:02:04Z')) > a);
});

test('a signed manifest verifies against its trusted signer; any change, another signer, or no trusted key is refused', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519').privateKey;
  const m = { format: 'helpdesk-dr/1', id: 'x', parts: [{ key: 'a', stored: { size: 1, sha256: 'aa' } }] } as unknown as Manifest;
  const signed = signManifest(m, privateKey);
  const key = rawPublicKey(privateKey);
  assert.equal(checkSignature(signed, [key]), null);
  assert.equal(checkSignature(signed, [rawPublicKey(other), key]), null, 'any of the trusted keys');
  assert.match(checkSignature(signed, [rawPublicKey(other)])!, /unknown key/);
  // the key the manifest carries is not trusted by itself
  assert.match(checkSignature(signed, [])!, /no trusted signing key/);
  const tampered = structuredClone(signed);
  (tampered.parts[0] as { stored: { size: number } }).stored.size = 2;
  assert.match(checkSignature(tampered, [key])!, /does not match its content/);
  const { signature: _s, ...unsigned } = signed;
  assert.match(checkSignature(unsigned as Manifest, [key])!, /not signed/);
  // re-serialising in another key order keeps it valid (canonical form)
  const reordered = Object.fromEntries(Object.entries(signed).reverse()) as unknown as Manifest;
  assert.equal(checkSignature(reordered, [key]), null);
});

test('table statistics comparison names each difference', () => {
  const want = { t1: { rows: 2, checksum: 'aa' }, t2: { rows: 1, checksum: 'bb' }, t3: { rows: 0, checksum: '00' } };
  assert.deepEqual(compareStats('c', 'db', want, { ...want }), []);
  const d = compareStats('c', 'db', want, { t1: { rows: 3, checksum: 'aa' }, t2: { rows: 1, checksum: 'cc' }, t4: { rows: 0, checksum: '00' } });
  assert.deepEqual(d, ['c/db.t1: 3 rows, the backup has 2', 'c/db.t2: checksum cc ≠ bb (same 1 rows, different content)', 'c/db.t3: missing after restore', 'c/db.t4: not in the backup']);
});

test('object keys cannot escape the destination', () => {
  assert.equal(checkKey('20261126T010203Z-800000/volumes/a.tar.zst.age'), '20261126T010203Z-800000/volumes/a.tar.zst.age');
  for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a//b', 'a/./b', '', 'a\\b']) assert.throws(() => checkKey(bad), /invalid object key/, bad);
});
