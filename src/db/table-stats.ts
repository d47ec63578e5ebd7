/**
 * Per-table row counts and checksums computed from a logical dump *while it streams* to the backup, so
 * that they describe exactly the dump's snapshot. After a restore the restored database is dumped again
 * with the same tool and options and the same statistics are computed: equal stats ⇒ the data came back.
 * This is the part the SQL engines share; each parses its own dump format (src/db/mariadb/stats.ts,
 * src/db/postgres/stats.ts).
 *
 * ## Checksum algorithm (part of the on-disk manifest format: do not change without a format version)
 *
 * An order-independent hash of the multiset of a table's rows:
 *
 *   1. Each row is taken as the exact bytes of its text as the dump prints it:
 *      - MariaDB (`mariadb-dump`, extended INSERTs): the tuple text between the outer parentheses,
 *        e.g. `1,'a\'b',0x00FF,NULL` for the tuple `(1,'a\'b',0x00FF,NULL)`;
 *      - PostgreSQL (`pg_dump` plain text, COPY format): the COPY data line without its trailing `\n`.
 *   2. h = SHA-256(row bytes); v = the first 8 bytes of h read as an unsigned 64-bit big-endian integer.
 *   3. checksum = (Σ v over all rows) mod 2^64, written as 16 lowercase hex digits (zero padded).
 *
 * An empty table has rows = 0 and checksum `0000000000000000`. Addition is commutative, so the order of
 * rows does not matter; a changed, missing or duplicated row changes the sum (up to a 2^-64 accident).
 *
 * The parsers work on bytes (never decoded text), so chunk boundaries anywhere — also inside a UTF-8
 * character — give the same result, and never hold more than one line head (bounded) in memory: a row
 * that spans chunks is hashed incrementally.
 */
import { hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execStream, checkedStdout, type ExecOptions } from '../docker/exec.ts';
import type { Compared, ReplayContext, Throwaway } from './engine.ts';
import type { DumpStats, TableStats } from '../repo/manifest.ts';
import { CheckError } from '../core/errors.ts';

export interface DumpStatsSink extends Writable {
  /** The statistics, in dump order. Only valid once the stream has emitted 'finish'. */
  result(): DumpStats;
}

const TWO32 = 4294967296;

/** Running multiset sum for one table: two 32-bit halves of the 64-bit sum. */
export class Acc {
  rows = 0;
  hi = 0;
  lo = 0;
  /**
   * Adds a row's SHA-256 digest given as a latin1 string (one char per byte: the cheapest output of
   * crypto.hash for short inputs, ~3× faster than a Buffer).
   */
  add(d: string): void {
    const lo = this.lo + d.charCodeAt(4) * 16777216 + ((d.charCodeAt(5) << 16) | (d.charCodeAt(6) << 8) | d.charCodeAt(7));
    const carry = lo >= TWO32 ? 1 : 0;
    this.lo = lo >>> 0;
    this.hi = (this.hi + d.charCodeAt(0) * 16777216 + ((d.charCodeAt(1) << 16) | (d.charCodeAt(2) << 8) | d.charCodeAt(3)) + carry) >>> 0;
    this.rows++;
  }
  stats(): TableStats {
    return { rows: this.rows, checksum: this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0') };
  }
}

/** SHA-256 of the bytes, as a 'binary' (= latin1) string of 32 chars (char code = byte). */
export function sha256(b: Uint8Array): string {
  return hash('sha256', b, 'binary');
}

/** The checksum of explicit row texts (strings are UTF-8 encoded), with the same algorithm as the parsers. */
export function rowChecksum(rows: Iterable<string | Buffer>): string {
  const acc = new Acc();
  for (const r of rows) acc.add(sha256(typeof r === 'string' ? Buffer.from(r, 'utf8') : r));
  return acc.stats().checksum;
}

export abstract class StatsSink extends Writable implements DumpStatsSink {
  protected readonly tables = new Map<string, Acc>();
  private done = false;

  constructor() {
    super({ decodeStrings: true });
  }

  protected table(name: string): Acc {
    let acc = this.tables.get(name);
    if (!acc) this.tables.set(name, (acc = new Acc()));
    return acc;
  }

  protected abstract scan(buf: Buffer): void;
  /** Throws if the dump ended where it cannot end (inside a data statement / COPY block). */
  protected abstract finishScan(): void;

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.scan(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    try {
      this.finishScan();
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.done = true;
    cb();
  }

  result(): DumpStats {
    if (!this.done) throw new Error('dump statistics are only available once the stream has finished');
    const out: DumpStats = {};
    for (const [name, acc] of this.tables) out[name] = acc.stats();
    return out;
  }
}

/** Line heads are carried across chunks up to this many bytes (they are only examined, never stored whole). */
export const HEAD_CAP = 64 * 1024;

/** Compares re-dumped statistics with the manifest's; returns the differences. */
export function compareStats(container: string, dbName: string, want: DumpStats, got: DumpStats): string[] {
  const diffs: string[] = [];
  for (const [table, w] of Object.entries(want)) {
    const g = got[table];
    if (!g) diffs.push(`${container}/${dbName}.${table}: missing after restore`);
    else if (g.rows !== w.rows) diffs.push(`${container}/${dbName}.${table}: ${g.rows} rows, the backup has ${w.rows}`);
    else if (g.checksum !== w.checksum) diffs.push(`${container}/${dbName}.${table}: checksum ${g.checksum} ≠ ${w.checksum} (same ${w.rows} rows, different content)`);
  }
  for (const table of Object.keys(got)) if (!(table in want)) diffs.push(`${container}/${dbName}.${table}: not in the backup`);
  return diffs;
}

/**
 * Dumps each replayed database again (`dump`, through a new `sink`) and compares its statistics with the
 * manifest's; the first database that differs is a CheckError.
 */
export async function compareTables(t: Throwaway, ctx: ReplayContext, dump: (db: string) => ExecOptions, sink: () => DumpStatsSink): Promise<Compared> {
  const databases: Compared['databases'] = [];
  for (const d of ctx.db.databases) {
    const stats = sink();
    await pipeline(checkedStdout(await execStream(t.container, dump(d.name)), t.name, `re-dump of ${d.name}`), stats);
    const got = stats.result();
    const diffs = compareStats(ctx.db.container, d.name, d.tables, got);
    if (diffs.length) throw new CheckError(`database ${ctx.db.container}/${d.name} differs from the backup after replay: ${diffs.slice(0, 10).join('; ')}`);
    databases.push({ name: d.name, tables: Object.keys(got).length, rows: Object.values(got).reduce((n, x) => n + x.rows, 0) });
  }
  return { databases };
}
