/**
 * The restore lifecycle, top to bottom:
 *   validate → lock → manifest + signature → check every part it will use (stored size and SHA-256 against
 *   the signed manifest, age header opens, index entries safe) → target volumes fresh (or --force: old
 *   content kept) → stop the containers using them → write volumes, every tar entry gated against the index →
 *   re-read and compare every file with the index →
 *   replay databases into throwaway containers and compare table statistics → start the stack in
 *   dependency order and wait for its healthchecks → summary with RTO and RPO.
 * Nothing is written before every check passed. With --suffix the volumes are restored side by side under
 * NAME+SUFFIX and nothing of the running stack is stopped.
 *
 * Failures and interrupts (RESTORE.md, "When a restore fails"): an in-place restore keeps a journal
 * (src/repo/restore-journal.ts) of what it restored and verified. On an error, SIGINT or SIGTERM (a second signal
 * while cleaning up only logs) it removes its temporary containers (running or not), puts the old content of
 * --force targets back (verified), keeps every component it verified, and starts only the containers whose
 * volumes are verified or untouched. After a kill -9 the journal keeps every dr command from starting a
 * container on a volume that was not verified. The same command resumes: verified components are skipped.
 */
import { mkdir } from 'node:fs/promises';
import type { Context } from '../core/context.ts';
import { stage } from '../core/hooks.ts';
import { DrError, ExitCode, errorMessage, CheckError } from '../core/errors.ts';
import { restoreGcMode } from '../core/memory.ts';
import { untilAborted } from '../core/concurrency.ts';
import { checkTrustedSignature } from '../repo/trust.ts';
import { acquireLock } from '../repo/lock.ts';
import { locateBackup, readManifest } from '../repo/catalog.ts';
import { FORMAT, type PartRecord } from '../repo/manifest.ts';
import { readRestoreJournal, writeRestoreJournal, removeRestoreJournal, unfinished, type JournalComponent, type RestoreJournalData } from '../repo/restore-journal.ts';
import { selectDestinations } from '../storage/destinations.ts';
import { removeStaleHelpers } from '../docker/volumes.ts';
import { identitiesFrom } from '../codec/keys.ts';
import { restoreDatabase, needsStackContainer, type DbRestoreResult } from '../db/replay.ts';
import { discover, type ContainerInfo } from '../stack/discover.ts';
import { Quiescer, recoverStopped, stoppedByDr } from '../stack/quiesce.ts';
import { startAndWait, type ServiceState } from '../stack/start.ts';
import { selectScope, planTargets, imageFor, volumeImage, resumeCommand, type RestoreOptions, type RestorePlan } from './plan.ts';
import { checkParts, partsOf } from './precheck.ts';
import { copyVerified, emptyVolume } from './targets.ts';
import { writeVolume } from './write-volume.ts';

export type { RestoreOptions } from './plan.ts';

export interface RestoreSummary {
  id: string;
  plan: RestorePlan;
  /** per component: what is done (the journal's view; on failure, what failed and why) */
  components: JournalComponent[];
  /** the command that resumes this restore (after a failure) */
  resume: string | null;
  rtoMs: number;
  rpoSeconds: number;
  volumes: { name: string; target: string; entries: number }[];
  databases: DbRestoreResult[];
  services: ServiceState[];
  warnings: string[];
}

export async function runRestore(ctx: Context, opts: RestoreOptions): Promise<RestoreSummary> {
  const backToDefault = restoreGcMode(); // flat memory with large indexes and a slow tar -x (src/core/memory.ts)
  try {
    return await restore(ctx, opts);
  } finally {
    backToDefault(); // a daemon's drill must not leave its backups in restore mode
  }
}

async function restore(ctx: Context, opts: RestoreOptions): Promise<RestoreSummary> {
  const t0 = Date.now();
  const { config, log } = ctx;
  const { identities, trust } = identitiesFrom(config, 'dr restore', opts.trustSigner);
  const suffix = opts.suffix ?? '';
  if (suffix && !/^[A-Za-z0-9_.-]+$/.test(suffix)) throw new DrError(`--suffix ${JSON.stringify(suffix)}: use letters, digits, "_", "." or "-"`, ExitCode.usage);
  if (opts.latest && opts.id) throw new DrError('give either a backup id or --latest', ExitCode.usage);
  if (!opts.latest && !opts.id) throw new DrError('which backup? give its id (dr list shows them) or --latest', ExitCode.usage);
  // the backup is read from the first destination holding a committed copy (local first), or from --from
  const { id, storage } = await locateBackup(selectDestinations(config, opts.from, log), opts.latest ? undefined : opts.id);
  log.info({ id, from: `${storage.kind} ${storage.location}` }, 'restoring');
  const docker = await ctx.docker();
  await mkdir(config.localDir, { recursive: true, mode: 0o700 });
  const lock = opts.dryRun || opts.lockHeld ? null : await acquireLock(config.localDir, `dr restore ${id}`, config.lockStaleSec, log);
  // an in-place restore keeps a journal of what it has verified (src/repo/restore-journal.ts); a side-by-side one
  // touches nothing of the stack, and a drill cleans up after itself
  const journaled = !suffix && !opts.dryRun;
  const resume = resumeCommand(id, opts);
  const abort = new AbortController();
  const signal = abort.signal;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal.aborted) { log.warn({ signal: sig }, 'still cleaning up after the interrupt: temporary containers are being removed, old content put back'); return; }
    log.warn({ signal: sig }, 'interrupted: stopping the restore; temporary containers are removed, nothing is started on a volume that is not verified');
    abort.abort(new DrError(`restore of ${id} interrupted by ${sig}`, ExitCode.failed, journaled ? `run the same command again to resume: ${resume}` : undefined));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const quiescer = new Quiescer(docker, config.localDir, log, config.stopTimeoutSec);
  const created: string[] = [];
  /** this run's components, by target volume */
  const comps = new Map<string, JournalComponent>();
  let journal: RestoreJournalData | null = null;
  const record = async () => { if (journal) await writeRestoreJournal(config.localDir, journal); };
  /** a component of this run enters `state`, journalled before anything else happens */
  const mark = async (target: string, state: 'writing' | 'verified') => { const c = comps.get(target)!; c.state = state; await record(); return c; };
  /** --force targets whose old content was copied (verified) and then removed from the target */
  const wiped = new Map<string, { keptAs: string; image: string }>();
  let plan: RestorePlan | null = null;
  let copying: string | null = null;
  let stack: ContainerInfo[] = [];
  let ok = false;
  try {
    if (lock) {
      await recoverStopped(docker, config.localDir, log);
      // helpers and temporary DB containers of an interrupted restore (kill -9), running or not
      await removeStaleHelpers(docker, true);
    }
    // 1. the manifest: readable, known format, signed by the trusted key
    const m = await readManifest(storage, id);
    const { problem: sig } = checkTrustedSignature(m, trust, 'dr restore', id, log);
    if (sig) throw new CheckError(`backup ${id}: ${sig}; refusing to restore`, 'restore another backup (dr list), or check DR_AGE_IDENTITY_FILE / DR_SIGNING_PUBLIC_KEY');
    if (m.format !== FORMAT) throw new CheckError(`backup ${id} has format ${m.format}; this dr reads ${FORMAT}`);

    // 2. scope
    const { full, dbs, vols } = selectScope(m, id, opts);

    // 3. check every part this restore will use, before writing anything (src/restore/precheck.ts)
    // without --force no target holds content to lose: a volume part is read once, its SHA-256 checked as it is written
    const singleRead = !opts.force && !opts.dryRun;
    const indexes = await checkParts({ storage, m, vols, dbs, identities, dryRun: !!opts.dryRun, singleRead, signal });
    log.info({ id, volumes: vols.length, databases: dbs.length }, opts.dryRun ? 'every part read in full and checked'
      : singleRead ? 'every part checked: signature, index entries; volume and dump parts present with their size (their SHA-256 is checked as they are read, once)'
        : 'every part checked: signature, stored SHA-256, age header, index entries');

    // 4. plan: targets must be fresh (absent or empty) unless --force, or hold an unfinished restore's output
    // after the checks (which may take minutes from S3): what runs now decides what is stopped
    const { report } = await discover(docker, config, ctx.dockerEndpoint).catch(() => ({ report: null }));
    stack = report?.containers ?? [];
    const prev = journaled ? await readRestoreJournal(config.localDir) : null;
    // containers an earlier, unfinished restore left stopped come back with this one
    const leftStopped = lock ? await stoppedByDr(config.localDir) : [];
    const p: RestorePlan = plan = await planTargets({ docker, m, from: `${storage.kind} ${storage.location}`, suffix, force: !!opts.force, full, vols, dbs, stack, prev, leftStopped, log });
    const anyImage = (prefer: string[]) => imageFor(prefer, stack, m);
    if (opts.dryRun) {
      return { id, plan: p, components: [], resume: null, rtoMs: Date.now() - t0, rpoSeconds: Math.round((Date.now() - Date.parse(m.finishedAt)) / 1000), volumes: [], databases: [], services: [], warnings: [] };
    }

    // 5. the journal first; then stop what uses the targets; old content kept and checked (--force); targets
    //    holding an unfinished restore's output emptied; missing volumes created
    for (const v of p.volumes) comps.set(v.target, { kind: 'volume', name: v.name, target: v.target, state: v.skip ? 'verified' : 'pending', owned: !v.keepOldAs });
    for (const d of p.databases) comps.set(d.volume, { kind: 'database', name: d.container, target: d.volume, state: d.skip ? 'verified' : 'pending', owned: !d.keepOldAs });
    // an interrupted --force run already copied (and checked) the old content and emptied the target: that
    // copy stays the one to put back if this run fails
    for (const c of prev?.components ?? []) {
      const mine = comps.get(c.target);
      if (!mine || !c.keptAs || !unfinished(c) || mine.state === 'verified') continue;
      if (!(await docker.getVolume(c.keptAs).inspect().then(() => true, () => false))) continue;
      mine.keptAs = c.keptAs;
      const rec = m.volumes.find((v) => v.name === c.target); // journaled: in place, so the target is the volume's own name
      wiped.set(c.target, { keptAs: c.keptAs, image: anyImage([m.containers.find((x) => x.name === rec?.mountedBy[0]?.container)?.imageId ?? ''])! });
    }
    if (journaled) {
      const others = (prev?.components ?? []).filter((c) => !comps.has(c.target) && unfinished(c));
      journal = { id, pid: process.pid, startedAt: new Date().toISOString(), updatedAt: '', resume, components: [...others, ...comps.values()] };
      await record();
    }
    // nothing starts on a volume of this restore that is not verified — not even the crash safety net
    const notVerified = () => new Set(journal ? journal.components.filter(unfinished).map((c) => c.target) : [...comps.values()].filter(unfinished).map((c) => c.target));
    quiescer.holdIf = (name) => {
      const bad = stack.find((c) => c.name === name)?.mounts.find((mt) => notVerified().has(mt.volume));
      return bad ? `volume ${bad.volume} is not restored and verified` : null;
    };
    await removeStaleHelpers(docker);
    await quiescer.stop(p.stopWaves);
    const labelsFor = (name: string, labels: Record<string, string>) => ({
      ...(suffix ? { ...Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith('com.docker.compose.'))), 'dr.restored-from': `${id}:${name}` } : labels),
      ...(opts.volumeLabels ?? {}),
    });
    for (const t of [...p.volumes.map((v) => ({ name: v.name, target: v.target, create: v.create, keepOldAs: v.keepOldAs, rewrite: v.rewrite, skip: v.skip })),
      ...p.databases.map((d) => ({ name: dbs.find((x) => x.container === d.container)!.dataVolumes[0]!, target: d.volume, create: d.create, keepOldAs: d.keepOldAs, rewrite: d.rewrite, skip: d.skip }))]) {
      if (t.skip) continue;
      signal.throwIfAborted();
      const rec = m.volumes.find((v) => v.name === t.name);
      const image = anyImage([m.containers.find((c) => c.name === rec?.mountedBy[0]?.container)?.imageId ?? ''])!;
      if (t.keepOldAs) {
        copying = t.keepOldAs; // an unfinished copy is removed by the clean-up (the target is untouched)
        const n = await untilAborted(copyVerified(docker, t.target, t.keepOldAs, image, { 'dr.exclude': 'true', 'dr.pre-restore-of': t.target, 'dr.pre-restore-backup': id }), signal);
        copying = null;
        Object.assign(comps.get(t.target)!, { keptAs: t.keepOldAs, owned: true });
        wiped.set(t.target, { keptAs: t.keepOldAs, image });
        await record();
        log.warn({ volume: t.target, keptAs: t.keepOldAs, entries: n }, 'old content copied and checked entry by entry; remove that volume once the restore is confirmed');
        await emptyVolume(docker, t.target, image, `its old content is safe in ${t.keepOldAs}`);
      } else if (t.rewrite) {
        await emptyVolume(docker, t.target, image, 'it holds an unfinished restore\'s output');
      }
      if (t.create) {
        await docker.createVolume({ Name: t.target, Driver: rec?.driver ?? 'local', Labels: labelsFor(t.name, rec?.labels ?? {}) });
        created.push(t.target);
      }
    }

    // 6. volumes: write, then re-read everything and compare with the index
    const volumeResults: RestoreSummary['volumes'] = [];
    for (const pv of p.volumes) {
      if (pv.skip) { log.info({ volume: pv.target }, 'already restored and verified by an earlier run of this restore: skipped'); continue; }
      signal.throwIfAborted();
      await stage(`restore:volume:${pv.name}`, signal);
      const comp = await mark(pv.target, 'writing');
      const v = vols.find((x) => x.name === pv.name)!;
      const [vp] = partsOf(m, [v.part]) as [PartRecord];
      const image = volumeImage(v, stack, m)!;
      const result = await writeVolume({ docker, storage, m, part: vp, volume: v.name, target: pv.target, index: indexes.get(v.name)!, identities, image, signal });
      if (result.diffs.length) throw new CheckError(`volume ${pv.target} differs from the backup after restore: ${result.diffs.slice(0, 10).join('; ')}`);
      await mark(comp.target, 'verified');
      volumeResults.push({ name: v.name, target: pv.target, entries: result.entries });
      log.info({ volume: pv.target, entries: result.entries, via: result.via }, 'volume restored and verified');
    }

    // 7. databases: replay into throwaway containers, compare table statistics
    const dbResults: DbRestoreResult[] = [];
    for (const pd of p.databases) {
      if (pd.skip) { log.info({ container: pd.container, volume: pd.volume }, 'already restored and verified by an earlier run of this restore: skipped'); continue; }
      signal.throwIfAborted();
      await stage(`restore:db:${pd.container}`, signal);
      const comp = await mark(pd.volume, 'writing');
      const d = dbs.find((x) => x.container === pd.container)!;
      const stackC = stack.find((c) => c.name === d.container);
      const ins = stackC ? await docker.getContainer(stackC.id).inspect() : null;
      if (!ins && needsStackContainer(d.engine)) {
        throw new DrError(`${d.container} does not exist on this host, so there is no environment to initialise its database with`, ExitCode.failed,
          'bring the stack definition back first: docker compose -f docker-compose.yml up --no-start');
      }
      dbResults.push(await untilAborted(restoreDatabase({
        docker, manifest: m, db: d, storage, identities, volume: pd.volume, log, signal,
        template: { env: ins?.Config.Env ?? [], cmd: ins?.Config.Cmd ?? [], entrypoint: (ins?.Config.Entrypoint as string[] | null | undefined) ?? null },
      }), signal));
      await mark(comp.target, 'verified');
      log.info({ container: d.container, volume: pd.volume }, 'database restored and verified');
    }

    // every component is restored and verified: from here on, nothing holds the stack back
    if (journaled) { await removeRestoreJournal(config.localDir); journal = null; }

    // 8. the stack back, healthy
    let services: ServiceState[] = [];
    if (!suffix) {
      await stage('restore:start', signal);
      await quiescer.restartAll(); // containers that were running come back in reverse stop order …
      const fresh = (await discover(docker, config, ctx.dockerEndpoint)).report.containers;
      services = await untilAborted(startAndWait(docker, fresh, p.start, config.healthTimeoutSec, log), signal); // … then everything, healthy
    }
    const warnings = dbResults.flatMap((d) => d.warnings);
    const unhealthy = services.filter((s) => !s.ok);
    ok = true;
    const summary: RestoreSummary = {
      id, plan: p, components: [...comps.values()], resume: null, rtoMs: Date.now() - t0, rpoSeconds: Math.round((Date.now() - Date.parse(m.finishedAt)) / 1000),
      volumes: volumeResults, databases: dbResults, services, warnings,
    };
    if (unhealthy.length) {
      throw Object.assign(new DrError(`restore ${id} written and verified, but ${unhealthy.map((s) => `${s.name} is ${s.health ?? s.state}`).join(', ')}`, ExitCode.partial,
        'check the container logs (docker logs NAME); the data is restored'), { summary });
    }
    return summary;
  } catch (err) {
    if (!ok) {
      const error = signal.aborted ? signal.reason as Error : err;
      await failed(error).catch((e: unknown) => log.error({ err: errorMessage(e) }, 'the clean-up after the failed restore failed'));
      throw error;
    }
    throw err;
  } finally {
    const failures = await quiescer.restartAll();
    for (const f of failures) log.error(f);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lock?.release();
  }

  /**
   * Nothing half-done: temporary containers go (running or not); the component being written is marked
   * failed; --force targets not verified get their old content back (checked); volumes this run created that
   * hold nothing verified are removed (all of them, for a side-by-side restore); the journal keeps what is
   * verified, so the same command resumes.
   */
  async function failed(err: unknown): Promise<void> {
    await removeStaleHelpers(docker, true).catch(() => {});
    if (copying) await docker.getVolume(copying).remove().catch((e: unknown) => log.warn({ volume: copying, err: errorMessage(e) }, 'could not remove the unfinished copy of the old content'));
    const why = errorMessage(err);
    for (const c of comps.values()) if (c.state === 'writing') { c.state = 'failed'; c.error = why; }
    for (const [t, w] of wiped) {
      const c = comps.get(t)!;
      if (!unfinished(c)) continue;
      try {
        await emptyVolume(docker, t, w.image, `its old content is safe in ${w.keptAs}`);
        const n = await copyVerified(docker, w.keptAs, t, w.image, null);
        c.state = 'old-content';
        c.error = `${c.error ?? why}; the old content was put back (${n} entries checked)`;
        log.warn({ volume: t, from: w.keptAs, entries: n }, 'the restore failed: the old content was put back and checked');
      } catch (e) {
        c.state = 'failed';
        c.error = `${c.error ?? why}; putting the old content back failed too (${errorMessage(e)}): it is in volume ${w.keptAs}; put it back with: ` +
          `docker run --rm --network none -v ${w.keptAs}:/from:ro -v ${t}:/to --entrypoint sh ${w.image.replace(/^sha256:/, '').slice(0, 12)} -c 'find /to -mindepth 1 -delete && cd /from && tar -cf - . | tar -C /to -xpf -'`;
        log.error({ volume: t, keptAs: w.keptAs }, c.error);
      }
    }
    for (const v of created) {
      const c = comps.get(v);
      // in place, a verified volume is kept (the rerun resumes); a side-by-side restore cannot be resumed, so
      // a failed one leaves nothing behind
      if (c && !unfinished(c) && journaled) continue;
      await docker.getVolume(v).remove().catch(() => {});
      if (c && c.state === 'pending') c.error ??= 'not started';
    }
    if (journal) {
      if (journal.components.some(unfinished)) await record();
      else { await removeRestoreJournal(config.localDir); journal = null; }
    }
    if (plan) Object.assign(err as object, { summary: partialSummary() });
  }

  function partialSummary(): RestoreSummary {
    return {
      id: plan!.id, plan: plan!, components: [...comps.values()], resume: journal ? resume : null, rtoMs: Date.now() - t0, rpoSeconds: 0,
      volumes: [], databases: [], services: [], warnings: [],
    };
  }
}

