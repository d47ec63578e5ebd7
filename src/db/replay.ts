/**
 * Databases come back by replay, not by copying files: a throwaway container from the image recorded in the
 * manifest on the fresh data volume — with the stack container's own environment and command (so it
 * initialises exactly as the stack does) or the engine's own command line — into which the engine
 * (src/db/<engine>/replay.ts) replays the backup and whose data it compares with the manifest. Then the
 * container is stopped cleanly and removed, and the stack's own DB container runs on the restored volume.
 *
 * tar-stream packs the single-file archive the Docker archive API takes (writeFile); src/tar/scan.ts is the
 * zero-copy reader for whole volumes.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { envMap } from '../docker/client.ts';
import { execWithInput, type ExecResult } from '../docker/exec.ts';
import { ENGINES } from './engines.ts';
import type { ReplayContext, Throwaway } from './engine.ts';
import { openPart, checkOpened } from '../codec/read.ts';
import { createHelper, HELPER_LABEL } from '../docker/volumes.ts';
import type { DatabaseRecord, EngineKind, Manifest, PartRecord } from '../repo/manifest.ts';
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

/** Whether restoring this engine needs the stack's own container (its environment initialises the database). */
export function needsStackContainer(engine: EngineKind): boolean {
  return ENGINES[engine].throwaway === 'stack';
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

function replayContext(job: DbRestoreJob, image: string, warnings: string[]): ReplayContext {
  const m = job.manifest;
  const feed = async (t: Throwaway, key: string, exec: Parameters<ReplayContext['feed']>[2]): Promise<ExecResult> => {
    // read once (the restore's check before writing looked only at its presence and size): a part that fails
    // to decrypt, or whose bytes are not the manifest's, fails as a CheckError naming it, whatever the client did
    const part = partOf(m, key);
    const plain = await openPart(job.storage, m, part, job.identities);
    const r = await execWithInput(t.container, exec, plain.stream).catch(async (err: unknown) => { await checkOpened(plain, part); throw err; });
    await checkOpened(plain, part);
    return r;
  };
  return {
    db: job.db,
    feed,
    async replayPart(t, key, exec) {
      const r = await feed(t, key, exec);
      if (r.exitCode !== 0) throw new CheckError(`${job.db.container}: replaying ${key} failed (exit ${r.exitCode}): ${scrub(r.stderr.trim().split('\n').slice(-3).join(' | '))}`);
    },
    waitReady: (t, probe) => waitReady(t.container, t.name, probe),
    warn: (message) => { warnings.push(message); },
    async writeFile(key, name) {
      const part = partOf(m, key);
      const helper = await createHelper(job.docker, image, job.volume, false, 'restore');
      try {
        const plain = await openPart(job.storage, m, part, job.identities);
        const pack = tar.pack();
        const entry = pack.entry({ name, size: part.plain.size, mode: 0o644, mtime: new Date(m.finishedAt) });
        const body = new PassThrough();
        (pack as unknown as Readable).pipe(body);
        const upload = helper.putArchive(body, { path: '/vol' });
        await pipeline(plain.stream, entry as unknown as NodeJS.WritableStream);
        pack.finalize();
        await Promise.all([checkOpened(plain, part), upload]);
      } finally {
        await helper.remove({ force: true, v: true }).catch(() => {});
      }
    },
  };
}

/** Restores one database container of a backup into `job.volume` and verifies it against the manifest. */
export async function restoreDatabase(job: DbRestoreJob): Promise<DbRestoreResult> {
  const { docker, db, manifest: m } = job;
  const engine = ENGINES[db.engine];
  const result: DbRestoreResult = { container: db.container, engine: db.engine, databases: [], warnings: [] };
  const image = await resolveImage(docker, db);
  const ctx = replayContext(job, image, result.warnings);
  await engine.seed?.(ctx);
  const spec = engine.throwaway === 'stack' ? job.template : { env: [], cmd: engine.throwaway.cmd, entrypoint: null };
  const env = envMap(spec.env);
  const name = `dr-restore-${m.id.toLowerCase()}-${db.container}`;
  job.signal?.throwIfAborted(); // an interrupted restore creates nothing more (its clean-up may be running)
  const c = await docker.createContainer({
    name, Image: image, Env: spec.env, Cmd: spec.cmd,
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    Labels: { [HELPER_LABEL]: 'restore', 'dr.exclude': 'true' },
    HostConfig: { Binds: [`${job.volume}:${engine.dataPath(env)}`], NetworkMode: 'none' },
  });
  const t: Throwaway = { name: `${db.container} (temporary ${name})`, container: c, env, cmd: spec.cmd, startedAt: 0 };
  try {
    job.signal?.throwIfAborted();
    t.startedAt = performance.now();
    await c.start();
    await stage(`restore:replay:${db.container}`, job.signal);
    await engine.replay(t, ctx);
    Object.assign(result, await engine.compare(t, ctx));
    await (engine.stop ? engine.stop(t) : c.stop({ t: 60 }));
  } finally {
    await c.remove({ force: true, v: true }).catch((e: unknown) => job.log.warn({ container: name, err: errorMessage(e) }, 'could not remove the temporary container'));
  }
  return result;
}
