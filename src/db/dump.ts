/**
 * Database dumps through `docker exec` in the DB containers (no network access to the databases), streamed
 * into parts; each engine (src/db/<engine>/dump.ts) says which commands, this module runs them.
 * Credentials come from the container's environment and travel in the exec environment.
 *
 * A dump runs in three steps so that `dr backup` can take every database's snapshot while the app writers
 * are quiesced (README, "What dr backup does"): prepareDump() does the logins and checks while everything
 * runs; start() launches the dump commands and resolves `snapshot` as soon as each has its snapshot (how a
 * command shows it: its SnapshotMark) — while their output waits in bounded buffers (the commands block,
 * holding their snapshots); store() then streams everything into parts once the writers run again.
 *
 * tar-stream unpacks the single-file archive the Docker archive API returns (containerFile); src/tar/scan.ts
 * is the zero-copy reader for whole volumes.
 */
import { PassThrough, Transform, pipeline, type Readable, type Writable } from 'node:stream';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { execStream, checkedStdout, type ExecOptions, type ExecStreams } from '../docker/exec.ts';
import { ENGINES } from './engines.ts';
import type { DbTarget, DatabaseInfo, DumpContext, Launched, PreparedDump, SnapshotMark } from './engine.ts';
import { storePart, EXT, type PartOptions } from '../codec/write.ts';
import type { PartRecord } from '../repo/manifest.ts';
import type { DestSet } from '../storage/destset.ts';
import type { Logger } from '../core/log.ts';
import { DrError, errorMessage } from '../core/errors.ts';

export type { DumpResult, PreparedDump, StartedDump } from './engine.ts';

export interface DumpJob {
  target: DbTarget;
  info: DatabaseInfo;
  imageId: string;
  dests: DestSet;
  backupId: string;
  opts: PartOptions;
  log: Logger;
}

/** Keeps names usable as one path segment (database names may contain almost anything). */
export function safeSegment(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.codePointAt(0)!.toString(16).padStart(2, '0')}`).replace(/^\./, '%2e');
}

function store(job: DumpJob, name: string, ext: string, label: string, source: Readable, side?: Writable): Promise<PartRecord> {
  const key = `dumps/${safeSegment(job.target.name)}/${safeSegment(name)}${ext}${EXT[job.opts.compression]}.age`;
  return storePart(job.dests, job.backupId, key, 'dump', `${job.target.name}/${label}`, source, job.opts, side ? { side } : {});
}

/**
 * Starts `exec` and watches for its snapshot. Its stdout is held in a bounded buffer (the command then blocks,
 * its snapshot kept) until the returned streams are read.
 */
function launch(job: DumpJob, exec: ExecOptions, mark: SnapshotMark): Launched {
  let taken!: () => void;
  const snapshot = new Promise<void>((r) => { taken = r; });
  let abandoned = false;
  let held: ExecStreams | undefined;
  const streams = (async () => {
    const s = await execStream(job.target.container, exec);
    let first = true;
    const stdout = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _e, cb) {
        if (first && mark === 'first-byte') { first = false; taken(); }
        cb(null, chunk);
      },
    });
    const stderr = mark === 'first-byte' ? new PassThrough({ highWaterMark: 1 << 20 }) : mark(taken);
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

/** The single file at `path` inside a container, as a stream (archive API + tar). */
async function containerFile(container: Docker.Container, path: string, what: string): Promise<Readable> {
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

/** Logins and checks for `job`'s dump, done while everything runs; start() launches it. */
export async function prepareDump(job: DumpJob): Promise<PreparedDump> {
  const t = job.target;
  const ctx: DumpContext = {
    target: t, info: job.info, log: job.log,
    record: {
      container: t.name, engine: job.info.engine, image: job.info.image, imageId: job.imageId,
      version: job.info.version ?? '', serverVersion: job.info.serverVersion ?? '', dataVolumes: job.info.dataVolumes,
      extraParts: [], databases: [], warnings: [],
    },
    launch: (exec, mark) => launch(job, exec, mark),
    storeLaunched: async (l, name, ext, what, side) => store(job, name, ext, name, checkedStdout(await l.streams, t.name, what), side),
    storeExec: async (name, ext, exec, what) => store(job, name, ext, name, checkedStdout(await execStream(t.container, exec), t.name, what)),
    storeFile: async (path, name, ext, label, side) => store(job, name, ext, label, await containerFile(t.container, path, t.name), side),
  };
  return ENGINES[job.info.engine].prepareDump(ctx);
}
