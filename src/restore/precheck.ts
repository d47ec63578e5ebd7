/**
 * The restore's checks before anything is written: every part it will use has the stored size and SHA-256
 * the signed manifest records, its age header opens, and every entry of a volume's index is safe. With
 * --dry-run every part is read in full instead (decrypt, decompress, plaintext SHA-256, each tar entry
 * sanitised and compared with the index).
 *
 * Single read (`singleRead`, every restore but --force and --dry-run, whose targets are absent, empty or an
 * unfinished restore's output): a volume part is only checked to be present with its recorded size here;
 * its stored SHA-256 is checked as the write pass reads it (src/codec/read.ts openPlain), and a failure then
 * removes or empties what the run wrote (src/restore/run.ts). A dump part likewise: its replay reads it once
 * (src/db/replay.ts, checkOpened). The index parts are read in full here (the restore keeps them).
 */
import { CheckError } from '../core/errors.ts';
import { untilAborted } from '../core/concurrency.ts';
import { readPart, loadIndex, tarChecker, precheckPart, statPart, indexProblem } from '../codec/read.ts';
import type { DatabaseRecord, Manifest, PartRecord, VolumeRecord } from '../repo/manifest.ts';
import type { Storage } from '../storage/types.ts';
import type { IndexEntry } from '../tar/file-index.ts';

/** The manifest's records of parts `keys` (nulls skipped). */
export function partsOf(m: Manifest, keys: (string | null)[]): PartRecord[] {
  return keys.filter((k): k is string => !!k).map((k) => {
    const p = m.parts.find((x) => x.key === k);
    if (!p) throw new CheckError(`backup ${m.id}: the manifest names part ${k} but does not describe it`);
    return p;
  });
}

export interface PrecheckJob {
  storage: Storage;
  m: Manifest;
  vols: VolumeRecord[];
  dbs: DatabaseRecord[];
  identities: string[];
  dryRun: boolean;
  /** volume parts: presence and size only; the write pass checks their SHA-256 (see above) */
  singleRead: boolean;
  signal: AbortSignal;
}

/** Checks every part of `vols` and `dbs`; returns each volume's index, by volume name. */
export async function checkParts({ storage, m, vols, dbs, identities, dryRun, singleRead, signal }: PrecheckJob): Promise<Map<string, Map<string, IndexEntry>>> {
  const indexes = new Map<string, Map<string, IndexEntry>>();
  for (const v of vols) {
    signal.throwIfAborted();
    const [vp, ip] = partsOf(m, [v.part, v.index]) as [PartRecord, PartRecord];
    // the index loads while the volume part's stored bytes are hashed (both only read); a failure of the
    // index stops the hashing, and is the one reported
    let indexFailed = false;
    const [loaded, checked] = await untilAborted(Promise.allSettled([
      loadIndex(storage, m, ip, identities).catch((err: unknown) => { indexFailed = true; throw err; }),
      dryRun ? null : singleRead ? statPart(storage, m, vp) : precheckPart(storage, m, vp, identities, () => indexFailed || signal.aborted),
    ]), signal);
    if (loaded.status === 'rejected') throw loaded.reason;
    if (checked.status === 'rejected') throw checked.reason;
    const index = loaded.value;
    const bad = indexProblem(v.name, index);
    if (bad) throw bad;
    if (dryRun) {
      const checker = tarChecker(v.name, index);
      await untilAborted(readPart(storage, m, vp, identities, checker.sink), signal);
      if (checker.diffs.length) throw new CheckError(`volume ${v.name}: the archive differs from its index: ${checker.diffs.slice(0, 10).join('; ')}`);
    }
    indexes.set(v.name, index);
  }
  for (const d of dbs) {
    for (const p of partsOf(m, [...d.databases.map((x) => x.part), ...d.extraParts.map((x) => x.part)])) {
      await untilAborted(dryRun ? readPart(storage, m, p, identities) : singleRead ? statPart(storage, m, p) : precheckPart(storage, m, p, identities), signal);
    }
  }
  return indexes;
}
