/**
 * Signer trust: the ed25519 signing key (signs manifests; lives with the backup job) and which signer a
 * restore or drill trusts (DR_SIGNING_PUBLIC_KEY, the identity file's `# dr signing public key` comment, the
 * sidecar's own signing key, or --trust-signer). The identity file itself: src/codec/keys.ts.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/config.ts';
import { rawPublicKey, checkSignature, type Manifest } from './manifest.ts';
import { DrError, ExitCode } from '../core/errors.ts';

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

const PUBLIC_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;
/** Is `s` a base64 raw ed25519 public key (what dr keygen prints and manifests carry)? */
export function isSigningPublicKey(s: string): boolean {
  return PUBLIC_KEY_RE.test(s) && Buffer.from(s, 'base64').length === 32;
}

/**
 * Which manifest signer a restore or drill trusts. `configured` comes from this host's configuration, in
 * this order: DR_SIGNING_PUBLIC_KEY, the `# dr signing public key:` line dr keygen writes into the identity
 * file, the public half of DR_SIGNING_KEY_FILE (the sidecar's own signing key). None of them can be changed
 * by whoever writes to a destination. `override` is a key the operator confirmed out of band and passed
 * with --trust-signer. A manifest signed by any other key is refused; with neither, nothing is trusted.
 */
export interface Trust {
  configured: { key: string; source: string } | null;
  override: string | null;
}

/** The signer a manifest was accepted from, and what made it trusted. */
export interface TrustedSigner {
  key: string;
  /** DR_SIGNING_PUBLIC_KEY, DR_AGE_IDENTITY_FILE (path), DR_SIGNING_KEY_FILE (path) or --trust-signer */
  trustedBy: string;
  /** trusted only because of --trust-signer */
  override: boolean;
}

/** Refusal: no trusted signer (exit code usage). Carries the manifest's signer key, for --trust-signer. */
export class UntrustedSignerError extends DrError {
  readonly manifestSigner: string | null;
  constructor(message: string, hint: string, manifestSigner: string | null) {
    super(message, ExitCode.usage, hint);
    this.name = 'UntrustedSignerError';
    this.manifestSigner = manifestSigner;
  }
}

/**
 * The trust of this run, from the configuration (see Trust) and --trust-signer. Pure but for reading
 * DR_SIGNING_KEY_FILE when nothing before it names a key.
 */
export function trustFrom(config: { identityFile?: string | undefined; signingPublicKey?: string | undefined; signingKeyFile?: string | undefined },
  identityText: string | undefined, override?: string): Trust {
  let over: string | null = null;
  if (override !== undefined) {
    const k = override.trim();
    if (!isSigningPublicKey(k)) {
      throw new DrError(`--trust-signer ${JSON.stringify(override)} is not an ed25519 signing public key (44 characters of base64, as dr keygen and dr's refusal print it)`, ExitCode.usage);
    }
    over = k;
  }
  let configured: Trust['configured'] = null;
  const fromIdentity = identityText === undefined ? undefined : signingKeyFromIdentityFile(identityText);
  if (config.signingPublicKey) configured = { key: config.signingPublicKey, source: 'DR_SIGNING_PUBLIC_KEY' };
  else if (fromIdentity !== undefined) {
    if (!isSigningPublicKey(fromIdentity)) {
      throw new ConfigError([`DR_AGE_IDENTITY_FILE (${config.identityFile}): its "${SIGNING_COMMENT.trim()}" line does not hold a signing public key (44 characters of base64); fix it from dr keygen's output, or set DR_SIGNING_PUBLIC_KEY`]);
    }
    configured = { key: fromIdentity, source: `DR_AGE_IDENTITY_FILE (${config.identityFile})` };
  } else if (config.signingKeyFile) {
    configured = { key: rawPublicKey(loadSigningKey(config.signingKeyFile)), source: `DR_SIGNING_KEY_FILE (${config.signingKeyFile})` };
  }
  return { configured, override: over };
}

/** The keys a manifest may be signed by. */
export function trustedKeys(trust: Trust): string[] {
  return [...new Set([trust.configured?.key, trust.override].filter((k): k is string => !!k))];
}

/** Where the trusted key is: the text of a refusal without one. */
export const WHERE_THE_KEY_IS = 'the signing public key is printed by dr keygen ("also records the signing public key …"), recorded in the identity file it wrote '
  + `(the "${SIGNING_COMMENT.trim()} …" line: use that file as DR_AGE_IDENTITY_FILE), and can be set as DR_SIGNING_PUBLIC_KEY; `
  + 'on the backup host it is also the public half of DR_SIGNING_KEY_FILE';

/**
 * Refuses (UntrustedSignerError, exit code usage) when no signer is trusted: without a trusted key a
 * signature proves nothing (anyone who can write to the destination can sign with a key of their own).
 * `signer` is the key the manifest names, when it could be read.
 */
export function requireTrust(trust: Trust, command: string, backup: string, signer: string | null): void {
  if (trust.configured || trust.override) return;
  throw new UntrustedSignerError(
    `${command}: no trusted signing key is configured, so the signature of backup ${backup} proves nothing (anyone who can write to a destination can sign a manifest with a key of their own); refusing. `
      + (signer ? `The manifest says it was signed by ${signer}.` : 'Its manifest names no signer it could be checked against.'),
    `${WHERE_THE_KEY_IS}. If that key is lost: confirm the key above out of band (RESTORE.md, "Trusting the signer") and pass it: ${command} … --trust-signer ${signer ?? 'KEY'}`,
    signer,
  );
}

/**
 * The manifest's signature against the trusted signer(s): refuses without any (requireTrust); returns the
 * problem (null when valid) and the signer trusted. A manifest trusted only through --trust-signer is
 * logged loudly.
 */
export function checkTrustedSignature(m: Manifest, trust: Trust, command: string, backup: string,
  log?: { warn(obj: object, msg: string): void }): { problem: string | null; signer: TrustedSigner | null } {
  requireTrust(trust, command, backup, m.signature?.publicKey ?? null);
  const problem = checkSignature(m, trustedKeys(trust));
  if (problem) return { problem, signer: null };
  const key = m.signature!.publicKey;
  const override = key !== trust.configured?.key;
  const signer: TrustedSigner = { key, trustedBy: override ? '--trust-signer' : trust.configured!.source, override };
  if (override) {
    log?.warn({ signer: key, backup, configured: trust.configured?.source ?? null },
      `SIGNER TRUSTED BY --trust-signer, NOT BY CONFIGURATION: backup ${backup} is accepted because it is signed by ${key}, the key given on the command line. `
      + 'Make sure that key was confirmed out of band; then set it as DR_SIGNING_PUBLIC_KEY');
  }
  return { problem: null, signer };
}

