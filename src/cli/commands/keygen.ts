/** `dr keygen [--out-dir DIR] [--force]`: an age identity (+ recipient) and a manifest signing key. */
import { keygen } from '../../codec/keys.ts';
import { ExitCode } from '../../core/errors.ts';

export async function keygenCommand(opts: { outDir: string; force?: boolean }): Promise<number> {
  const r = await keygen(opts.outDir, opts.force);
  process.stdout.write([
    `age identity (decrypts backups; keep it OFF this host, e.g. in a password manager and a safe): ${r.identityFile}`,
    `signing key (signs manifests; the backup job needs it):                                      ${r.signingKeyFile}`,
    '',
    'Put these in .env for dr backup:',
    `  DR_AGE_RECIPIENTS=${r.recipient}`,
    `  DR_SIGNING_KEY_FILE=${r.signingKeyFile}`,
    'For dr restore / dr verify:',
    `  DR_AGE_IDENTITY_FILE=${r.identityFile}   (also records the signing public key ${r.signingPublicKey})`,
    '',
  ].join('\n'));
  return ExitCode.ok;
}
