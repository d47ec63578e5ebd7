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
 */
import { mkdir } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Context } from './context.ts';
import { identitiesFrom } from './keys.ts';
import { acquireLock } from './lock.ts';
import { locateBackup, readManifest } from './backups.ts';
import { selectDestinations } from './destinations.ts';
import { checkSignature, FORMAT, type PartRecord, type VolumeRecord, type DatabaseRecord } from './manifest.ts';
import { readPart, loadIndex, tarChecker, openPlain, precheckPart, indexProblem, CheckError } from './check.ts';
import { tarGate } from './gate.ts';
import { rereader } from './reread.ts';
import { Writable } from 'node:stream';
import { localMountpoint, toolStage } from './tools.ts';
import { createHelper, volumeTar, readVolume, removeStaleHelpers } from './archive.ts';
import type { IndexEntry } from './tarindex.ts';
import { restoreDatabase, type DbRestoreResult } from './dbrestore.ts';
import { discover, stopWavesOf, type ContainerInfo } from './discover.ts';
import { Quiescer, recoverStopped } from './quiesce.ts';
import { startAndWait, type ServiceState } from './stackctl.ts';
import { pipeline } from 'node:stream/promises';
import { DrError, ExitCode } from './errors.ts';
import { restoreGcMode } from './memory.ts';

export interface RestoreOptions {
  id?: string;
  latest?: boolean;
  volumes?: string[];
  dbs?: string[];
  suffix?: string;
  force?: boolean;
  dryRun?: boolean;
  from?: string;
  /** extra labels for the volumes this restore creates (the drill marks its scratch volumes) */
  volumeLabels?: Record<string, string>;
  /** skip the lock (the caller holds it) */
  lockHeld?: boolean;
}

export interface RestorePlan {
  id: string;
  from: string;
  volumes: { name: string; target: string; create: boolean; keepOldAs: string | null }[];
  databases: { container: string; engine: string; databases: string[]; volume: string; create: boolean; keepOldAs: string | null }[];
  stop: string[];
  /** `stop` grouped into waves stopped together */
  stopWaves: string[][];
  start: string[];
}

export interface RestoreSummary {
  id: string;
  plan: RestorePlan;
  rtoMs: number;
  rpoSeconds: number;
  volumes: { name: string; target: string; entries: number }[];
  databases: DbRestoreResult[];
  services: ServiceState[];
  warnings: string[];
}

const KEEP_SUFFIX = (id: string) => `_pre-restore_${id.slice(0, 15).toLowerCase()}`;

/** Is the volume absent, or present and empty? (reads at most two tar entries) */
async function volumeState(docker: Docker, name: string, image: string): Promise<'absent' | 'empty' | 'non-empty'> {
  const exists = await docker.getVolume(name).inspect().then(() => true, () => false);
  if (!exists) return 'absent';
  const helper = await createHelper(docker, image, name, true, 'restore');
  try {
    const s = await volumeTar(helper, name);
    let bytes = 0;
    for await (const c of s) {
      bytes += (c as Buffer).length;
      // an empty volume is one directory header + the end-of-archive blocks: well under 4 KiB
      if (bytes > 4096) { s.destroy(); return 'non-empty'; }
    }
    return bytes > 3 * 512 + 1024 ? 'non-empty' : 'empty';
  } finally {
    await helper.remove({ force: true, v: true }).catch(() => {});
  }
}

export async function runRestore(ctx: Context, opts: RestoreOptions): Promise<RestoreSummary> {
  const backToDefault = restoreGcMode(); // flat memory with large indexes and a slow tar -x (src/memory.ts)
  try {
    return await restore(ctx, opts);
  } finally {
    backToDefault(); // a daemon's drill must not leave its backups in restore mode
  }
}

async function restore(ctx: Context, opts: RestoreOptions): Promise<RestoreSummary> {
  const t0 = Date.now();
  const { config, log } = ctx;
  const { identities, trusted } = identitiesFrom(config, 'dr restore');
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
  const quiescer = new Quiescer(docker, config.localDir, log, config.stopTimeoutSec);
  const created: string[] = [];
  let ok = false;
  try {
    if (lock) await recoverStopped(docker, config.localDir, log);
    // 1. the manifest: readable, known format, signed by the trusted key
    const m = await readManifest(storage, id);
    const sig = checkSignature(m, trusted);
    if (sig) throw new CheckError(`backup ${id}: ${sig}; refusing to restore`, 'restore another backup (dr list), or check DR_AGE_IDENTITY_FILE / DR_SIGNING_PUBLIC_KEY');
    if (m.format !== FORMAT) throw new CheckError(`backup ${id} has format ${m.format}; this dr reads ${FORMAT}`);

    // 2. scope
    const full = !opts.volumes?.length && !opts.dbs?.length;
    const dbs: DatabaseRecord[] = m.databases.filter((d) => full || opts.dbs?.some((x) => x === d.container || d.databases.some((n) => n.name === x)));
    // a database volume comes back through its dump (replayed and compared table by table); the raw copy a
    // cold backup also holds is restored only when asked for by --volume
    const fromDumps = new Set(dbs.flatMap((d) => d.dataVolumes));
    const vols: VolumeRecord[] = m.volumes.filter((v) => v.part && (full ? !fromDumps.has(v.name) : opts.volumes?.includes(v.name)));
    for (const want of opts.volumes ?? []) {
      const v = m.volumes.find((x) => x.name === want);
      if (!v) throw new DrError(`--volume ${want}: backup ${id} has no such volume (it has ${m.volumes.map((x) => x.name).join(', ')})`, ExitCode.usage);
      if (!v.part) throw new DrError(`--volume ${want}: this volume is covered by the dump of ${v.coveredBy?.slice(5)}; restore it with --db ${v.coveredBy?.slice(5)}`, ExitCode.usage);
    }
    for (const want of opts.dbs ?? []) {
      if (!m.databases.some((d) => d.container === want || d.databases.some((n) => n.name === want))) {
        throw new DrError(`--db ${want}: backup ${id} has no such database container or database`, ExitCode.usage);
      }
    }

    // 3. check every part this restore will use, before writing anything: stored size and SHA-256 against the
    //    signed manifest, the age header opens, every index entry is safe. --dry-run reads every part in full
    //    (decrypt, decompress, plaintext SHA-256, each tar entry sanitised and compared with the index).
    const parts = (keys: (string | null)[]) => keys.filter((k): k is string => !!k).map((k) => {
      const p = m.parts.find((x) => x.key === k);
      if (!p) throw new CheckError(`backup ${id}: the manifest names part ${k} but does not describe it`);
      return p;
    });
    const indexes = new Map<string, Awaited<ReturnType<typeof loadIndex>>>();
    for (const v of vols) {
      const [vp, ip] = parts([v.part, v.index]) as [PartRecord, PartRecord];
      // the index loads while the volume part's stored bytes are hashed (both only read); a failure of the
      // index stops the hashing, and is the one reported
      let indexFailed = false;
      const [loaded, checked] = await Promise.allSettled([
        loadIndex(storage, m, ip, identities).catch((err: unknown) => { indexFailed = true; throw err; }),
        opts.dryRun ? null : precheckPart(storage, m, vp, identities, () => indexFailed),
      ]);
      if (loaded.status === 'rejected') throw loaded.reason;
      if (checked.status === 'rejected') throw checked.reason;
      const index = loaded.value;
      const bad = indexProblem(v.name, index);
      if (bad) throw bad;
      if (opts.dryRun) {
        const checker = tarChecker(v.name, index);
        await readPart(storage, m, vp, identities, checker.sink);
        if (checker.diffs.length) throw new CheckError(`volume ${v.name}: the archive differs from its index: ${checker.diffs.slice(0, 10).join('; ')}`);
      }
      indexes.set(v.name, index);
    }
    for (const d of dbs) {
      for (const p of parts([...d.databases.map((x) => x.part), ...d.extraParts.map((x) => x.part)])) {
        await (opts.dryRun ? readPart(storage, m, p, identities) : precheckPart(storage, m, p, identities));
      }
    }
    log.info({ id, volumes: vols.length, databases: dbs.length }, opts.dryRun ? 'every part read in full and checked' : 'every part checked: signature, stored SHA-256, age header, index entries');

    // 4. plan: targets must be fresh (absent or empty) unless --force
    // after the checks (which may take minutes from S3): what runs now decides what is stopped
    const { report } = await discover(docker, config, ctx.dockerEndpoint).catch(() => ({ report: null }));
    const stack: ContainerInfo[] = report?.containers ?? [];
    const anyImage = (prefer: string[]) => prefer.find(Boolean) ?? stack[0]?.imageId ?? m.databases[0]?.imageId;
    const plan: RestorePlan = { id, from: `${storage.kind} ${storage.location}`, volumes: [], databases: [], stop: [], stopWaves: [], start: [] };
    const refuse: string[] = [];
    const target = async (name: string, image: string) => {
      const t = name + suffix;
      const st = await volumeState(docker, t, image);
      if (st === 'non-empty' && !opts.force) refuse.push(`volume ${t} is not empty`);
      return { target: t, create: st === 'absent', keepOldAs: st === 'non-empty' ? t + KEEP_SUFFIX(id) : null };
    };
    for (const v of vols) {
      const img = anyImage([stack.find((c) => c.name === v.mountedBy[0]?.container)?.imageId ?? '', m.containers.find((c) => c.name === v.mountedBy[0]?.container)?.imageId ?? '']);
      plan.volumes.push({ name: v.name, ...(await target(v.name, img!)) });
    }
    for (const d of dbs) {
      const vol = d.dataVolumes[0];
      if (!vol) throw new DrError(`${d.container}: the backup records no data volume for it`);
      const t = await target(vol, d.imageId);
      plan.databases.push({ container: d.container, engine: d.engine, databases: d.databases.map((x) => x.name), volume: t.target, create: t.create, keepOldAs: t.keepOldAs });
    }
    if (refuse.length) {
      throw new DrError(`refusing to restore: ${refuse.join('; ')}`, ExitCode.failed,
        'restore side by side with --suffix, remove the volume, or pass --force (the old content is kept as <volume>' + KEEP_SUFFIX(id) + ')');
    }
    if (!suffix) {
      const targets = new Set([...plan.volumes.map((v) => v.name), ...dbs.flatMap((d) => d.dataVolumes)]);
      const users = stack.filter((c) => !c.excluded && c.mounts.some((mt) => targets.has(mt.volume)));
      const writers = stack.filter((c) => c.writer && !c.excluded);
      const stopSet = new Set([...users, ...writers].filter((c) => c.running).map((c) => c.name));
      plan.stopWaves = stopWavesOf(stack.filter((c) => stopSet.has(c.name)).map((c) => ({ name: c.name, dependsOn: c.dependsOn })));
      plan.stop = plan.stopWaves.flat();
      plan.start = full ? stack.filter((c) => !c.excluded).map((c) => c.name) : [...stopSet];
      const missing = dbs.filter((d) => !stack.some((c) => c.name === d.container));
      if (missing.length) {
        throw new DrError(`the stack's containers ${missing.map((d) => d.container).join(', ')} do not exist on this host`, ExitCode.failed,
          'bring the stack definition back first (RESTORE.md): docker compose -f docker-compose.yml up --no-start');
      }
    }
    if (opts.dryRun) {
      return { id, plan, rtoMs: Date.now() - t0, rpoSeconds: Math.round((Date.now() - Date.parse(m.finishedAt)) / 1000), volumes: [], databases: [], services: [], warnings: [] };
    }

    // 5. stop what uses the targets; keep old content (--force); create missing volumes
    await removeStaleHelpers(docker);
    await quiescer.stop(plan.stopWaves);
    const labelsFor = (name: string, labels: Record<string, string>) => ({
      ...(suffix ? { ...Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith('com.docker.compose.'))), 'dr.restored-from': `${id}:${name}` } : labels),
      ...(opts.volumeLabels ?? {}),
    });
    for (const t of [...plan.volumes.map((v) => ({ name: v.name, target: v.target, create: v.create, keepOldAs: v.keepOldAs })),
      ...plan.databases.map((d) => ({ name: dbs.find((x) => x.container === d.container)!.dataVolumes[0]!, target: d.volume, create: d.create, keepOldAs: d.keepOldAs }))]) {
      const rec = m.volumes.find((v) => v.name === t.name);
      const image = anyImage([m.containers.find((c) => c.name === rec?.mountedBy[0]?.container)?.imageId ?? ''])!;
      if (t.keepOldAs) await keepOld(docker, t.target, t.keepOldAs, image, log);
      if (t.create) {
        await docker.createVolume({ Name: t.target, Driver: rec?.driver ?? 'local', Labels: labelsFor(t.name, rec?.labels ?? {}) });
        created.push(t.target);
      }
    }

    // 6. volumes: write, then re-read everything and compare with the index
    const volumeResults: RestoreSummary['volumes'] = [];
    for (const pv of plan.volumes) {
      const v = vols.find((x) => x.name === pv.name)!;
      const [vp] = parts([v.part]) as [PartRecord];
      const image = anyImage([stack.find((c) => c.name === v.mountedBy[0]?.container)?.imageId ?? '', m.containers.find((c) => c.name === v.mountedBy[0]?.container)?.imageId ?? ''])!;
      const mp = await localMountpoint(await docker.getVolume(pv.target).inspect().then((x) => x.Mountpoint, () => undefined), true);
      // every entry passes the gate (safe, and exactly as the index lists it) before the extractor sees it;
      // then every restored entry is re-read and compared with the index
      const index = indexes.get(v.name)!;
      const plain = await openPlain(storage, m, vp, identities);
      let result: { diffs: string[]; entries: number };
      if (mp) {
        // GNU tar straight into the volume's directory; the re-read follows tar's progress (tar -v)
        const rr = rereader(pv.target, mp, index);
        const gate = tarGate(v.name, index, (path) => rr.entry(path));
        let lines = 0;
        const progress = new Writable({
          write(c: Buffer, _e, cb) {
            for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) lines++;
            rr.started(lines - 1);
            cb();
          },
        });
        // 64 KiB records (-b 128): tar empties the pipe in one read instead of six 10 KiB ones, so Node writes
        // to it in 64 KiB steps instead of 10 KiB ones (a wake-up each)
        try {
          await pipeline(plain, gate.stream, toolStage('tar', ['-C', mp, '-x', '-v', '-p', '-b', '128', '--numeric-owner', '--same-owner', '--ignore-zeros', '-f', '-'], `tar -x into volume ${pv.target}`), progress);
          result = await rr.finish();
        } finally {
          await rr.close();
        }
      } else {
        const gate = tarGate(v.name, index);
        const helper = await createHelper(docker, image, pv.target, false, 'restore');
        try {
          await Promise.all([helper.putArchive(gate.stream, { path: '/vol' }), pipeline(plain, gate.stream)]);
        } finally {
          await helper.remove({ force: true, v: true }).catch(() => {});
        }
        await fixRoot(docker, image, pv.target, index.get('.'));
        const checker = tarChecker(pv.target, index, false);
        const back = await readVolume(docker, pv.target, image);
        try {
          await pipeline(back.stream, checker.sink);
        } finally {
          await back.done();
        }
        result = { diffs: checker.diffs, entries: checker.entries() };
      }
      if (result.diffs.length) throw new CheckError(`volume ${pv.target} differs from the backup after restore: ${result.diffs.slice(0, 10).join('; ')}`);
      volumeResults.push({ name: v.name, target: pv.target, entries: result.entries });
      log.info({ volume: pv.target, entries: result.entries, via: mp ? 'tar' : 'api' }, 'volume restored and verified');
    }

    // 7. databases: replay into throwaway containers, compare table statistics
    const dbResults: DbRestoreResult[] = [];
    for (const pd of plan.databases) {
      const d = dbs.find((x) => x.container === pd.container)!;
      const stackC = stack.find((c) => c.name === d.container);
      const ins = stackC ? await docker.getContainer(stackC.id).inspect() : null;
      if (!ins && d.engine !== 'redis') {
        throw new DrError(`${d.container} does not exist on this host, so there is no environment to initialise its database with`, ExitCode.failed,
          'bring the stack definition back first: docker compose -f docker-compose.yml up --no-start');
      }
      dbResults.push(await restoreDatabase({
        docker, manifest: m, db: d, storage, identities, volume: pd.volume, log,
        template: { env: ins?.Config.Env ?? [], cmd: ins?.Config.Cmd ?? [], entrypoint: (ins?.Config.Entrypoint as string[] | null | undefined) ?? null },
      }));
      log.info({ container: d.container, volume: pd.volume }, 'database restored and verified');
    }

    // 8. the stack back, healthy
    let services: ServiceState[] = [];
    if (!suffix) {
      await quiescer.restartAll(); // containers that were running come back in reverse stop order …
      const fresh = (await discover(docker, config, ctx.dockerEndpoint)).report.containers;
      services = await startAndWait(docker, fresh, plan.start, config.healthTimeoutSec, log); // … then everything, healthy
    }
    const warnings = dbResults.flatMap((d) => d.warnings);
    const unhealthy = services.filter((s) => !s.ok);
    ok = true;
    const summary: RestoreSummary = {
      id, plan, rtoMs: Date.now() - t0, rpoSeconds: Math.round((Date.now() - Date.parse(m.finishedAt)) / 1000),
      volumes: volumeResults, databases: dbResults, services, warnings,
    };
    if (unhealthy.length) {
      throw Object.assign(new DrError(`restore ${id} written and verified, but ${unhealthy.map((s) => `${s.name} is ${s.health ?? s.state}`).join(', ')}`, ExitCode.partial,
        'check the container logs (docker logs NAME); the data is restored'), { summary });
    }
    return summary;
  } catch (err) {
    if (!ok) {
      // nothing half-done: volumes this run created are removed, what it stopped runs again
      for (const v of created) await docker.getVolume(v).remove().catch(() => {});
      await removeStaleHelpers(docker).catch(() => {});
    }
    throw err;
  } finally {
    const failures = await quiescer.restartAll();
    for (const f of failures) log.error(f);
    await lock?.release();
  }
}

/** The archive API does not apply the root entry (./) to the volume's root: owner and mode are set here. */
async function fixRoot(docker: Docker, image: string, volume: string, root: IndexEntry | undefined): Promise<void> {
  if (!root) return;
  const c = await docker.createContainer({
    Image: image, Entrypoint: ['sh', '-c', `chown ${root.uid}:${root.gid} /vol && chmod ${root.mode.toString(8)} /vol`], Cmd: [], User: '0:0',
    Labels: { 'dr.helper': 'restore', 'dr.exclude': 'true' }, HostConfig: { Binds: [`${volume}:/vol`], NetworkMode: 'none' },
  });
  try {
    await c.start();
    const r = await c.wait() as { StatusCode: number };
    if (r.StatusCode !== 0) throw new DrError(`volume ${volume}: could not set the owner and mode of its root directory`);
  } finally {
    await c.remove({ force: true, v: true }).catch(() => {});
  }
}

/** --force: the old content of `volume` is copied to `keepAs` (kept until the operator removes it), then the volume is emptied. */
async function keepOld(docker: Docker, volume: string, keepAs: string, image: string, log: Context['log']): Promise<void> {
  await docker.createVolume({ Name: keepAs, Labels: { 'dr.exclude': 'true', 'dr.pre-restore-of': volume } });
  const src = await createHelper(docker, image, volume, true, 'restore');
  const dst = await createHelper(docker, image, keepAs, false, 'restore');
  try {
    await dst.putArchive(await volumeTar(src, volume), { path: '/vol' });
  } finally {
    await src.remove({ force: true, v: true }).catch(() => {});
    await dst.remove({ force: true, v: true }).catch(() => {});
  }
  const wipe = await docker.createContainer({
    Image: image, Entrypoint: ['sh', '-c', 'find /vol -mindepth 1 -delete'], Cmd: [], Labels: { 'dr.helper': 'restore', 'dr.exclude': 'true' },
    HostConfig: { Binds: [`${volume}:/vol`], NetworkMode: 'none' },
  });
  try {
    await wipe.start();
    const r = await wipe.wait() as { StatusCode: number };
    if (r.StatusCode !== 0) throw new DrError(`could not empty volume ${volume} (its old content is safe in ${keepAs})`);
  } finally {
    await wipe.remove({ force: true, v: true }).catch(() => {});
  }
  log.warn({ volume, keptAs: keepAs }, 'old content kept; remove that volume once the restore is confirmed');
}
