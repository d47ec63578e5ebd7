/**
 * Table statistics of `mariadb-dump --single-transaction --routines --triggers --events --hex-blob <db>`
 * output, as it streams (the checksum algorithm: src/db/table-stats.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { Acc, StatsSink, sha256, HEAD_CAP, type DumpStatsSink } from '../table-stats.ts';

/** A first, cheap look at a line head; widened to HEAD_CAP only when the header is longer. */
const HEAD_PEEK = 512;
const HEAD_WINDOWS = [HEAD_PEEK, HEAD_CAP];

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

/** A Writable that computes DumpStats from `mariadb-dump … --hex-blob <db>` output streamed through it. */
export function createMysqlDumpStats(): DumpStatsSink {
  return new MysqlDumpStats();
}
