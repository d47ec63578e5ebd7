/**
 * Signer trust (issue 17, item 6): restore and verify refuse without a trusted signing key, name where the
 * key is and the manifest's signer, accept an explicit --trust-signer loudly, and refuse a manifest signed
 * by another key with or without it.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { runDr, stackUp, docker, backupEnv, scratchDir, type BackupEnv } from '../helpers.ts';
import { signManifest, serializeManifest, rawPublicKey, type Manifest } from '../../src/repo/manifest.ts';
import type { VerifyReport } from '../../src/verify/run.ts';

let env: BackupEnv;
let manifest: Manifest;
let signer: string;
/** the environment of a restore host whose identity file has no signer comment and no other key is set */
let untrusted: Record<string, string>;

const suffixVolumes = (suffix: string) => docker('volume', 'ls', '-q', '--filter', `name=^v2_`).split('\n').filter((v) => v.endsWith(suffix));
const rmVolumes = (suffix: string) => { const v = suffixVolumes(suffix); if (v.length) docker('volume', 'rm', ...v); };
const escape = (s: string) => s.replace(/[+/]/g, '\\$&');

before(async () => {
  stackUp();
  env = await backupEnv('trust');
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
  signer = /# dr signing public key: (\S+)/.exec(readFileSync(env.identity, 'utf8'))![1]!;
  assert.equal(manifest.signature!.publicKey, signer);
  // the identity file without the comment (e.g. made by age-keygen, or edited), no DR_SIGNING_* at all
  const stripped = join(scratchDir(), 'trust-identity-stripped.txt');
  writeFileSync(stripped, readFileSync(env.identity, 'utf8').split('\n').filter((l) => !l.startsWith('# dr signing public key')).join('\n'), { mode: 0o600 });
  const { DR_SIGNING_KEY_FILE: _k, ...rest } = env;
  untrusted = { ...rest, DR_AGE_IDENTITY_FILE: stripped };
});

/** A copy of the backup whose manifest an attacker changed and signed with their own key. */
function forged(name: string): { env: Record<string, string>; key: string } {
  const local = join(scratchDir(), `trust-forged-${name}`);
  mkdirSync(local, { recursive: true });
  const dir = join(local, manifest.id);
  cpSync(join(env.DR_LOCAL_DIR, manifest.id), dir, { recursive: true });
  const m: Manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.host = 'attacker';
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, privateKey)));
  return { env: { DR_LOCAL_DIR: local }, key: rawPublicKey(privateKey) };
}

test('no trusted signing key configured: verify, restore and restore --dry-run refuse with exit 2, saying where the key is and naming the manifest\'s signer', async () => {
  const runs = {
    verify: await runDr(['verify', '--latest', '--level', 'quick'], untrusted),
    dryRun: await runDr(['restore', '--latest', '--dry-run'], untrusted),
    restore: await runDr(['restore', '--latest', '--suffix', '_tnokey'], untrusted),
  };
  try {
    for (const [what, r] of Object.entries(runs)) {
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /no trusted signing key is configured/, what);
      assert.match(r.stderr, new RegExp(`signed by ${escape(signer)}`), `${what} names the manifest's signer`);
      for (const where of [/dr keygen/, /# dr signing public key/, /DR_AGE_IDENTITY_FILE/, /DR_SIGNING_PUBLIC_KEY/, /--trust-signer/]) assert.match(r.stderr, where, what);
      assert.doesNotMatch(r.stdout, /Restored|PASS/, what);
    }
    assert.deepEqual(suffixVolumes('_tnokey'), [], 'nothing was written');
  } finally {
    rmVolumes('_tnokey');
  }
  // the refusal did not leave the lock held: a configured run goes on
  const ok = await runDr(['verify', '--latest', '--level', 'quick'], env);
  assert.equal(ok.code, 0, ok.stderr);
});

test('the trusted key from configuration: DR_SIGNING_PUBLIC_KEY, or the sidecar\'s own DR_SIGNING_KEY_FILE', async () => {
  const byVar = await runDr(['verify', '--latest', '--json'], { ...untrusted, DR_SIGNING_PUBLIC_KEY: signer });
  assert.equal(byVar.code, 0, byVar.stderr);
  assert.deepEqual((JSON.parse(byVar.stdout) as VerifyReport).signer, { key: signer, trustedBy: 'DR_SIGNING_PUBLIC_KEY', override: false });
  const byKeyFile = await runDr(['verify', '--latest', '--json'], { ...untrusted, DR_SIGNING_KEY_FILE: env.DR_SIGNING_KEY_FILE });
  assert.equal(byKeyFile.code, 0, byKeyFile.stderr);
  assert.equal((JSON.parse(byKeyFile.stdout) as VerifyReport).signer!.trustedBy, `DR_SIGNING_KEY_FILE (${env.DR_SIGNING_KEY_FILE})`);
  const byIdentity = await runDr(['verify', '--latest', '--json'], env);
  assert.equal((JSON.parse(byIdentity.stdout) as VerifyReport).signer!.trustedBy, `DR_AGE_IDENTITY_FILE (${env.identity})`);
  assert.doesNotMatch(byIdentity.stderr, /--trust-signer/);
});

test('--trust-signer with the key the refusal printed: verify and restore run, warn loudly, and the report and summary name the key', async () => {
  const v = await runDr(['verify', '--latest', '--level', 'read', '--trust-signer', signer, '--json'], untrusted);
  assert.equal(v.code, 0, v.stderr);
  const report = JSON.parse(v.stdout) as VerifyReport;
  assert.equal(report.passed, true);
  assert.deepEqual(report.signer, { key: signer, trustedBy: '--trust-signer', override: true });
  assert.match(report.checks.find((c) => c.check === 'signature')!.detail, /ONLY because of --trust-signer/);
  assert.match(v.stderr, /SIGNER TRUSTED BY --trust-signer, NOT BY CONFIGURATION/);
  const md = join(scratchDir(), 'trust-report.md');
  const text = await runDr(['verify', '--latest', '--trust-signer', signer, '--report', md], untrusted);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`Signer: ${escape(signer)} — WARNING: trusted only because of --trust-signer`));
  assert.match(readFileSync(md, 'utf8'), new RegExp(`- Signer: ${escape(signer)} — WARNING: trusted only because of --trust-signer`));

  const dry = await runDr(['restore', '--latest', '--dry-run', '--suffix', '_tdry', '--trust-signer', signer], untrusted);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /Dry run: every part was checked/);
  assert.match(dry.stdout, new RegExp(`WARNING: signer ${escape(signer)} was trusted because of --trust-signer`));
  try {
    const r = await runDr(['restore', '--latest', '--volume', 'v2_glpi_config', '--suffix', '_ttrust', '--trust-signer', signer, '--json'], untrusted);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /SIGNER TRUSTED BY --trust-signer/);
    const s = JSON.parse(r.stdout) as { volumes: { target: string }[]; trustedSigner: { key: string; trustedBy: string } };
    assert.deepEqual(s.trustedSigner, { key: signer, trustedBy: '--trust-signer' });
    assert.deepEqual(s.volumes.map((x) => x.target), ['v2_glpi_config_ttrust']);
  } finally {
    rmVolumes('_ttrust');
  }
  const bad = await runDr(['verify', '--latest', '--trust-signer', 'age1notakey'], untrusted);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--trust-signer "age1notakey" is not an ed25519 signing public key/);
});

test('a forged manifest signed by another key is refused: with the configured key, with --trust-signer of the real key, and without any key', async () => {
  const f = forged('a');
  try {
    // configured key (the identity file's comment)
    const v = await runDr(['verify', '--latest', '--json'], { ...env, ...f.env });
    assert.equal(v.code, 4, v.stderr);
    assert.match((JSON.parse(v.stdout) as VerifyReport).differences.join('\n'), new RegExp(`signed by an unknown key ${escape(f.key)}`));
    const r = await runDr(['restore', '--latest', '--suffix', '_tforged'], { ...env, ...f.env });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /unknown key.*refusing to restore/);
    // no key configured, the real key given by --trust-signer
    for (const args of [['verify', '--latest'], ['restore', '--latest', '--dry-run'], ['restore', '--latest', '--suffix', '_tforged']]) {
      const x = await runDr([...args, '--trust-signer', signer], { ...untrusted, ...f.env });
      assert.equal(x.code, 4, `${args.join(' ')}: ${x.stderr}`);
      assert.match(x.stdout + x.stderr, /signed by an unknown key/);
    }
    // no key at all: refused, and the refusal shows the forger's key (which the operator cannot confirm)
    const none = await runDr(['restore', '--latest', '--suffix', '_tforged'], { ...untrusted, ...f.env });
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, new RegExp(`signed by ${escape(f.key)}`));
    assert.deepEqual(suffixVolumes('_tforged'), [], 'nothing was written');
  } finally {
    rmVolumes('_tforged');
  }
});
