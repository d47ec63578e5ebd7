/**
 * The age identity file (DR_AGE_IDENTITY_FILE): reading it (its identities, registered as secrets, and the
 * signer it records) and making it with the signing key (`dr keygen`). Signer trust: src/repo/trust.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, recipientOf, parseIdentities } from './age/index.ts';
import { ConfigError } from '../core/config.ts';
import { registerSecret } from '../core/redact.ts';
import { DrError, ExitCode } from '../core/errors.ts';
import { rawPublicKey } from '../repo/manifest.ts';
import { SIGNING_COMMENT, trustFrom, trustedKeys, type Trust } from '../repo/trust.ts';

/**
 * The identities of DR_AGE_IDENTITY_FILE (registered as secrets) and the trust of this run (trustFrom:
 * the configured signer and --trust-signer). `command` names who needs it.
 */
export function identitiesFrom(config: { identityFile?: string | undefined; signingPublicKey?: string | undefined; signingKeyFile?: string | undefined },
  command: string, trustSigner?: string): { identities: string[]; trust: Trust; trusted: string[] } {
  if (!config.identityFile) throw new ConfigError([`DR_AGE_IDENTITY_FILE is required by ${command}: the age identity file from dr keygen that decrypts the backups`]);
  let text: string;
  try { text = readFileSync(config.identityFile, 'utf8'); } catch (err) {
    throw new ConfigError([`DR_AGE_IDENTITY_FILE: cannot read ${config.identityFile} (${(err as NodeJS.ErrnoException).code})`]);
  }
  let identities: string[];
  try { identities = parseIdentities(text, `DR_AGE_IDENTITY_FILE (${config.identityFile})`); } catch (err) { throw new ConfigError([(err as Error).message]); }
  identities.forEach((k) => registerSecret(k));
  const trust = trustFrom(config, text, trustSigner);
  // `trusted`: the keys for checkSignature (prefer checkTrustedSignature with `trust`: it refuses with exit 2)
  return { identities, trust, trusted: trustedKeys(trust) };
}

export interface KeygenResult { identityFile: string; signingKeyFile: string; recipient: string; signingPublicKey: string }

export async function keygen(outDir: string, force = false): Promise<KeygenResult> {
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const identityFile = join(outDir, 'age-identity.txt');
  const signingKeyFile = join(outDir, 'signing.key');
  if (!force) {
    for (const f of [identityFile, signingKeyFile]) {
      if (await stat(f).then(() => true, () => false)) {
        throw new DrError(`${f} already exists: refusing to overwrite a key`, ExitCode.usage, 'choose another --out-dir, or pass --force if you really mean to replace it');
      }
    }
  }
  const { identity } = generateIdentity();
  const recipient = recipientOf(identity);
  const { privateKey } = generateKeyPairSync('ed25519');
  const signingPublicKey = rawPublicKey(privateKey);
  const flag = force ? 'w' : 'wx';
  await writeFile(identityFile,
    `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${SIGNING_COMMENT}${signingPublicKey}\n${identity}\n`,
    { mode: 0o600, flag });
  await writeFile(signingKeyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600, flag });
  return { identityFile, signingKeyFile, recipient, signingPublicKey };
}
