import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createMysqlDumpStats } from '../../src/db/mariadb/stats.ts';
import { createPgDumpStats } from '../../src/db/postgres/stats.ts';
import { rowChecksum, type DumpStatsSink } from '../../src/db/table-stats.ts';
import type { DumpStats } from '../../src/repo/manifest.ts';

/**
 * Fixture text. String.raw, so backslashes stay exactly as the dump writes them; `´` stands for a
 * backquote (which a template literal cannot hold raw) and `⇥` for a tab.
 */
function sql(strings: TemplateStringsArray, ...values: unknown[]): string {
  return String.raw(strings, ...values).replaceAll('´', '`').replaceAll('⇥', '\t');
}

/** Streams `input` through a new sink in chunks of `size` bytes and returns its result. */
async function statsOf(make: () => DumpStatsSink, input: Buffer | string, size?: number): Promise<DumpStats> {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const step = size ?? Math.max(buf.length, 1);
  async function* chunks() {
    for (let i = 0; i < buf.length; i += step) yield buf.subarray(i, i + step);
  }
  const sink = make();
  await pipeline(chunks(), sink);
  return sink.result();
}

const my = (input: Buffer | string, size?: number) => statsOf(createMysqlDumpStats, input, size);
const pg = (input: Buffer | string, size?: number) => statsOf(createPgDumpStats, input, size);

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

/** `mariadb-dump --single-transaction --routines --triggers --events --hex-blob glpi` (10.11 style). */
const MYSQL_DUMP = sql`/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19-10.11.8-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: glpi
-- ------------------------------------------------------
-- Server version⇥10.11.8-MariaDB-ubu2204

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Table structure for table ´glpi_empty´
--

DROP TABLE IF EXISTS ´glpi_empty´;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE ´glpi_empty´ (
  ´id´ int(10) unsigned NOT NULL AUTO_INCREMENT,
  ´comment´ text DEFAULT NULL COMMENT 'INSERT INTO ´glpi_empty´ VALUES (1,''x'');',
  PRIMARY KEY (´id´)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table ´glpi_empty´
--

LOCK TABLES ´glpi_empty´ WRITE;
/*!40000 ALTER TABLE ´glpi_empty´ DISABLE KEYS */;
/*!40000 ALTER TABLE ´glpi_empty´ ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table ´glpi_logs´
--

DROP TABLE IF EXISTS ´glpi_logs´;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE ´glpi_logs´ (
  ´id´ int(10) unsigned NOT NULL AUTO_INCREMENT,
  ´items_id´ int(10) unsigned NOT NULL DEFAULT 0,
  ´message´ text NOT NULL,
  PRIMARY KEY (´id´)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table ´glpi_logs´
--

LOCK TABLES ´glpi_logs´ WRITE;
/*!40000 ALTER TABLE ´glpi_logs´ DISABLE KEYS */;
INSERT INTO ´glpi_logs´ VALUES (1,1,'ticket (1) created;'),(2,2,'C:\\Temp\\');
/*!40000 ALTER TABLE ´glpi_logs´ ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table ´glpi_tickets´
--

DROP TABLE IF EXISTS ´glpi_tickets´;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE ´glpi_tickets´ (
  ´id´ int(10) unsigned NOT NULL AUTO_INCREMENT,
  ´name´ varchar(255) DEFAULT NULL,
  ´content´ longtext DEFAULT NULL,
  ´attachment´ longblob DEFAULT NULL,
  ´status´ int(11) NOT NULL DEFAULT 1,
  ´date´ timestamp NULL DEFAULT NULL,
  PRIMARY KEY (´id´),
  KEY ´status´ (´status´)
) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table ´glpi_tickets´
--

LOCK TABLES ´glpi_tickets´ WRITE;
/*!40000 ALTER TABLE ´glpi_tickets´ DISABLE KEYS */;
INSERT INTO ´glpi_tickets´ VALUES (1,'Printer broken','It says \'PC LOAD LETTER\'\r\nHelp!',NULL,1,'2024-05-01 10:11:12'),(2,'Принтер не печатает','emoji 😀 and a \\ backslash',0x00FF10,2,'2024-05-02 00:00:00'),(3,'tricky \'),(\' inside','ends with a backslash \\','',5,NULL),(4,'semi;colon (paren) \"dq\" \0 \Z \t tab','a\nb',NULL,2,'2024-05-03 01:02:03');
INSERT INTO ´glpi_tickets´ VALUES (5,'second statement','x',0xDEADBEEF,1,'2024-05-04 00:00:00'),(6,'quote at end \'','),(',NULL,1,NULL);
/*!40000 ALTER TABLE ´glpi_tickets´ ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_unicode_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=´root´@´localhost´*/ /*!50003 TRIGGER ´glpi_tickets_ai´ AFTER INSERT ON ´glpi_tickets´ FOR EACH ROW BEGIN
INSERT INTO ´glpi_logs´ VALUES (NULL, NEW.id, CONCAT('ticket (', NEW.id, ') created;'));
  SET @note = 'it''s done; (really)';
END */;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Temporary table structure for view ´v_open_tickets´
--

DROP TABLE IF EXISTS ´v_open_tickets´;
/*!50001 DROP VIEW IF EXISTS ´v_open_tickets´*/;
SET @saved_cs_client     = @@character_set_client;
SET character_set_client = utf8mb4;
/*!50001 CREATE VIEW ´v_open_tickets´ AS SELECT
 1 AS ´id´,
  1 AS ´name´ */;
SET character_set_client = @saved_cs_client;

--
-- Table structure for table ´we´´ird´
--

DROP TABLE IF EXISTS ´we´´ird´;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE ´we´´ird´ (
  ´id´ int(11) NOT NULL,
  ´v´ varchar(64) DEFAULT NULL,
  PRIMARY KEY (´id´)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table ´we´´ird´
--

LOCK TABLES ´we´´ird´ WRITE;
/*!40000 ALTER TABLE ´we´´ird´ DISABLE KEYS */;
INSERT INTO ´we´´ird´ VALUES (1,'x'),(2,'(nested) \'(quoted)\' ´tick´');
/*!40000 ALTER TABLE ´we´´ird´ ENABLE KEYS */;
UNLOCK TABLES;

--
-- Dumping events for database 'glpi'
--
/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
/*!50106 DROP EVENT IF EXISTS ´purge_logs´ */;
DELIMITER ;;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;;
/*!50003 SET character_set_client  = utf8mb4 */ ;;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES' */ ;;
/*!50003 SET @saved_time_zone      = @@time_zone */ ;;
/*!50003 SET time_zone             = 'SYSTEM' */ ;;
/*!50106 CREATE*/ /*!50117 DEFINER=´root´@´localhost´*/ /*!50106 EVENT ´purge_logs´ ON SCHEDULE EVERY 1 DAY STARTS '2024-01-01 03:00:00' ON COMPLETION NOT PRESERVE ENABLE DO BEGIN
INSERT INTO ´glpi_logs´ VALUES (NULL, 0, 'purge;');
DELETE FROM ´glpi_logs´ WHERE ´message´ = ');';
END */ ;;
/*!50003 SET time_zone             = @saved_time_zone */ ;;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;;
/*!50003 SET character_set_client  = @saved_cs_client */ ;;
DELIMITER ;
/*!50106 SET TIME_ZONE= @save_time_zone */ ;

--
-- Dumping routines for database 'glpi'
--
/*!50003 DROP PROCEDURE IF EXISTS ´log_it´ */;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES' */ ;
DELIMITER ;;
CREATE DEFINER=´root´@´localhost´ PROCEDURE ´log_it´(IN msg TEXT)
BEGIN
INSERT INTO ´glpi_logs´ VALUES (NULL,0,msg),(NULL,0,'));');
INSERT INTO ´glpi_tickets´ VALUES (99,'from a routine','',NULL,1,NULL);
END ;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;

--
-- Final view structure for view ´v_open_tickets´
--

/*!50001 DROP VIEW IF EXISTS ´v_open_tickets´*/;
/*!50001 SET @saved_cs_client          = @@character_set_client */;
/*!50001 SET @saved_cs_results         = @@character_set_results */;
/*!50001 SET @saved_col_connection     = @@collation_connection */;
/*!50001 SET character_set_client      = utf8mb4 */;
/*!50001 SET character_set_results     = utf8mb4 */;
/*!50001 SET collation_connection      = utf8mb4_unicode_ci */;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=´root´@´localhost´ SQL SECURITY DEFINER */
/*!50001 VIEW ´v_open_tickets´ AS select ´t´.´id´ AS ´id´,´t´.´name´ AS ´name´ from ´glpi_tickets´ ´t´ where ´t´.´status´ < 5 */;
/*!50001 SET character_set_client      = @saved_cs_client */;
/*!50001 SET character_set_results     = @saved_cs_results */;
/*!50001 SET collation_connection      = @saved_col_connection */;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2024-05-05 12:00:00
`;

/** The tuple texts of MYSQL_DUMP, written independently of the fixture's INSERT lines. */
const MYSQL_ROWS: Record<string, string[]> = {
  glpi_empty: [],
  glpi_logs: [sql`1,1,'ticket (1) created;'`, sql`2,2,'C:\\Temp\\'`],
  glpi_tickets: [
    sql`1,'Printer broken','It says \'PC LOAD LETTER\'\r\nHelp!',NULL,1,'2024-05-01 10:11:12'`,
    sql`2,'Принтер не печатает','emoji 😀 and a \\ backslash',0x00FF10,2,'2024-05-02 00:00:00'`,
    sql`3,'tricky \'),(\' inside','ends with a backslash \\','',5,NULL`,
    sql`4,'semi;colon (paren) \"dq\" \0 \Z \t tab','a\nb',NULL,2,'2024-05-03 01:02:03'`,
    sql`5,'second statement','x',0xDEADBEEF,1,'2024-05-04 00:00:00'`,
    sql`6,'quote at end \'','),(',NULL,1,NULL`,
  ],
  'we`ird': [sql`1,'x'`, sql`2,'(nested) \'(quoted)\' ´tick´'`],
};

/**
 * Real `pg_dump` 15 output (plain format) of a scratch database: two schemas, a quoted table name, a
 * plpgsql trigger function, a function whose body has a line `COPY public.accounts FROM stdin;`, an empty
 * table, `\N`, escaped tabs/newlines/backslashes, Cyrillic and emoji, a sequence's setval, a large object.
 */
const PG_DUMP = sql`--
-- PostgreSQL database dump
--

\restrict 0sIcyPkdIplk3d1vE3gJltAv7FUbDLw18gDQ72ER0DquVV0vru4myQ2CaRA5REa

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: reporting; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA reporting;


ALTER SCHEMA reporting OWNER TO postgres;

--
-- Name: touch(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.touch() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- COPY public.accounts FROM stdin;
  NEW.note := coalesce(NEW.note, 'it''s; (x)');
  RETURN NEW;
END;
$$;


ALTER FUNCTION public.touch() OWNER TO postgres;

--
-- Name: weird(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.weird() RETURNS text
    LANGUAGE plpgsql
    AS $$
BEGIN
RETURN '
COPY public.accounts FROM stdin;
';
END;
$$;


ALTER FUNCTION public.weird() OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: Weird Name; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public."Weird Name" (
    id integer,
    "Col (x)" text
);


ALTER TABLE public."Weird Name" OWNER TO postgres;

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.accounts (
    id integer NOT NULL,
    name text NOT NULL,
    note text,
    created_at timestamp with time zone DEFAULT '2024-01-01 00:00:00+00'::timestamp with time zone
);


ALTER TABLE public.accounts OWNER TO postgres;

--
-- Name: accounts_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.accounts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.accounts_id_seq OWNER TO postgres;

--
-- Name: accounts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id;


--
-- Name: empty_one; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.empty_one (
    id integer
);


ALTER TABLE public.empty_one OWNER TO postgres;

--
-- Name: one_col; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.one_col (
    v text
);


ALTER TABLE public.one_col OWNER TO postgres;

--
-- Name: big; Type: TABLE; Schema: reporting; Owner: postgres
--

CREATE TABLE reporting.big (
    id bigint,
    "Größe" text
);


ALTER TABLE reporting.big OWNER TO postgres;

--
-- Name: daily_stats; Type: TABLE; Schema: reporting; Owner: postgres
--

CREATE TABLE reporting.daily_stats (
    day date,
    n integer,
    payload bytea
);


ALTER TABLE reporting.daily_stats OWNER TO postgres;

--
-- Name: accounts id; Type: DEFAULT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass);


--
-- Name: 16449; Type: BLOB; Schema: -; Owner: postgres
--

SELECT pg_catalog.lo_create('16449');


ALTER LARGE OBJECT 16449 OWNER TO postgres;

--
-- Data for Name: Weird Name; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public."Weird Name" (id, "Col (x)") FROM stdin;
1⇥a
2⇥\N
\.


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.accounts (id, name, note, created_at) FROM stdin;
1⇥Алиса⇥tab\there⇥2024-01-01 00:00:00+00
2⇥Bob 🚀⇥it's; (x)⇥2024-01-01 00:00:00+00
3⇥back\\slash⇥line1\nline2⇥2024-01-01 00:00:00+00
4⇥x⇥\\.⇥2024-01-01 00:00:00+00
\.


--
-- Data for Name: empty_one; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.empty_one (id) FROM stdin;
\.


--
-- Data for Name: one_col; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.one_col (v) FROM stdin;

\N
\\.
\.


--
-- Data for Name: big; Type: TABLE DATA; Schema: reporting; Owner: postgres
--

COPY reporting.big (id, "Größe") FROM stdin;
1⇥ü
2⇥a\\b
\.


--
-- Data for Name: daily_stats; Type: TABLE DATA; Schema: reporting; Owner: postgres
--

COPY reporting.daily_stats (day, n, payload) FROM stdin;
2024-01-01⇥3⇥\\x00ff
\.


--
-- Name: accounts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.accounts_id_seq', 4, true);


--
-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
--

BEGIN;

SELECT pg_catalog.lo_open('16449', 131072);
SELECT pg_catalog.lowrite(0, '\x68656c6c6f');
SELECT pg_catalog.lo_close(0);

COMMIT;

--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: accounts accounts_touch; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER accounts_touch BEFORE INSERT ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.touch();


--
-- PostgreSQL database dump complete
--

\unrestrict 0sIcyPkdIplk3d1vE3gJltAv7FUbDLw18gDQ72ER0DquVV0vru4myQ2CaRA5REa

`;

const PG_ROWS: Record<string, string[]> = {
  'public."Weird Name"': [sql`1⇥a`, sql`2⇥\N`],
  'public.accounts': [
    sql`1⇥Алиса⇥tab\there⇥2024-01-01 00:00:00+00`,
    sql`2⇥Bob 🚀⇥it's; (x)⇥2024-01-01 00:00:00+00`,
    sql`3⇥back\\slash⇥line1\nline2⇥2024-01-01 00:00:00+00`,
    sql`4⇥x⇥\\.⇥2024-01-01 00:00:00+00`,
  ],
  'public.empty_one': [],
  'public.one_col': ['', sql`\N`, sql`\\.`],
  'reporting.big': [sql`1⇥ü`, sql`2⇥a\\b`],
  'reporting.daily_stats': [sql`2024-01-01⇥3⇥\\x00ff`],
};

function expected(rows: Record<string, string[]>): DumpStats {
  const out: DumpStats = {};
  for (const [t, r] of Object.entries(rows)) out[t] = { rows: r.length, checksum: rowChecksum(r) };
  return out;
}

/** Reference implementation of the checksum with BigInt, straight from the documented algorithm. */
function referenceChecksum(rows: Iterable<string | Buffer>): string {
  let sum = 0n;
  for (const r of rows) sum += createHash('sha256').update(r).digest().readBigUInt64BE(0);
  return BigInt.asUintN(64, sum).toString(16).padStart(16, '0');
}

// ---------------------------------------------------------------------------------------------------------
// The checksum itself
// ---------------------------------------------------------------------------------------------------------

test('rowChecksum follows the documented algorithm (pins the on-disk format)', () => {
  assert.equal(rowChecksum([]), '0000000000000000');
  // SHA-256("a") = ca978112ca1bbdca fac231b3…
  assert.equal(rowChecksum(['a']), 'ca978112ca1bbdca');
  assert.equal(rowChecksum([Buffer.from('a')]), 'ca978112ca1bbdca');
  // 2 × 0xca978112ca1bbdca overflows both the low half and 2^64
  assert.equal(rowChecksum(['a', 'a']), '952f022594377b94');
  const many = Array.from({ length: 5000 }, (_, i) => `${i},'row ${i} – строка ${'😀'.repeat(i % 5)}'`);
  assert.equal(rowChecksum(many), referenceChecksum(many));
  assert.match(rowChecksum(many), /^[0-9a-f]{16}$/);
});

test('rowChecksum is order independent and sensitive to any change, drop or duplicate', () => {
  const rows = Array.from({ length: 200 }, (_, i) => `${i},'value ${i}',NULL`);
  const base = rowChecksum(rows);
  assert.equal(rowChecksum([...rows].reverse()), base);
  assert.equal(rowChecksum([...rows.slice(100), ...rows.slice(0, 100)]), base);
  const changed = [...rows];
  changed[57] = changed[57]!.replace('value 57', 'value 58');
  assert.notEqual(rowChecksum(changed), base);
  assert.notEqual(rowChecksum(rows.slice(1)), base);
  assert.notEqual(rowChecksum([...rows, rows[3]!]), base);
  // swapping content between two rows is a different multiset
  const swapped = [...rows];
  swapped[1] = `1,'value 2',NULL`;
  swapped[2] = `2,'value 1',NULL`;
  assert.notEqual(rowChecksum(swapped), base);
});

// ---------------------------------------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------------------------------------

test('mariadb-dump: exact row counts and checksums; views, triggers, routines, events give no rows', async () => {
  const got = await my(MYSQL_DUMP);
  assert.deepEqual(got, expected(MYSQL_ROWS));
  assert.deepEqual(Object.keys(got), ['glpi_empty', 'glpi_logs', 'glpi_tickets', 'we`ird']);
  assert.deepEqual(got.glpi_empty, { rows: 0, checksum: '0000000000000000' });
  assert.equal(got.glpi_tickets?.rows, 6);
  assert.equal(got.glpi_logs?.rows, 2);
  assert.equal(got.v_open_tickets, undefined);
});

test('mariadb-dump: identical results whatever the chunk boundaries (also inside UTF-8 characters)', async () => {
  const whole = await my(MYSQL_DUMP);
  for (const size of [1, 2, 3, 7, 64, 4096]) {
    assert.deepEqual(await my(MYSQL_DUMP, size), whole, `chunk size ${size}`);
  }
  // every single split point, two chunks
  const buf = Buffer.from(MYSQL_DUMP);
  for (let cut = 1; cut < buf.length; cut++) {
    const sink = createMysqlDumpStats();
    sink.write(buf.subarray(0, cut));
    sink.end(buf.subarray(cut));
    await once(sink, 'finish');
    assert.deepEqual(sink.result(), whole, `split at byte ${cut}`);
  }
});

test('mariadb-dump: rows of several MB spanning many chunks', async () => {
  const blob = '0x' + Buffer.alloc(3_000_000, 0xab).toString('hex');
  const text = `'${"it\\'s (a), long; text \\\\ ".repeat(100_000)}'`;
  const rows = [`1,${blob},${text}`, `2,NULL,'short'`, `3,${blob},NULL`];
  const dump = `-- Dumping data for table \`attachments\`\nINSERT INTO \`attachments\` VALUES (${rows.join('),(')});\n`;
  const want = { attachments: { rows: 3, checksum: rowChecksum(rows) } };
  assert.deepEqual(await my(dump), want);
  assert.deepEqual(await my(dump, 65536), want);
  assert.deepEqual(await my(dump, 4093), want);
});

test('mariadb-dump: order of rows and statements does not matter; a changed, dropped or duplicated row does', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i},'name ${i} \\'q\\'',0x${i.toString(16).padStart(2, '0')},NULL`);
  const dump = (...stmts: string[][]) =>
    `--\n-- Dumping data for table \`t\`\n--\n\n` + stmts.map((s) => `INSERT INTO \`t\` VALUES (${s.join('),(')});\n`).join('');
  const base = (await my(dump(rows))).t!;
  assert.deepEqual(base, { rows: 50, checksum: rowChecksum(rows) });
  const reversed = [...rows].reverse();
  assert.deepEqual((await my(dump(reversed.slice(0, 20), reversed.slice(20)))).t, base);
  const changed = [...rows];
  changed[10] = changed[10]!.replace("'name 10", "'name 1O");
  assert.notEqual((await my(dump(changed))).t!.checksum, base.checksum);
  const dropped = await my(dump(rows.slice(1)));
  assert.equal(dropped.t!.rows, 49);
  assert.notEqual(dropped.t!.checksum, base.checksum);
  const duplicated = await my(dump(rows, [rows[7]!]));
  assert.equal(duplicated.t!.rows, 51);
  assert.notEqual(duplicated.t!.checksum, base.checksum);
});

test('mariadb-dump: tolerated variants (doubled quotes, "…" strings, column list, line breaks, INSERT IGNORE)', async () => {
  const dump = [
    "-- Dumping data for table `a`",
    "INSERT INTO `a` (`id`, `we``ird (col)`) VALUES (1,'it''s'),(2,\"dq \\\" ) '\")  ,\n  (3,(4)),(5,'');",
    'INSERT IGNORE INTO `a` VALUES (6,NULL);',
    'REPLACE INTO `a` VALUES',
    '(7,0x41);',
    '',
  ].join('\n');
  const rows = [`1,'it''s'`, `2,"dq \\" ) '"`, '3,(4)', `5,''`, '6,NULL', '7,0x41'];
  assert.deepEqual(await my(dump), { a: { rows: 6, checksum: rowChecksum(rows) } });
  assert.deepEqual(await my(dump, 1), { a: { rows: 6, checksum: rowChecksum(rows) } });
});

test('mariadb-dump: a truncated or malformed dump fails the stream instead of giving wrong stats', async () => {
  const cut = MYSQL_DUMP.indexOf("'),(\\' inside");
  await assert.rejects(my(MYSQL_DUMP.slice(0, cut)), /ended inside an INSERT/);
  await assert.rejects(my('INSERT INTO `t` VALUES (1,2) (3,4);\n'), /unexpected byte/);
  const sink = createMysqlDumpStats();
  sink.write('-- Dumping data for table `t`\n');
  assert.throws(() => sink.result(), /finished/);
  sink.end();
  await once(sink, 'finish');
  assert.deepEqual(sink.result(), { t: { rows: 0, checksum: '0000000000000000' } });
  assert.deepEqual(await my(''), {});
});

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------------------

test('pg_dump: exact row counts and checksums; functions, setval and large objects give no rows', async () => {
  const got = await pg(PG_DUMP);
  assert.deepEqual(got, expected(PG_ROWS));
  assert.deepEqual(got['public.empty_one'], { rows: 0, checksum: '0000000000000000' });
  assert.equal(got['public.accounts']?.rows, 4);
  assert.equal(got['public.one_col']?.rows, 3); // an empty line is a row ('' in a one-column table)
});

test('pg_dump: identical results whatever the chunk boundaries (also inside UTF-8 characters)', async () => {
  const whole = await pg(PG_DUMP);
  for (const size of [1, 2, 3, 7, 64, 4096]) {
    assert.deepEqual(await pg(PG_DUMP, size), whole, `chunk size ${size}`);
  }
  const buf = Buffer.from(PG_DUMP);
  for (let cut = 1; cut < buf.length; cut++) {
    const sink = createPgDumpStats();
    sink.write(buf.subarray(0, cut));
    sink.end(buf.subarray(cut));
    await once(sink, 'finish');
    assert.deepEqual(sink.result(), whole, `split at byte ${cut}`);
  }
});

test('pg_dump: COPY lines of several MB, names with quotes and no column list', async () => {
  const long = `1\t\\\\x${'ab'.repeat(2_500_000)}\t${'строка\\t'.repeat(200_000)}`;
  const rows = [long, '2\t\\N\tshort'];
  const dump = `COPY public."we ""ird"" (x)" FROM stdin;\n${rows.join('\n')}\n\\.\n\nCOPY s.t FROM stdin;\n\\.\n`;
  const want = { 'public."we ""ird"" (x)"': { rows: 2, checksum: rowChecksum(rows) }, 's.t': { rows: 0, checksum: '0000000000000000' } };
  assert.deepEqual(await pg(dump), want);
  assert.deepEqual(await pg(dump, 65536), want);
  assert.deepEqual(await pg(dump, 4093), want);
});

test('pg_dump: order of rows does not matter; a changed, dropped or duplicated row does', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i}\tname ${i}\t\\N\tзначение ${i}`);
  const dump = (r: string[]) =>
    `--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: app\n--\n\nCOPY public.t (id, a, b, c) FROM stdin;\n${r.map((l) => l + '\n').join('')}\\.\n\n`;
  const base = (await pg(dump(rows)))['public.t']!;
  assert.deepEqual(base, { rows: 50, checksum: rowChecksum(rows) });
  assert.deepEqual((await pg(dump([...rows].reverse())))['public.t'], base);
  const changed = [...rows];
  changed[49] = changed[49]!.replace('значение', 'значениe'); // Cyrillic е → Latin e
  assert.notEqual((await pg(dump(changed)))['public.t']!.checksum, base.checksum);
  const dropped = (await pg(dump(rows.slice(0, -1))))['public.t']!;
  assert.equal(dropped.rows, 49);
  assert.notEqual(dropped.checksum, base.checksum);
  const duplicated = (await pg(dump([...rows, rows[0]!])))['public.t']!;
  assert.equal(duplicated.rows, 51);
  assert.notEqual(duplicated.checksum, base.checksum);
});

test('pg_dump: a dump that ends inside a COPY block fails the stream', async () => {
  const cut = PG_DUMP.indexOf('3⇥back'.replace('⇥', '\t'));
  await assert.rejects(pg(PG_DUMP.slice(0, cut)), /ended inside a COPY block/);
  assert.deepEqual(await pg(''), {});
});

// ---------------------------------------------------------------------------------------------------------
// Throughput (printed, not asserted)
// ---------------------------------------------------------------------------------------------------------

/** Streams `block` `times` times (between head and tail) in 64 KiB chunks, like a pipe would deliver it. */
async function throughput(label: string, sink: DumpStatsSink, head: string, block: Buffer, tail: string, times: number) {
  let total = 0;
  const feed = async (b: Buffer) => {
    for (let i = 0; i < b.length; i += 65536) {
      const c = b.subarray(i, i + 65536);
      total += c.length;
      if (!sink.write(c)) await once(sink, 'drain');
    }
  };
  const t0 = performance.now();
  await feed(Buffer.from(head));
  for (let k = 0; k < times; k++) await feed(block);
  await feed(Buffer.from(tail));
  sink.end();
  await once(sink, 'finish');
  const s = (performance.now() - t0) / 1000;
  console.log(`${label}: ${(total / 1e6).toFixed(1)} MB in ${s.toFixed(2)} s = ${(total / 1e6 / s).toFixed(0)} MB/s`);
  return sink.result();
}

/** The checksum of `times` copies of a multiset with checksum `c`. */
function times(c: string, n: number): string {
  return BigInt.asUintN(64, BigInt('0x' + c) * BigInt(n)).toString(16).padStart(16, '0');
}

test('throughput on ~100 MB of generated dump text', async () => {
  const reps = 100;
  // mariadb-dump: ~1 MB INSERT statements of typical helpdesk rows
  const myRows: string[] = [];
  const stmts: string[] = [];
  let size = 0;
  for (let id = 0; size < 1_000_000; id++) {
    myRows.push(`${id},'Ticket ${id} – принтер не печатает 😀','It says \\'PC LOAD LETTER\\'\\r\\nHelp (urgent); thanks',0x${'0a1b2c3d'.repeat(id % 8)},NULL,'2024-05-0${(id % 9) + 1} 10:11:12',${(id * 7) % 1000}`);
    if (myRows.length % 400 === 0) {
      const s = `INSERT INTO \`glpi_tickets\` VALUES (${myRows.slice(-400).join('),(')});\n`;
      stmts.push(s);
      size += Buffer.byteLength(s);
    }
  }
  myRows.length = stmts.length * 400;
  const myStats = await throughput('mariadb-dump parser', createMysqlDumpStats(), '--\n-- Dumping data for table `glpi_tickets`\n--\n\n', Buffer.from(stmts.join('')), 'UNLOCK TABLES;\n', reps);
  assert.deepEqual(myStats, { glpi_tickets: { rows: myRows.length * reps, checksum: times(rowChecksum(myRows), reps) } });

  // pg_dump: one long COPY block of similar rows
  const pgRows: string[] = [];
  size = 0;
  for (let id = 0; size < 1_000_000; id++) {
    const l = `${id}\tTicket ${id} – принтер не печатает 😀\tIt says 'PC LOAD LETTER'\\r\\nHelp (urgent); thanks\t\\\\x${'0a1b2c3d'.repeat(id % 8)}\t\\N\t2024-05-0${(id % 9) + 1} 10:11:12+00\t${(id * 7) % 1000}`;
    pgRows.push(l);
    size += Buffer.byteLength(l) + 1;
  }
  const pgStats = await throughput('pg_dump parser', createPgDumpStats(), 'COPY public.conversations (id, a, b, c, d, e, f) FROM stdin;\n', Buffer.from(pgRows.map((l) => l + '\n').join('')), '\\.\n', reps);
  assert.deepEqual(pgStats, { 'public.conversations': { rows: pgRows.length * reps, checksum: times(rowChecksum(pgRows), reps) } });
});
