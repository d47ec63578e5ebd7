/**
 * Database dumps through `docker exec` in the DB containers (no network access to the databases), streamed
 * into parts. Credentials come from the container's environment and travel in the exec environment.
 *   MariaDB    mariadb-dump --single-transaction --routines --triggers --events --hex-blob per database,
 *              plus the accounts (--system=users); warns about non-InnoDB tables
 *   PostgreSQL pg_dump per database (plain SQL) plus pg_dumpall --globals-only
 *   Redis      SAVE, then the RDB file through the archive API
 * Per-table row counts and checksums are computed from the dump stream itself (src/db/dump-stats.ts), so they
 * describe exactly the snapshot that was dumped.
 *
 * A dump runs in three steps so that `dr backup` can take every database's snapshot while the app writers
 * are quiesced (README, "What dr backup does"): prepareDump() does the logins and checks while everything
 * runs; start() launches the dump commands and resolves `snapshot` as soon as each has its snapshot —
 *   pg_dump        its first byte of output (it reads the catalogs inside its snapshot before writing)
 *   mariadb-dump   with --verbose, the first progress line after "-- Starting transaction..." (stderr is
 *                  unbuffered: START TRANSACTION WITH CONSISTENT SNAPSHOT has returned)
 *   Redis          SAVE and INFO keyspace have returned
 * — while their output waits in bounded buffers (the commands block, holding their snapshots); store() then
 * streams everything into parts once the writers run again.
 */
import { PassThrough, Transform, pipeline, type Readable, type TransformCallback, type Writable } from 'node:stream';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { execStream, checkedStdout, execChecked, execCollect, type ExecStreams } from '../docker/exec.ts';
import { mariadbLogin, mariadbClient, SYSTEM_SCHEMAS } from './mariadb/engine.ts';
import { postgresLogin } from './postgres/engine.ts';
import { redisCli } from './redis/engine.ts';
import { KeyspaceTap } from './redis/rdb.ts';
import type { DbTarget, DatabaseInfo } from './engine.ts';
import { settledAll } from '../core/concurrency.ts';
import { createMysqlDumpStats, createPgDumpStats } from './dump-stats.ts';
import { storePart, EXT, type PartOptions } from '../codec/write.ts';
import type { DatabaseRecord, PartRecord } from '../repo/manifest.ts';
import type { DestSet } from '../storage/destset.ts';
import type { Logger } from '../core/log.ts';
import { DrError, errorMessage } from '../core/errors.ts';

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

async function execPart(job: DumpJob, name: string, ext: string, cmd: string[], env: Record<string, string>, what: string, side?: Writable): Promise<PartRecord> {
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
export function mariadbDumpCmd(user: string, db: string, verbose = false): string[] {
  return ['sh', '-c', 'exec "$(command -v mariadb-dump || command -v mysqldump)" "$@"', 'sh', `-u${user}`, '--single-transaction',
    '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', '--skip-dump-date',
    ...(verbose ? ['--verbose'] : []), '--databases', db];
}
export function pgDumpCmd(user: string, db: string): string[] {
  return ['pg_dump', '-U', user, '--no-password', '-d', db];
}

/** A dump whose logins and checks are done (everything still runs). */
export interface PreparedDump {
  /** launches the dump commands (e.g. while the writers are quiesced) */
  start(): StartedDump;
}
export interface StartedDump {
  /** every database of the container has its snapshot, or its dump is over (then store() reports how); never rejects */
  snapshot: Promise<void>;
  /** streams the started dumps (and the parts that need no snapshot: accounts, globals, the RDB) into parts */
  store(): Promise<DumpResult>;
  /** the backup failed before store(): stops the started commands */
  abandon(): void;
}

/** How a started command shows that its snapshot exists. */
type SnapshotMark = 'first-byte' | 'mariadb-verbose';

interface Launched { snapshot: Promise<void>; streams: Promise<ExecStreams>; abandon(): void }

/**
 * Starts `cmd` and watches for its snapshot. Its stdout is held in a bounded buffer (the command then blocks,
 * its snapshot kept) until the returned streams are read; --verbose progress lines are dropped from stderr.
 */
function launch(job: DumpJob, cmd: string[], env: Record<string, string>, mark: SnapshotMark): Launched {
  let taken!: () => void;
  const snapshot = new Promise<void>((r) => { taken = r; });
  let abandoned = false;
  let held: ExecStreams | undefined;
  const streams = (async () => {
    const s = await execStream(job.target.container, { cmd, env });
    let first = true;
    const stdout = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _e, cb) {
        if (first && mark === 'first-byte') { first = false; taken(); }
        cb(null, chunk);
      },
    });
    let begun = false;
    let rest = '';
    const progress = (line: string): boolean => {
      if (!line.startsWith('-- ')) return false;
      if (begun) taken(); // a step after START TRANSACTION WITH CONSISTENT SNAPSHOT returned
      if (/^-- Starting transaction/.test(line)) begun = true;
      return true;
    };
    const stderr = mark === 'mariadb-verbose'
      ? new Transform({
        highWaterMark: 1 << 20,
        transform(chunk: Buffer, _e, cb: TransformCallback) {
          const lines = (rest + chunk.toString('utf8')).split('\n');
          rest = lines.pop()!;
          const keep = lines.filter((l) => !progress(l));
          cb(null, keep.length ? `${keep.join('\n')}\n` : undefined);
        },
        flush(cb: TransformCallback) { cb(null, rest && !progress(rest) ? rest : undefined); },
      })
      : new PassThrough({ highWaterMark: 1 << 20 });
    for (const t of [stdout, stderr]) t.once('close', taken).once('end', taken);
    s.exitCode.then(() => taken(), () => taken()); // it ended (e.g. failed before its snapshot): store() reports how
    // a consumer that gives up destroys these, which closes the exec (the command gets EPIPE)
    pipeline(s.stdout, stdout, () => taken());
    pipeline(s.stderr, stderr, () => taken());
    held = { stdout, stderr, exitCode: s.exitCode };
    if (abandoned) { stdout.destroy(); stderr.destroy(); }
    return held;
  })();
  streams.catch(() => taken()); // it could not start: store() reports why
  return {
    snapshot, streams,
    abandon: () => { abandoned = true; held?.stdout.destroy(); held?.stderr.destroy(); },
  };
}

async function storeLaunched(job: DumpJob, l: Launched, name: string, ext: string, what: string, side?: Writable): Promise<PartRecord> {
  const source = checkedStdout(await l.streams, job.target.name, what);
  return storePart(job.dests, job.backupId, partKey(job, name, ext), 'dump', `${job.target.name}/${name}`, source, job.opts, side ? { side } : {});
}

async function prepareMariadb(job: DumpJob): Promise<PreparedDump> {
  const t = job.target;
  const login = await mariadbLogin(t);
  const rec = baseRecord(job);
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
  const hasMariadbDump = (await execCollect(t.container, { cmd: ['sh', '-c', 'command -v mariadb-dump'] })).exitCode === 0;
  return {
    start() {
      // every database at once: each one's snapshot is taken now, not after the previous dump
      const dbs = job.info.databases.map((db) => ({ db, l: launch(job, mariadbDumpCmd(login.user, db, true), login.env, 'mariadb-verbose') }));
      return {
        snapshot: Promise.all(dbs.map((d) => d.l.snapshot)).then(() => {}),
        abandon: () => { for (const d of dbs) d.l.abandon(); },
        async store() {
          const parts: PartRecord[] = [];
          const done = await settledAll(dbs.map(async ({ db, l }) => {
            const stats = createMysqlDumpStats();
            const part = await storeLaunched(job, l, db, '.sql', `mariadb-dump of ${db}`, stats);
            return { db, part, tables: stats.result() };
          }));
          for (const d of done) {
            parts.push(d.part);
            rec.databases.push({ name: d.db, part: d.part.key, tables: d.tables });
          }
          // accounts and grants (MariaDB's --system=users); skipped with a warning where the dump tool lacks it
          if (hasMariadbDump) {
            const part = await execPart(job, '_users', '.sql', ['mariadb-dump', `-u${login.user}`, '--system=users', '--skip-dump-date'], login.env, 'mariadb-dump --system=users');
            parts.push(part);
            rec.extraParts.push({ name: 'users', part: part.key });
          } else rec.warnings.push(`${t.name}: mariadb-dump not found: user accounts are not backed up (only the databases)`);
          return { record: rec, parts };
        },
      };
    },
  };
}

async function preparePostgres(job: DumpJob): Promise<PreparedDump> {
  const login = await postgresLogin(job.target);
  const rec = baseRecord(job);
  return {
    start() {
      const dbs = job.info.databases.map((db) => ({ db, l: launch(job, pgDumpCmd(login.user, db), login.env, 'first-byte') }));
      return {
        snapshot: Promise.all(dbs.map((d) => d.l.snapshot)).then(() => {}),
        abandon: () => { for (const d of dbs) d.l.abandon(); },
        async store() {
          const parts: PartRecord[] = [];
          const stored = settledAll(dbs.map(async ({ db, l }) => {
            const stats = createPgDumpStats();
            const part = await storeLaunched(job, l, db, '.sql', `pg_dump of ${db}`, stats);
            return { db, part, tables: stats.result() };
          }));
          stored.catch(() => {}); // awaited below
          // roles and tablespaces: no snapshot of the apps' data
          let globals: PartRecord;
          try {
            globals = await execPart(job, '_globals', '.sql', ['pg_dumpall', '-U', login.user, '--globals-only', '--no-password'], login.env, 'pg_dumpall --globals-only');
          } catch (err) {
            for (const d of dbs) d.l.abandon();
            await Promise.allSettled([stored]);
            throw err;
          }
          parts.push(globals);
          rec.extraParts.push({ name: 'globals', part: globals.key });
          for (const d of await stored) {
            parts.push(d.part);
            rec.databases.push({ name: d.db, part: d.part.key, tables: d.tables });
          }
          return { record: rec, parts };
        },
      };
    },
  };
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

async function prepareRedis(job: DumpJob): Promise<PreparedDump> {
  const t = job.target;
  const rec = baseRecord(job);
  const cfg = async (key: string, dflt: string) => {
    try {
      const out = (await redisCli(t, `CONFIG GET ${key}`, ['CONFIG', 'GET', key])).split('\n').map((l) => l.trim());
      return out[1] || dflt;
    } catch { return dflt; }
  };
  const dir = await cfg('dir', '/data');
  const file = await cfg('dbfilename', 'dump.rdb');
  return {
    start() {
      // the snapshot: SAVE, and the key counts of what it saved
      let savedAt = 0; // the keyspace summary's expiry buckets start here
      const saved = (async () => {
        await redisCli(t, 'SAVE', ['SAVE']);
        savedAt = Date.now();
        const info = await redisCli(t, 'INFO keyspace', ['INFO', 'keyspace']);
        rec.keys = {};
        for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) rec.keys[m[1]!] = Number(m[2]);
      })();
      saved.catch(() => {}); // reported by store()
      return {
        snapshot: saved.then(() => {}, () => {}),
        abandon: () => {},
        async store() {
          await saved;
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
        },
      };
    },
  };
}

/** Logins and checks for `job`'s dump, done while everything runs; start() launches it. */
export async function prepareDump(job: DumpJob): Promise<PreparedDump> {
  switch (job.info.engine) {
    case 'mariadb': return prepareMariadb(job);
    case 'postgres': return preparePostgres(job);
    case 'redis': return prepareRedis(job);
  }
}
