/**
 * Table statistics of `pg_dump` plain-text output (COPY format), as it streams (the checksum algorithm:
 * src/db/table-stats.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { Acc, StatsSink, sha256, HEAD_CAP, type DumpStatsSink } from '../table-stats.ts';

const PG_IDENT = String.raw`(?:"(?:[^"]|"")*"|[^\s."(]+)`;
/** `COPY schema.table (cols) FROM stdin;` — the qualified name captured exactly as written. */
const PG_COPY = new RegExp(String.raw`^COPY (${PG_IDENT}(?:\.${PG_IDENT})*)(?: \((?:[^"]|"(?:[^"]|"")*")*\))? FROM stdin;$`);
/** pg_dump's TOC entry header comment: `-- [Data for ]Name: x; Type: TABLE DATA; Schema: s; Owner: o`. */
const PG_TOC = /^-- (?:Data for )?Name: .*; Type: ([^;]*); Schema: /;

/**
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

/** A Writable that computes DumpStats from `pg_dump` plain-text (COPY format) output streamed through it. */
export function createPgDumpStats(): DumpStatsSink {
  return new PgDumpStats();
}
