/**
 * The backup lifecycle, top to bottom (hot mode):
 *   validate → lock → recover → discover → prepare the dumps (logins, checks) → [archive unquiesced volumes] →
 *   make the writers' volumes ready to read → quiesce writers → start every dump and read their volumes → once
 *   every dump has its snapshot and every volume is read, restart writers → store the dumps (and the last
 *   bytes of the volumes) → SHA256SUMS → manifest (commit) → release lock.
 * Dumps and volumes thus show the same moment: a row in a dump never names a file the apps deleted before
 * they were stopped (README, "What dr backup does"). Cold mode (databases stopped too) and a stack without
 * writers dump first, as the databases run.
 * The writers are restarted on success, on error and on SIGINT/SIGTERM, in reverse stop order; errors are
 * joined. A failed or interrupted backup removes everything it wrote: without a committed manifest a backup
 * does not exist.
 */
import { hostname } from 'node:os';
import { mkdir } from 'node:fs/promises';
import type { Context } from '../core/context.ts';
import { stage } from '../core/hooks.ts';
import { mapLimit, settledAll, untilAborted } from '../core/concurrency.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { acquireLock } from '../repo/lock.ts';
import { FORMAT, newBackupId, signManifest, type DatabaseRecord, type Manifest, type PartRecord, type VolumeRecord } from '../repo/manifest.ts';
import { cleanupIncomplete } from '../repo/catalog.ts';
import { pruneDestinations, retentionPolicy } from '../repo/prune.ts';
import { DestSet, type CopyStatus } from '../storage/destset.ts';
import { destinations } from '../storage/destinations.ts';
import { removeStaleHelpers, type VolumeSource } from '../docker/volumes.ts';
import { Hashers } from '../codec/hashers.ts';
import { prepareDump, type DumpResult, type StartedDump } from '../db/dump.ts';
import { discover } from '../stack/discover.ts';
import { recoverStopped, Quiescer } from '../stack/quiesce.ts';
import { settingsFor, planBackup, refuseDuringRestore, type BackupPlan } from './plan.ts';
import { VolumeArchiver, EARLY_READS } from './volumes.ts';
import { writeSums, writeManifest } from './commit.ts';
import pkg from '../../package.json' with { type: 'json' };

export interface BackupOptions { mode?: 'hot' | 'cold'; dryRun?: boolean }

export interface BackupResult { manifest: Manifest | null; plan: BackupPlan; warnings: string[]; copies: CopyStatus[] }

export async function runBackup(ctx: Context, opts: BackupOptions): Promise<BackupResult> {
  const { log, config } = ctx;
  const settings = settingsFor(ctx); // bad recipients or keys: refuse before touching anything
  const mode = opts.mode ?? config.mode;
  const docker = await ctx.docker();
  const id = newBackupId();

  if (opts.dryRun) {
    const { report } = await discover(docker, config, ctx.dockerEndpoint);
    return { manifest: null, plan: planBackup(report, mode, id, ctx, settings.recipients), warnings: report.problems.map((p) => `${p.subject}: ${p.message}`), copies: [] };
  }

  await mkdir(config.localDir, { recursive: true, mode: 0o700 });
  const dests = new DestSet(destinations(config, log), log);
  const lock = await acquireLock(config.localDir, 'dr backup', config.lockStaleSec, log);
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.warn({ signal: sig }, 'interrupted: aborting the backup, restarting stopped containers');
    abort.abort(new DrError(`backup interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const quiescer = new Quiescer(docker, config.localDir, log, config.stopTimeoutSec);
  let released: Promise<unknown> = Promise.resolve();
  const errors: unknown[] = [];
  let manifest: Manifest | null = null;
  let plan: BackupPlan | undefined;
  const startedAt = new Date();
  // started now (~0.1 s each), ready long before the first part (src/codec/hashers.ts)
  const hashers = new Hashers(config.compression === 'zstd' ? config.parallelism : 0);
  const partOpts = { ...settings.partOpts, signal: abort.signal, hashers };
  try {
    await recoverStopped(docker, config.localDir, log);
    await refuseDuringRestore(config.localDir);
    await removeStaleHelpers(docker);
    for (const d of dests.all) {
      try {
        await cleanupIncomplete(d, config.incompleteGraceSec, log);
        await d.abortStaleUploads?.(config.incompleteGraceSec);
      } catch (err) {
        dests.fail(d, err);
      }
    }
    if (!dests.live().length) throw new DrError(`no destination is usable: ${dests.status(false).map((c) => `${c.kind} ${c.location}: ${c.error}`).join('; ')}`);

    // discover; refuse clearly if something expected is missing
    const { report, handles } = await discover(docker, config, ctx.dockerEndpoint);
    if (report.problems.length) {
      throw new DrError(`refusing to back up: ${report.problems.map((p) => `${p.subject}: ${p.message}`).join('; ')}`, ExitCode.failed,
        'fix the problems listed (dr status shows them), then run dr backup again');
    }
    plan = planBackup(report, mode, id, ctx, settings.recipients);
    log.info({ id, mode, stop: plan.stop, hot: plan.hotVolumes, quiesced: plan.quiescedVolumes }, 'backup started');
    const parts: PartRecord[] = [];
    const volumes = new VolumeArchiver({ docker, report, handles, dests, id, opts: partOpts, parallelism: config.parallelism, signal: abort.signal, log, parts });
    const imageId = (name: string) => report.containers.find((c) => c.name === name)!.imageId;

    // 1. dumps: logins and checks now. In hot mode with writers to quiesce, the dumps start once the writers
    //    are down and hold them only until each has its snapshot; otherwise (cold mode: the databases stop
    //    too; no writers) they run now, while everything runs.
    const prepared = await mapLimit(report.databases, config.parallelism, (info) => {
      abort.signal.throwIfAborted();
      return prepareDump({ target: handles.containers.get(info.container)!, info, imageId: imageId(info.container), dests, backupId: id, opts: partOpts, log });
    });
    const snapshotInWindow = mode === 'hot' && plan.stop.length > 0 && prepared.length > 0;
    let dumps: DumpResult[] = [];
    if (!snapshotInWindow) {
      dumps = await mapLimit(prepared, config.parallelism, async (p) => {
        abort.signal.throwIfAborted();
        const started = p.start();
        await started.snapshot;
        return started.store();
      });
    }

    // 2. volumes nobody stops: archived live (src/backup/volumes.ts: a volume's slot is free once it is read)
    const volumeRecords: VolumeRecord[] = await settledAll(await volumes.archive(plan.hotVolumes, []));

    // 3. quiesce, archive, restart (restart also happens in finally on any error or signal)
    abort.signal.throwIfAborted();
    // Their volumes are made ready to read first (found; helper containers created on the archive-API path),
    // so the writers' downtime holds the reading alone.
    const ready = new Map<string, VolumeSource>();
    let storing: Promise<VolumeRecord>[];
    let started: StartedDump[] = [];
    try {
      // and their parts' folders exist (on local disk, creating one with its fsync took ~0.1 s of downtime).
      // A kill -9 before their first part leaves them empty; the next backup's clean-up removes such a
      // backup folder too (src/repo/catalog.ts cleanupIncomplete).
      if (plan.quiescedVolumes.length) await dests.prepare([`${id}/volumes`, `${id}/index`]);
      await mapLimit(plan.quiescedVolumes, config.parallelism, async (name) => { ready.set(name, await volumes.source(name)); });
      abort.signal.throwIfAborted();
      // app writers are stopped (or paused: DR_QUIESCE); the databases' wave of cold mode is always stopped
      await quiescer.stop(plan.waves, (i) => (i < report.stopWaves.length ? config.quiesce : 'stop'));
      // every dump starts now; each one's output waits in a bounded buffer (the command blocks, holding its
      // snapshot) until it is stored, after the writers run again
      const dumpWindow = performance.now();
      if (snapshotInWindow) started = prepared.map((p) => p.start());
      const snapshots = Promise.all(started.map((d) => d.snapshot)).then(() => performance.now() - dumpWindow);
      // the first EARLY_READS reads, in archive() order, start at once (a waiting tar goes, or an archive
      // request the engine answers in ~60 ms) and wait on their pipes (≤ ~1 MiB each) for their turn: their
      // start-up costs overlap
      for (const name of plan.quiescedVolumes.slice(0, EARLY_READS)) void ready.get(name)?.open();
      storing = await volumes.archive(plan.quiescedVolumes, quiescer.stopped.map((s) => s.name), ready);
      // no writer runs again before every database's snapshot is taken
      if (started.length) log.debug({ snapshotMs: Math.round(await untilAborted(snapshots, abort.signal)) }, 'every dump has its snapshot');
    } catch (err) {
      for (const d of started) d.abandon();
      throw err;
    } finally {
      // prepared, never read (an error came first): released while the writers start again (below)
      released = Promise.all([...ready.values()].map((r) => r.done()));
    }
    // every volume the writers use has been read and every dump has its snapshot: they run again while the
    // dumps and the last bytes of the volumes are stored
    const restartFailures = await quiescer.restartAll();
    const dumpsStored = settledAll(started.map((d) => d.store()));
    dumpsStored.catch(() => {}); // awaited below
    try {
      volumeRecords.push(...(await settledAll(storing)));
    } catch (err) {
      for (const d of started) d.abandon();
      await Promise.allSettled([dumpsStored]); // nothing may still be writing when the failed backup is removed
      throw err;
    }
    if (snapshotInWindow) dumps = await dumpsStored;
    if (restartFailures.length) throw new DrError(restartFailures.join('; '));
    const databases: DatabaseRecord[] = dumps.map((d) => d.record);
    for (const d of dumps) parts.push(...d.parts);

    for (const d of plan.dumpedVolumes) volumeRecords.push(volumes.coveredByDump(d.volume, d.container));
    volumeRecords.sort((a, b) => a.name.localeCompare(b.name));

    // 4. SHA256SUMS, then the manifest: the commit
    abort.signal.throwIfAborted();
    await writeSums(dests, id, parts);
    const finishedAt = new Date();
    manifest = signManifest({
      format: FORMAT, id, tool: { name: pkg.name, version: pkg.version }, host: hostname(), prefix: config.volumePrefix, mode,
      startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs: finishedAt.getTime() - startedAt.getTime(),
      downtime: { ms: quiescer.downtimeMs(), containers: quiescer.stopped },
      compression: config.compression, encryption: { scheme: 'age-x25519', recipients: settings.recipients },
      parts: [...parts].sort((a, b) => a.key.localeCompare(b.key)), volumes: volumeRecords, databases,
      containers: report.containers.map((c) => ({ name: c.name, image: c.image, imageId: c.imageId, service: c.composeService })),
      warnings: databases.flatMap((d) => d.warnings),
    }, settings.signingKey);
    abort.signal.throwIfAborted();
    await stage('manifest', abort.signal);
    await writeManifest(dests, manifest);
    for (const d of dests.all.filter((x) => dests.errorOf(x))) await d.deletePrefix(id).catch(() => {}); // orphans also go at the next backup
    log.info({ id, parts: parts.length, durationMs: manifest.durationMs, downtimeMs: manifest.downtime.ms, copies: dests.status(true) }, 'backup committed');
    if (config.pruneAfterBackup) {
      // under the lock this backup holds; a prune failure is logged, the backup stays committed
      const { policy, timeZone } = retentionPolicy(config);
      await pruneDestinations(dests.live(), policy, timeZone, false, log).catch((err: unknown) => log.error({ err: errorMessage(err) }, 'prune after backup failed'));
    }
  } catch (err) {
    errors.push(abort.signal.aborted ? abort.signal.reason : err);
    manifest = null;
  } finally {
    const failures = await quiescer.restartAll();
    await released;
    await hashers.close();
    errors.push(...failures.map((f) => new DrError(f)));
    if (!manifest) {
      for (const d of dests.all) {
        await d.deletePrefix(id).catch((e: unknown) => log.warn({ destination: d.location, err: errorMessage(e) }, `could not remove the incomplete backup ${id}; the next backup removes it`));
      }
      await removeStaleHelpers(docker).catch(() => {});
    }
    await lock.release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (errors.length) {
    const first = errors[0];
    const msg = errors.map((e) => errorMessage(e)).filter((m, i, a) => a.indexOf(m) === i).join('; ');
    throw new DrError(`backup ${id} failed, nothing was committed: ${msg}`,
      first instanceof DrError && first.exitCode !== ExitCode.failed ? first.exitCode : ExitCode.failed,
      first instanceof DrError ? first.hint : undefined);
  }
  return { manifest, plan: plan!, warnings: manifest!.warnings, copies: dests.status(true) };
}

