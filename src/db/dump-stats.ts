/**
 * Per-table row counts and checksums computed from a logical dump *while it streams* to the backup, so
 * that they describe exactly the dump's snapshot. After a restore the restored database is dumped again
 * with the same tool and options and the same statistics are computed: equal stats ⇒ the data came back.
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
 * Both parsers work on bytes (never decoded text), so chunk boundaries anywhere — also inside a UTF-8
 * character — give the same result, and never hold more than one line head (bounded) in memory: a row
 * that spans chunks is hashed incrementally.
 */
import { createHash, hash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { DumpStats, TableStats } from '../repo/manifest.ts';

export interface DumpStatsSink extends Writable {
  /** The statistics, in dump order. Only valid once the stream has emitted 'finish'. */
  result(): DumpStats;
}

const TWO32 = 4294967296;

/** Running multiset sum for one table: two 32-bit halves of the 64-bit sum. */
class Acc {
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
function sha256(b: Uint8Array): string {
  return hash('sha256', b, 'binary');
}

/** The checksum of explicit row texts (strings are UTF-8 encoded), with the same algorithm as the parsers. */
export function rowChecksum(rows: Iterable<string | Buffer>): string {
  const acc = new Acc();
  for (const r of rows) acc.add(sha256(typeof r === 'string' ? Buffer.from(r, 'utf8') : r));
  return acc.stats().checksum;
}

abstract class StatsSink extends Writable implements DumpStatsSink {
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
const HEAD_CAP = 64 * 1024;
/** A first, cheap look at a line head; widened to HEAD_CAP only when the header is longer. */
const HEAD_PEEK = 512;
const HEAD_WINDOWS = [HEAD_PEEK, HEAD_CAP];

// ---------------------------------------------------------------------------------------------------------
// MariaDB / MySQL
// ---------------------------------------------------------------------------------------------------------

// Scanner states.
const M_LINE = 0; // at the start of a line (outside any data statement)
const M_SKIP = 1; // inside a line that carries no data: skip to its end
const M_IN = 2; // inside a tuple, outside quotes
const M_STR = 3; // inside a quoted string
const M_ESC = 4; // just after a backslash inside a string
const M_QEND = 5; // just after a quote that closes a string, unless the next byte doubles it
const M_AFTER = 6; // after a tuple's `)`: expecting `,` or `;`
const M_NEXT = 7; // after `,` between tuples: expecting `(`

/**
 * `INSERT INTO `t` [(`c`, …)] VALUES (` — also INSERT IGNORE / REPLACE, in case the dump options change.
 * Matched against the latin1 view of the line's bytes (so indexes are byte offsets).
 */
const MY_INSERT =
  /^(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+`((?:[^`]|``)+)`\s*(?:\((?:[^`()]|`(?:[^`]|``)*`)*\)\s*)?VALUES\s*\(/;
/** The same header with the first tuple on a later line (tolerated; mariadb-dump 10.11 writes one line). */
const MY_INSERT_EOL =
  /^(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+`((?:[^`]|``)+)`\s*(?:\((?:[^`()]|`(?:[^`]|``)*`)*\)\s*)?VALUES[ \t\r]*$/;
const MY_DATA_HEADER = /^-- Dumping data for table `((?:[^`]|``)+)`[ \t\r]*$/;
const MY_DELIMITER = /^DELIMITER[ \t]+(\S+)[ \t\r]*$/i;
const CR_LF_SPACE_TAB = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function mysqlName(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8').replaceAll('``', '`');
}

/**
 * Statistics of `mariadb-dump --single-transaction --routines --triggers --events --hex-blob <db>` output.
 *
 * Format assumptions: data statements are INSERT statements beginning at the start of a line (as
 * mariadb-dump writes them), outside `DELIMITER ;;` blocks (triggers, routines and events, which are
 * skipped whole, so an INSERT in their bodies is never data); `-- Dumping data for table `t`` registers
 * `t` even when no INSERT follows. Tuples are scanned byte by byte outside a regex: strings in '…' (or "…")
 * with backslash escapes and doubled quotes, nested parentheses outside strings balanced.
 */
class MysqlDumpStats extends StatsSink {
  private st = M_LINE;
  private delimiterIsSemicolon = true;
  /** bytes of a line head that started in an earlier chunk (no newline yet), at most HEAD_CAP */
  private carry: Buffer | null = null;
  // tuple scanner
  private acc: Acc | null = null;
  private depth = 0;
  private quote = 0;
  /** hash of the current row's bytes from earlier chunks, when the row spans chunks */
  private partial: Hash | null = null;

  protected scan(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    while (i < n) {
      if (this.st === M_SKIP) {
        const nl = buf.indexOf(0x0a, i);
        if (nl < 0) return;
        i = nl + 1;
        this.st = M_LINE;
      } else if (this.st === M_LINE) {
        i = this.lineHead(buf, i);
      } else {
        i = this.tuples(buf, i);
      }
    }
  }

  protected finishScan(): void {
    if (this.st !== M_LINE && this.st !== M_SKIP) {
      throw new Error('MariaDB dump ended inside an INSERT statement (truncated dump?)');
    }
  }

  /** Classifies the line starting at buf[i] (plus any carried head); returns where to continue. */
  private lineHead(buf: Buffer, i: number): number {
    const n = buf.length;
    const carry = this.carry;
    const c0 = carry ? carry[0]! : buf[i]!;
    // Only lines starting with I(NSERT), R(EPLACE), -(- Dumping data), D(ELIMITER) can matter.
    const interesting = this.delimiterIsSemicolon
      ? c0 === 0x49 || c0 === 0x52 || c0 === 0x2d || c0 === 0x44 || c0 === 0x64
      : c0 === 0x44 || c0 === 0x64;
    if (!interesting) {
      this.carry = null;
      this.st = M_SKIP;
      return i;
    }
    const cLen = carry ? carry.length : 0;
    const nl = buf.indexOf(0x0a, i);
    const lineEnd = nl < 0 ? n : nl;
    let take = i;
    for (const cap of HEAD_WINDOWS) {
      take = Math.min(lineEnd, i + Math.max(0, cap - cLen));
      const win = carry ? Buffer.concat([carry, buf.subarray(i, take)]) : buf.subarray(i, take);
      const s = win.toString('latin1');
      const complete = take === nl; // the whole line is in the window
      let m: RegExpExecArray | null;
      if (this.delimiterIsSemicolon && (c0 === 0x49 || c0 === 0x52) && (m = MY_INSERT.exec(s))) {
        const start = i + m[0].length - cLen; // first byte of the first tuple's text
        if (start < i) throw new Error('internal error: INSERT header ended inside the carried bytes');
        this.carry = null;
        this.acc = this.table(mysqlName(m[1]!));
        this.st = M_IN;
        this.depth = 0;
        this.partial = null;
        return start;
      }
      if (complete && this.delimiterIsSemicolon && c0 !== 0x2d && (m = MY_INSERT_EOL.exec(s))) {
        this.carry = null;
        this.acc = this.table(mysqlName(m[1]!));
        this.st = M_NEXT; // expect the first `(` after whitespace
        this.partial = null;
        return take;
      }
      if (complete && this.delimiterIsSemicolon && c0 === 0x2d && (m = MY_DATA_HEADER.exec(s))) {
        this.table(mysqlName(m[1]!));
        break;
      }
      if (complete && (c0 === 0x44 || c0 === 0x64) && (m = MY_DELIMITER.exec(s))) {
        this.delimiterIsSemicolon = m[1] === ';';
        break;
      }
      if (take === lineEnd) {
        if (nl < 0 && cLen + (take - i) < HEAD_CAP) {
          // The head may still become meaningful: keep it (a copy; bounded) until the next chunk.
          this.carry = carry ? win : Buffer.from(win);
          return n;
        }
        break;
      }
    }
    this.carry = null;
    this.st = M_SKIP;
    return take;
  }

  /** Runs the tuple scanner from buf[i] to the end of the INSERT statement or of the chunk. */
  private tuples(buf: Buffer, i: number): number {
    const n = buf.length;
    let st = this.st;
    let depth = this.depth;
    let q = this.quote;
    let rowStart = i; // meaningful while inside a tuple
    const acc = this.acc!;
    while (i < n) {
      if (st === M_IN) {
        let c = 0;
        for (; i < n; i++) {
          c = buf[i]!;
          if (c === 0x27 || c === 0x22 || c === 0x28 || c === 0x29) break;
        }
        if (i === n) break;
        i++;
        if (c === 0x29) {
          if (depth === 0) {
            this.row(acc, buf, rowStart, i - 1);
            st = M_AFTER;
          } else depth--;
        } else if (c === 0x28) depth++;
        else {
          q = c;
          st = M_STR;
        }
      } else if (st === M_STR) {
        let c = 0;
        for (; i < n; i++) {
          c = buf[i]!;
          if (c === q || c === 0x5c) break;
        }
        if (i === n) break;
        i++;
        st = c === 0x5c ? M_ESC : M_QEND;
      } else if (st === M_ESC) {
        i++;
        st = M_STR;
      } else if (st === M_QEND) {
        if (buf[i] === q) {
          i++;
          st = M_STR;
        } else st = M_IN;
      } else {
        // M_AFTER / M_NEXT: between tuples
        const c = buf[i]!;
        if (CR_LF_SPACE_TAB(c)) {
          i++;
        } else if (st === M_AFTER && c === 0x2c) {
          i++;
          st = M_NEXT;
        } else if (st === M_AFTER && c === 0x3b) {
          this.st = M_SKIP; // rest of the statement's line
          this.acc = null;
          return i + 1;
        } else if (st === M_NEXT && c === 0x28) {
          i++;
          st = M_IN;
          depth = 0;
          rowStart = i;
        } else {
          const ctx = JSON.stringify(buf.subarray(Math.max(0, i - 40), i + 40).toString('latin1'));
          throw new Error(`MariaDB dump: unexpected byte 0x${c.toString(16)} between INSERT tuples near ${ctx}`);
        }
      }
    }
    // End of chunk inside the statement: a row in progress continues in the next chunk.
    if (st === M_IN || st === M_STR || st === M_ESC || st === M_QEND) {
      (this.partial ??= createHash('sha256')).update(buf.subarray(rowStart, n));
    }
    this.st = st;
    this.depth = depth;
    this.quote = q;
    return n;
  }

  /** Counts the row whose text (from this chunk) is buf[start, end), preceded by this.partial if any. */
  private row(acc: Acc, buf: Buffer, start: number, end: number): void {
    const p = this.partial;
    if (p) {
      p.update(buf.subarray(start, end));
      acc.add(p.digest('binary'));
      this.partial = null;
    } else {
      acc.add(sha256(buf.subarray(start, end)));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------------------

const PG_IDENT = String.raw`(?:"(?:[^"]|"")*"|[^\s."(]+)`;
/** `COPY schema.table (cols) FROM stdin;` — the qualified name captured exactly as written. */
const PG_COPY = new RegExp(String.raw`^COPY (${PG_IDENT}(?:\.${PG_IDENT})*)(?: \((?:[^"]|"(?:[^"]|"")*")*\))? FROM stdin;$`);
/** pg_dump's TOC entry header comment: `-- [Data for ]Name: x; Type: TABLE DATA; Schema: s; Owner: o`. */
const PG_TOC = /^-- (?:Data for )?Name: .*; Type: ([^;]*); Schema: /;

/**
 * Statistics of `pg_dump` plain-text output (COPY format).
 *
 * Format assumptions: a data block starts with a line that begins with `COPY ` and ends with
 * ` FROM stdin;` and ends with the line `\.`; every line in between is one row. As an extra guard against
 * such a line inside a function body, once pg_dump's TOC header comments have been seen (`-- Name: …;
 * Type: FUNCTION; …`), a COPY line only counts inside a `Type: TABLE DATA` entry.
 */
class PgDumpStats extends StatsSink {
  private inCopy = false;
  private acc: Acc | null = null;
  /** type of the TOC entry we are in, '' before the first header */
  private tocType = '';
  /** outside COPY: head of a line that starts with 'C' or '-' carried from an earlier chunk */
  private carry: Buffer | null = null;
  /** outside COPY: skipping the rest of an uninteresting line */
  private skipping = false;
  // inside COPY, a row spanning chunks:
  private partial: Hash | null = null;
  private partialLen = 0;
  private b0 = 0;
  private b1 = 0;

  protected scan(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    while (i < n) {
      if (this.inCopy) i = this.copyRows(buf, i);
      else if (this.skipping) {
        const nl = buf.indexOf(0x0a, i);
        if (nl < 0) return;
        i = nl + 1;
        this.skipping = false;
      } else i = this.lineHead(buf, i);
    }
  }

  protected finishScan(): void {
    if (this.inCopy) throw new Error('PostgreSQL dump ended inside a COPY block (truncated dump?)');
  }

  private lineHead(buf: Buffer, i: number): number {
    const n = buf.length;
    const carry = this.carry;
    const c0 = carry ? carry[0]! : buf[i]!;
    if (c0 !== 0x43 /* C */ && c0 !== 0x2d /* - */) {
      this.skipping = true;
      return i;
    }
    const cLen = carry ? carry.length : 0;
    const nl = buf.indexOf(0x0a, i);
    const take = Math.min(nl < 0 ? n : nl, i + Math.max(0, HEAD_CAP - cLen));
    const win = carry ? Buffer.concat([carry, buf.subarray(i, take)]) : buf.subarray(i, take);
    if (take !== nl) {
      if (nl < 0 && win.length < HEAD_CAP) {
        this.carry = carry ? win : Buffer.from(win);
        return n;
      }
      // longer than HEAD_CAP: neither a COPY statement nor a TOC header
      this.carry = null;
      this.skipping = true;
      return take;
    }
    this.carry = null;
    const line = win.toString('utf8');
    if (c0 === 0x2d) {
      const m = PG_TOC.exec(line);
      if (m) this.tocType = m[1]!;
    } else {
      const m = PG_COPY.exec(line);
      if (m && (this.tocType === '' || this.tocType === 'TABLE DATA')) {
        this.acc = this.table(m[1]!);
        this.inCopy = true;
      }
    }
    return nl + 1;
  }

  /** Inside a COPY block: one row per line until `\.`. */
  private copyRows(buf: Buffer, i: number): number {
    const n = buf.length;
    const acc = this.acc!;
    if (this.partial) {
      // finish a line begun in an earlier chunk
      const nl = buf.indexOf(0x0a, i);
      const end = nl < 0 ? n : nl;
      if (this.partialLen < 2) {
        if (this.partialLen === 0 && end > i) this.b0 = buf[i]!;
        if (this.partialLen + (end - i) >= 2) this.b1 = buf[i + 1 - this.partialLen]!;
      }
      this.partialLen += end - i;
      this.partial.update(buf.subarray(i, end));
      if (nl < 0) return n;
      const h = this.partial;
      this.partial = null;
      if (this.partialLen === 2 && this.b0 === 0x5c && this.b1 === 0x2e) {
        this.inCopy = false;
        this.acc = null;
      } else acc.add(h.digest('binary'));
      return nl + 1;
    }
    for (;;) {
      const nl = buf.indexOf(0x0a, i);
      if (nl < 0) {
        if (i < n) {
          this.partial = createHash('sha256').update(buf.subarray(i, n));
          this.partialLen = n - i;
          this.b0 = buf[i]!;
          this.b1 = n - i >= 2 ? buf[i + 1]! : 0;
        }
        return n;
      }
      if (nl - i === 2 && buf[i] === 0x5c && buf[i + 1] === 0x2e) {
        this.inCopy = false;
        this.acc = null;
        return nl + 1;
      }
      acc.add(sha256(buf.subarray(i, nl)));
      i = nl + 1;
    }
  }
}

/** A Writable that computes DumpStats from `mariadb-dump … --hex-blob <db>` output streamed through it. */
export function createMysqlDumpStats(): DumpStatsSink {
  return new MysqlDumpStats();
}

/** A Writable that computes DumpStats from `pg_dump` plain-text (COPY format) output streamed through it. */
export function createPgDumpStats(): DumpStatsSink {
  return new PgDumpStats();
}
