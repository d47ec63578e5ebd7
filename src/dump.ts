/**
 * Database dumps through `docker exec` in the DB containers (no network access to the databases), streamed
 * into parts. Credentials come from the container's environment and travel in the exec environment.
 *   MariaDB    mariadb-dump --single-transaction --routines --triggers --events --hex-blob per database,
 *              plus the accounts (--system=users); warns about non-InnoDB tables
 *   PostgreSQL pg_dump per database (plain SQL) plus pg_dumpall --globals-only
 *   Redis      SAVE, then the RDB file through the archive API
 * Per-table row counts and checksums are computed from the dump stream itself (src/dumpstats.ts), so they
 * describe exactly the snapshot that was dumped.
 */
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { execStream, checkedStdout, execChecked, execCollect } from './exec.ts';
import { mariadbLogin, mariadbClient, SYSTEM_SCHEMAS } from './engines/mariadb.ts';
import { postgresLogin } from './engines/postgres.ts';
import { redisCli } from './engines/redis.ts';
import { KeyspaceTap } from './engines/rdb.ts';
import type { DbTarget } from './engines/types.ts';
import { createMysqlDumpStats, createPgDumpStats } from './dumpstats.ts';
import { storePart, EXT, type PartOptions } from './pipeline.ts';
import type { DatabaseRecord, PartRecord } from './manifest.ts';
import type { DatabaseInfo } from './discover.ts';
import type { DestSet } from './storage/destset.ts';
import type { Logger } from './log.ts';
import { DrError, errorMessage } from './errors.ts';

export interface DumpJob {
  target: DbTarget;
  info: DatabaseInfo;
  imageId: string;
  dests: DestSet;
  backupId: string;
  opts: PartOptions;
  log: Logger;
}

export interface DumpResult { record: DatabaseRecord; parts: PartRecord[] }

/** Keeps names usable as one path segment (database names may contain almost anything). */
export function safeSegment(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.codePointAt(0)!.toString(16).padStart(2, '0')}`).replace(/^\./, '%2e');
}

function partKey(job: DumpJob, name: string, ext: string): string {
  return `dumps/${safeSegment(job.target.name)}/${safeSegment(name)}${ext}${EXT[job.opts.compression]}.age`;
}

async function execPart(job: DumpJob, name: string, ext: string, cmd: string[], env: Record<string, string>, what: string, side?: import('node:stream').Writable): Promise<PartRecord> {
  const s = await execStream(job.target.container, { cmd, env });
  const source = checkedStdout(s, job.target.name, what);
  return storePart(job.dests, job.backupId, partKey(job, name, ext), 'dump', `${job.target.name}/${name}`, source, job.opts, side ? { side } : {});
}

function baseRecord(job: DumpJob): DatabaseRecord {
  return {
    container: job.target.name, engine: job.info.engine, image: job.info.image, imageId: job.imageId,
    version: job.info.version ?? '', serverVersion: job.info.serverVersion ?? '', dataVolumes: job.info.dataVolumes,
    extraParts: [], databases: [], warnings: [],
  };
}

/** The dump commands: the same at backup and when a restore re-dumps to compare table statistics. */
export function mariadbDumpCmd(user: string, db: string): string[] {
  return ['sh', '-c', 'exec "$(command -v mariadb-dump || command -v mysqldump)" "$@"', 'sh', `-u${user}`, '--single-transaction',
    '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', '--skip-dump-date', '--databases', db];
}
export function pgDumpCmd(user: string, db: string): string[] {
  return ['pg_dump', '-U', user, '--no-password', '-d', db];
}

async function dumpMariadb(job: DumpJob): Promise<DumpResult> {
  const t = job.target;
  const login = await mariadbLogin(t);
  const rec = baseRecord(job);
  const parts: PartRecord[] = [];
  const nonInnodb = await execChecked(t.container, t.name, 'listing table engines', {
    cmd: mariadbClient([`-u${login.user}`, '-N', '-B', '-e',
      `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, ' (', IFNULL(ENGINE, '?'), ')') FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ENGINE <> 'InnoDB' AND TABLE_SCHEMA NOT IN (${[...SYSTEM_SCHEMAS].map((s) => `'${s}'`).join(',')})`]),
    env: login.env,
  });
  for (const table of nonInnodb.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const w = `${t.name}: table ${table} is not InnoDB: --single-transaction cannot make its dump consistent`;
    job.log.warn(w);
    rec.warnings.push(w);
  }
  for (const db of job.info.databases) {
    const stats = createMysqlDumpStats();
    const part = await execPart(job, db, '.sql', mariadbDumpCmd(login.user, db), login.env, `mariadb-dump of ${db}`, stats);
    parts.push(part);
    rec.databases.push({ name: db, part: part.key, tables: stats.result() });
  }
  // accounts and grants (MariaDB's --system=users); skipped with a warning where the dump tool lacks it
  const has = await execCollect(t.container, { cmd: ['sh', '-c', 'command -v mariadb-dump'] });
  if (has.exitCode === 0) {
    const part = await execPart(job, '_users', '.sql', ['mariadb-dump', `-u${login.user}`, '--system=users', '--skip-dump-date'], login.env, 'mariadb-dump --system=users');
    parts.push(part);
    rec.extraParts.push({ name: 'users', part: part.key });
  } else rec.warnings.push(`${t.name}: mariadb-dump not found: user accounts are not backed up (only the databases)`);
  return { record: rec, parts };
}

async function dumpPostgres(job: DumpJob): Promise<DumpResult> {
  const login = await postgresLogin(job.target);
  const rec = baseRecord(job);
  const parts: PartRecord[] = [];
  const globals = await execPart(job, '_globals', '.sql', ['pg_dumpall', '-U', login.user, '--globals-only', '--no-password'], login.env, 'pg_dumpall --globals-only');
  parts.push(globals);
  rec.extraParts.push({ name: 'globals', part: globals.key });
  for (const db of job.info.databases) {
    const stats = createPgDumpStats();
    const part = await execPart(job, db, '.sql', pgDumpCmd(login.user, db), login.env, `pg_dump of ${db}`, stats);
    parts.push(part);
    rec.databases.push({ name: db, part: part.key, tables: stats.result() });
  }
  return { record: rec, parts };
}

/** The single file at `path` inside a container, as a stream (archive API + tar). */
export async function containerFile(container: Docker.Container, path: string, what: string): Promise<Readable> {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path })) as unknown as Readable;
  } catch (err) {
    throw new DrError(`${what}: cannot read ${path}: ${errorMessage(err)}`);
  }
  const ex = tar.extract();
  archive.on('error', (e) => ex.destroy(e));
  archive.pipe(ex as unknown as import('node:stream').Writable);
  return new Promise((resolve, reject) => {
    let first = true;
    ex.on('entry', (h, stream, next) => {
      stream.on('end', () => next()); // keep reading to the end of the archive, so its connection is released
      if (!first) { stream.resume(); return; }
      first = false;
      if (h.type !== 'file') { stream.resume(); reject(new DrError(`${what}: ${path} is not a regular file`)); return; }
      resolve(stream as unknown as Readable);
    });
    ex.once('error', reject);
    ex.once('finish', () => { if (first) reject(new DrError(`${what}: ${path} is empty or missing`)); });
  });
}

async function dumpRedis(job: DumpJob): Promise<DumpResult> {
  const t = job.target;
  const rec = baseRecord(job);
  await redisCli(t, 'SAVE', ['SAVE']);
  const savedAt = Date.now(); // the keyspace summary's expiry buckets start here
  const cfg = async (key: string, dflt: string) => {
    try {
      const out = (await redisCli(t, `CONFIG GET ${key}`, ['CONFIG', 'GET', key])).split('\n').map((l) => l.trim());
      return out[1] || dflt;
    } catch { return dflt; }
  };
  const dir = await cfg('dir', '/data');
  const file = await cfg('dbfilename', 'dump.rdb');
  const info = await redisCli(t, 'INFO keyspace', ['INFO', 'keyspace']);
  rec.keys = {};
  for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) rec.keys[m[1]!] = Number(m[2]);
  const source = await containerFile(t.container, `${dir.replace(/\/$/, '')}/${file}`, t.name);
  // the keyspace summary is read from the same bytes as they stream into the part (a side copy, no second read)
  const keyspace = new KeyspaceTap(savedAt);
  const part = await storePart(job.dests, job.backupId, partKey(job, 'dump', '.rdb'), 'dump', `${t.name}/dump.rdb`, source, job.opts, { side: keyspace });
  rec.extraParts.push({ name: 'rdb', part: part.key });
  const summary = keyspace.result();
  if (summary) rec.keyspace = summary;
  else {
    const w = `${t.name}: the RDB's keyspace could not be summarised (${keyspace.error?.message}): a restore of this backup compares key counts only`;
    job.log.warn(w);
    rec.warnings.push(w);
  }
  return { record: rec, parts: [part] };
}

export async function dumpDatabase(job: DumpJob): Promise<DumpResult> {
  switch (job.info.engine) {
    case 'mariadb': return dumpMariadb(job);
    case 'postgres': return dumpPostgres(job);
    case 'redis': return dumpRedis(job);
  }
}
