/**
 * Secret values known to this process (DB passwords read from containers, S3 keys, tokens...). Everything
 * that leaves the process as text — logs, error messages, reports — goes through `scrub`, so a secret never
 * appears in output even when a library quotes it back in an error.
 */
const secrets = new Set<string>();
const MASK = '[REDACTED]';

/** Remember a secret value so that `scrub` hides it. Very short values are ignored (they would mask noise). */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 4) return;
  secrets.add(value);
  // also the URL-encoded form: secrets end up inside connection URLs
  const enc = encodeURIComponent(value);
  if (enc !== value) secrets.add(enc);
}

export function scrub(text: string): string {
  let out = text;
  // longest first, so a secret that contains another is masked whole
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  return out;
}

/** Deep copy of a JSON-like value with every string scrubbed. */
export function scrubValue<T>(value: T): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (Array.isArray(value)) return value.map((v) => scrubValue(v)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrubValue(v);
    return out as T;
  }
  return value;
}

/** Names of environment variables whose values are secrets (in containers or in our own config). */
export function isSecretName(name: string): boolean {
  return /(PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|_KEY_|PRIVATE|IDENTITY|CREDENTIAL|AUTH)/i.test(name) && !/_FILE$/.test(name);
}
