/**
 * The backup manifest (docs/FORMAT.md): written last, it is the commit marker. Signed with ed25519 over its
 * canonical JSON (keys sorted, no whitespace) without the `signature` field.
 */
import { sign, verify, createPublicKey, type KeyObject } from 'node:crypto';

export const FORMAT = 'helpdesk-dr/1';

export type Compression = 'zstd' | 'gzip' | 'none';
export type PartKind = 'volume' | 'index' | 'dump';

/** The database engines dr dumps and replays (src/db/<engine>/). */
export type EngineKind = 'mariadb' | 'postgres' | 'redis';

/** Per-table statistics of a logical dump (src/db/table-stats.ts). */
export interface TableStats {
  rows: number;
  /** 16 lowercase hex digits, see the algorithm above */
  checksum: string;
}
/** MariaDB: the table name unquoted; PostgreSQL: the qualified name as written in the COPY statement. */
export type DumpStats = Record<string, TableStats>;

/** A Redis keyspace summary, read from the RDB as it streams (src/db/redis/rdb.ts; docs/FORMAT.md). */
export interface DigestCount { count: number; digest: string }
export interface VolatileBucket extends DigestCount { /** upper bound (inclusive) of the keys' expiry, ms since the epoch; null: no bound */ until: number | null }
export interface DbKeyspace { persistent: DigestCount; /** only non-empty buckets, in bound order */ volatile: VolatileBucket[] }
export interface RedisKeyspace {
  /** ms since the epoch, just after SAVE returned: the buckets' bounds are fixed from it */
  savedAt: number;
  /** ascending upper bounds (inclusive) of the volatile buckets, ms since the epoch; one more bucket holds later expiries */
  bounds: number[];
  /** per logical database, `db0`, `db1`, … (only databases that hold keys) */
  dbs: Record<string, DbKeyspace>;
}

export interface PartRecord {
  /** key relative to the backup folder, e.g. volumes/v2_glpi_files.tar.zst.age */
  key: string;
  kind: PartKind;
  /** the volume name, or container/database */
  source: string;
  compression: Compression;
  stored: { size: number; sha256: string };
  /** the content before compression and encryption; `sha256` is null for a volume part (every file's SHA-256 is in its index part) */
  plain: { size: number; sha256: string | null };
  /** volume parts: tar entries; index parts: index lines */
  files?: number;
}

export interface VolumeRecord {
  name: string;
  role: 'app' | 'database' | 'unused';
  driver: string;
  labels: Record<string, string>;
  mountedBy: { container: string; path: string }[];
  /** key of the tar part, or null when covered by a dump (hot mode) */
  part: string | null;
  /** key of the per-file index part */
  index: string | null;
  coveredBy: string | null;
  /** archived while these containers were stopped */
  quiesced: string[];
}

export interface DatabaseRecord {
  container: string;
  engine: EngineKind;
  image: string;
  imageId: string;
  version: string;
  serverVersion: string;
  dataVolumes: string[];
  /** engine-level parts: MariaDB users (_users), PostgreSQL globals (_globals), Redis RDB */
  extraParts: { name: string; part: string }[];
  databases: { name: string; part: string; tables: DumpStats }[];
  /** Redis: keys per logical database at dump time */
  keys?: Record<string, number>;
  /** Redis: the RDB's keyspace, read from the RDB as it streamed into its part (src/db/redis/rdb.ts; docs/FORMAT.md) */
  keyspace?: RedisKeyspace;
  warnings: string[];
}

export interface Manifest {
  format: typeof FORMAT;
  id: string;
  tool: { name: string; version: string };
  host: string;
  prefix: string;
  mode: 'hot' | 'cold';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  downtime: { ms: number; containers: { name: string; stoppedAt: string; startedAt: string | null; wave?: number; how?: 'stop' | 'pause' }[] };
  compression: Compression;
  encryption: { scheme: 'age-x25519'; recipients: string[] };
  parts: PartRecord[];
  volumes: VolumeRecord[];
  databases: DatabaseRecord[];
  containers: { name: string; image: string; imageId: string; service: string | null }[];
  warnings: string[];
  signature?: { alg: 'ed25519'; publicKey: string; value: string };
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj).sort().filter((k) => obj[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function rawPublicKey(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

export function publicKeyFromRaw(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error('an ed25519 public key has 32 bytes');
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

export function signManifest(m: Manifest, privateKey: KeyObject): Manifest {
  const { signature: _drop, ...body } = m;
  const value = sign(null, Buffer.from(canonicalJson(body)), privateKey).toString('base64');
  return { ...body, signature: { alg: 'ed25519', publicKey: rawPublicKey(privateKey), value } };
}

/**
 * Checks the signature and that the signer is one of `trusted` (base64 raw public keys). There is no
 * "any signer" mode: the key a manifest carries is not evidence of anything (see src/repo/trust.ts, Trust).
 * Returns a problem description, or null when valid.
 */
export function checkSignature(m: Manifest, trusted: readonly string[]): string | null {
  if (!m.signature || m.signature.alg !== 'ed25519') return 'manifest is not signed';
  const { signature, ...body } = m;
  if (trusted.length === 0) return 'no trusted signing key to check the manifest against';
  if (!trusted.includes(signature.publicKey)) {
    return `manifest was signed by an unknown key ${signature.publicKey} (trusted: ${trusted.join(', ')})`;
  }
  let ok = false;
  try {
    ok = verify(null, Buffer.from(canonicalJson(body)), publicKeyFromRaw(signature.publicKey), Buffer.from(signature.value, 'base64'));
  } catch { ok = false; }
  return ok ? null : 'manifest signature does not match its content (tampered or corrupted)';
}

export function serializeManifest(m: Manifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

/** New backup id: sortable UTC timestamp + short random suffix, e.g. 20261126T010203Z-9f3a1c. */
export function newBackupId(now = new Date(), rand = Math.random): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const suffix = Math.floor(rand() * 0x1000000).toString(16).padStart(6, '0');
  return `${ts}-${suffix}`;
}

export const BACKUP_ID_RE = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
