import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signManifest, rawPublicKey, type Manifest } from '../../src/repo/manifest.ts';
import { trustFrom, checkTrustedSignature, requireTrust, isSigningPublicKey, UntrustedSignerError, SIGNING_COMMENT, type Trust } from '../../src/repo/trust.ts';
import { ExitCode } from '../../src/core/errors.ts';

const pair = () => generateKeyPairSync('ed25519').privateKey;
const ours = pair();
const attacker = pair();
const OURS = rawPublicKey(ours);
const ATTACKER = rawPublicKey(attacker);
const manifest = (key = ours) => signManifest({ format: 'helpdesk-dr/1', id: 'b1', parts: [] } as unknown as Manifest, key);
const identityText = (key?: string) => `# created: now\n# public key: age1xyz\n${key ? `${SIGNING_COMMENT}${key}\n` : ''}AGE-SECRET-KEY-1XYZ\n`;
const warnings = () => {
  const seen: string[] = [];
  return { seen, log: { warn: (_o: object, msg: string) => { seen.push(msg); } } };
};

test('the trusted signer comes from DR_SIGNING_PUBLIC_KEY, else the identity file, else DR_SIGNING_KEY_FILE; never from the manifest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dr-trust-'));
  try {
    const pem = join(dir, 'signing.key');
    const sidecar = pair();
    writeFileSync(pem, sidecar.export({ format: 'pem', type: 'pkcs8' }) as string);
    assert.deepEqual(trustFrom({ signingPublicKey: OURS, identityFile: '/id', signingKeyFile: pem }, identityText(ATTACKER)).configured, { key: OURS, source: 'DR_SIGNING_PUBLIC_KEY' });
    assert.deepEqual(trustFrom({ identityFile: '/id', signingKeyFile: pem }, identityText(OURS)).configured, { key: OURS, source: 'DR_AGE_IDENTITY_FILE (/id)' });
    // an identity file without the comment (e.g. made by age-keygen): the sidecar's own signing key is trusted
    assert.deepEqual(trustFrom({ identityFile: '/id', signingKeyFile: pem }, identityText()).configured, { key: rawPublicKey(sidecar), source: `DR_SIGNING_KEY_FILE (${pem})` });
    assert.deepEqual(trustFrom({ identityFile: '/id' }, identityText()), { configured: null, override: null });
    assert.throws(() => trustFrom({ identityFile: '/id', signingKeyFile: join(dir, 'missing') }, identityText()), /DR_SIGNING_KEY_FILE: cannot read/);
    assert.throws(() => trustFrom({ identityFile: '/id' }, identityText('not-a-key')), /its "# dr signing public key:" line does not hold a signing public key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--trust-signer takes a well-formed key only', () => {
  assert.deepEqual(trustFrom({}, undefined, ` ${OURS} `), { configured: null, override: OURS });
  for (const bad of ['', 'abc', OURS.slice(1), `${OURS}x`, 'age1qqqq']) {
    assert.throws(() => trustFrom({}, undefined, bad), (e: Error & { exitCode?: number }) => e.exitCode === ExitCode.usage && /--trust-signer .* is not an ed25519 signing public key/.test(e.message), bad);
  }
  assert.equal(isSigningPublicKey(OURS), true);
  assert.equal(isSigningPublicKey('A'.repeat(43) + '='), true);
  assert.equal(isSigningPublicKey('A'.repeat(44)), false);
});

test('no trusted key: refused with exit 2, saying where the key is and which key the manifest names', () => {
  const none: Trust = { configured: null, override: null };
  const { seen, log } = warnings();
  assert.throws(() => checkTrustedSignature(manifest(attacker), none, 'dr restore', 'b1', log), (e: unknown) => {
    assert.ok(e instanceof UntrustedSignerError);
    assert.equal(e.exitCode, ExitCode.usage);
    assert.equal(e.manifestSigner, ATTACKER);
    assert.match(e.message, /no trusted signing key is configured/);
    assert.match(e.message, new RegExp(`signed by ${ATTACKER.replace(/[+/]/g, '\\$&')}`));
    for (const where of [/dr keygen/, /# dr signing public key/, /DR_AGE_IDENTITY_FILE/, /DR_SIGNING_PUBLIC_KEY/, /--trust-signer/]) assert.match(e.hint!, where);
    return true;
  });
  // even a manifest signed by our own key is refused: nothing says it is ours
  assert.throws(() => checkTrustedSignature(manifest(), none, 'dr verify', 'b1'), UntrustedSignerError);
  assert.throws(() => requireTrust(none, 'dr verify', 'b1', null), /names no signer/);
  assert.deepEqual(seen, []);
});

test('a configured key: its own manifests pass quietly, another signer is refused', () => {
  const trust: Trust = { configured: { key: OURS, source: 'DR_SIGNING_PUBLIC_KEY' }, override: null };
  const { seen, log } = warnings();
  assert.deepEqual(checkTrustedSignature(manifest(), trust, 'dr restore', 'b1', log), { problem: null, signer: { key: OURS, trustedBy: 'DR_SIGNING_PUBLIC_KEY', override: false } });
  const forged = checkTrustedSignature(manifest(attacker), trust, 'dr restore', 'b1', log);
  assert.match(forged.problem!, /signed by an unknown key/);
  assert.equal(forged.signer, null);
  assert.deepEqual(seen, []);
});

test('--trust-signer: the given key is trusted, loudly; another signer is still refused', () => {
  const trust: Trust = { configured: null, override: ATTACKER };
  const { seen, log } = warnings();
  const ok = checkTrustedSignature(manifest(attacker), trust, 'dr restore', 'b1', log);
  assert.deepEqual(ok, { problem: null, signer: { key: ATTACKER, trustedBy: '--trust-signer', override: true } });
  assert.equal(seen.length, 1);
  assert.match(seen[0]!, /TRUSTED BY --trust-signer, NOT BY CONFIGURATION/);
  assert.match(checkTrustedSignature(manifest(), trust, 'dr restore', 'b1', log).problem!, /unknown key/, 'our own key is not the one given');
  // with a configured key too: both are trusted; only the override is announced
  const both: Trust = { configured: { key: OURS, source: 'DR_SIGNING_PUBLIC_KEY' }, override: ATTACKER };
  const w2 = warnings();
  assert.equal(checkTrustedSignature(manifest(), both, 'dr restore', 'b1', w2.log).signer!.override, false);
  assert.equal(w2.seen.length, 0);
  assert.equal(checkTrustedSignature(manifest(attacker), both, 'dr restore', 'b1', w2.log).signer!.override, true);
  assert.equal(w2.seen.length, 1);
  // a tampered manifest is refused whatever is trusted
  const tampered = { ...manifest(attacker), id: 'b2' };
  assert.match(checkTrustedSignature(tampered, trust, 'dr restore', 'b2', log).problem!, /does not match its content/);
});
