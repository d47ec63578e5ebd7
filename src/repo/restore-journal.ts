/**
 * The restore journal: `.dr-restore.json` next to the backups (DR_LOCAL_DIR) records an in-place restore
 * that has not finished: which backup, the command that resumes it, and per component (a volume, or a
 * database container with its data volume) what is done. It is written before the first byte is written
 * and removed once every component is restored and verified (before the stack is started).
 *
 * While it exists:
 *   - no dr command starts a container that mounts a target volume not yet verified (src/stack/quiesce.ts
 *     recoverStopped: not after a failure, an interrupt or a kill -9);
 *   - `dr backup` refuses (a backup of half-restored volumes would be kept by the retention policy);
 *   - the same `dr restore` resumes: components marked verified are skipped, targets the restore owns
 *     (created, or emptied after their old content was copied and verified) are emptied and written again
 *     without --force.
 */
import { readFile, rename, rm, open } from 'node:fs/promises';
import { join } from 'node:path';

export const RESTORE_JOURNAL = '.dr-restore.json';

export type ComponentState =
  /** not written yet (the target is absent, empty, or emptied by this restore) */
  | 'pending'
  /** being written: its content is incomplete */
  | 'writing'
  /** written, re-read and compared with the backup */
  | 'verified'
  /** failed: its content is incomplete; `error` says why */
  | 'failed'
  /** --force and a failure: the old content was put back and verified */
  | 'old-content';

export interface JournalComponent {
  kind: 'volume' | 'database';
  /** the volume's name in the backup, or the database container's */
  name: string;
  /** the volume written */
  target: string;
  state: ComponentState;
  error?: string;
  /** --force: the volume that holds the target's old content (verified entry by entry before the wipe) */
  keptAs?: string;
  /**
   * the target holds nothing but this restore's output: it was absent or empty, or its old content was
   * copied and checked (keptAs) — so a rerun may empty it without --force
   */
  owned: boolean;
}

export interface RestoreJournalData {
  /** the backup being restored */
  id: string;
  pid: number;
  startedAt: string;
  updatedAt: string;
  /** the command that resumes the restore */
  resume: string;
  components: JournalComponent[];
}

/** A target whose content is not (yet) what the backup or its old self holds. */
export const unfinished = (c: JournalComponent): boolean => c.state !== 'verified' && c.state !== 'old-content';

export async function readRestoreJournal(dir: string): Promise<RestoreJournalData | null> {
  const text = await readFile(join(dir, RESTORE_JOURNAL), 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const j = JSON.parse(text) as RestoreJournalData;
    if (typeof j.id === 'string' && Array.isArray(j.components)) return j;
  } catch { /* fall through */ }
  // unreadable: which volumes are unverified is unknown, so nothing may be started on any of them
  throw new Error(`${join(dir, RESTORE_JOURNAL)} is unreadable: an interrupted restore left it; check the volumes by hand (dr status), then remove the file`);
}

/** Atomic: temp file, fsync, rename. */
export async function writeRestoreJournal(dir: string, j: RestoreJournalData): Promise<void> {
  j.updatedAt = new Date().toISOString();
  const path = join(dir, RESTORE_JOURNAL);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(j, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function removeRestoreJournal(dir: string): Promise<void> {
  await rm(join(dir, RESTORE_JOURNAL), { force: true });
}

/** Target volumes of an unfinished restore that are not verified: nothing may start on them. */
export async function unverifiedTargets(dir: string): Promise<{ journal: RestoreJournalData | null; targets: Set<string> }> {
  const journal = await readRestoreJournal(dir);
  return { journal, targets: new Set(journal?.components.filter(unfinished).map((c) => c.target) ?? []) };
}
