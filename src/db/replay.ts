/**
 * Databases come back by replay, not by copying files: a throwaway container from the image recorded in the
 * manifest, with the stack container's own environment and command (so it initialises exactly as the stack
 * does), on the fresh data volume; the dump replayed with stop-on-error; the database dumped again and its
 * per-table row counts and checksums compared with the manifest. Then the container is stopped cleanly and
 * removed, and the stack's own DB container runs on the restored volume.
 * Redis: the RDB file is written into the fresh volume (Redis loads it at start).
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { envMap } from '../docker/client.ts';
import { execCollect, execStream, checkedStdout, execWithInput } from '../docker/exec.ts';
import { mariadbLogin, mariadbClient } from './mariadb/engine.ts';
import { postgresLogin } from './postgres/engine.ts';
import { ENGINES } from './engines.ts';
import { KEYSPACE_LUA, keyspaceArgs, parseKeyspaceReply, compareKeyspace, infoKeyspaceDbs } from './redis/engine.ts';
import type { DbTarget } from './engine.ts';
import { mariadbDumpCmd, pgDumpCmd } from './dump.ts';
import { createMysqlDumpStats, createPgDumpStats, type DumpStatsSink } from './dump-stats.ts';
import { openPart } from '../codec/read.ts';
import { createHelper, HELPER_LABEL } from '../docker/volumes.ts';
import type { DatabaseRecord, Manifest, PartRecord, DumpStats } from '../repo/manifest.ts';
import type { Storage } from '../storage/types.ts';
import type { Logger } from '../core/log.ts';
import { DrError, errorMessage, CheckError } from '../core/errors.ts';
import { scrub } from '../core/redact.ts';
import { stage } from '../core/hooks.ts';

export interface DbRestoreJob {
  docker: Docker;
  manifest: Manifest;
  db: DatabaseRecord;
  storage: Storage;
  identities: string[];
  /** the data volume to restore into (possibly with a suffix) */
  volume: string;
  /** environment, command and entrypoint of the stack's container (how the stack initialises it) */
  template: { env: string[]; cmd: string[]; entrypoint: string[] | null };
  log: Logger;
  signal?: AbortSignal;
}

export interface DbRestoreResult {
  container: string; engine: string; databases: { name: string; tables: number; rows: number }[]; warnings: string[];
  /** Redis: keys with a TTL in the backup that ran out since (expected, not a difference) */
  expired?: number;
  /** what the verification found that is not a difference, e.g. "3 volatile keys expired since the backup" */
  notes?: string[];
}

function partOf(m: Manifest, key: string): PartRecord {
  const p = m.parts.find((x) => x.key === key);
  if (!p) throw new CheckError(`the manifest names part ${key} but does not describe it`);
  return p;
}

export async function resolveImage(docker: Docker, db: { image: string; imageId: string; container: string }): Promise<string> {
  for (const ref of [db.imageId, db.image]) {
    if (ref && await docker.getImage(ref).inspect().then(() => true, () => false)) return ref;
  }
  throw new DrError(`${db.container}: its image ${db.image} (${db.imageId.slice(0, 19)}) is not on this host`, undefined, `pull it first: docker pull ${db.image}`);
}

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

async function waitReady(c: Docker.Container, name: string, probe: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const st = await c.inspect();
    if (!st.State.Running) {
      const logs = (await c.logs({ stdout: true, stderr: true, tail: 15 })).toString('utf8').replace(/[\x00-\x08]/g, '');
      throw new DrError(`${name}: the temporary database container stopped during initialisation (exit ${st.State.ExitCode}): ${scrub(logs.trim().split('\n').slice(-5).join(' | '))}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new DrError(`${name}: the temporary database container did not become ready in ${timeoutMs / 1000}s`);
}

async function statsOf(t: DbTarget, cmd: string[], env: Record<string, string>, sink: DumpStatsSink, what: string): Promise<DumpStats> {
  const s = await execStream(t.container, { cmd, env });
  await pipeline(checkedStdout(s, t.name, what), sink);
  return sink.result();
}

/** Replays one database's dump (stop-on-error), dumps it again and compares the table statistics. */
async function replayAndCompare(job: DbRestoreJob, t: DbTarget, d: DatabaseRecord['databases'][number], replay: string[], dump: string[],
  env: Record<string, string>, sink: DumpStatsSink): Promise<{ name: string; tables: number; rows: number }> {
  const m = job.manifest;
  const plain = await openPart(job.storage, m, partOf(m, d.part), job.identities);
  const r = await execWithInput(t.container, { cmd: replay, env }, plain.stream);
  await plain.done;
  if (r.exitCode !== 0) throw new CheckError(`${job.db.container}: replaying ${d.part} failed (exit ${r.exitCode}): ${scrub(r.stderr.trim().split('\n').slice(-3).join(' | '))}`);
  const got = await statsOf(t, dump, env, sink, `re-dump of ${d.name}`);
  const diffs = compareStats(job.db.container, d.name, d.tables, got);
  if (diffs.length) throw new CheckError(`database ${job.db.container}/${d.name} differs from the backup after replay: ${diffs.slice(0, 10).join('; ')}`);
  return { name: d.name, tables: Object.keys(got).length, rows: Object.values(got).reduce((n, x) => n + x.rows, 0) };
}

export async function restoreDatabase(job: DbRestoreJob): Promise<DbRestoreResult> {
  const { docker, db, manifest: m } = job;
  const result: DbRestoreResult = { container: db.container, engine: db.engine, databases: [], warnings: [] };
  if (db.engine === 'redis') {
    const r = await restoreRedis(job);
    result.databases.push({ name: 'keyspace', tables: Object.keys(r.keys).length, rows: Object.values(r.keys).reduce((a, b) => a + b, 0) });
    result.warnings.push(...r.warnings);
    result.expired = r.expired;
    result.notes = r.notes;
    return result;
  }
  const image = await resolveImage(docker, db);
  const env = envMap(job.template.env);
  const dataPath = ENGINES[db.engine].dataPath(env);
  const name = `dr-restore-${m.id.toLowerCase()}-${db.container}`;
  job.signal?.throwIfAborted(); // an interrupted restore creates nothing more (its clean-up may be running)
  const c = await docker.createContainer({
    name, Image: image, Env: job.template.env, Cmd: job.template.cmd,
    ...(job.template.entrypoint ? { Entrypoint: job.template.entrypoint } : {}),
    Labels: { [HELPER_LABEL]: 'restore', 'dr.exclude': 'true' },
    HostConfig: { Binds: [`${job.volume}:${dataPath}`], NetworkMode: 'none' },
  });
  const t: DbTarget = { name: `${db.container} (temporary ${name})`, container: c, env, cmd: job.template.cmd };
  try {
    job.signal?.throwIfAborted();
    await c.start();
    await stage(`restore:replay:${db.container}`, job.signal);
    if (db.engine === 'mariadb') {
      const login = await mariadbLogin(t);
      await waitReady(c, t.name, async () => (await execCollect(c, { cmd: mariadbClient([`-u${login.user}`, '--protocol=tcp', '-h', '127.0.0.1', '-e', 'SELECT 1']), env: login.env })).exitCode === 0);
      for (const d of db.databases) {
        result.databases.push(await replayAndCompare(job, t, d, mariadbClient([`-u${login.user}`, '--default-character-set=utf8mb4']),
          mariadbDumpCmd(login.user, d.name), login.env, createMysqlDumpStats()));
      }
    } else {
      const login = await postgresLogin(t);
      await waitReady(c, t.name, async () => (await execCollect(c, { cmd: ['pg_isready', '-h', '127.0.0.1', '-U', login.user] })).exitCode === 0);
      const globals = db.extraParts.find((p) => p.name === 'globals');
      if (globals) {
        const plain = await openPart(job.storage, m, partOf(m, globals.part), job.identities);
        // roles that the initialisation already created (the superuser) report "already exists": not an error
        const r = await execWithInput(c, { cmd: ['psql', '-X', '-q', '-U', login.user, '-d', 'postgres'], env: login.env }, plain.stream);
        await plain.done;
        const errs = r.stderr.split('\n').filter((l) => /ERROR/.test(l) && !/already exists/.test(l));
        if (errs.length) result.warnings.push(`${db.container}: globals: ${scrub(errs.slice(0, 3).join(' | '))}`);
      }
      for (const d of db.databases) {
        const exists = (await execCollect(c, { cmd: ['psql', '-X', '-At', '-U', login.user, '-d', 'postgres', '-c', `SELECT 1 FROM pg_database WHERE datname = '${d.name.replace(/'/g, "''")}'`], env: login.env })).stdout.trim() === '1';
        if (!exists) {
          const r = await execCollect(c, { cmd: ['createdb', '-U', login.user, '--', d.name], env: login.env });
          if (r.exitCode !== 0) throw new DrError(`${db.container}: createdb ${d.name} failed: ${scrub(r.stderr.trim())}`);
        }
        result.databases.push(await replayAndCompare(job, t, d, ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', login.user, '-d', d.name],
          pgDumpCmd(login.user, d.name), login.env, createPgDumpStats()));
      }
    }
    await c.stop({ t: 60 });
  } finally {
    await c.remove({ force: true, v: true }).catch((e: unknown) => job.log.warn({ container: name, err: errorMessage(e) }, 'could not remove the temporary container'));
  }
  return result;
}

/**
 * Redis: dump.rdb is written into the fresh volume (its stored and plaintext SHA-256 checked as it streams),
 * then a throwaway Redis (no AOF, no network) loads it; its keyspace is checked against the backup's summary
 * (one EVAL, compareKeyspace: every key without a TTL back, keys whose TTL ran out since the backup counted as
 * expired, nothing the backup did not have); AOF is switched on so Redis writes an AOF from the loaded data
 * (a stack running with --appendonly yes would otherwise start from an empty AOF and ignore the RDB), and
 * SHUTDOWN SAVE leaves a consistent RDB + AOF behind.
 */
async function restoreRedis(job: DbRestoreJob): Promise<{ keys: Record<string, number>; expired: number; notes: string[]; warnings: string[] }> {
  const rdb = job.db.extraParts.find((p) => p.name === 'rdb');
  if (!rdb) throw new CheckError(`${job.db.container}: the backup has no RDB part`);
  const part = partOf(job.manifest, rdb.part);
  const image = await resolveImage(job.docker, job.db);
  const helper = await createHelper(job.docker, image, job.volume, false, 'restore');
  try {
    const plain = await openPart(job.storage, job.manifest, part, job.identities);
    const pack = tar.pack();
    const entry = pack.entry({ name: 'dump.rdb', size: part.plain.size, mode: 0o644, mtime: new Date(job.manifest.finishedAt) });
    const body = new PassThrough();
    (pack as unknown as Readable).pipe(body);
    const upload = helper.putArchive(body, { path: '/vol' });
    await pipeline(plain.stream, entry as unknown as NodeJS.WritableStream);
    pack.finalize();
    await Promise.all([plain.done, upload]);
    const got = plain.plain.digest();
    if (got.sha256 !== part.plain.sha256) throw new CheckError(`part ${part.key}: content differs from the manifest`);
  } finally {
    await helper.remove({ force: true, v: true }).catch(() => {});
  }
  const name = `dr-restore-${job.manifest.id.toLowerCase()}-${job.db.container}`;
  const c = await job.docker.createContainer({
    name, Image: image, Cmd: ['redis-server', '--appendonly', 'no', '--save', '', '--dir', '/data'],
    Labels: { [HELPER_LABEL]: 'restore', 'dr.exclude': 'true' },
    HostConfig: { Binds: [`${job.volume}:/data`], NetworkMode: 'none' },
  });
  const t: DbTarget = { name: `${job.db.container} (temporary ${name})`, container: c, env: new Map(), cmd: [] };
  const cli = async (...args: string[]) => {
    const r = await execCollect(c, { cmd: ['redis-cli', ...args] });
    if (r.exitCode !== 0 || /^(ERR|LOADING|NOSCRIPT|BUSY)/.test(r.stdout)) throw new Error(r.stdout.trim() || r.stderr.trim());
    return r.stdout;
  };
  const who = `Redis ${job.db.container}`;
  try {
    const started = performance.now(); // a key whose TTL ran out by now is dropped while the RDB loads
    await c.start();
    try {
      await waitReady(c, t.name, async () => (await cli('PING')).trim() === 'PONG');
    } catch (err) { // a truncated or damaged RDB: Redis refuses to load it (its CRC64, its structure)
      throw new CheckError(`${who}: the restored RDB does not load: ${errorMessage(err)}`);
    }
    const info = await cli('INFO', 'keyspace');
    const keys: Record<string, number> = {};
    for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) keys[m[1]!] = Number(m[2]);
    const warnings: string[] = [];
    let expired = 0;
    const want = job.db.keyspace;
    if (want) {
      const dbs = [...new Set([...Object.keys(want.dbs).map((d) => Number(d.slice(2))), ...infoKeyspaceDbs(info)])].sort((a, b) => a - b);
      let reply: string;
      try {
        reply = await cli('EVAL', KEYSPACE_LUA, '0', ...keyspaceArgs(want.bounds, dbs));
      } catch (err) {
        throw new CheckError(`${who}: the keyspace check in the temporary Redis failed: ${errorMessage(err)}`);
      }
      // t0 on Redis's clock (the one the expiries are on): its TIME after the scan less the time elapsed
      // here since before the start — a little early, which only makes the check less strict
      const loaded = parseKeyspaceReply(reply);
      const t0 = loaded.time - Math.ceil(performance.now() - started);
      const cmp = compareKeyspace(want, loaded, t0);
      if (cmp.failures.length) throw new CheckError(`${who}: the restored RDB differs from the backup: ${cmp.failures.slice(0, 10).join('; ')}`);
      expired = cmp.expired;
    } else {
      // a backup made before keyspace summaries: only counts per database, taken beside the SAVE (not from the
      // RDB), so fewer keys may be TTLs that ran out; more keys than recorded is a difference
      const counts = job.db.keys ?? {};
      const dbs = [...new Set([...Object.keys(counts), ...Object.keys(keys)])];
      const more = dbs.filter((k) => (keys[k] ?? 0) > (counts[k] ?? 0)).map((k) => `${k}: ${keys[k] ?? 0} keys, the backup has ${counts[k] ?? 0}`);
      if (more.length) throw new CheckError(`${who}: the restored RDB differs from the backup: ${more.join('; ')}`);
      const fewer = dbs.filter((k) => (keys[k] ?? 0) < (counts[k] ?? 0));
      if (fewer.length) {
        warnings.push(`${who}: ${fewer.map((k) => `${k}: ${keys[k] ?? 0} keys, the backup counted ${counts[k]}`).join('; ')} — this backup predates keyspace summaries, so dr cannot tell keys whose TTL ran out from missing ones (the RDB itself is the one recorded: SHA-256 checked)`);
      }
    }
    await cli('CONFIG', 'SET', 'appendonly', 'yes');
    for (let i = 0; i < 600; i++) {
      const p = await cli('INFO', 'persistence');
      if (/aof_enabled:1/.test(p) && /aof_rewrite_in_progress:0/.test(p) && /aof_rewrite_scheduled:0/.test(p)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await execCollect(c, { cmd: ['redis-cli', 'SHUTDOWN', 'SAVE'] });
    await c.wait();
    const notes = expired ? [`${job.db.container}: ${expired} volatile ${expired === 1 ? 'key' : 'keys'} expired since the backup (TTL ran out; not a difference)`] : [];
    return { keys, expired, notes, warnings };
  } finally {
    await c.remove({ force: true, v: true }).catch(() => {});
  }
}
