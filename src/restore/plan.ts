/**
 * What a restore will do, decided before anything is written: its scope (which volumes and databases of the
 * backup), and for each target volume whether it is created, written over (an unfinished restore's output),
 * kept first (--force) or skipped (verified by an earlier run of the same restore); which containers stop
 * and which start afterwards.
 */
import type Docker from 'dockerode';
import type { Logger } from '../core/log.ts';
import { DrError, ExitCode } from '../core/errors.ts';
import type { DatabaseRecord, Manifest, VolumeRecord } from '../repo/manifest.ts';
import { unfinished, type RestoreJournalData } from '../repo/restore-journal.ts';
import { stopWavesOf, type ContainerInfo } from '../stack/discover.ts';
import { volumeState, keepName, KEEP_SUFFIX } from './targets.ts';

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
  /** --trust-signer: a signer key confirmed out of band, trusted besides the configured one (logged loudly) */
  trustSigner?: string;
}

/** What a restore does with one target volume. */
export interface TargetPlan {
  target: string;
  /** absent: created */
  create: boolean;
  /** --force: the old content is copied here (verified) before the target is emptied */
  keepOldAs: string | null;
  /** holds an unfinished restore's output (src/repo/restore-journal.ts): emptied and written again, no --force needed */
  rewrite: boolean;
  /** already restored and verified by an earlier run of this restore: skipped */
  skip: boolean;
}

export interface RestorePlan {
  id: string;
  from: string;
  volumes: ({ name: string } & TargetPlan)[];
  databases: ({ container: string; engine: string; databases: string[]; volume: string } & Omit<TargetPlan, 'target'>)[];
  stop: string[];
  /** `stop` grouped into waves stopped together */
  stopWaves: string[][];
  start: string[];
}

/** The backup's volumes and databases this restore brings back (--volume, --db; all of them without). */
export function selectScope(m: Manifest, id: string, opts: Pick<RestoreOptions, 'volumes' | 'dbs'>): { full: boolean; dbs: DatabaseRecord[]; vols: VolumeRecord[] } {
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
  return { full, dbs, vols };
}

/** An image to run helper containers with: the first of `prefer` given, else any of the stack or the backup. */
export function imageFor(prefer: string[], stack: readonly ContainerInfo[], m: Manifest): string | undefined {
  return prefer.find(Boolean) ?? stack[0]?.imageId ?? m.databases[0]?.imageId;
}

/** An image for helpers on volume `v`: its first user's, in the stack now or as the backup recorded it. */
export function volumeImage(v: VolumeRecord, stack: readonly ContainerInfo[], m: Manifest): string | undefined {
  const user = v.mountedBy[0]?.container;
  return imageFor([stack.find((c) => c.name === user)?.imageId ?? '', m.containers.find((c) => c.name === user)?.imageId ?? ''], stack, m);
}

export interface PlanJob {
  docker: Docker;
  m: Manifest;
  /** where the backup is read from, for the summary */
  from: string;
  suffix: string;
  force: boolean;
  full: boolean;
  vols: VolumeRecord[];
  dbs: DatabaseRecord[];
  /** the stack's containers as discovery found them now */
  stack: ContainerInfo[];
  /** the journal of an unfinished in-place restore, if any */
  prev: RestoreJournalData | null;
  /** containers an earlier, unfinished restore left stopped */
  leftStopped: string[];
  log: Logger;
}

/** Targets must be fresh (absent or empty) unless --force, or hold an unfinished restore's output. */
export async function planTargets({ docker, m, from, suffix, force, full, vols, dbs, stack, prev, leftStopped, log }: PlanJob): Promise<RestorePlan> {
  // targets holding restore output that is not verified: not user data, so written again without --force
  const owned = new Set(prev?.components.filter((c) => unfinished(c) && c.owned).map((c) => c.target) ?? []);
  // components an earlier, unfinished run of this same restore verified: skipped (also with --force: the
  // same command resumes; once the restore is finished, a new run redoes everything)
  const verifiedBefore = new Set(prev && prev.id === m.id ? prev.components.filter((c) => c.state === 'verified').map((c) => c.target) : []);
  if (prev && prev.id !== m.id && owned.size) {
    log.warn({ restore: prev.id, volumes: [...owned] }, `an unfinished restore of ${prev.id} left volumes that are not verified; this restore of ${m.id} writes over the ones it restores`);
  }
  const p: RestorePlan = { id: m.id, from, volumes: [], databases: [], stop: [], stopWaves: [], start: [] };
  const refuse: string[] = [];
  const keepNames = new Set<string>();
  const target = async (name: string, image: string): Promise<TargetPlan> => {
    const t = name + suffix;
    if (verifiedBefore.has(t)) return { target: t, create: false, keepOldAs: null, rewrite: false, skip: true };
    const st = await volumeState(docker, t, image);
    const rewrite = st === 'non-empty' && owned.has(t);
    if (st === 'non-empty' && !rewrite && !force) refuse.push(`volume ${t} is not empty`);
    const keepOldAs = st === 'non-empty' && !rewrite && force ? await keepName(docker, t, keepNames) : null;
    return { target: t, create: st === 'absent', keepOldAs, rewrite, skip: false };
  };
  for (const v of vols) {
    p.volumes.push({ name: v.name, ...(await target(v.name, volumeImage(v, stack, m)!)) });
  }
  for (const d of dbs) {
    const vol = d.dataVolumes[0];
    if (!vol) throw new DrError(`${d.container}: the backup records no data volume for it`);
    const { target: volume, ...t } = await target(vol, d.imageId);
    p.databases.push({ container: d.container, engine: d.engine, databases: d.databases.map((x) => x.name), volume, ...t });
  }
  if (refuse.length) {
    throw new DrError(`refusing to restore: ${refuse.join('; ')}`, ExitCode.failed,
      `restore side by side with --suffix, remove the volume, or pass --force (the old content is first copied to <volume>${KEEP_SUFFIX}<time> and checked)`);
  }
  if (!suffix) {
    const targets = new Set([...p.volumes.map((v) => v.name), ...dbs.flatMap((d) => d.dataVolumes)]);
    const users = stack.filter((c) => !c.excluded && c.mounts.some((mt) => targets.has(mt.volume)));
    const writers = stack.filter((c) => c.writer && !c.excluded);
    const stopSet = new Set([...users, ...writers].filter((c) => c.running).map((c) => c.name));
    p.stopWaves = stopWavesOf(stack.filter((c) => stopSet.has(c.name)).map((c) => ({ name: c.name, dependsOn: c.dependsOn })));
    p.stop = p.stopWaves.flat();
    p.start = full ? stack.filter((c) => !c.excluded).map((c) => c.name) : [...new Set([...stopSet, ...leftStopped.filter((n) => stack.some((c) => c.name === n))])];
    const missing = dbs.filter((d) => !stack.some((c) => c.name === d.container));
    if (missing.length) {
      throw new DrError(`the stack's containers ${missing.map((d) => d.container).join(', ')} do not exist on this host`, ExitCode.failed,
        'bring the stack definition back first (RESTORE.md): docker compose -f docker-compose.yml up --no-start');
    }
  }
  return p;
}

/** The command that runs this restore again (and so resumes it). */
export function resumeCommand(id: string, opts: RestoreOptions): string {
  return ['dr restore', id, ...(opts.from ? ['--from', opts.from] : []), ...(opts.volumes ?? []).flatMap((v) => ['--volume', v]),
    ...(opts.dbs ?? []).flatMap((d) => ['--db', d]), ...(opts.force ? ['--force'] : [])].join(' ');
}
