/**
 * Keys: the age identity (decrypts; kept offline, needed for restore), its recipient (encrypts; given to
 * backups), and the ed25519 signing key (signs manifests; lives with the backup job). The identity file
 * also records the signing public key as a comment, so a restore knows which signer to trust.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, recipientOf, parseIdentities } from './age.ts';
import { ConfigError } from './config.ts';
import { registerSecret } from './redact.ts';
import { rawPublicKey } from './manifest.ts';
import { DrError, ExitCode } from './errors.ts';

export const SIGNING_COMMENT = '# dr signing public key: ';

export function loadSigningKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DrError(`DR_SIGNING_KEY_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`, ExitCode.usage, 'create one with dr keygen');
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not ed25519 but ${key.asymmetricKeyType}`);
    return key;
  } catch (err) {
    throw new DrError(`DR_SIGNING_KEY_FILE: ${path} is not an ed25519 private key (${(err as Error).message.split('\n')[0]})`, ExitCode.usage, 'create one with dr keygen');
  }
}

/** The trusted signing public key recorded in an identity file, if any. */
export function signingKeyFromIdentityFile(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith(SIGNING_COMMENT));
  return line?.slice(SIGNING_COMMENT.length).trim();
}

/**
 * The identities of DR_AGE_IDENTITY_FILE (registered as secrets) and the trusted manifest signer (from
 * DR_SIGNING_PUBLIC_KEY, else the key recorded in the identity file by dr keygen). `command` names who needs it.
 */
export function identitiesFrom(config: { identityFile?: string | undefined; signingPublicKey?: string | undefined }, command: string): { identities: string[]; trusted: string | undefined } {
  if (!config.identityFile) throw new ConfigError([`DR_AGE_IDENTITY_FILE is required by ${command}: the age identity file from dr keygen that decrypts the backups`]);
  let text: string;
  try { text = readFileSync(config.identityFile, 'utf8'); } catch (err) {
    throw new ConfigError([`DR_AGE_IDENTITY_FILE: cannot read ${config.identityFile} (${(err as NodeJS.ErrnoException).code})`]);
  }
  let identities: string[];
  try { identities = parseIdentities(text, `DR_AGE_IDENTITY_FILE (${config.identityFile})`); } catch (err) { throw new ConfigError([(err as Error).message]); }
  identities.forEach((k) => registerSecret(k));
  return { identities, trusted: config.signingPublicKey ?? signingKeyFromIdentityFile(text) };
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
